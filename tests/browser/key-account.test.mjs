// A key account must name its account manager (R-CUS-5; account.json's required_when): in the
// record form the manager field is marked required while "Key account" is ticked, an empty one
// is refused before anything is sent, with a message naming the condition (English and Chinese),
// and the account saves once a manager is picked.
import assert from 'node:assert/strict';
import { appSession, newPage, loginAs, uiTest, idFromUrl } from './helpers.mjs';

let app, browser, page;
const NAME = '杭州云栖重点客户有限公司';

appSession({ users: [{ name: 'admin', role: 'Administrator' }, { name: 'liming', role: 'Sales' }] }, (s) => ({ app, browser, page } = s));

const P = () => page;

/** Types into a reference picker and picks the option whose whole text is `title`. */
async function pick(p, testid, query, title) {
  await p.getByTestId(testid).fill(query);
  await p.getByTestId('ref-option').filter({ hasText: new RegExp(`^\\s*${title}\\s*$`) }).click();
}

async function accountsNamed(name) {
  const r = await (await app.api('admin')).get(`/api/v1/accounts?filter=${encodeURIComponent(JSON.stringify({ field: 'name', op: '=', value: name }))}`);
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}

uiTest('ticking "Key account" makes the account manager required; an empty one is refused before saving', P, async () => {
  await page.goto('/accounts/new');
  await page.getByTestId('record-form').waitFor();
  await page.getByTestId('field-name').fill(NAME);
  const star = page.getByTestId('required-account_manager_id');
  assert.equal(await star.count(), 0, 'not required while the flag is off');
  await page.getByTestId('field-key_account').check();
  await star.waitFor();
  assert.equal(await page.getByTestId('field-account_manager_id').getAttribute('aria-required'), 'true');

  await page.getByTestId('save').click();
  const err = page.getByTestId('error-account_manager_id');
  await err.waitFor();
  assert.equal((await err.textContent()).trim(), 'This field is required when “Key account” is Yes.');
  assert.match(await page.getByTestId('row-account_manager_id').getAttribute('class'), /has-error/);
  assert.match(page.url(), /\/accounts\/new$/, 'still on the form');
  assert.equal((await accountsNamed(NAME)).length, 0, 'nothing was sent');

  // unticking lifts the requirement and its message
  await page.getByTestId('field-key_account').uncheck();
  await err.waitFor({ state: 'detached' });
  assert.equal(await star.count(), 0);
  await page.getByTestId('field-key_account').check();
  await err.waitFor();

  // a picked manager clears it and the account saves with both
  await pick(page, 'field-account_manager_id', 'limi', 'liming');
  await err.waitFor({ state: 'detached' });
  await page.getByTestId('save').click();
  await page.waitForURL(/\/accounts\/\d+$/);
  const id = idFromUrl(page);
  const saved = await (await app.api('admin')).get(`/api/v1/accounts/${id}`);
  assert.deepEqual([saved.json.key_account, saved.json.account_manager_id], [true, app.users.liming.id]);
});

uiTest('the message is in Chinese for a Chinese user', P, async () => {
  const zh = await newPage(browser, app, { locale: 'zh-CN' });
  try {
    await loginAs(zh, 'admin');
    await zh.goto('/accounts/new');
    await zh.getByTestId('record-form').waitFor();
    await zh.getByTestId('field-name').fill('上海重点客户');
    await zh.getByTestId('field-key_account').check();
    await zh.getByTestId('save').click();
    const err = zh.getByTestId('error-account_manager_id');
    await err.waitFor();
    assert.equal((await err.textContent()).trim(), '“重点客户”为是时，此字段为必填项。');
    assert.equal((await accountsNamed('上海重点客户')).length, 0);
  } finally {
    await zh.close();
  }
});
