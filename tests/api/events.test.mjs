// WebSocket /api/v1/events: authenticated subscribers get the events of records they may read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, sleep, listAll } from './harness.mjs';

let srv;
let admin, n1, n2, s1;
const sockets = [];

before(async () => {
  srv = await startServer();
  [admin, n1, n2, s1] = await srv.cast('admin', 'north1', 'north2', 'south1');
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  await srv?.stop();
});

/** Opens a subscription; resolves once open with {ws, messages, next(pred, ms)}. */
function subscribe(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    sockets.push(ws);
    const messages = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      messages.push(m);
      for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
    });
    ws.on('open', () => resolve({
      ws,
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
    ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })));
    ws.on('error', reject);
  });
}

const wsUrl = (q = '') => `${srv.url.replace(/^http/, 'ws')}/api/v1/events${q}`;

test('a Sales subscriber (?token=) gets events for team records and none for another team\'s', async () => {
  const sub = await subscribe(wsUrl(`?token=${n1.token}`));
  const hidden = await s1.create('accounts', { name: 'South secret' });
  const visible = await n2.create('accounts', { name: 'North shared' });
  const m = await sub.next((x) => x.id === visible.id);
  assert.equal(m.entity, 'account');
  assert.equal(m.kind, 'created');
  assert.ok(Array.isArray(m.changed) && m.changed.includes('name'));
  assert.match(m.at, /Z$/);
  // Later events prove ordering: anything about the hidden record would have arrived by now.
  await n2.patch(`/api/v1/accounts/${visible.id}`, { city: '北京' });
  const u = await sub.next((x) => x.id === visible.id && x.kind === 'updated');
  assert.deepEqual(u.changed, ['city']);
  await s1.patch(`/api/v1/accounts/${hidden.id}`, { city: '广州' });
  await n2.del(`/api/v1/accounts/${visible.id}`);
  await sub.next((x) => x.id === visible.id && x.kind === 'deleted');
  await n2.post(`/api/v1/accounts/${visible.id}/restore`);
  await sub.next((x) => x.id === visible.id && x.kind === 'restored');
  assert.ok(!sub.messages.some((x) => x.id === hidden.id), `never saw the other team's record: ${JSON.stringify(sub.messages)}`);

  // The South user sees its own record's events and not the North ones.
  const south = await subscribe(wsUrl(`?token=${s1.token}`));
  await n2.patch(`/api/v1/accounts/${visible.id}`, { city: '天津' });
  await s1.patch(`/api/v1/accounts/${hidden.id}`, { city: '深圳' });
  await south.next((x) => x.id === hidden.id && x.kind === 'updated');
  assert.ok(!south.messages.some((x) => x.id === visible.id));
});

test('events carry no hidden field names to a Sales subscriber', async () => {
  const sub = await subscribe(wsUrl(`?token=${n1.token}`));
  const a = await n1.create('accounts', { name: 'Bank watcher' });
  await sub.next((x) => x.id === a.id && x.kind === 'created');
  await admin.patch(`/api/v1/accounts/${a.id}`, { bank_account: '6222 1111', city: '大连' });
  const u = await sub.next((x) => x.id === a.id && x.kind === 'updated');
  assert.ok(!u.changed.includes('bank_account'), `changed leaks a hidden field: ${JSON.stringify(u.changed)}`);
  assert.ok(u.changed.includes('city'));
});

test('an admin subscriber sees everything; bearer header and session cookie also authenticate', async () => {
  const viaHeader = await subscribe(wsUrl(), { headers: { authorization: `Bearer ${admin.token}` } });
  const s = await srv.login('north1', 'secret-password-1');
  const viaCookie = await subscribe(wsUrl(), { headers: { cookie: s.cookie } });
  const a = await s1.create('contacts', { full_name: '事件测试' });
  const b = await n2.create('interactions', { subject: 'event', occurred_at: '2024-01-01T00:00:00Z', channel: 'chat' });
  await viaHeader.next((x) => x.id === a.id && x.entity === 'contact');
  await viaHeader.next((x) => x.id === b.id && x.entity === 'interaction');
  await viaCookie.next((x) => x.id === b.id);
  await sleep(100);
  assert.ok(!viaCookie.messages.some((x) => x.id === a.id));
});

test('FailingEvents: an unauthenticated or badly authenticated upgrade is refused with 401', async () => {
  for (const [url, opts] of [
    [wsUrl(), {}],
    [wsUrl('?token=rpt_wrong'), {}],
    [wsUrl(), { headers: { authorization: 'Bearer nope' } }],
    [wsUrl(), { headers: { cookie: 'rapport_session=nope' } }],
  ]) {
    await assert.rejects(subscribe(url, opts), (e) => e.statusCode === 401, `${url} ${JSON.stringify(opts)}`);
  }
  // A plain GET (no upgrade) is not an event stream either.
  const r = await srv.request('GET', '/api/v1/events', { token: admin.token });
  assert.ok(r.status >= 400 && r.status < 500, `${r.status}`);
});

test('an import announces each committed batch with one "imported" event (counts), not one per row', async () => {
  const own = await subscribe(wsUrl(`?token=${n1.token}`));
  const other = await subscribe(wsUrl(`?token=${s1.token}`));
  await n1.create('accounts', { name: 'Import event existing', customer_code: 'EV-IMP-1' });
  const csv = 'name,customer_code,city\nImport event one,EV-IMP-1,北京\nImport event two,EV-IMP-2,上海\nImport event three,EV-IMP-3,\n';
  const r = await n1.post('/api/v1/accounts/import?mode=commit&upsert=customer_code', csv, { headers: { 'content-type': 'text/csv' } });
  assert.equal(r.status, 200, r.text);
  const m = await own.next((x) => x.kind === 'imported');
  assert.equal(m.entity, 'account');
  assert.equal(m.id, r.json.import_id, 'the event names the import run');
  assert.equal(m.created, 2);
  assert.equal(m.updated, 1);
  assert.deepEqual([...m.changed].sort(), ['city', 'customer_code', 'name']);
  // the import_run's progress events come too; the imported records do not come one by one
  await own.next((x) => x.entity === 'import_run' && x.id === r.json.import_id);
  const created = await listAll(n1, 'accounts', { filter: { field: 'customer_code', op: 'starts_with', value: 'EV-IMP-' } });
  assert.equal(created.length, 3);
  assert.ok(!own.messages.some((x) => x.entity === 'account' && x.kind !== 'imported' && created.some((a) => a.id === x.id && a.name !== 'Import event one')),
    `per-row events: ${JSON.stringify(own.messages)}`);
  // a dry run announces nothing; another team's subscriber sees nothing of this import
  const dry = await n1.post('/api/v1/accounts/import?mode=dry_run', 'name\nDry event\n', { headers: { 'content-type': 'text/csv' } });
  assert.equal(dry.status, 200, dry.text);
  const marker = await n1.create('accounts', { name: 'Import event marker' });
  await own.next((x) => x.id === marker.id); // events arrive in order: the dry run's would be here
  assert.equal(own.messages.filter((x) => x.kind === 'imported').length, 1);
  assert.ok(!other.messages.some((x) => x.kind === 'imported'));
});
