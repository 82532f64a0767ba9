// Leaving an edited form asks first: a link in the app (window.confirm; "cancel" stays with the
// typed value kept, "OK" leaves), and closing the tab (the browser's beforeunload dialog). An
// untouched form and a saved one leave without asking.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page, account;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  account = await (await app.api('admin')).create('accounts', { name: 'Guarded Co', city: '杭州' });
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

/** Answers the next dialog; resolves to it. */
function nextDialog(p, accept) {
  return new Promise((res) => p.once('dialog', async (d) => {
    const info = { type: d.type(), message: d.message() };
    if (accept) await d.accept(); else await d.dismiss();
    res(info);
  }));
}

uiTest('an untouched edit form leaves without a question', P, async () => {
  let asked = false;
  const onDialog = (d) => { asked = true; void d.dismiss(); };
  page.on('dialog', onDialog);
  try {
    await page.goto(`/accounts/${account.id}/edit`);
    await page.getByTestId('field-city').waitFor();
    await page.getByTestId('nav-contacts').click();
    await page.waitForURL(/\/contacts$/);
    assert.equal(asked, false);
  } finally {
    page.off('dialog', onDialog);
  }
});

uiTest('an edited form asks before a link leaves it: cancel stays with the value, OK leaves', P, async () => {
  await page.goto(`/accounts/${account.id}/edit`);
  await page.getByTestId('field-city').fill('苏州');
  let dialog = nextDialog(page, false);
  await page.getByTestId('nav-contacts').click();
  assert.deepEqual(await dialog, { type: 'confirm', message: 'You have unsaved changes. Leave this page and discard them?' });
  assert.match(page.url(), /\/edit$/);
  assert.equal(await page.getByTestId('field-city').inputValue(), '苏州');

  dialog = nextDialog(page, true);
  await page.getByTestId('nav-contacts').click();
  await dialog;
  await page.waitForURL(/\/contacts$/);
  const got = await (await app.api('admin')).get(`/api/v1/accounts/${account.id}`);
  assert.equal(got.json.city, '杭州', 'nothing saved');
});

uiTest('closing the tab of an edited form shows the browser dialog', P, async () => {
  const p2 = await page.context().newPage();
  try {
    await p2.goto(`/accounts/${account.id}/edit`);
    await p2.getByTestId('field-city').fill('无锡');
    const dialog = nextDialog(p2, true);
    await p2.close({ runBeforeUnload: true });
    assert.equal((await dialog).type, 'beforeunload');
  } finally {
    if (!p2.isClosed()) await p2.close();
  }
});

uiTest('a saved form leaves without a question', P, async () => {
  let asked = false;
  const onDialog = (d) => { asked = true; void d.dismiss(); };
  page.on('dialog', onDialog);
  try {
    await page.goto(`/accounts/${account.id}/edit`);
    await page.getByTestId('field-city').fill('宁波');
    await page.getByTestId('save').click();
    await page.waitForURL(new RegExp(`/accounts/${account.id}$`));
    assert.equal(asked, false);
    await page.getByTestId('value-city').filter({ hasText: '宁波' }).waitFor();
  } finally {
    page.off('dialog', onDialog);
  }
});
