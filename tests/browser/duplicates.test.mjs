// Duplicate review queue (issue 4): an administrator sees a scanned pair with score and reason,
// compares the two contacts side by side, keeps the second, merges, sees the result and undoes it;
// another pair is dismissed; the last scheduled scan (done, failed, under way) is shown, and
// "Scan now" runs it at once (en and zh-CN).
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
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
  // The two records load after the compare panel shows: wait for their field lists.
  await page.getByTestId('dup-side-a').locator('dl.field-list').waitFor();
  await page.getByTestId('dup-side-b').locator('dl.field-list').waitFor();
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

uiTest('an administrator sees the last scheduled scan and scans now, in English and Chinese', P, async () => {
  // The server's first scheduled scan runs at start-up (--scan-every defaults to 24h).
  let status;
  for (const t0 = Date.now(); Date.now() - t0 < 30_000;) {
    status = await api.get('/api/v1/duplicates/scan');
    assert.equal(status.status, 200, status.text);
    if (status.json.last_run) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const run = status.json.last_run;
  assert.ok(run, 'the start-up scan was recorded');
  await page.goto(`${app.url}/duplicates`);
  const panel = page.getByTestId('dup-scan-status');
  await panel.waitFor();
  assert.equal(await panel.getAttribute('data-state'), run.error ? 'failed' : 'ok');
  const counts = await page.getByTestId('dup-scan-counts').textContent();
  assert.match(counts, new RegExp(`${run.scanned} record\\(s\\) read, ${run.pairs} pair\\(s\\) found, ${run.added} new`));
  assert.match(await page.getByTestId('dup-scan-last').textContent(), /^Last run .+, took \d[\d.,]* (ms|sec|min)/);
  assert.match(await page.getByTestId('dup-scan-scope').textContent(), /Full scan of all records/);

  // Scan now starts the scheduled scan at once: it reads what changed since the start-up run (the
  // two contacts, merged and restored above), its totals are announced, and it becomes the last run.
  await page.getByTestId('dup-scan').click();
  const notice = page.getByTestId('dup-notice');
  await notice.waitFor({ timeout: 30_000 });
  assert.match(await notice.textContent(), /^Scan done in .+: 2 record\(s\) read, 1 pair\(s\) found, \d+ new in the queue\.$/);
  const now = (await api.get('/api/v1/duplicates/scan')).json.last_run;
  assert.notEqual(now.started_at, run.started_at, 'Scan now was recorded as the last run');
  assert.equal(now.scanned, 2);
  assert.ok(now.changed_since, 'it read the records changed since the last run');
  assert.match(await page.getByTestId('dup-scan-counts').textContent(), /^2 record\(s\) read, 1 pair\(s\) found/);

  // Chinese labels.
  await page.evaluate(() => localStorage.setItem('rapport.locale', 'zh-CN'));
  await page.reload();
  await page.getByTestId('dup-scan-status').waitFor();
  assert.match(await page.getByTestId('dup-scan-status').textContent(), /定时扫描/);
  assert.match(await page.getByTestId('dup-scan-counts').textContent(), new RegExp(`读取 ${now.scanned} 条记录，发现 ${now.pairs} 对`));
  assert.match(await page.getByTestId('dup-scan-last').textContent(), /^上次运行于 .+，用时/);
  assert.equal((await page.getByTestId('dup-scan').textContent()).trim(), '立即扫描');
  await page.evaluate(() => localStorage.removeItem('rapport.locale'));
  assert.deepEqual(page.consoleErrors, []);
});

uiTest('a scheduled scan under way shows its progress, a failed one its error', P, async () => {
  // What a run in progress and a failed run leave in job_run (record/duplicates.cc), written
  // beside the running server as its scan thread would.
  const now = Date.now();
  const sql = (q) => execFileSync('sqlite3', ['-cmd', '.timeout 10000', join(app.dataDir, 'rapport.db'), q], { encoding: 'utf8' });
  sql(`UPDATE job_run SET error = 'interrupted (the server stopped)' WHERE name = 'duplicate_scan';
       INSERT INTO job_run (name, started_ms, finished_ms, scanned, pairs, added, since_ms, error, ok_started_ms)
       VALUES ('duplicate_scan.running', ${now - 9000}, ${now}, 2000, 3, 1, NULL, NULL, 0);`);
  const status = await api.get('/api/v1/duplicates/scan');
  assert.equal(status.json.running.scanned, 2000);
  assert.equal(status.json.last_run.error, 'interrupted (the server stopped)');
  await page.goto(`${app.url}/duplicates`);
  const panel = page.getByTestId('dup-scan-status');
  await panel.waitFor();
  assert.equal(await panel.getAttribute('data-state'), 'running');
  assert.match(await page.getByTestId('dup-scan-running').textContent(),
    /A scheduled scan is running since .+: 2000 record\(s\) read, 3 pair\(s\) found, 1 new so far\./);
  assert.match(await page.getByTestId('dup-scan-failed').textContent(),
    /^\s*The last run \(.+\) failed after .+: interrupted \(the server stopped\)\s*$/);
  // The run ends: its progress record goes, and the page (polling while a run is under way) says so.
  sql(`DELETE FROM job_run WHERE name = 'duplicate_scan.running';`);
  await page.getByTestId('dup-scan-running').waitFor({ state: 'detached', timeout: 15_000 });
  assert.equal(await panel.getAttribute('data-state'), 'failed');
  assert.deepEqual(page.consoleErrors, []);
});
