// The account list: default columns, keyset paging ("load more"), sorting by a column header,
// the column chooser, the filter builder (city = 北京) and the CSV export link carrying the
// current filter and sort; quick search narrows the list as you type, and the CSV, Excel and
// vCard exports give the rows the search shows (issue #4: export of any list).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const ExcelJS = require('exceljs');

let app, browser, page;
const CITIES = ['北京', '上海', '广州', '深圳'];
const accounts = []; // {id, name, city}

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  const api = await app.api('admin');
  // 62 accounts: more than one page (50). Names in a fixed ASCII format sort the same everywhere.
  const specs = Array.from({ length: 62 }, (_, i) => ({
    name: `Client ${String((i * 37) % 62).padStart(3, '0')}`,
    city: CITIES[i % CITIES.length],
  }));
  for (let i = 0; i < specs.length; i += 8) {
    const made = await Promise.all(specs.slice(i, i + 8).map((s) => api.create('accounts', s)));
    accounts.push(...made.map((a) => ({ id: a.id, name: a.name, city: a.city, created_at: Date.parse(a.created_at) })));
  }
  // Oldest first as the list's default order has it: by created_at, then id. (Parallel creates
  // take their id and their created_at at different moments, so id order alone may differ.)
  accounts.sort((a, b) => a.created_at - b.created_at || (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;
const rowIds = () => page.getByTestId('list-row').evaluateAll((rs) => rs.map((r) => r.dataset.id));
const firstCells = () => page.getByTestId('list-row').locator('td:first-child').allTextContents();
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

uiTest('the list shows business columns, newest first, 50 at a time with "load more"', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  const heads = (await page.locator('thead th').allTextContents()).map((s) => s.replace(/[▲▼↕]/g, '').trim());
  assert.equal(heads[0], 'Name');
  for (const sys of ['ID', 'Version', 'Created by', 'Updated by']) {
    assert.ok(!heads.includes(sys), `system column ${sys} is not a default column: ${heads}`);
  }
  const newestFirst = [...accounts].reverse().map((a) => a.id);
  assert.deepEqual(await rowIds(), newestFirst.slice(0, 50));
  assert.match(await page.locator('.list-footer').textContent(), /50 shown/);
  await page.getByTestId('load-more').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="list-row"]').length === 62);
  assert.deepEqual(await rowIds(), newestFirst);
  assert.equal(await page.getByTestId('load-more').count(), 0, 'no more pages');
});

uiTest('sort by clicking the Name header: ascending, descending, back to default', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('sort-name').click();
  await page.waitForURL(/[?&]sort=name(&|$)/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="ascending"]'));
  const asc = [...accounts].sort(byName);
  await waitForFirstCells(asc.slice(0, 50).map((a) => a.name));
  assert.equal(await page.locator('th[aria-sort="ascending"]').textContent().then((s) => s.trim().replace(/\s*▲$/, '')), 'Name');

  await page.getByTestId('sort-name').click();
  await page.waitForURL(/[?&]sort=-name(&|$)/);
  const desc = [...asc].reverse();
  await waitForFirstCells(desc.slice(0, 50).map((a) => a.name));
  // Paging keeps the order.
  await page.getByTestId('load-more').click();
  await waitForFirstCells(desc.map((a) => a.name));

  await page.getByTestId('sort-name').click();
  await page.waitForURL((u) => !u.searchParams.has('sort'));
  await waitForFirstCells([...accounts].reverse().slice(0, 50).map((a) => a.name));
});

async function waitForFirstCells(expected) {
  try {
    await page.waitForFunction(
      (exp) => {
        const got = [...document.querySelectorAll('[data-testid="list-row"] td:first-child')].map((td) => td.textContent.trim());
        return JSON.stringify(got) === JSON.stringify(exp);
      },
      expected,
      { timeout: 5_000 },
    );
  } catch {
    assert.deepEqual(await firstCells().then((c) => c.map((s) => s.trim())), expected);
  }
}

uiTest('filter builder: city = 北京, add the City column; the CSV export link carries the filter', P, async () => {
  await page.goto('/accounts?sort=name');
  await page.getByTestId('list-row').first().waitFor();

  await page.getByTestId('column-chooser').locator('summary').click();
  await page.getByTestId('column-city').check();
  await page.keyboard.press('Escape');
  await page.locator('thead').getByText('City').waitFor();

  await page.getByTestId('filter-toggle').click();
  await page.getByTestId('filter-builder').waitFor();
  const cond = page.getByTestId('filter-condition').first();
  await cond.getByTestId('filter-field').selectOption('city');
  await cond.getByTestId('filter-op').selectOption('=');
  await cond.getByTestId('filter-value').fill('北京');
  await page.getByTestId('filter-apply').click();

  await page.waitForURL((u) => u.searchParams.has('filter'));
  const url = new URL(page.url());
  assert.deepEqual(JSON.parse(url.searchParams.get('filter')), { field: 'city', op: '=', value: '北京' });
  assert.equal(url.searchParams.get('sort'), 'name', 'the sort is kept');
  const beijing = accounts.filter((a) => a.city === '北京').sort(byName);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="list-row"]').length === n, beijing.length);
  assert.deepEqual(await rowIds(), beijing.map((a) => a.id));
  const cities = await page.getByTestId('list-row').locator('td[data-label="City"]').allTextContents();
  assert.ok(cities.length === beijing.length && cities.every((c) => c.trim() === '北京'), `cities: ${cities}`);
  assert.equal((await page.getByTestId('filter-toggle').textContent()).trim(), 'Filters (1)');

  // The export link: same filter, same sort, the visible columns.
  const href = await page.getByTestId('export-csv').getAttribute('href');
  const eu = new URL(href, app.url);
  assert.equal(eu.pathname, '/api/v1/accounts/export.csv');
  assert.deepEqual(JSON.parse(eu.searchParams.get('filter')), { field: 'city', op: '=', value: '北京' });
  assert.equal(eu.searchParams.get('sort'), 'name');
  assert.ok(eu.searchParams.get('fields').split(',').includes('city'));
  const csv = await page.request.get(href);
  assert.equal(csv.status(), 200);
  assert.match(csv.headers()['content-type'], /text\/csv/);
  const lines = (await csv.text()).replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  assert.equal(lines.length, beijing.length + 1, 'header + the filtered rows only');
  assert.deepEqual(lines.slice(1).map((l) => (l.match(/Client \d{3}/) || [''])[0]), beijing.map((a) => a.name));
  assert.ok(lines.slice(1).every((l) => l.includes('北京')));

  // The filter survives a reload (it is in the URL) and the builder shows it again.
  await page.reload();
  await page.getByTestId('list-row').first().waitFor();
  assert.deepEqual(await rowIds(), beijing.map((a) => a.id));
  await page.getByTestId('filter-toggle').click();
  assert.equal(await page.getByTestId('filter-field').first().inputValue(), 'city');
  assert.equal(await page.getByTestId('filter-value').first().inputValue(), '北京');

  // Clear: every account again.
  await page.getByTestId('filter-clear').click();
  await page.waitForURL((u) => !u.searchParams.has('filter'));
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="list-row"]').length === 50);
  assert.equal(new URL(await page.getByTestId('export-csv').getAttribute('href'), app.url).searchParams.get('filter'), null);
});

uiTest('filter builder: an OR group of two cities', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('filter-toggle').click();
  await page.getByTestId('filter-logic').first().selectOption('or');
  const first = page.getByTestId('filter-condition').nth(0);
  await first.getByTestId('filter-field').selectOption('city');
  await first.getByTestId('filter-op').selectOption('=');
  await first.getByTestId('filter-value').fill('上海');
  await page.getByTestId('filter-add-condition').first().click();
  const second = page.getByTestId('filter-condition').nth(1);
  await second.getByTestId('filter-field').selectOption('city');
  await second.getByTestId('filter-op').selectOption('=');
  await second.getByTestId('filter-value').fill('深圳');
  await page.getByTestId('filter-apply').click();
  await page.waitForURL((u) => u.searchParams.has('filter'));
  const f = JSON.parse(new URL(page.url()).searchParams.get('filter'));
  assert.deepEqual(f, { or: [{ field: 'city', op: '=', value: '上海' }, { field: 'city', op: '=', value: '深圳' }] });
  const want = accounts.filter((a) => a.city === '上海' || a.city === '深圳').reverse().map((a) => a.id);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="list-row"]').length === n, want.length);
  assert.deepEqual(await rowIds(), want);
});

uiTest('quick search narrows the list as you type', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('quick-search').pressSequentially('Client 047', { delay: 30 });
  await page.waitForURL((u) => u.searchParams.get('q') === 'Client 047');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="list-row"]').length === 1);
  assert.deepEqual((await firstCells()).map((s) => s.trim()), ['Client 047']);
  assert.deepEqual(await rowIds(), [accounts.find((a) => a.name === 'Client 047').id]);
  await page.getByTestId('quick-search').fill('nothing like this');
  await page.getByTestId('empty-state').waitFor();
  assert.match(await page.getByTestId('empty-state').textContent(), /No records match/);
});

// Issue #4 "Export of any list": the list offers CSV, Excel and (for entities with phones or
// e-mails) vCard, each carrying the quick search as well as filter and sort — before, the only
// export link left the search out and downloaded every record.
uiTest('exports: CSV, Excel and vCard of a quick-searched list hold the rows shown', P, async () => {
  await page.goto('/accounts?sort=name');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('quick-search').fill('Client 04');
  await page.waitForURL((u) => u.searchParams.get('q') === 'Client 04');
  const shown = accounts.filter((a) => a.name.startsWith('Client 04')).sort(byName);
  assert.equal(shown.length, 10);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="list-row"]').length === n, shown.length);

  const get = async (testid, suffix) => {
    const href = await page.getByTestId(testid).getAttribute('href');
    const u = new URL(href, app.url);
    assert.equal(u.pathname, `/api/v1/accounts/export.${suffix}`);
    assert.equal(u.searchParams.get('q'), 'Client 04');
    assert.equal(u.searchParams.get('sort'), 'name');
    const r = await page.request.get(href);
    assert.equal(r.status(), 200, `${suffix}: ${await r.text()}`);
    return r;
  };
  const csv = (await (await get('export-csv', 'csv')).text()).replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  assert.deepEqual(csv.slice(1).map((l) => (l.match(/Client \d{3}/) || [''])[0]), shown.map((a) => a.name));

  const xr = await get('export-xlsx', 'xlsx');
  assert.match(xr.headers()['content-type'], /spreadsheetml/);
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(await xr.body());
  const ws = wb.worksheets[0];
  const header = ws.getRow(1).values;
  const nameCol = header.indexOf('name');
  assert.ok(nameCol > 0, `name column in ${header}`);
  const names = [];
  ws.eachRow((row, n) => { if (n > 1) names.push(row.getCell(nameCol).value); });
  assert.deepEqual(names, shown.map((a) => a.name));

  const vr = await get('export-vcf', 'vcf');
  assert.match(vr.headers()['content-type'], /text\/vcard/);
  const fns = (await vr.text()).split(/\r?\n/).filter((l) => l.startsWith('FN:')).map((l) => l.slice(3));
  assert.deepEqual(fns, shown.map((a) => a.name));

  // Communication records have no phones or e-mails: no vCard export, CSV and Excel as ever.
  await page.goto('/interactions');
  await page.getByTestId('export-xlsx').waitFor();
  assert.equal(await page.getByTestId('export-vcf').count(), 0);
  assert.equal(await page.getByTestId('export-csv').count(), 1);
});
