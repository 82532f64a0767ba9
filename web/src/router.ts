// Routes of the staff app. Generic views take the entity's plural from the URL, so any entity the
// metadata declares gets a list, record page and form without new routes.
import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router';
import { loadMetadata, metadataState } from './metadata/store';
import { connectEvents } from './api/events';
import { ensureSession, isAdmin } from './session';

declare module 'vue-router' {
  interface RouteMeta {
    bare?: boolean;
    public?: boolean;
    admin?: boolean;
  }
}

export const ADMIN_PLURALS = ['users', 'teams', 'roles'];

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { bare: true, public: true } },
    { path: '/', redirect: '/accounts' },
    { path: '/settings', name: 'settings', component: () => import('./views/SettingsView.vue'), meta: { admin: true } },
    {
      path: '/settings/fields',
      name: 'custom-fields',
      component: () => import('./views/CustomFieldsView.vue'),
      meta: { admin: true },
    },
    { path: '/accounts/:id/360', name: 'account-360', component: () => import('./views/Customer360View.vue') },
    { path: '/dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue') },
    { path: '/duplicates', name: 'duplicates', component: () => import('./views/DuplicatesView.vue') },
    { path: '/:plural', name: 'list', component: () => import('./views/ListView.vue') },
    { path: '/:plural/import', name: 'import', component: () => import('./views/ImportView.vue') },
    { path: '/:plural/new', name: 'new', component: () => import('./views/EditView.vue') },
    { path: '/:plural/:id', name: 'record', component: () => import('./views/RecordView.vue') },
    { path: '/:plural/:id/edit', name: 'edit', component: () => import('./views/EditView.vue') },
    { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue') },
  ],
  scrollBehavior(to, from, saved) {
    if (saved) return saved;
    if (to.path !== from.path) return { top: 0 };
    return undefined;
  },
});

export async function guard(to: RouteLocationNormalized) {
  if (to.meta.public) return true;
  const signedIn = await ensureSession();
  if (!signedIn) return { path: '/login', query: { next: to.fullPath } };
  connectEvents();
  if (!metadataState.loaded) {
    try {
      await loadMetadata();
    } catch {
      /* the view shows the error and a retry */
    }
  }
  const plural = typeof to.params.plural === 'string' ? to.params.plural : '';
  if ((to.meta.admin || ADMIN_PLURALS.includes(plural)) && !isAdmin.value) {
    return { name: 'not-found', params: { rest: to.path.split('/').filter(Boolean) }, query: { reason: 'admin' } };
  }
  return true;
}

router.beforeEach(guard);
