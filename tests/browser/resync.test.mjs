// Two servers on one PostgreSQL (issue 6): the browser is on server A. A's LISTEN connection is
// cut (and kept out) while server B creates an account and renames another, so A hears of
// neither; when A listens again it sends its WebSocket clients {"kind":"resync"}, and the open
// list and record pages re-read at once: the new account appears in the list, the renamed one's
// page shows the new name. Uses RAPPORT_TEST_PG_URL, else starts a throw-away cluster
// (tests/pg/start_pg.sh) for this file.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
let pgDir;
if (!process.env.RAPPORT_TEST_PG_URL) {
  const out = execFileSync(join(ROOT, 'tests/pg/start_pg.sh'), { timeout: 120_000 }).toString().trim().split('\n');
  process.env.RAPPORT_TEST_PG_URL = out[0];
  pgDir = out[1];
}
// Imported after RAPPORT_TEST_PG_URL is set: the harness reads it when loaded.
const { startServer, createToken, sleep, PG_URL } = await import('../api/harness.mjs');
const { startApp, launchBrowser, newPage, loginAs, uiTest } = await import('./helpers.mjs');

function psql(sql) {
  return execFileSync('psql', [PG_URL, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
}

// Server A logs in as a role of its own, so that its LISTEN connection can be told apart, killed
// and kept from reconnecting (NOLOGIN).
const role = `rb_resync_${process.pid}`;
let app, b, browser, listPage, recordPage, api, onB;

before(async () => {
  psql(`DROP ROLE IF EXISTS ${role}`);
  psql(`CREATE ROLE ${role} SUPERUSER LOGIN`);
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }], databaseUser: role }),
    launchBrowser(),
  ]);
  b = await startServer({ dataDir: app.dataDir });
  api = await app.api('admin');
  onB = b.client({ token: await createToken(app.dataDir, 'admin') });
  listPage = await newPage(browser, app);
  await loginAs(listPage, 'admin');
  recordPage = await listPage.context().newPage();
}, { timeout: 120_000 });

after(async () => {
  try { psql(`ALTER ROLE ${role} LOGIN`); } catch { /* cluster gone */ }
  await browser?.close();
  await b?.kill();
  await app?.stop();
  try { psql(`DROP ROLE IF EXISTS ${role}`); } catch { /* cluster gone */ }
  if (pgDir) execFileSync(join(ROOT, 'tests/pg/stop_pg.sh'), [pgDir], { timeout: 60_000 });
}, { timeout: 120_000 });

const listeners = () => psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${role}' AND application_name = 'rapport-notify'`);

uiTest('a resync after A\'s LISTEN connection was lost reloads the open list and record pages', () => listPage, async () => {
  const renamed = await api.create('accounts', { name: 'Before the gap' });
  await listPage.goto('/accounts');
  await listPage.getByTestId('list-row').filter({ hasText: 'Before the gap' }).waitFor();
  await recordPage.goto(`/accounts/${renamed.id}`);
  await recordPage.getByTestId('record-title').filter({ hasText: 'Before the gap' }).waitFor();
  // A's listener is connected (it starts with the server; poll for it).
  for (let i = 0; i < 200 && listeners() !== '1'; i++) await sleep(50);
  assert.equal(listeners(), '1', 'A listens on its own connection');

  psql(`ALTER ROLE ${role} NOLOGIN`);
  assert.equal(psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '${role}' AND application_name = 'rapport-notify'`), '1');
  // Through B, while A cannot hear it.
  const made = await onB.create('accounts', { name: 'Made on B in the gap' });
  const upd = await onB.patch(`/api/v1/accounts/${renamed.id}`, { name: 'Renamed on B in the gap' });
  assert.equal(upd.status, 200, upd.text);
  // A's pages cannot know yet: no event reached them.
  assert.equal(await listPage.getByTestId('list-row').filter({ hasText: 'Made on B in the gap' }).count(), 0);
  assert.equal(await recordPage.getByTestId('record-title').textContent(), 'Before the gap');

  // A's listener reconnects (back-off at most 5 s) and sends resync: both pages re-read.
  psql(`ALTER ROLE ${role} LOGIN`);
  await listPage.getByTestId('list-row').filter({ hasText: 'Made on B in the gap' }).waitFor({ timeout: 30_000 });
  const ids = await listPage.getByTestId('list-row').evaluateAll((rs) => rs.map((r) => r.dataset.id));
  assert.equal(ids[0], made.id, 'the new account is first (newest)');
  await recordPage.getByTestId('record-title').filter({ hasText: 'Renamed on B in the gap' }).waitFor({ timeout: 30_000 });
  await recordPage.getByTestId('live-notice').waitFor();
}, { timeout: 90_000 });
