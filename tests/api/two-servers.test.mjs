// Two `rapport serve` processes on one PostgreSQL database (issue 6): writes through one are read
// through the other, record events reach WebSocket clients of both (LISTEN/NOTIFY), sessions
// work on both, and kill -9 of one loses no acknowledged write. PostgreSQL only: with SQLite one
// server owns its database file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { execFileSync } from 'node:child_process';
import { startServer, startServers, tempDir, addUser, createToken, request, listAll, sleep, assertProblem, databaseFor, PG_URL } from './harness.mjs';

const skip = PG_URL ? false : 'needs PostgreSQL: set RAPPORT_TEST_PG_URL (make test does)';

let dir;
let a, b;
let token;
const servers = [];
const sockets = [];

before(async () => {
  if (skip) return;
  dir = tempDir();
  await addUser(dir, 'admin', { role: 'Administrator', password: 'admin-password-1' });
  token = await createToken(dir, 'admin');
  [a, b] = await startServers({ dataDir: dir }, { dataDir: dir });
  servers.push(a, b);
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  for (const s of servers) await s.kill();
});

function psql(url, sql) {
  return execFileSync('psql', [url, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { timeout: 30_000 }).toString().trim();
}

/** Opens a subscription on `srv`; resolves once open with {messages, next(pred, ms)}. */
function subscribe(srv) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${srv.url.replace(/^http/, 'ws')}/api/v1/events?token=${token}`);
    sockets.push(ws);
    const messages = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      messages.push(m);
      for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    });
    ws.on('open', () => resolve({
      messages,
      next(pred, ms = 5000) {
        const seen = messages.find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((res, rej) => {
          const w = { pred, resolve: (m) => { clearTimeout(t); res(m); } };
          const t = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); rej(new Error(`no matching event in ${ms} ms; got ${JSON.stringify(messages)}`)); }, ms);
          waiters.push(w);
        });
      },
    }));
    ws.on('error', reject);
  });
}

test('a record created through A is at once readable, listable, searchable and updatable through B', { skip }, async () => {
  const ca = a.client({ token });
  const cb = b.client({ token });
  const acc = await ca.create('accounts', { name: '双服务器测试有限公司', city: '杭州' });
  const got = await cb.get(`/api/v1/accounts/${acc.id}`);
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(got.json, acc);
  assert.ok((await cb.list('accounts', { filter: { field: 'name', op: '=', value: acc.name } })).items.some((x) => x.id === acc.id));
  const s = await cb.get(`/api/v1/search?q=${encodeURIComponent('双服务器')}`);
  assert.ok(s.json.items.some((x) => x.id === acc.id), 'search through B finds it');
  // An update through B with A's ETag, then A sees B's version.
  const upd = await cb.patch(`/api/v1/accounts/${acc.id}`, { city: '宁波' }, { headers: { 'if-match': `"${acc.version}"` } });
  assert.equal(upd.status, 200, upd.text);
  const back = await ca.get(`/api/v1/accounts/${acc.id}`);
  assert.equal(back.json.city, '宁波');
  assert.equal(back.json.version, acc.version + 1);
  // A stale ETag through A is refused: both servers see one row version.
  assertProblem(await ca.patch(`/api/v1/accounts/${acc.id}`, { city: 'x' }, { headers: { 'if-match': `"${acc.version}"` } }), 409, 'conflict');
});

test('a WebSocket client on B receives the event of a write on A; each client gets each event once', { skip }, async () => {
  const onB = await subscribe(b);
  const onA = await subscribe(a);
  const ca = a.client({ token });
  const cb = b.client({ token });
  // LISTEN is set up by B's store thread at start; wait until events flow (first one through).
  let probe;
  for (let i = 0; i < 50; i++) {
    probe = await ca.create('accounts', { name: `probe ${i}` });
    try { await onB.next((m) => m.id === probe.id, 200); break; } catch { /* not yet */ }
  }
  const acc = await ca.create('accounts', { name: 'Event from A' });
  const ev = await onB.next((m) => m.id === acc.id && m.kind === 'created');
  assert.equal(ev.entity, 'account');
  await cb.patch(`/api/v1/accounts/${acc.id}`, { city: '成都' });
  const upd = await onA.next((m) => m.id === acc.id && m.kind === 'updated');
  assert.ok(upd.changed.includes('city'), JSON.stringify(upd));
  await ca.del(`/api/v1/accounts/${acc.id}`);
  await onB.next((m) => m.id === acc.id && m.kind === 'deleted');
  await onA.next((m) => m.id === acc.id && m.kind === 'deleted');
  await sleep(300);
  for (const [name, sub] of [['A', onA], ['B', onB]]) {
    const mine = sub.messages.filter((m) => m.id === acc.id).map((m) => m.kind);
    assert.deepEqual(mine, ['created', 'updated', 'deleted'], `client on ${name}: each event exactly once`);
  }
});

test('a custom field added through A is known to B without a restart (NOTIFY rapport_schema)', { skip }, async () => {
  const ca = a.client({ token });
  const cb = b.client({ token });
  const fieldsOn = async (c) => (await c.get('/api/v1/metadata')).json.entities.find((e) => e.name === 'account').fields;
  assert.ok(!(await fieldsOn(cb)).some((f) => f.name === 'region_code'));
  const add = await ca.post('/api/v1/metadata/account/fields', { name: 'region_code', type: 'text', label: { en: 'Region code', 'zh-CN': '区域代码' }, indexed: true });
  assert.equal(add.status, 201, add.text);
  // B learns of it from the notification (asynchronous: poll with a generous bound).
  let seen;
  for (let i = 0; i < 200 && !seen; i++) {
    seen = (await fieldsOn(cb)).find((f) => f.name === 'region_code');
    if (!seen) await sleep(50);
  }
  assert.ok(seen, 'B lists the new field in its metadata');
  assert.equal(seen.label['zh-CN'], '区域代码');
  // B accepts, filters on and returns it; A reads what B wrote.
  const made = await cb.create('accounts', { name: '自定义字段跨服务器', region_code: 'HZ-01' });
  assert.equal(made.region_code, 'HZ-01');
  const listed = await cb.list('accounts', { filter: { field: 'region_code', op: '=', value: 'HZ-01' } });
  assert.deepEqual(listed.items.map((x) => x.id), [made.id]);
  assert.equal((await ca.get(`/api/v1/accounts/${made.id}`)).json.region_code, 'HZ-01');
  // Adding it again through B is a conflict on name, as on A.
  assertProblem(await cb.post('/api/v1/metadata/account/fields', { name: 'region_code', type: 'text' }), 409, 'conflict', 'name');
});

test('B\'s LISTEN connection lost while A adds a custom field: B loads it on reconnecting, and its WebSocket clients get a resync event', { skip }, async () => {
  // Server C logs in as a role of its own, so that its LISTEN connection can be killed and
  // kept from reconnecting (NOLOGIN) while A adds the field: C cannot get the notification.
  const role = `rt_resync_${process.pid}`;
  psql(PG_URL, `DROP ROLE IF EXISTS ${role}`);
  psql(PG_URL, `CREATE ROLE ${role} SUPERUSER LOGIN`);
  const url = new URL(await databaseFor(dir));
  url.username = role;
  const c = await startServer({ dataDir: dir, args: ['--database', url.toString()] });
  servers.push(c);
  try {
    const ca = a.client({ token });
    const cc = c.client({ token });
    const fieldsOn = async (cl) => (await cl.get('/api/v1/metadata')).json.entities.find((e) => e.name === 'account').fields;
    const onC = await subscribe(c);
    // Events flow to C, so its listener is connected (the probe's event comes through it).
    for (let i = 0; ; i++) {
      const probe = await ca.create('accounts', { name: `resync probe ${i}` });
      try { await onC.next((m) => m.id === probe.id, 200); break; } catch { if (i > 50) throw new Error('no event reached C'); }
    }
    assert.ok(!(await fieldsOn(cc)).some((f) => f.name === 'resync_code'));  // C's pool has a connection now
    psql(PG_URL, `ALTER ROLE ${role} NOLOGIN`);
    const killed = psql(PG_URL, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '${role}' AND application_name = 'rapport-notify'`);
    assert.equal(killed, '1', 'C\'s LISTEN connection terminated');
    const add = await ca.post('/api/v1/metadata/account/fields', { name: 'resync_code', type: 'text', label: { en: 'Resync code' } });
    assert.equal(add.status, 201, add.text);
    await sleep(300);
    // Nothing can have told C (it reads through the pooled connection it already has).
    assert.ok(!(await fieldsOn(cc)).some((f) => f.name === 'resync_code'), 'C cannot know the field while disconnected');
    assert.ok(!onC.messages.some((m) => m.kind === 'resync'));
    psql(PG_URL, `ALTER ROLE ${role} LOGIN`);
    // C's listener reconnects (back-off at most 5 s), reloads the fields and tells its clients.
    await onC.next((m) => m.kind === 'resync', 20_000);
    assert.ok((await fieldsOn(cc)).some((f) => f.name === 'resync_code'), 'C knows the field after reconnecting, without a restart');
    const made = await cc.create('accounts', { name: '重连后自定义字段', resync_code: 'R-1' });
    assert.equal(made.resync_code, 'R-1');
    assert.equal((await ca.get(`/api/v1/accounts/${made.id}`)).json.resync_code, 'R-1');
    // Events flow again after the resync.
    const after = await ca.create('accounts', { name: 'after resync' });
    await onC.next((m) => m.id === after.id && m.kind === 'created');
  } finally {
    await c.kill();
    psql(PG_URL, `ALTER ROLE ${role} LOGIN`);
  }
});

test('a session made by logging in on A works on B, and logging out on B ends it on A', { skip }, async () => {
  const session = await a.login('admin', 'admin-password-1');
  const me = await b.request('GET', '/api/v1/auth/me', { session });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.user.username, 'admin');
  const w = await b.request('POST', '/api/v1/accounts', { session, body: { name: 'Written with A session on B' } });
  assert.equal(w.status, 201, 'the CSRF token from A is accepted by B');
  assert.equal((await b.request('POST', '/api/v1/auth/logout', { session })).status, 204);
  assert.equal((await a.request('GET', '/api/v1/auth/me', { session })).status, 401);
});

test('credentials cached on D end at once when C logs out, revokes, changes a password, disables a user or edits a role (NOTIFY rapport_auth)', { skip }, async () => {
  // Two more servers whose cache would keep a principal for 10 minutes: only the notification
  // from the other server can explain a refusal.
  const [c, d] = await startServers({ dataDir: dir, args: ['--auth-cache', '10m'] }, { dataDir: dir, args: ['--auth-cache', '10m'] });
  servers.push(c, d);
  const admin = c.client({ token });
  const refusedOnD = async (opts, status, what) => {
    let r;
    for (let i = 0; i < 100; i++) {
      r = await d.request('GET', opts.path || '/api/v1/auth/me', opts);
      if (r.status === status) return r;
      await sleep(100);
    }
    assert.fail(`${what}: D still answers ${r.status} ${r.text.slice(0, 200)}`);
  };
  await addUser(dir, 'fay', { role: 'Sales', password: 'fay-password-1' });
  const fayToken = await createToken(dir, 'fay');
  const fayId = (await d.request('GET', '/api/v1/auth/me', { token: fayToken })).json.user.id;
  // Logout on C.
  let s = await c.login('fay', 'fay-password-1');
  assert.equal((await d.request('GET', '/api/v1/auth/me', { session: s })).status, 200);
  assert.equal((await c.request('POST', '/api/v1/auth/logout', { session: s })).status, 204);
  assertProblem(await refusedOnD({ session: s }, 401, 'logout'), 401, 'unauthenticated');
  // A password set on C ends fay's sessions cached on D.
  s = await c.login('fay', 'fay-password-1');
  assert.equal((await d.request('GET', '/api/v1/auth/me', { session: s })).status, 200);
  assert.equal((await admin.patch(`/api/v1/users/${fayId}`, { password: 'fay-password-2' })).status, 200);
  await refusedOnD({ session: s }, 401, 'password change');
  // A role edited on C narrows fay's token cached on D.
  assert.equal((await d.request('GET', '/api/v1/contacts', { token: fayToken })).status, 200);
  const sales = (await admin.list('roles')).items.find((r) => r.name === 'Sales');
  const perms = structuredClone(sales.permissions);
  perms.entities.contact = { create: false, read: 'none', update: 'none', delete: 'none' };
  assert.equal((await admin.patch(`/api/v1/roles/${sales.id}`, { permissions: perms })).status, 200);
  try {
    assertProblem(await refusedOnD({ path: '/api/v1/contacts', token: fayToken }, 403, 'role edit'), 403, 'forbidden');
  } finally {
    assert.equal((await admin.patch(`/api/v1/roles/${sales.id}`, { permissions: sales.permissions })).status, 200);
  }
  await refusedOnD({ path: '/api/v1/contacts', token: fayToken }, 200, 'role restored');
  // A user disabled on C.
  assert.equal((await admin.patch(`/api/v1/users/${fayId}`, { active: false })).status, 200);
  await refusedOnD({ token: fayToken }, 401, 'user disabled');
  assert.equal((await admin.patch(`/api/v1/users/${fayId}`, { active: true })).status, 200);
  await refusedOnD({ token: fayToken }, 200, 'user enabled');
  // Tokens revoked on C.
  const r = await admin.post('/api/v1/auth/revoke-tokens', { user_id: fayId });
  assert.deepEqual(r.json, { revoked: 1 });
  assertProblem(await refusedOnD({ token: fayToken }, 401, 'token revoked'), 401, 'unauthenticated');
  await Promise.all([c.stop(), d.stop()]);
});

test('failed logins through A count on B: the sixth attempt, through B with the right password, is 429', { skip }, async () => {
  await addUser(dir, 'dave', { role: 'Sales', password: 'dave-password-1' });
  for (let i = 0; i < 5; i++) {
    const r = await a.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: `wrong-${i}` } });
    assertProblem(r, 401, 'invalid_credentials');
  }
  const r = await b.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'dave-password-1' } });
  assertProblem(r, 429, 'rate_limited');
  assert.equal(r.headers.get('set-cookie'), null);
  // API tokens are not throttled: the remaining test goes on with them.
});

test('kill -9 of A during a stream of writes: every write acknowledged by A is readable through B', { skip }, async () => {
  const WRITERS = 4;
  const acked = new Set();
  let dead = false;
  const loops = Array.from({ length: WRITERS }, (_, w) => (async () => {
    for (let i = 0; !dead; i++) {
      try {
        const r = await request(a.url, 'POST', '/api/v1/accounts', { token, body: { name: `two-server w${w} #${i}`, city: '武汉' } });
        if (r.status === 201) acked.add(r.json.id);
        else assert.fail(`unexpected ${r.status} ${r.text}`);
      } catch (e) {
        if (e.code === 'ERR_ASSERTION') throw e;
        dead = true;
      }
    }
  })());
  // B keeps writing too: it must not be disturbed by A's death.
  const bAcked = [];
  const bWriter = (async () => {
    for (let i = 0; !dead; i++) bAcked.push((await b.client({ token }).create('accounts', { name: `two-server b #${i}` })).id);
  })();
  for (let t = 0; t < 200 && acked.size < 20; t++) await sleep(25);
  await sleep(Math.floor(Math.random() * 300));
  await a.kill();
  dead = true;
  await Promise.all([...loops, bWriter]);
  assert.ok(acked.size > 0, 'A acknowledged some writes before the kill');

  const cb = b.client({ token });
  const found = new Set((await listAll(cb, 'accounts', { filter: { field: 'name', op: 'starts_with', value: 'two-server w' }, limit: 500 })).map((x) => x.id));
  const missing = [...acked].filter((id) => !found.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged writes lost`);
  assert.ok(found.size - acked.size <= WRITERS, `unacknowledged extras: ${found.size - acked.size}`);
  for (const id of bAcked) assert.equal((await cb.get(`/api/v1/accounts/${id}`)).status, 200);
  // B goes on serving writes after A died.
  await cb.create('accounts', { name: 'after A died' });
  console.log(`# two servers: ${acked.size} writes acknowledged by A before kill -9, ${bAcked.length} by B`);
});
