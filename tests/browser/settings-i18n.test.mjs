// An administrator adds a custom field in settings and it appears in the account form, record page
// and column chooser without any front-end change; the interface language switches between
// 简体中文 and English (labels from the app and from the metadata) and the choice survives a reload.
import assert from 'node:assert/strict';
import { appSession, newPage, uiTest, idFromUrl } from './helpers.mjs';

let app, browser, page;

appSession({ users: [{ name: 'admin', role: 'Administrator' }] }, (s) => ({ app, browser, page } = s));

const P = () => page;

uiTest('settings: add a custom text field to accounts', P, async () => {
  await page.getByTestId('nav-settings').click();
  await page.waitForURL(/\/settings$/);
  await page.getByTestId('settings-custom-fields').click();
  await page.waitForURL(/\/settings\/fields/);
  await page.getByTestId('cf-entity').selectOption('account');
  await page.getByTestId('cf-fields').locator('tr[data-field="name"]').waitFor();
  assert.equal(await page.getByTestId('cf-fields').locator('tr[data-field="wechat_id"]').count(), 0);

  // A bad name is refused on the name field before anything is sent.
  await page.getByTestId('cf-name').fill('WeChat ID');
  await page.getByTestId('cf-label-en').fill('WeChat');
  await page.getByTestId('cf-label-zh').fill('微信号');
  await page.getByTestId('cf-submit').click();
  assert.match(await page.getByTestId('cf-error-name').textContent(), /Start with a letter/);

  await page.getByTestId('cf-name').fill('wechat_id');
  await page.getByTestId('cf-type').selectOption('text');
  await page.getByTestId('cf-submit').click();
  await page.getByTestId('cf-success').waitFor();
  assert.match(await page.getByTestId('cf-success').textContent(), /wechat_id/);
  const row = page.getByTestId('cf-fields').locator('tr[data-field="wechat_id"]');
  await row.waitFor();
  assert.match(await row.textContent(), /WeChat/);
  assert.match(await row.textContent(), /custom/);

  // The same name again is refused by the server, on the name field.
  await page.getByTestId('cf-name').fill('wechat_id');
  await page.getByTestId('cf-label-en').fill('WeChat again');
  await page.getByTestId('cf-label-zh').fill('微信');
  await page.getByTestId('cf-submit').click();
  await page.getByTestId('cf-error-name').waitFor();
  assert.match(await page.getByTestId('cf-error-name').textContent(), /already|exists|clash|used/i);

  // The refused field is still typed in: leaving asks first (OK discards it).
  const asked = new Promise((res) => page.once('dialog', async (d) => { res(d.type()); await d.accept(); }));
  await page.getByTestId('nav-accounts').click();
  assert.equal(await asked, 'confirm');
  await page.waitForURL(/\/accounts$/);
});

uiTest('the custom field is in the account form, the record page and the column chooser', P, async () => {
  await page.getByTestId('nav-accounts').click();
  await page.getByTestId('new-record').click();
  await page.getByTestId('record-form').waitFor();
  const row = page.getByTestId('row-wechat_id');
  await row.waitFor();
  assert.match(await row.locator('label').textContent(), /WeChat/);
  await page.getByTestId('field-name').fill('深圳前海微众贸易');
  await page.getByTestId('field-wechat_id').fill('qianhai_trade');
  await page.getByTestId('save').click();
  await page.waitForURL(/\/accounts\/\d+$/);
  const id = idFromUrl(page);
  const v = page.getByTestId('value-wechat_id');
  assert.match(await v.textContent(), /WeChat/);
  assert.match(await v.textContent(), /qianhai_trade/);
  const stored = await (await app.api('admin')).get(`/api/v1/accounts/${id}`);
  assert.equal(stored.json.wechat_id, 'qianhai_trade');

  await page.getByTestId('back-to-list').click();
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('column-chooser').locator('summary').click();
  await page.getByTestId('column-wechat_id').check();
  await page.locator('thead').getByText('WeChat').waitFor();
  await page.getByTestId('list-table').getByText('qianhai_trade').waitFor();
});

uiTest('language: switch to 简体中文, labels change, the choice survives a reload; back to English', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  assert.equal(await page.getByTestId('nav-accounts').textContent(), 'Accounts');
  assert.equal((await page.getByTestId('logout').textContent()).trim(), 'Sign out');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');

  await page.getByTestId('lang-switch').selectOption('zh-CN');
  await page.getByRole('heading', { level: 1, name: '客户' }).waitFor();
  assert.equal(await page.getByTestId('nav-accounts').textContent(), '客户');
  assert.equal(await page.getByTestId('nav-contacts').textContent(), '联系人');
  assert.equal((await page.getByTestId('logout').textContent()).trim(), '退出登录');
  assert.equal((await page.getByTestId('export-csv').textContent()).trim(), '导出 CSV');
  // Column headers come from the metadata labels: 名称 (name), and the custom 微信号.
  const head = await page.locator('thead').textContent();
  assert.match(head, /名称/);
  assert.match(head, /微信号/);
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');

  await page.reload();
  await page.getByTestId('list-row').first().waitFor();
  assert.equal(await page.getByTestId('nav-accounts').textContent(), '客户');
  assert.equal(await page.getByTestId('lang-switch').inputValue(), 'zh-CN');
  // Forms too: the custom field's Chinese label, the translated buttons.
  await page.getByTestId('new-record').click();
  await page.getByTestId('record-form').waitFor();
  assert.match(await page.getByTestId('row-wechat_id').locator('label').textContent(), /微信号/);
  assert.match(await page.getByTestId('row-name').locator('label').textContent(), /名称/);
  assert.equal((await page.getByTestId('save').textContent()).trim(), '保存');

  // A new tab of the same browser profile opens in Chinese too.
  const second = await page.context().newPage();
  await second.goto('/contacts');
  await second.getByTestId('nav-contacts').waitFor();
  assert.equal(await second.getByTestId('nav-contacts').textContent(), '联系人');
  await second.close();

  await page.getByTestId('lang-switch').selectOption('en');
  await page.getByTestId('nav-accounts').filter({ hasText: 'Accounts' }).waitFor();
  assert.match(await page.getByTestId('row-wechat_id').locator('label').textContent(), /WeChat/);
  await page.reload();
  await page.getByTestId('record-form').waitFor();
  assert.equal((await page.getByTestId('save').textContent()).trim(), 'Save');
});

uiTest('language: a browser set to Chinese starts in Chinese, the login page included', P, async () => {
  const zh = await newPage(browser, app, { locale: 'zh-CN' });
  try {
    await zh.goto('/');
    await zh.getByTestId('login-form').waitFor();
    assert.equal(await zh.getByRole('heading', { level: 1 }).textContent(), '登录 Rapport');
    assert.equal((await zh.getByTestId('login-submit').textContent()).trim(), '登录');
    // Switching on the login page is remembered after signing in.
    await zh.getByTestId('lang-switch').selectOption('en');
    await zh.getByRole('heading', { level: 1, name: 'Sign in to Rapport' }).waitFor();
    await zh.getByTestId('login-username').fill('admin');
    await zh.getByTestId('login-password').fill('browser-test-pw-1');
    await zh.getByTestId('login-submit').click();
    await zh.getByTestId('nav-accounts').waitFor();
    assert.equal(await zh.getByTestId('nav-accounts').textContent(), 'Accounts');
  } finally {
    await zh.context().close();
  }
});
