// List and settings workflows: a saved view (filter saved, page reloaded, view applied again), the
// recycle bin (delete a record, find it in the bin, restore it), and role editing (an administrator
// widens the Sales role's account read scope; a Sales user then opens another team's account).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page;
const made = {}; // name → record

before(async () => {
  [app, browser] = await Promise.all([
    startApp({
      users: [
        { name: 'admin', role: 'Administrator' },
        { name: 'north1', role: 'Sales', team: '华北销售部' },
        { name: 'south1', role: 'Sales', team: '华南销售部' },
      ],
    }),
    launchBrowser(),
  ]);
  const admin = await app.api('admin');
  for (const [name, city] of [['View Beijing One', '北京'], ['View Shanghai', '上海'], ['View Beijing Two', '北京'], ['Bin Candidate', '天津']]) {
    made[name] = await admin.create('accounts', { name, city });
  }
  made.south = await (await app.api('south1')).create('accounts', { name: '南方客户', city: '广州' });
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;
const rowIds = () => page.getByTestId('list-row').evaluateAll((rs) => rs.map((r) => r.dataset.id));
const waitRows = (n) => page.waitForFunction((k) => document.querySelectorAll('[data-testid="list-row"]').length === k, n);

uiTest('saved view: save a filtered list, reload, apply the view again', P, async () => {
  await page.goto('/accounts');
  await waitRows(5);
  await page.getByTestId('filter-toggle').click();
  const cond = page.getByTestId('filter-condition').first();
  await cond.getByTestId('filter-field').selectOption('city');
  await cond.getByTestId('filter-op').selectOption('=');
  await cond.getByTestId('filter-value').fill('北京');
  await page.getByTestId('filter-apply').click();
  await waitRows(2);

  await page.getByTestId('save-view').click();
  await page.getByTestId('view-name').fill('北京客户');
  await page.getByTestId('save-view-submit').click();
  await page.getByRole('status').filter({ hasText: '北京客户' }).waitFor();

  // a fresh page without the filter in the URL: everything, and the view is offered
  await page.goto('/accounts');
  await waitRows(5);
  const select = page.getByTestId('saved-view-select');
  await select.locator('option', { hasText: '北京客户' }).waitFor({ state: 'attached' });
  await select.selectOption({ label: '北京客户' });
  await page.waitForURL((u) => u.searchParams.has('filter'));
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get('filter')), { field: 'city', op: '=', value: '北京' });
  await waitRows(2);
  assert.deepEqual(new Set(await rowIds()), new Set([made['View Beijing One'].id, made['View Beijing Two'].id]));

  // "All records" again
  await select.selectOption('');
  await waitRows(5);
  // the view is a saved_views record of this user
  const views = await (await app.api('admin')).list('saved_views', { filter: { field: 'name', op: '=', value: '北京客户' } });
  assert.equal(views.items.length, 1);
  assert.equal(views.items[0].entity, 'account');
});

uiTest('recycle bin: delete a record, find it in the bin, restore it', P, async () => {
  const rec = made['Bin Candidate'];
  await page.goto(`/accounts/${rec.id}`);
  await page.getByTestId('delete').click();
  await page.getByTestId('confirm-delete').click();
  await page.waitForURL(/\/accounts(\?.*)?$/);
  await waitRows(4);
  assert.ok(!(await rowIds()).includes(rec.id), 'gone from the list');

  await page.getByTestId('recycle-bin').click();
  await page.waitForURL((u) => u.searchParams.get('deleted') === 'true');
  await waitRows(1);
  assert.deepEqual(await rowIds(), [rec.id]);
  // The export of the bin is the bin: the deleted record only (it used to export the live list).
  const href = await page.getByTestId('export-csv').getAttribute('href');
  assert.equal(new URL(href, app.url).searchParams.get('deleted'), 'true');
  const csv = (await (await page.request.get(href)).text()).replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  assert.equal(csv.length, 2, csv.join('\n'));
  assert.ok(csv[1].startsWith('Bin Candidate,'), csv[1]);
  await page.getByTestId('restore').click();
  await page.getByTestId('empty-state').waitFor();

  await page.getByTestId('recycle-bin').click();
  await page.waitForURL((u) => !u.searchParams.has('deleted'));
  await waitRows(5);
  assert.ok((await rowIds()).includes(rec.id), 'back in the list');
  const got = await (await app.api('admin')).get(`/api/v1/accounts/${rec.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.json.name, 'Bin Candidate');
});

uiTest("role editing: Sales may read every team's accounts once the administrator says so", P, async () => {
  const north = await app.api('north1');
  const before = await north.get(`/api/v1/accounts/${made.south.id}`);
  assert.equal(before.status, 403, 'another team’s account is out of scope at first');
  const salesPage = await newPage(browser, app);
  try {
    await loginAs(salesPage, 'north1');
    await salesPage.goto(`/accounts/${made.south.id}`);
    await salesPage.getByTestId('record-forbidden').waitFor();

    // the administrator edits the Sales role: accounts read scope team → all
    await page.goto('/roles');
    await page.getByTestId('list-row').filter({ hasText: 'Sales' }).first().waitFor();
    await page.getByTestId('list-row').filter({ hasText: 'Sales' }).first().locator('a').first().click();
    await page.getByTestId('edit').click();
    const read = page.getByTestId('perm-account-read');
    assert.equal(await read.inputValue(), 'team');
    await read.selectOption('all');
    await page.getByTestId('save').click();
    await page.waitForURL(/\/roles\/\d+$/);

    const role = (await (await app.api('admin')).list('roles', { filter: { field: 'name', op: '=', value: 'Sales' } })).items[0];
    const perms = typeof role.permissions === 'string' ? JSON.parse(role.permissions) : role.permissions;
    assert.equal(perms.entities.account.read, 'all');
    assert.equal(perms.entities.account.update, 'own', 'the other rights are kept');

    // the Sales user now opens the account
    const after = await north.get(`/api/v1/accounts/${made.south.id}`);
    assert.equal(after.status, 200, after.text);
    await salesPage.reload();
    await salesPage.getByTestId('record-title').filter({ hasText: '南方客户' }).waitFor();
  } finally {
    await salesPage.context().close();
  }
});
