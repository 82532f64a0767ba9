// The signed-in user, the CSRF token (kept in the API client) and what the user may do.
import { computed, reactive } from 'vue';
import { api } from './api/client';
import type { SessionInfo, User } from './api/types';

export const session = reactive({
  user: null as User | null,
  permissions: null as unknown,
  checked: false,
});

export function setSession(info: SessionInfo | null): void {
  session.user = info?.user ?? null;
  session.permissions = info?.permissions ?? null;
  session.checked = true;
  if (!info) api.csrfToken = null;
}

/** Asks the server once whether a session exists; resolves to whether the user is signed in. */
export async function ensureSession(): Promise<boolean> {
  if (session.checked) return !!session.user;
  try {
    setSession(await api.me());
  } catch {
    setSession(null);
  }
  return !!session.user;
}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Whether the user is an administrator. The API leaves the exact shape of `user` and `permissions`
 * open, so several spellings are accepted: user.is_admin, user.role / role_name "admin",
 * permissions.admin or permissions.is_admin.
 */
export function isAdminUser(user: User | null, permissions: unknown): boolean {
  if (!user) return false;
  if (user.is_admin === true || user.admin === true) return true;
  const role = String(user.role ?? user.role_name ?? '').toLowerCase();
  if (role === 'admin' || role === 'administrator') return true;
  if (isDict(permissions) && (permissions.admin === true || permissions.is_admin === true)) return true;
  // Whoever may change every role can grant themselves anything: treat as an administrator.
  if (isDict(permissions)) {
    const ents = isDict(permissions.entities) ? permissions.entities : permissions;
    const role = ents.role ?? ents.roles;
    if (isDict(role) && role.update === 'all') return true;
  }
  if (Array.isArray(user.roles) && user.roles.some((r) => String(r).toLowerCase() === 'admin')) return true;
  return false;
}

export const isAdmin = computed(() => isAdminUser(session.user, session.permissions));

/**
 * Whether the permissions allow an action on an entity. Unknown shapes allow (the server decides
 * and answers 403); a scope of "none" or false denies. Accepted: permissions.entities[e][action]
 * or permissions[e][action].
 */
export function can(entity: string, action: 'create' | 'read' | 'update' | 'delete'): boolean {
  if (isAdmin.value) return true;
  const p = session.permissions;
  if (!isDict(p)) return true;
  const byEntity = isDict(p.entities) ? p.entities : p;
  const ep = byEntity[entity];
  if (!isDict(ep)) return true;
  const v = ep[action];
  return !(v === 'none' || v === false);
}

export function userDisplayName(user: User | null): string {
  if (!user) return '';
  return String(user.display_name || user.name || user.full_name || user.username || user.id);
}
