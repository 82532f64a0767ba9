// Live list updates from an import (docs/API.md, "Events"): two pages show the account list; an
// import committed through the API announces each committed batch once (WebSocket event
// kind "imported" with created / updated counts); both lists say so and show the new rows on
// Refresh; an upsert import is announced as updated records.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, pageA, pageB, api;
const frames = { A: [], B: [] };

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  api = await app.api('admin');
  await api.create('accounts', { name: 'Live Import Existing', city: '上海' });
  [pageA, pageB] = await Promise.all([newPage(browser, app), newPage(browser, app)]);
  for (const [key, page] of [['A', pageA], ['B', pageB]]) {
    // Record every event frame the page's WebSocket receives.
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      try { frames[key].push(JSON.parse(String(f.payload))); } catch { /* not an event */ }
    }));
    await loginAs(page, 'admin');
  }
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => pageB;
const names = (page) => page.getByTestId('list-row').locator('td:first-child').allTextContents();

async function openList(page) {
  await page.goto(`${app.url}/accounts`);
  await page.getByTestId('list-row').first().waitFor();
}
// The WebSocket is open once a record event reaches it: create-and-delete a probe until both see one.
async function eventsFlowing() {
  for (const t0 = Date.now(); Date.now() - t0 < 20_000;) {
    const probe = await api.create('accounts', { name: `Live probe ${Date.now()}` });
    await api.del(`/api/v1/accounts/${probe.id}`);
    await new Promise((r) => setTimeout(r, 300));
    if (['A', 'B'].every((k) => frames[k].some((f) => f.id === probe.id))) return;
  }
  throw new Error('no record events reached both pages');
}

uiTest('an import committed through the API shows up in the other open lists', P, async () => {
  await Promise.all([openList(pageA), openList(pageB)]);
  await eventsFlowing();
  // Refresh away the probes' banner so the import's own announcement is what is seen.
  for (const page of [pageA, pageB]) {
    await page.getByTestId('list-stale').waitFor();
    await page.getByTestId('list-refresh').click();
    await page.getByTestId('list-stale').waitFor({ state: 'detached' });
  }
  const before = { A: frames.A.length, B: frames.B.length };
  const csv = 'name,city\nLive Import One,北京\nLive Import Two,广州\nLive Import Three,深圳\n';
  const r = await api.post('/api/v1/accounts/import?mode=commit', csv, { headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 3);
  for (const page of [pageA, pageB]) {
    const banner = page.getByTestId('list-imported');
    await banner.waitFor();
    assert.match(await banner.textContent(), /An import added 3 and updated 0 record\(s\)/);
    assert.ok(!(await names(page)).includes('Live Import One'), 'announced, not applied under the pointer');
    await page.getByTestId('list-refresh').click();
    await page.getByTestId('list-row').filter({ hasText: 'Live Import Three' }).waitFor();
    const shown = await names(page);
    for (const n of ['Live Import One', 'Live Import Two', 'Live Import Three']) assert.ok(shown.includes(n), `${n} listed`);
  }
  // One event for the one committed batch, not one per record.
  for (const k of ['A', 'B']) {
    const imported = frames[k].slice(before[k]).filter((f) => f.entity === 'account' && f.kind === 'imported');
    assert.equal(imported.length, 1, `${k}: ${JSON.stringify(frames[k].slice(before[k]))}`);
    assert.equal(imported[0].id, r.json.import_id);
    assert.equal(imported[0].created, 3);
    assert.equal(frames[k].slice(before[k]).filter((f) => f.entity === 'account' && f.kind === 'created').length, 0);
  }
  assert.deepEqual(pageA.consoleErrors, []);
  assert.deepEqual(pageB.consoleErrors, []);
});

uiTest('an upsert import shows as updated in the other list', P, async () => {
  await api.create('accounts', { name: 'Live Upsert', city: '上海', emails: ['live-upsert@acme-live.cn'] });
  await pageB.getByTestId('list-stale').waitFor();
  await pageB.getByTestId('list-refresh').click();
  await pageB.getByTestId('list-stale').waitFor({ state: 'detached' });
  const r = await api.post('/api/v1/accounts/import?mode=commit&upsert=email',
    'name,emails,phones\nLive Upsert,live-upsert@acme-live.cn,13800138000\n', { headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.updated, 1, r.text);
  const banner = pageB.getByTestId('list-imported');
  await banner.waitFor();
  assert.match(await banner.textContent(), /added 0 and updated 1 record\(s\)/);
  await pageB.getByTestId('list-refresh').click();
  await pageB.getByTestId('list-row').filter({ hasText: 'Live Upsert' }).filter({ hasText: /138\D?0013\D?8000/ }).waitFor();
});

// An event that arrives while the list is being read is announced, not lost: the page read may
// not include the change. The list request after Refresh is held until the import's event has
// reached the page (the race that made the test above fail now and then).
uiTest('an import announced while the list is loading still shows its banner', P, async () => {
  await api.create('accounts', { name: 'Live Before Load' });
  await pageB.getByTestId('list-stale').waitFor();
  let release;
  const held = new Promise((r) => { release = r; });
  const isList = (url) => url.pathname === '/api/v1/accounts';
  await pageB.route(isList, async (route) => {
    await held;
    await route.continue();
  });
  try {
    const before = frames.B.length;
    const loaded = pageB.waitForResponse((res) => isList(new URL(res.url())));
    await pageB.getByTestId('list-refresh').click();
    await pageB.getByTestId('list-stale').waitFor({ state: 'detached' });
    const r = await api.post('/api/v1/accounts/import?mode=commit',
      'name,city\nLive During Load,杭州\n', { headers: { 'content-type': 'text/csv' } });
    assert.equal(r.status, 200, r.text);
    for (const t0 = Date.now(); !frames.B.slice(before).some((f) => f.kind === 'imported' && f.id === r.json.import_id);) {
      assert.ok(Date.now() - t0 < 10_000, 'the import event reached page B');
      await new Promise((res) => setTimeout(res, 50));
    }
    release();
    await loaded;
    const banner = pageB.getByTestId('list-imported');
    await banner.waitFor();
    assert.match(await banner.textContent(), /An import added 1 and updated 0 record\(s\)/);
  } finally {
    release();
    await pageB.unroute(isList);
  }
});
