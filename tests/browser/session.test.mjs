// Session handling: when the session is gone (cookie deleted) the app goes back to the login page
// keeping the URL the user was on, and after signing in lands on exactly that URL; signing out
// really ends the session.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, submitLogin, uiTest } from './helpers.mjs';

let app, browser, page, account;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  const api = await app.api('admin');
  account = await api.create('accounts', { name: '杭州西湖茶业', city: '杭州' });
  await api.create('accounts', { name: 'Alpha Tea Import', city: '上海' });
  page = await newPage(browser, app);
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;
const path = (p) => { const u = new URL(p.url()); return u.pathname + u.search; };

uiTest('cookie deleted while using the app: next request → login with the URL kept → back there after login', P, async () => {
  await loginAs(page, 'admin');
  await page.goto('/accounts?sort=name');
  await page.getByTestId('list-row').first().waitFor();
  await page.context().clearCookies();

  // An in-app navigation whose data request meets the 401.
  await page.getByTestId('list-row').filter({ hasText: '杭州西湖茶业' }).locator('a.row-link').click();
  await page.waitForURL(/\/login\?/);
  const u = new URL(page.url());
  assert.equal(u.searchParams.get('next'), `/accounts/${account.id}`);
  assert.equal(u.searchParams.get('expired'), '1');
  assert.match(await page.getByRole('status').first().textContent(), /session has ended/);
  assert.equal(await page.getByTestId('record-title').count(), 0, 'no record data without a session');

  await submitLogin(page, 'admin');
  assert.equal(path(page), `/accounts/${account.id}`);
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), '杭州西湖茶业');
});

uiTest('cookie deleted, page reloaded on a deep URL with a query: login keeps it and returns to it', P, async () => {
  await loginAs(page, 'admin');
  const deep = `/accounts/${account.id}?tab=history`;
  await page.goto(deep);
  await page.getByTestId('history-entry').first().waitFor();
  await page.context().clearCookies();
  await page.reload();
  await page.waitForURL(/\/login\?/);
  assert.equal(new URL(page.url()).searchParams.get('next'), deep);
  await submitLogin(page, 'admin');
  assert.equal(path(page), deep);
  await page.getByTestId('history-entry').first().waitFor();
  assert.equal(await page.getByTestId('history-tab').getAttribute('aria-selected'), 'true');

  // The list's state (sort, filter) in the URL survives the round trip too.
  const filter = JSON.stringify({ field: 'city', op: '=', value: '杭州' });
  const listUrl = `/accounts?sort=-name&filter=${encodeURIComponent(filter)}`;
  await page.context().clearCookies();
  await page.goto(listUrl);
  await page.waitForURL(/\/login\?/);
  await submitLogin(page, 'admin');
  await page.getByTestId('list-row').first().waitFor();
  const u = new URL(page.url());
  assert.equal(u.pathname, '/accounts');
  assert.equal(u.searchParams.get('sort'), '-name');
  assert.deepEqual(JSON.parse(u.searchParams.get('filter')), JSON.parse(filter));
  const rows = await page.getByTestId('list-row').allTextContents();
  assert.equal(rows.length, 1);
  assert.match(rows[0], /杭州西湖茶业/);
});

uiTest('a save with an expired session goes to login instead of failing silently', P, async () => {
  await loginAs(page, 'admin');
  await page.goto(`/accounts/${account.id}/edit`);
  await page.getByTestId('record-form').waitFor();
  await page.context().clearCookies();
  await page.getByTestId('field-city').fill('杭州市');
  await page.getByTestId('save').click();
  await page.waitForURL(/\/login\?/);
  assert.equal(new URL(page.url()).searchParams.get('next'), `/accounts/${account.id}/edit`);
  const r = await (await app.api('admin')).get(`/api/v1/accounts/${account.id}`);
  assert.equal(r.json.city, '杭州', 'nothing was saved without a session');
  await submitLogin(page, 'admin');
  assert.equal(path(page), `/accounts/${account.id}/edit`);
  await page.getByTestId('record-form').waitFor();
});

uiTest('sign out ends the session: protected pages ask to sign in again', P, async () => {
  await loginAs(page, 'admin');
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'rapport_session');
  assert.ok(session, 'signed in with a session cookie');
  assert.equal(session.httpOnly, true);
  await page.getByTestId('logout').click();
  await page.waitForURL(/\/login/);
  await page.getByTestId('login-form').waitFor();
  // The old cookie is dead on the server, not just forgotten by the browser.
  const me = await fetch(`${app.url}/api/v1/auth/me`, { headers: { cookie: `rapport_session=${session.value}` } });
  assert.equal(me.status, 401);
  await page.goto('/accounts');
  await page.waitForURL(/\/login\?/);
  assert.equal(await page.getByTestId('list-table').count(), 0);
});
