// The list's quick search while the server builds its search index (a large import): the answer
// carries index_pending and the list shows the same note as the global search, in both
// languages; an answer without it shows none.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createMemoryHistory, createRouter } from 'vue-router';
import { api } from '../api/client';
import type { EntityMeta, ListResponse, RecordData } from '../api/types';
import { makeI18n } from '../i18n';
import { setMetadata } from '../metadata/store';
import ListView from './ListView.vue';

const account: EntityMeta = {
  name: 'account',
  plural: 'accounts',
  title_field: 'name',
  fields: [{ name: 'name', type: 'text', required: true, label: { en: 'Name', 'zh-CN': '名称' } }],
};

async function mountList(locale: 'en' | 'zh-CN', answer: ListResponse<RecordData>) {
  setMetadata([account]);
  const list = vi.spyOn(api, 'list').mockImplementation(async (plural: string) =>
    (plural === 'accounts' ? answer : { items: [], next_cursor: null }) as ListResponse<never>);
  vi.spyOn(api, 'aggregate').mockImplementation(async () => ({ entity: 'account', group_by: [], bucket: null, groups: [], total: 0, truncated: false }) as never);
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/:plural', component: ListView },
      { path: '/:p*', component: { template: '<div/>' } },
    ],
  });
  await router.push('/accounts?q=Zenith');
  const w = mount(ListView, { global: { plugins: [makeI18n(locale), router] }, attachTo: document.body });
  await flushPromises();
  return { w, list };
}

afterEach(() => {
  vi.restoreAllMocks();
  document.body.innerHTML = '';
});

describe('ListView quick search', () => {
  it('says the search index is being built while the list answer carries index_pending', async () => {
    const { w, list } = await mountList('en', { items: [{ id: '1', version: 1, name: 'Zenith Ltd' }], next_cursor: null, index_pending: true });
    expect(list.mock.calls.some(([plural, params]) => plural === 'accounts' && params?.q === 'Zenith')).toBe(true);
    expect(w.find('[data-testid="list-index-pending"]').text()).toBe('Search index being built: recently imported records may be missing.');
    w.unmount();
    const zh = await mountList('zh-CN', { items: [], next_cursor: null, index_pending: true });
    expect(zh.w.find('[data-testid="list-index-pending"]').text()).toBe('搜索索引正在建立：刚导入的记录可能暂时搜不到。');
    zh.w.unmount();
  });

  it('shows no such note when the answer does not carry it', async () => {
    const { w } = await mountList('en', { items: [{ id: '1', version: 1, name: 'Zenith Ltd' }], next_cursor: null });
    expect(w.text()).toContain('Zenith Ltd');
    expect(w.find('[data-testid="list-index-pending"]').exists()).toBe(false);
    w.unmount();
  });
});
