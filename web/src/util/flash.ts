// One-line notices that outlive a navigation (e.g. "moved to the recycle bin" on the list page).
import { reactive } from 'vue';

export const flash = reactive({ text: '', kind: 'info' as 'info' | 'success' | 'error', seq: 0 });

export function showFlash(text: string, kind: 'info' | 'success' | 'error' = 'success'): void {
  flash.text = text;
  flash.kind = kind;
  const mine = ++flash.seq;
  setTimeout(() => {
    if (flash.seq === mine) flash.text = '';
  }, 6000);
}
