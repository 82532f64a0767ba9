// Asks before an edited form is left: on a route change (vue-router guard, window.confirm) and on
// closing or reloading the tab (beforeunload, the browser's own dialog). Used by the create/edit page
// (and so the role editor, a part of the role's form) and the custom-field form in settings.
import { onBeforeUnmount, onMounted } from 'vue';
import { onBeforeRouteLeave, onBeforeRouteUpdate } from 'vue-router';
import { unloadState } from '../util/unload';

export interface UnsavedGuard {
  /** Lets the next navigation through without asking (after a successful save). */
  allowLeave(): void;
}

export function useUnsavedGuard(
  isDirty: () => boolean,
  message: () => string,
  confirm: (text: string) => boolean = (text) => window.confirm(text),
): UnsavedGuard {
  let allowed = false;
  const ask = () => allowed || unloadState.forced || !isDirty() || confirm(message());
  // The login page (a public route) is only reached when the session ended: nothing can be saved.
  onBeforeRouteLeave((to) => (to.meta.public ? true : ask()));
  onBeforeRouteUpdate((to, from) => (to.path === from.path ? true : ask()));
  const onBeforeUnload = (e: BeforeUnloadEvent) => {
    if (allowed || unloadState.forced || !isDirty()) return;
    e.preventDefault();
    // Older browsers need returnValue set; the text itself is not shown.
    e.returnValue = '';
  };
  onMounted(() => window.addEventListener('beforeunload', onBeforeUnload));
  onBeforeUnmount(() => window.removeEventListener('beforeunload', onBeforeUnload));
  return {
    allowLeave() {
      allowed = true;
    },
  };
}
