// The import wizard after a large import that answers before its search index is built (serve
// --import-terms-after-rows lowered to 10,000 rows, the build's parts to 50 term rows so that it
// runs for seconds): the result says every row is saved and search indexing continues in the
// background, then — the wizard polls the run's index_status — that the search index is complete.
import assert from 'node:assert/strict';
import { appSession, uiTest } from './helpers.mjs';
import { sqliteOnly } from '../api/harness.mjs';

let app, page;
const ROWS = 12000;
const P = () => page;

appSession({
  users: [{ name: 'admin', role: 'Administrator' }],
  args: ['--import-terms-after-rows', '10000', '--term-build-part-rows', '50'],
}, (s) => ({ app, page } = s));

let csv = 'name,customer_code\r\n';
for (let i = 0; i < ROWS; i++) csv += `Wizbg ${i}x Trading,WIZBG-${i}\r\n`;

uiTest('a large import: the result says search indexing continues in the background, then that it is complete', P, async () => {
  await page.goto('/accounts/import');
  await page.getByTestId('import-file').setInputFiles({ name: 'large.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByTestId('import-mapping').waitFor();
  await page.getByTestId('import-dry-run').click();
  await page.getByTestId('import-check').waitFor({ timeout: 120_000 });
  await page.getByTestId('import-run').click();
  await page.getByTestId('import-done').waitFor({ timeout: 120_000 });
  assert.match(await page.getByTestId('import-result').textContent(), /12000 created, 0 updated, 0 skipped/);
  assert.match(await page.getByTestId('import-indexing').textContent(), /All rows are saved and can be opened\. Search indexing continues in the background/);
  await page.getByTestId('import-indexed').waitFor({ timeout: 240_000 });
  assert.match(await page.getByTestId('import-indexed').textContent(), /Search index complete at .+: every imported record can be found\./);
  assert.equal(await page.getByTestId('import-indexing').count(), 0);
  const api = await app.api('admin');
  const runs = await api.list('import_runs', { sort: '-id', limit: 1 });
  assert.equal(runs.items[0].index_status, 'complete');
}, { timeout: 400_000, skip: sqliteOnly('the search index is built after the load on SQLite') });
