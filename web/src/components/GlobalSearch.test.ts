// The header search: an answer of the server's "did you mean" fallback (fuzzy) is headed
// "Did you mean:" / "您是不是要找：" above its items; an ordinary answer is not.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createRouter, createMemoryHistory } from 'vue-router';
import { api } from '../api/client';
import type { EntityMeta, SearchHit } from '../api/types';
import { makeI18n } from '../i18n';
import { setMetadata } from '../metadata/store';
import GlobalSearch from './GlobalSearch.vue';

const account: EntityMeta = {
  name: 'account',
  plural: 'accounts',
  label: { en: 'Account', 'zh-CN': '客户' },
  title_field: 'name',
  fields: [{ name: 'name', type: 'text', label: { en: 'Name', 'zh-CN': '名称' } }],
};
const zenith: SearchHit = { entity: 'account', id: '7', title: 'Zenith Textiles' };

async function searchFor(locale: 'en' | 'zh-CN', q: string, answer: { items: SearchHit[]; fuzzy: boolean; indexPending?: boolean }) {
  setMetadata([account]);
  const spy = vi.spyOn(api, 'searchResult').mockResolvedValue(answer);
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:p*', component: { template: '<div/>' } }] });
  const w = mount(GlobalSearch, { global: { plugins: [makeI18n(locale), router] }, attachTo: document.body });
  const input = w.find('[data-testid="global-search"]');
  await input.setValue(q);
  await input.trigger('keydown', { key: 'Enter' }); // searches at once, without the debounce
  await flushPromises();
  expect(spy).toHaveBeenCalledWith(q, { limit: 12 }, expect.anything());
  return w;
}

afterEach(() => {
  vi.restoreAllMocks();
  document.body.innerHTML = '';
});

describe('GlobalSearch "did you mean"', () => {
  it('heads fuzzy results with "Did you mean:" (English)', async () => {
    const w = await searchFor('en', 'Zenitth Textils', { items: [zenith], fuzzy: true });
    const note = w.find('[data-testid="search-did-you-mean"]');
    expect(note.exists()).toBe(true);
    expect(note.text()).toBe('Did you mean:');
    // Above the results, and not one of the options.
    const items = w.findAll('#global-search-results > li');
    expect(items[0].attributes('data-testid')).toBe('search-did-you-mean');
    expect(items[0].attributes('role')).toBe('presentation');
    expect(w.findAll('[data-testid="search-result"]').map((r) => r.find('.search-title').text())).toEqual([
      'Zenith Textiles',
    ]);
    w.unmount();
  });

  it('heads fuzzy results with "您是不是要找：" (Chinese)', async () => {
    const w = await searchFor('zh-CN', 'Zenitth Textils', { items: [zenith], fuzzy: true });
    expect(w.find('[data-testid="search-did-you-mean"]').text()).toBe('您是不是要找：');
    w.unmount();
  });

  it('shows no heading over ordinary results or over an empty answer', async () => {
    const hit = await searchFor('en', 'Zenith', { items: [zenith], fuzzy: false });
    expect(hit.find('[data-testid="search-did-you-mean"]').exists()).toBe(false);
    expect(hit.findAll('[data-testid="search-result"]')).toHaveLength(1);
    hit.unmount();
    const none = await searchFor('en', 'qxjzvw', { items: [], fuzzy: false });
    expect(none.find('[data-testid="search-did-you-mean"]').exists()).toBe(false);
    expect(none.find('[data-testid="search-empty"]').text()).toBe('Nothing found for “qxjzvw”');
    none.unmount();
  });

  it('says the search index is being built while the server answers index_pending, and not otherwise', async () => {
    const w = await searchFor('en', 'Zenith', { items: [zenith], fuzzy: false, indexPending: true });
    const note = w.find('[data-testid="search-index-pending"]');
    expect(note.text()).toBe('Search index being built: recently imported records may be missing.');
    expect(w.findAll('[data-testid="search-result"]')).toHaveLength(1);
    w.unmount();
    const zh = await searchFor('zh-CN', 'qxjzvw', { items: [], fuzzy: false, indexPending: true });
    expect(zh.find('[data-testid="search-index-pending"]').text()).toBe('搜索索引正在建立：刚导入的记录可能暂时搜不到。');
    zh.unmount();
    const done = await searchFor('en', 'Zenith', { items: [zenith], fuzzy: false });
    expect(done.find('[data-testid="search-index-pending"]').exists()).toBe(false);
    done.unmount();
  });
});
