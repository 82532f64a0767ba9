// Pure helpers of the customer pages (issue 4): the 360 page's types and ordering, the channel
// filter, what the phone lookup box does with the server's matches, and the merge request body.
import type { Id, RecordData } from '../api/types';

export interface Page<T = RecordData> {
  items: T[];
  next_cursor: string | null;
}

/** GET /api/v1/accounts/{id}/360 — a section the caller may not read is null. */
export interface Account360 {
  account: RecordData;
  contacts: Page | null;
  profile: Page | null;
  timeline: Page | null;
  timeline_query?: { filter?: unknown; sort?: string } | null;
}

export interface PhoneMatch {
  entity: string;
  plural: string;
  id: Id;
  title: string;
  account_id?: Id | null;
  account_title?: string | null;
  relationship_level?: string | null;
  credit_class?: string | null;
  key_account?: boolean | null;
  open_items?: { interactions?: number; follow_up?: number } | null;
}

export interface PhoneLookup {
  number: string;
  e164?: string | null;
  matches: PhoneMatch[];
}

export type LookupAction =
  | { kind: 'new'; path: string; query: Record<string, string> }
  | { kind: 'open'; path: string }
  | { kind: 'pick'; matches: PhoneMatch[] };

/** 0 matches → a new contact with the number; 1 → open it; several → a pick list. */
export function lookupAction(typed: string, r: PhoneLookup): LookupAction {
  const matches = r.matches ?? [];
  if (matches.length === 0) {
    return { kind: 'new', path: '/contacts/new', query: { phones: r.e164 || typed.trim() } };
  }
  if (matches.length === 1) return { kind: 'open', path: matchPath(matches[0]) };
  return { kind: 'pick', matches };
}

/** Accounts open on their 360 page; anything else on its record page. */
export function matchPath(m: PhoneMatch): string {
  const plural = m.plural || `${m.entity}s`;
  return plural === 'accounts' ? `/accounts/${m.id}/360` : `/${plural}/${m.id}`;
}

/** Whether the typed text looks enough like a phone number to ask the server (≥ 5 digits). */
export function looksLikePhone(s: string): boolean {
  const digits = s.replace(/\D/g, '');
  return digits.length >= 5 && /^[\d\s()+\-./]+$/.test(s.trim());
}

/** Toggles a channel chip; an empty set means "all channels". */
export function toggleChannel(selected: string[], channel: string): string[] {
  return selected.includes(channel) ? selected.filter((c) => c !== channel) : [...selected, channel];
}

/** The ?channel= value for the 360 endpoint (undefined = all). */
export function channelParam(selected: string[], all: string[]): string | undefined {
  const keep = all.filter((c) => selected.includes(c));
  return keep.length ? keep.join(',') : undefined;
}

function stamp(v: unknown): number {
  if (typeof v !== 'string' || !v) return Number.NEGATIVE_INFINITY;
  const t = Date.parse(v);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** Newest first by a date/datetime field, then by id (descending, ids compared as big integers). */
export function newestFirst<T extends { id: Id; [k: string]: unknown }>(items: T[], field: string): T[] {
  return [...items].sort((a, b) => {
    const d = stamp(b[field]) - stamp(a[field]);
    if (d !== 0 && !Number.isNaN(d)) return d > 0 ? 1 : -1;
    return compareIds(b.id, a.id);
  });
}

/** Compares two decimal id strings numerically (they exceed Number's safe range). */
export function compareIds(a: Id, b: Id): number {
  const x = String(a);
  const y = String(b);
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface DuplicateCandidate extends RecordData {
  entity?: string;
  record_a?: Id;
  record_b?: Id;
  title_a?: string;
  title_b?: string;
  score?: number | string;
  reason?: string;
  status?: string;
}

/** The plural of a duplicate candidate's entity ("account" → "accounts"). */
export function candidatePlural(c: DuplicateCandidate): 'accounts' | 'contacts' {
  return c.entity === 'contact' || c.entity === 'contacts' ? 'contacts' : 'accounts';
}

/** POST /{plural}/{survivor}/merge with the other record of the pair. */
export function mergeRequest(c: DuplicateCandidate, survivor: Id): { path: string; body: { others: Id[] } } {
  const a = String(c.record_a ?? '');
  const b = String(c.record_b ?? '');
  if (survivor !== a && survivor !== b) throw new Error(`survivor ${survivor} is not in the pair`);
  const other = survivor === a ? b : a;
  return { path: `/${candidatePlural(c)}/${survivor}/merge`, body: { others: [other] } };
}

/** Score as a percentage string ("0.93" → "93%"). */
export function scorePercent(score: unknown): string {
  if (score === null || score === undefined || score === '') return '—';
  const n = typeof score === 'number' ? score : Number(score);
  if (!Number.isFinite(n)) return '—';
  return `${Math.round(n * 100)}%`;
}

/** Field names whose values differ between two records (for highlighting the side-by-side view). */
export function differingFields(a: RecordData | null, b: RecordData | null, names: string[]): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    if (JSON.stringify(a?.[n] ?? null) !== JSON.stringify(b?.[n] ?? null)) out.add(n);
  }
  return out;
}

/**
 * Whether to offer the duplicate review queue: administrators, and roles whose permissions name
 * duplicate_candidate with a read scope other than none (Sales roles have no entry: no access).
 * An unknown permissions shape offers it and leaves the decision to the server.
 */
export function mayReviewDuplicates(permissions: unknown, admin: boolean): boolean {
  if (admin) return true;
  if (!permissions || typeof permissions !== 'object') return true;
  const p = permissions as Record<string, unknown>;
  const byEntity = (p.entities && typeof p.entities === 'object' ? p.entities : p) as Record<string, unknown>;
  const ep = byEntity.duplicate_candidate as Record<string, unknown> | undefined;
  if (!ep || typeof ep !== 'object') return false;
  return !(ep.read === undefined || ep.read === 'none' || ep.read === false);
}
