// Duplicate review queue (issue 4): an administrator sees a scanned pair with score and reason,
// compares the two contacts side by side, keeps the second, merges, sees the result and undoes it;
// another pair is dismissed.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page, api;
let a, b;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  api = await app.api('admin');
  a = await api.create('contacts', { full_name: '李娜', emails: ['li.na@qinghe-tea.cn'], title: 'Buyer' });
  b = await api.create('contacts', { full_name: 'Li Na', emails: ['Li.Na@qinghe-tea.cn'], department: 'Purchasing' });
  const scan = await api.post('/api/v1/duplicates/scan', {});
  assert.equal(scan.status, 200, scan.text);
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

uiTest('review a pair side by side, merge into the chosen survivor, then undo', P, async () => {
  await page.getByTestId('nav-duplicates').click();
  await page.waitForURL(/\/duplicates$/);
  const row = page.getByTestId('dup-row').first();
  await row.waitFor();
  assert.match(await row.textContent(), /李娜/);
  assert.match(await row.textContent(), /email/i);
  await row.getByTestId('dup-review').click();
  await page.getByTestId('dup-compare').waitFor();
  assert.match(await page.getByTestId('dup-side-a').textContent(), /Buyer/);
  assert.match(await page.getByTestId('dup-side-b').textContent(), /Purchasing/);
  // The older record is record_a (a), the newer record_b (b): keep b.
  await page.getByTestId('dup-keep-b').check();
  await page.getByTestId('dup-merge').click();
  await page.getByTestId('dup-result').waitFor();
  const gone = await api.get(`/api/v1/contacts/${a.id}`, { redirect: 'manual' });
  assert.equal(gone.status, 308);
  const kept = await api.get(`/api/v1/contacts/${b.id}`);
  assert.equal(kept.json.title, 'Buyer', 'empty values filled from the other record');

  await page.getByTestId('dup-undo').click();
  await page.getByTestId('dup-undone').waitFor();
  const back = await api.get(`/api/v1/contacts/${a.id}`);
  assert.equal(back.status, 200);
  assert.deepEqual(page.consoleErrors, []);
});

uiTest('dismiss a pair', P, async () => {
  await page.getByTestId('dup-close').click();
  const row = page.getByTestId('dup-row').first();
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await row.getByTestId('dup-dismiss').click();
  await page.getByTestId('dup-notice').waitFor();
  const r = await api.get(`/api/v1/duplicate_candidates/${id}`);
  assert.equal(r.json.status, 'dismissed');
});
