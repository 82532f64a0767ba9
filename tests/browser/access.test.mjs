// A user of the restricted default role "Sales" in the browser: the sensitive field
// account.bank_account is nowhere (record page, form, column chooser, filter builder, CSV export),
// and another team's account cannot be opened (a forbidden message, none of its data).
// An administrator on the same data is the control: they do see the field.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page;
const BANK = '6222 0210 9876 5432';
const OTHER_BANK = '6217 0000 1111 2222';
let own, other;

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
  const [admin, north, south] = await Promise.all([app.api('admin'), app.api('north1'), app.api('south1')]);
  own = await north.create('accounts', { name: '北方重工集团', city: '北京', tax_id: '91110000TAX001' });
  other = await south.create('accounts', { name: '南方保密客户有限公司', city: '广州' });
  for (const [a, bank] of [[own, BANK], [other, OTHER_BANK]]) {
    const r = await admin.patch(`/api/v1/accounts/${a.id}`, { bank_account: bank });
    assert.equal(r.status, 200, r.text);
  }
  page = await newPage(browser, app);
  await loginAs(page, 'north1');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

uiTest('control: an administrator sees the bank account on the record page', P, async () => {
  const adminPage = await newPage(browser, app);
  try {
    await loginAs(adminPage, 'admin');
    await adminPage.goto(`/accounts/${own.id}`);
    await adminPage.getByTestId('record-title').waitFor();
    const v = adminPage.getByTestId('value-bank_account');
    assert.match(await v.textContent(), /Bank account/);
    assert.match(await v.textContent(), new RegExp(BANK));
  } finally {
    await adminPage.context().close();
  }
});

uiTest('Sales: the record page of an own account has no bank-account field', P, async () => {
  await page.goto(`/accounts/${own.id}`);
  await page.getByTestId('record-title').waitFor();
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), '北方重工集团');
  // The finance section is there, with its other fields — only the sensitive one is missing.
  assert.match(await page.getByTestId('value-tax_id').textContent(), /91110000TAX001/);
  assert.equal(await page.getByTestId('value-bank_account').count(), 0);
  const text = await page.locator('main').textContent();
  assert.ok(!text.includes('Bank account'), 'no bank-account label');
  assert.ok(!text.includes(BANK), 'no bank-account number');
  // Nor in the history (the administrator's change of it is not shown to Sales).
  await page.getByTestId('history-tab').click();
  await page.getByTestId('history-entry').first().waitFor();
  assert.equal(await page.locator('[data-testid="history-change"][data-field="bank_account"]').count(), 0);
  assert.ok(!(await page.locator('main').textContent()).includes(BANK));
});

uiTest('Sales: the edit form has no bank-account input', P, async () => {
  await page.goto(`/accounts/${own.id}/edit`);
  await page.getByTestId('record-form').waitFor();
  assert.equal(await page.getByTestId('field-name').inputValue(), '北方重工集团');
  assert.equal(await page.getByTestId('field-tax_id').inputValue(), '91110000TAX001');
  assert.equal(await page.getByTestId('row-bank_account').count(), 0);
  assert.equal(await page.locator('#f-bank_account').count(), 0);
  assert.ok(!(await page.getByTestId('record-form').textContent()).includes('Bank account'));
  // A new record's form neither.
  await page.goto('/accounts/new');
  await page.getByTestId('record-form').waitFor();
  await page.getByTestId('field-tax_id').waitFor();
  assert.equal(await page.getByTestId('row-bank_account').count(), 0);
});

uiTest('Sales: the list offers no bank-account column, filter field or export column', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('column-chooser').locator('summary').click();
  await page.getByTestId('column-city').waitFor();
  assert.ok(await page.getByTestId('column-tax_id').isVisible(), 'other finance fields can be chosen');
  assert.equal(await page.getByTestId('column-bank_account').count(), 0);
  assert.ok(!(await page.getByTestId('column-chooser').textContent()).includes('Bank account'));
  await page.keyboard.press('Escape');

  await page.getByTestId('filter-toggle').click();
  const fieldSelect = page.getByTestId('filter-field').first();
  const options = await fieldSelect.locator('option').evaluateAll((os) => os.map((o) => o.value));
  assert.ok(options.includes('tax_id') && options.includes('city'), `filter fields: ${options}`);
  assert.ok(!options.includes('bank_account'), 'bank_account is not a filter field');

  // The export (what the link downloads, with this user's session) leaves the field out.
  const href = await page.getByTestId('export-csv').getAttribute('href');
  const csv = await page.request.get(href);
  assert.equal(csv.status(), 200);
  const body = await csv.text();
  assert.match(body, /北方重工集团/);
  assert.ok(!/bank/i.test(body.split('\n')[0]), `header: ${body.split('\n')[0]}`);
  assert.ok(!body.includes(BANK));
});

uiTest("Sales: another team's account is neither listed, found nor opened", P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  const rows = await page.getByTestId('list-row').evaluateAll((rs) => rs.map((r) => r.dataset.id));
  assert.deepEqual(rows, [own.id], 'only the own account is listed');

  const box = page.getByTestId('global-search');
  await box.fill('南方保密');
  await page.getByTestId('search-empty').waitFor();
  assert.equal(await page.getByTestId('search-result').count(), 0);
  await box.fill('');

  // By URL: a forbidden message and none of the record.
  await page.goto(`/accounts/${other.id}`);
  const denied = page.getByTestId('record-forbidden');
  await denied.waitFor();
  assert.match(await denied.textContent(), /do not have permission/);
  assert.equal(await page.getByTestId('record-title').count(), 0);
  assert.equal(await page.getByTestId('edit').count(), 0);
  const text = await page.locator('main').textContent();
  assert.ok(!text.includes('南方保密客户') && !text.includes('广州') && !text.includes(OTHER_BANK), text);
  // Its edit page neither.
  await page.goto(`/accounts/${other.id}/edit`);
  await page.getByRole('alert').first().waitFor();
  assert.match(await page.locator('main').textContent(), /do not have permission/);
  assert.equal(await page.getByTestId('record-form').count(), 0);
  assert.ok(!(await page.locator('main').textContent()).includes('南方保密客户'));
});

uiTest('Sales: no settings in the navigation, and /settings is refused', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('nav-accounts').waitFor();
  assert.equal(await page.getByTestId('nav-settings').count(), 0);
  await page.goto('/settings/fields');
  await page.getByRole('heading', { level: 1 }).waitFor();
  assert.equal(await page.getByTestId('custom-field-form').count(), 0);
  assert.match(await page.locator('main').textContent(), /Page not found|administrators/);
});
