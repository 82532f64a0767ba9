// The everyday path of an administrator in the browser, one step after another on one page:
// sign in, create an account with a Chinese name, find it with the global search as you type,
// edit it (an invalid e-mail is flagged on the e-mails field, then fixed and saved), and see the
// change in the history tab.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, submitLogin, uiTest, idFromUrl, PASSWORD } from './helpers.mjs';

let app, browser, page;
const NAME = '北京星辰智能科技有限公司';
let accountId;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  page = await newPage(browser, app);
  // Another account whose name shares no characters with the one created below, so the search
  // must narrow, not just list everything.
  const api = await app.api('admin');
  await api.create('accounts', { name: 'Shanghai Harbour Logistics', city: '上海' });
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

uiTest('log in: the start page asks to sign in, a wrong password is refused, the right one opens Accounts', P, async () => {
  await page.goto('/');
  await page.waitForURL((u) => u.pathname === "/login" && u.searchParams.get("next") === "/accounts");
  await page.getByTestId('login-form').waitFor();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in to Rapport');

  await page.getByTestId('login-username').fill('admin');
  await page.getByTestId('login-password').fill('not-the-password');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor();
  assert.equal((await page.getByTestId('login-error').textContent()).trim(), 'Wrong username or password.');
  assert.match(page.url(), /\/login/);
  assert.equal(await page.getByTestId('login-password').inputValue(), '', 'the password is cleared after a failure');

  await submitLogin(page, 'admin', PASSWORD);
  assert.equal(new URL(page.url()).pathname, '/accounts');
  await page.getByTestId('list-accounts').waitFor();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Accounts');
  await page.getByTestId('list-row').first().waitFor();
  assert.match(await page.getByTestId('list-table').textContent(), /Shanghai Harbour Logistics/);
  assert.equal((await page.locator('.user-name').textContent()).trim(), 'admin');
  assert.ok(await page.getByTestId('nav-settings').isVisible(), 'an administrator sees Settings');
});

uiTest('create an account with a Chinese name', P, async () => {
  await page.getByTestId('new-record').click();
  await page.waitForURL(/\/accounts\/new$/);
  await page.getByTestId('record-form').waitFor();
  // The metadata's defaults are filled in (kind = company, currency = CNY), so the required Kind
  // does not block a quick create.
  assert.equal(await page.getByTestId('field-kind').inputValue(), 'company');
  assert.equal(await page.getByTestId('field-currency').inputValue(), 'CNY');
  // Business fields come first, the system section (owner, team, external id) last.
  const legends = await page.locator('fieldset.form-section > legend').allTextContents();
  assert.equal(legends[0].trim(), 'General');
  assert.equal(legends[legends.length - 1].trim(), 'System');
  await page.getByTestId('field-name').fill(NAME);
  await page.getByTestId('field-city').fill('北京');
  await page.getByTestId('save').click();
  await page.waitForURL(/\/accounts\/\d+$/);
  accountId = idFromUrl(page);
  assert.ok(accountId, `record URL ${page.url()}`);
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), NAME);
  assert.equal((await page.getByTestId('flash').textContent()).trim(), 'Created.');
  assert.match(await page.getByTestId('value-city').textContent(), /北京/);

  // Stored as typed, owned by the user who created it.
  const api = await app.api('admin');
  const r = await api.get(`/api/v1/accounts/${accountId}`);
  assert.equal(r.status, 200);
  assert.equal(r.json.name, NAME);
  assert.equal(r.json.city, '北京');
  assert.equal(r.json.kind, 'company');
  assert.equal(r.json.owner_id, app.users.admin.id);
});

uiTest('global search finds the account from part of its Chinese name as you type', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-accounts').waitFor();
  const box = page.getByTestId('global-search');
  await box.click();
  await box.pressSequentially('星辰智能', { delay: 40 });
  const hit = page.getByTestId('search-result').filter({ hasText: NAME });
  await hit.waitFor();
  const all = await page.getByTestId('search-result').allTextContents();
  assert.ok(!all.some((x) => x.includes('Shanghai Harbour')), `unrelated hits: ${all.join(' | ')}`);
  await hit.click();
  await page.waitForURL(new RegExp(`/accounts/${accountId}$`));
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), NAME);

  // Keyboard too: "/" focuses the search, Enter opens the highlighted hit.
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.locator('body').click({ position: { x: 5, y: 400 } });
  await page.keyboard.press('/');
  await page.keyboard.type('星辰');
  await page.getByTestId('search-result').filter({ hasText: NAME }).waitFor();
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`/accounts/${accountId}$`));
});

uiTest('edit: an invalid e-mail is shown on the e-mails field; fixed, the record saves', P, async () => {
  await page.goto(`/accounts/${accountId}`);
  await page.getByTestId('edit').click();
  await page.waitForURL(new RegExp(`/accounts/${accountId}/edit$`));
  await page.getByTestId('record-form').waitFor();
  assert.equal(await page.getByTestId('field-name').inputValue(), NAME, 'the form is filled from the record');

  await page.getByTestId('field-emails-add').click();
  await page.getByTestId('field-emails-0').fill('sales at xingchen');
  await page.getByTestId('save').click();

  const err = page.getByTestId('error-emails');
  await err.waitFor();
  assert.match(await err.textContent(), /valid email/i);
  assert.match(await page.getByTestId('row-emails').getAttribute('class'), /has-error/);
  assert.equal(await page.getByTestId('field-emails-0').getAttribute('aria-invalid'), 'true');
  assert.equal(
    await page.getByTestId('field-emails-0').evaluate((el) => el === document.activeElement),
    true,
    'the invalid field gets the focus',
  );
  assert.match(page.url(), /\/edit$/, 'still on the form');
  assert.equal(await page.getByTestId('error-name').count(), 0, 'only the bad field is flagged');
  const unchanged = await (await app.api('admin')).get(`/api/v1/accounts/${accountId}`);
  assert.equal(unchanged.json.emails, null, 'nothing was saved');

  await page.getByTestId('field-emails-0').fill('sales@xingchen.cn');
  await page.getByTestId('error-emails').waitFor({ state: 'detached' });
  await page.getByTestId('field-phones-add').click();
  await page.getByTestId('field-phones-0').fill('+86 10 6552 8888');
  await page.getByTestId('save').click();
  await page.waitForURL(new RegExp(`/accounts/${accountId}$`));
  assert.equal((await page.getByTestId('flash').textContent()).trim(), 'Saved.');
  assert.match(await page.getByTestId('value-emails').textContent(), /sales@xingchen\.cn/);
  assert.match(await page.getByTestId('value-phones').textContent(), /\+86 10 6552 8888/);

  const saved = await (await app.api('admin')).get(`/api/v1/accounts/${accountId}`);
  const emails = saved.json.emails.map((e) => (typeof e === 'string' ? e : e.value));
  assert.deepEqual(emails, ['sales@xingchen.cn']);
  assert.equal(saved.json.version, 2);
});

uiTest('edit: a value the server rejects is shown on the field it names', P, async () => {
  // The client accepts any a@b.c address; the server is stricter about some (and a too-long name
  // is a server check too). Route one PATCH through a rewrite that makes the server refuse it, so the
  // server's field error — not the client's — is what the form shows.
  await page.goto(`/accounts/${accountId}/edit`);
  await page.getByTestId('record-form').waitFor();
  await page.route('**/api/v1/accounts/*', async (route) => {
    if (route.request().method() !== 'PATCH') return route.continue();
    const body = JSON.parse(route.request().postData() || '{}');
    body.emails = [{ value: 'no-at-sign' }];
    await route.continue({ postData: JSON.stringify(body) });
  }, { times: 1 });
  await page.getByTestId('field-website').fill('https://xingchen.example.cn');
  await page.getByTestId('save').click();
  const err = page.getByTestId('error-emails');
  await err.waitFor();
  assert.match(await err.textContent(), /not valid/i);
  assert.match(page.url(), /\/edit$/);
  await page.unroute('**/api/v1/accounts/*');
  // Correcting the field clears its server message; saving now works.
  await page.getByTestId('field-emails-0').fill('info@xingchen.cn');
  await page.getByTestId('error-emails').waitFor({ state: 'detached' });
  await page.getByTestId('save').click();
  await page.waitForURL(new RegExp(`/accounts/${accountId}$`));
  assert.match(await page.getByTestId('value-website').textContent(), /xingchen\.example\.cn/);
});

uiTest('history tab lists the edits with the changed e-mail', P, async () => {
  await page.goto(`/accounts/${accountId}`);
  // Tabs: details, the related lists (contacts, …) and history — no tab for the system references
  // (the record's own id, created_by, …) that every record has.
  await page.getByTestId('history-tab').waitFor();
  const tabs = (await page.getByRole('tab').allTextContents()).map((s) => s.trim());
  assert.equal(tabs[0], 'Details');
  assert.equal(tabs[tabs.length - 1], 'History');
  assert.ok(tabs.includes('Contacts'), `tabs: ${tabs}`);
  assert.ok(!tabs.some((x) => /Accounts|\(ID\)|Created by/.test(x)), `tabs: ${tabs}`);
  await page.getByTestId('history-tab').click();
  await page.waitForURL(/[?&]tab=history/);
  await page.getByTestId('history-entry').first().waitFor();
  const entries = page.getByTestId('history-entry');
  assert.equal(await entries.count(), 3, 'created + two edits');
  // Newest first: the last edit changed e-mails and website.
  const newest = entries.first();
  assert.match(await newest.textContent(), /updated/);
  assert.match(await newest.textContent(), /admin/);
  const change = newest.locator('[data-testid="history-change"][data-field="emails"]');
  assert.match(await change.locator('th').textContent(), /Emails/);
  assert.match(await change.locator('.change-from').textContent(), /sales@xingchen\.cn/);
  assert.match(await change.locator('.change-to').textContent(), /info@xingchen\.cn/);
  const older = entries.nth(1).locator('[data-testid="history-change"][data-field="emails"]');
  assert.match(await older.locator('.change-to').textContent(), /sales@xingchen\.cn/);
  assert.match(await entries.last().textContent(), /created/);
  // The tab survives a reload (it is in the URL).
  await page.reload();
  await page.getByTestId('history-entry').first().waitFor();
  assert.equal(await page.getByTestId('history-tab').getAttribute('aria-selected'), 'true');
});
