// The import wizard's flow against a stubbed API: the file is read and mapped, the dry run's row
// error is shown, the import polls its import_runs record and shows the rows done while it runs,
// then the result with the report link.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createMemoryHistory, createRouter } from 'vue-router';
import { api } from '../api/client';
import type { EntityMeta, ImportResult, ListResponse, RecordData } from '../api/types';
import { makeI18n } from '../i18n';
import { setMetadata } from '../metadata/store';
import ImportView from './ImportView.vue';

const account: EntityMeta = {
  name: 'account',
  plural: 'accounts',
  title_field: 'name',
  fields: [
    { name: 'name', type: 'text', required: true, label: { en: 'Name', 'zh-CN': '名称' } },
    { name: 'tier', type: 'enum', label: { en: 'Tier', 'zh-CN': '等级' }, options: [{ value: 'A' }, { value: 'B' }] },
  ],
};

function answer(over: Partial<ImportResult>): ImportResult {
  return {
    import_id: '7',
    entity: 'account',
    mode: 'dry_run',
    rows: 2,
    valid: 2,
    skipped: 0,
    skipped_rows: [],
    errors: [],
    error_count: 0,
    columns: [],
    ignored_columns: [],
    index_pending: false,
    report: '/api/v1/imports/7/report.csv',
    ...over,
  };
}

async function setup() {
  setMetadata([account]);
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/:plural/import', component: ImportView },
      { path: '/:p*', component: { template: '<div/>' } },
    ],
  });
  await router.push('/accounts/import');
  const w = mount(ImportView, { global: { plugins: [makeI18n('en'), router] }, attachTo: document.body });
  await flushPromises();
  return w;
}

async function chooseFile(w: ReturnType<typeof mount>, text: string, name = 'a.csv') {
  const input = w.find('[data-testid="import-file"]');
  const file = new File([text], name, { type: 'text/csv' });
  Object.defineProperty(input.element, 'files', { value: [file], configurable: true });
  await input.trigger('change');
  for (let i = 0; i < 5; i++) await flushPromises();
}

// jsdom's Blob has no arrayBuffer() (browsers do): read it through FileReader, which jsdom has.
if (!('arrayBuffer' in Blob.prototype)) {
  Object.defineProperty(Blob.prototype, 'arrayBuffer', {
    value(this: Blob) {
      return new Promise<ArrayBuffer>((res, rej) => {
        const r = new FileReader();
        r.onload = () => res(r.result as ArrayBuffer);
        r.onerror = () => rej(r.error);
        r.readAsArrayBuffer(this);
      });
    },
  });
}

afterEach(() => vi.restoreAllMocks());

describe('ImportView', () => {
  it('maps, dry-runs, shows the row error, then imports with progress from the run record', async () => {
    vi.spyOn(api, 'list').mockImplementation(async (plural: string) => {
      if (plural === 'import_runs') return { items: [{ id: '7', version: 2, rows: 1, status: 'running' }], next_cursor: null } as ListResponse<RecordData>;
      return { items: [], next_cursor: null } as ListResponse<RecordData>;
    });
    let finish!: (r: ImportResult) => void;
    const importCsv = vi.spyOn(api, 'importCsv').mockImplementation(async (_p, _csv, params) => {
      if (params.mode === 'dry_run') {
        return answer({
          would_create: 1,
          skipped: 1,
          skipped_rows: [3],
          errors: [{ row: 3, field: 'tier', code: 'validation_failed', message: 'tier has no option "Z"' }],
          error_count: 1,
        });
      }
      return new Promise<ImportResult>((res) => (finish = res));
    });
    const w = await setup();
    await chooseFile(w, '名称,Tier\nAcme,A\nBeta,Z\n');
    expect(w.find('[data-testid="import-error"]').exists() ? w.find('[data-testid="import-error"]').text() : '').toBe('');
    expect(w.find('[data-testid="import-file-info"]').text()).toContain('a.csv: 2 rows, 2 columns');
    expect((w.find('[data-testid="map-0"]').element as HTMLSelectElement).value).toBe('name');
    expect((w.find('[data-testid="map-1"]').element as HTMLSelectElement).value).toBe('tier');

    await w.find('[data-testid="import-dry-run"]').trigger('click');
    await flushPromises();
    const [, csv, params] = importCsv.mock.calls[0];
    expect(csv).toBe('名称,Tier\r\nAcme,A\r\nBeta,Z\r\n');
    expect(params).toMatchObject({ mode: 'dry_run', mapping: { 名称: 'name', Tier: 'tier' }, file_name: 'a.csv' });
    const row = w.find('[data-testid="import-error-row"]');
    expect(row.attributes('data-row')).toBe('3');
    expect(row.text()).toContain('tier has no option "Z"');

    // skip the bad row: only Acme is sent
    await w.find('[data-testid="import-skip-3"]').trigger('click');
    await w.find('[data-testid="import-run"]').trigger('click');
    await flushPromises();
    expect(importCsv.mock.calls[1][1]).toBe('名称,Tier\r\nAcme,A\r\n');
    expect(importCsv.mock.calls[1][2]).toMatchObject({ mode: 'commit' });
    // while the import runs, the run record's row count is shown
    await vi.waitFor(() => expect(w.find('[data-testid="import-progress"]').text()).toContain('1 of 1 rows'));
    const runQuery = vi.mocked(api.list).mock.calls.find((c) => c[0] === 'import_runs')![1]!;
    expect(runQuery.filter).toEqual({
      and: [
        { field: 'status', op: '=', value: 'running' },
        { field: 'file_name', op: '=', value: 'a.csv' },
      ],
    });

    finish(answer({ mode: 'commit', rows: 1, created: 1, updated: 0 }));
    await flushPromises();
    expect(w.find('[data-testid="import-result"]').text()).toContain('1 created, 0 updated, 0 skipped');
    expect(w.find('[data-testid="import-report"]').attributes('href')).toBe('/api/v1/imports/7/report.csv');
    w.unmount();
  });

  it('after an answer with index_pending, says search indexing continues, then when it is complete (the run record)', async () => {
    vi.spyOn(api, 'list').mockResolvedValue({ items: [], next_cursor: null });
    vi.spyOn(api, 'importCsv').mockImplementation(async (_p, _csv, params) =>
      params.mode === 'dry_run'
        ? answer({ would_create: 2 })
        : answer({ mode: 'commit', created: 2, updated: 0, index_pending: true }),
    );
    let status = 'building';
    const getRecord = vi.spyOn(api, 'getRecord').mockImplementation(async () => ({
      record: { id: '7', version: 3, status: 'completed', index_status: status, index_done_at: status === 'complete' ? '2026-11-25T00:10:00Z' : null },
      etag: null,
    }));
    const w = await setup();
    await chooseFile(w, 'name\nAcme\nBeta\n');
    await w.find('[data-testid="import-dry-run"]').trigger('click');
    await flushPromises();
    vi.useFakeTimers();
    try {
      await w.find('[data-testid="import-run"]').trigger('click');
      await flushPromises();
      expect(w.find('[data-testid="import-result"]').text()).toContain('2 created');
      expect(w.find('[data-testid="import-indexing"]').text()).toContain('Search indexing continues in the background');
      await vi.advanceTimersByTimeAsync(1000);
      expect(getRecord).toHaveBeenCalledWith('import_runs', '7');
      expect(w.find('[data-testid="import-indexing"]').exists()).toBe(true);
      status = 'complete';
      await vi.advanceTimersByTimeAsync(2000);
      expect(w.find('[data-testid="import-indexing"]').exists()).toBe(false);
      expect(w.find('[data-testid="import-indexed"]').text()).toMatch(/^Search index complete at .+: every imported record can be found\.$/);
      const calls = getRecord.mock.calls.length;
      await vi.advanceTimersByTimeAsync(10000);
      expect(getRecord.mock.calls.length).toBe(calls); // no more polling once complete
    } finally {
      vi.useRealTimers();
    }
    w.unmount();
  });

  it('an answer without index_pending says nothing about indexing', async () => {
    vi.spyOn(api, 'list').mockResolvedValue({ items: [], next_cursor: null });
    vi.spyOn(api, 'importCsv').mockImplementation(async (_p, _csv, params) =>
      params.mode === 'dry_run' ? answer({ would_create: 1 }) : answer({ mode: 'commit', created: 1, updated: 0 }),
    );
    const getRecord = vi.spyOn(api, 'getRecord');
    const w = await setup();
    await chooseFile(w, 'name\nAcme\n');
    await w.find('[data-testid="import-dry-run"]').trigger('click');
    await flushPromises();
    await w.find('[data-testid="import-run"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="import-result"]').text()).toContain('1 created');
    expect(w.find('[data-testid="import-indexing"]').exists()).toBe(false);
    expect(w.find('[data-testid="import-indexed"]').exists()).toBe(false);
    expect(getRecord).not.toHaveBeenCalled();
    w.unmount();
  });

  it('a file the server refuses as a whole shows its problem and stays on the check step', async () => {
    vi.spyOn(api, 'list').mockResolvedValue({ items: [], next_cursor: null });
    const { ApiError } = await import('../api/client');
    vi.spyOn(api, 'importCsv').mockRejectedValue(
      new ApiError({ status: 400, code: 'bad_request', field: 'mapping', detail: 'no column maps to a field of account' }),
    );
    const w = await setup();
    await chooseFile(w, 'name\nx\n');
    await w.find('[data-testid="import-dry-run"]').trigger('click');
    await flushPromises();
    expect(w.find('[data-testid="import-error"]').text()).toContain('no column maps to a field of account');
    expect(w.find('[data-testid="import-mapping"]').exists()).toBe(true);
    w.unmount();
  });
});
