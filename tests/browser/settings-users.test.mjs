// Settings in the browser: an administrator creates a team and a user (with a role and that team)
// from the settings area; the new user signs in with the password given there and sees only what
// the Sales role allows (own team's accounts, no bank account, no settings). The settings forms
// (new custom field, role permissions) ask before an edit is left unsaved.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, submitLogin, uiTest, idFromUrl } from './helpers.mjs';

const TEAM = '华东销售部';
const USERNAME = 'zhang.wei';
const USER_PASSWORD = 'zhang-wei-pw-2026';
let app, browser, page, southAccount, hqAccount, teamId, userId;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({
      users: [
        { name: 'admin', role: 'Administrator' },
        { name: 'south1', role: 'Sales', team: '华南销售部' },
      ],
    }),
    launchBrowser(),
  ]);
  southAccount = await (await app.api('south1')).create('accounts', { name: '南方客户有限公司', city: '广州' });
  hqAccount = await (await app.api('admin')).create('accounts', { name: '总部直管客户', city: '上海' });
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

/** Types into a reference picker and picks the option whose whole text is `title`. */
async function pick(p, testid, query, title) {
  await p.getByTestId(testid).fill(query);
  const exact = new RegExp(`^\\s*${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  await p.getByTestId('ref-option').filter({ hasText: exact }).click();
}

/** Answers the next dialog; resolves to its type and message. */
function nextDialog(p, accept) {
  return new Promise((res) => p.once('dialog', async (d) => {
    const info = { type: d.type(), message: d.message() };
    if (accept) await d.accept(); else await d.dismiss();
    res(info);
  }));
}

uiTest('an administrator creates a team from settings', P, async () => {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('settings-teams').click();
  await page.waitForURL(/\/teams$/);
  await page.getByTestId('new-record').click();
  await page.waitForURL(/\/teams\/new$/);
  await page.getByTestId('field-name').fill(TEAM);
  await page.getByTestId('save').click();
  await page.waitForURL(/\/teams\/\d+$/);
  teamId = idFromUrl(page);
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), TEAM);
  const got = await (await app.api('admin')).get(`/api/v1/teams/${teamId}`);
  assert.equal(got.json.name, TEAM);
});

uiTest('an administrator creates a user with a role, the new team and a password', P, async () => {
  assert.ok(teamId, 'team created by the previous test');
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('settings-users').click();
  await page.waitForURL(/\/users$/);
  await page.getByTestId('new-record').click();
  await page.waitForURL(/\/users\/new$/);
  await page.getByTestId('field-username').fill(USERNAME);
  await page.getByTestId('field-display_name').fill('张伟');
  await pick(page, 'field-role_id', 'Sales', 'Sales');
  await pick(page, 'field-team_id', '华东', TEAM);
  const active = page.getByTestId('field-active');
  if ((await active.count()) && !(await active.isChecked())) await active.check();
  await page.getByTestId('field-password').fill(USER_PASSWORD);
  await page.getByTestId('save').click();
  await page.waitForURL(/\/users\/\d+$/);
  userId = idFromUrl(page);
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), '张伟');
  assert.match(await page.getByTestId('value-role_id').textContent(), /Sales/);

  const admin = await app.api('admin');
  const user = (await admin.get(`/api/v1/users/${userId}`)).json;
  const sales = (await admin.get('/api/v1/roles')).json.items.find((r) => r.name === 'Sales');
  assert.equal(user.username, USERNAME);
  assert.equal(String(user.role_id), String(sales.id));
  assert.equal(String(user.team_id), String(teamId));
  assert.equal(user.password, undefined, 'the password is never answered');
});

uiTest('the new user signs in and sees only what the Sales role allows', P, async () => {
  assert.ok(userId, 'user created by the previous test');
  const p = await newPage(browser, app);
  page = p;
  try {
    await p.goto('/login');
    await submitLogin(p, USERNAME, USER_PASSWORD);
    await p.getByTestId('logout').waitFor();
    assert.equal(await p.getByTestId('nav-settings').count(), 0, 'no settings for Sales');

    // An account created by the new user belongs to the new team.
    await p.goto('/accounts/new');
    await p.getByTestId('field-name').fill('华东新客户');
    await p.getByTestId('save').click();
    await p.waitForURL(/\/accounts\/\d+$/);
    const ownId = idFromUrl(p);
    const own = (await (await app.api('admin')).get(`/api/v1/accounts/${ownId}`)).json;
    assert.equal(String(own.team_id), String(teamId));
    assert.equal(await p.getByTestId('value-bank_account').count(), 0, 'no bank account for Sales');

    // The list holds the own team's account only: not another team's, not the head office's.
    await p.goto('/accounts');
    await p.locator(`[data-testid="list-row"][data-id="${ownId}"]`).waitFor();
    const ids = await p.getByTestId('list-row').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.deepEqual(ids, [ownId]);

    // Another team's account does not open.
    await p.goto(`/accounts/${southAccount.id}`);
    await p.getByTestId('record-forbidden').waitFor();
    assert.ok(!(await p.locator('main').textContent()).includes('南方客户有限公司'));
    await p.goto(`/accounts/${hqAccount.id}`);
    await p.waitForFunction(() => document.querySelector('[data-testid="record-forbidden"], [data-testid="record-not-found"]'));
    assert.ok(!(await p.locator('main').textContent()).includes('总部直管客户'));

    // Settings pages are refused.
    await p.goto('/settings/fields');
    await p.getByRole('heading', { level: 1 }).waitFor();
    assert.equal(await p.getByTestId('custom-field-form').count(), 0);
    assert.match(await p.locator('main').textContent(), /Page not found|administrators/);
  } finally {
    await p.context().close();
    page = null;
  }
});

uiTest('the new-field form in settings asks before an unsaved field is left', P, async () => {
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
  await page.goto('/settings/fields?entity=account');
  await page.getByTestId('cf-name').waitFor();

  // Untouched: leaves without a question.
  let asked = false;
  const onDialog = (d) => { asked = true; void d.dismiss(); };
  page.on('dialog', onDialog);
  await page.getByTestId('nav-accounts').click();
  await page.waitForURL(/\/accounts$/);
  page.off('dialog', onDialog);
  assert.equal(asked, false);

  await page.goto('/settings/fields?entity=account');
  await page.getByTestId('cf-name').fill('wechat_id');
  let dialog = nextDialog(page, false);
  await page.getByTestId('nav-accounts').click();
  assert.deepEqual(await dialog, { type: 'confirm', message: 'You have unsaved changes. Leave this page and discard them?' });
  assert.match(page.url(), /\/settings\/fields/);
  assert.equal(await page.getByTestId('cf-name').inputValue(), 'wechat_id');

  // Closing the tab shows the browser's dialog too.
  const p2 = await page.context().newPage();
  try {
    await p2.goto('/settings/fields?entity=account');
    await p2.getByTestId('cf-name').fill('line_id');
    const closing = nextDialog(p2, true);
    await p2.close({ runBeforeUnload: true });
    assert.equal((await closing).type, 'beforeunload');
  } finally {
    if (!p2.isClosed()) await p2.close();
  }

  dialog = nextDialog(page, true);
  await page.getByTestId('nav-accounts').click();
  await dialog;
  await page.waitForURL(/\/accounts$/);
  const meta = (await (await app.api('admin')).get('/api/v1/metadata')).json;
  const account = meta.entities.find((e) => e.name === 'account');
  assert.ok(!account.fields.some((f) => f.name === 'wechat_id'), 'nothing added');
});

uiTest('the role editor asks before unsaved permission changes are left', P, async () => {
  const admin = await app.api('admin');
  const sales = (await admin.get('/api/v1/roles')).json.items.find((r) => r.name === 'Sales');
  await page.goto(`/roles/${sales.id}/edit`);
  const del = page.getByTestId('perm-account-delete');
  await del.waitFor();
  const before = await del.inputValue();
  const changed = before === 'none' ? 'all' : 'none';
  await del.selectOption(changed);
  let dialog = nextDialog(page, false);
  await page.getByTestId('nav-accounts').click();
  assert.equal((await dialog).type, 'confirm');
  assert.match(page.url(), /\/edit$/);
  assert.equal(await del.inputValue(), changed);

  dialog = nextDialog(page, true);
  await page.getByTestId('nav-accounts').click();
  await dialog;
  await page.waitForURL(/\/accounts$/);
  const after = (await admin.get(`/api/v1/roles/${sales.id}`)).json;
  assert.deepEqual(after.permissions, sales.permissions, 'nothing saved');
});
