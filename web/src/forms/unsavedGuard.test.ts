// The unsaved-form guard: a route change away from an edited form asks first and stays when the
// user says no; closing the tab is intercepted (beforeunload); a saved form leaves without asking.
import { describe, expect, it, vi } from 'vitest';
import { defineComponent, h, ref } from 'vue';
import { flushPromises, mount } from '@vue/test-utils';
import { createMemoryHistory, createRouter, RouterView } from 'vue-router';
import { unloadState } from '../util/unload';
import { useUnsavedGuard, type UnsavedGuard } from './unsavedGuard';

async function setup() {
  const dirty = ref(false);
  const confirm = vi.fn(() => false);
  let guard!: UnsavedGuard;
  const Form = defineComponent({
    setup() {
      guard = useUnsavedGuard(() => dirty.value, () => 'Leave?', confirm);
      return () => h('form');
    },
  });
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/form/:id', component: Form },
      { path: '/other', component: { render: () => h('p') } },
      { path: '/login', component: { render: () => h('p') }, meta: { public: true } },
    ],
  });
  await router.push('/form/1');
  const w = mount(defineComponent({ render: () => h(RouterView) }), { global: { plugins: [router] }, attachTo: document.body });
  await flushPromises();
  return { dirty, confirm, router, w, guard: () => guard };
}

function unload(): Event {
  const e = new Event('beforeunload', { cancelable: true });
  window.dispatchEvent(e);
  return e;
}

describe('unsaved-form guard', () => {
  it('an untouched form leaves without asking', async () => {
    const s = await setup();
    await s.router.push('/other');
    expect(s.confirm).not.toHaveBeenCalled();
    expect(s.router.currentRoute.value.path).toBe('/other');
    s.w.unmount();
  });

  it('an edited form asks; "cancel" stays, "OK" leaves', async () => {
    const s = await setup();
    s.dirty.value = true;
    await s.router.push('/other');
    expect(s.confirm).toHaveBeenCalledWith('Leave?');
    expect(s.router.currentRoute.value.path).toBe('/form/1');
    // another record's form (same component, new params) asks as well
    await s.router.push('/form/2');
    expect(s.confirm).toHaveBeenCalledTimes(2);
    expect(s.router.currentRoute.value.path).toBe('/form/1');
    s.confirm.mockReturnValue(true);
    await s.router.push('/other');
    expect(s.router.currentRoute.value.path).toBe('/other');
    s.w.unmount();
  });

  it('closing the tab with changes is intercepted; without changes, or after unmount, it is not', async () => {
    const s = await setup();
    expect(unload().defaultPrevented).toBe(false);
    s.dirty.value = true;
    expect(unload().defaultPrevented).toBe(true);
    await s.router.push('/form/1?x=1'); // same path: not asked
    expect(s.confirm).not.toHaveBeenCalled();
    s.confirm.mockReturnValue(true);
    await s.router.push('/other');
    await flushPromises();
    expect(unload().defaultPrevented).toBe(false);
    s.w.unmount();
  });

  it('an expired session (the app sends the page to the login) is not held', async () => {
    const s = await setup();
    s.dirty.value = true;
    unloadState.forced = true;
    try {
      expect(unload().defaultPrevented).toBe(false);
    } finally {
      unloadState.forced = false;
    }
    s.confirm.mockReturnValue(true);
    await s.router.push('/other');
    s.w.unmount();
  });

  it('an expired session sent to the login route is not asked', async () => {
    const s = await setup();
    s.dirty.value = true;
    await s.router.replace('/login');
    expect(s.confirm).not.toHaveBeenCalled();
    expect(s.router.currentRoute.value.path).toBe('/login');
    s.w.unmount();
  });

  it('after a save (allowLeave) the form leaves without asking', async () => {
    const s = await setup();
    s.dirty.value = true;
    s.guard().allowLeave();
    expect(unload().defaultPrevented).toBe(false);
    await s.router.push('/other');
    expect(s.confirm).not.toHaveBeenCalled();
    expect(s.router.currentRoute.value.path).toBe('/other');
    s.w.unmount();
  });
});
