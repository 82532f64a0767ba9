// Input validation: every bad body gets 400/413/422 naming the problem — never 500, never a
// partial write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, assertProblem } from './harness.mjs';

let srv;
let admin;
let acc; // an account the PATCH tests work on

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  acc = await admin.create('accounts', { name: 'Validation Base', city: '成都', customer_code: 'VB-1' });
});
after(async () => { await srv?.stop(); });

async function snapshot() {
  const list = await admin.list('accounts', { limit: 500 });
  const hist = await admin.get(`/api/v1/accounts/${acc.id}/history`);
  const rec = await admin.get(`/api/v1/accounts/${acc.id}`);
  return { count: list.items.length, history: hist.json.items.length, record: rec.json };
}

test('FailingCreate: unknown field → 400 unknown_field naming it', async () => {
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', nickname: 'y' }), 400, 'unknown_field', 'nickname');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, { colour: 'red' }), 400, 'unknown_field', 'colour');
  assertProblem(await admin.post('/api/v1/contacts', { full_name: 'x', deleted_at: null }), 400, 'unknown_field', 'deleted_at');
});

test('FailingCreate: wrong types → 422 validation_failed naming the field', async () => {
  const cases = [
    [{ name: 42 }, 'name'],
    [{ name: 'x', employees: 'many' }, 'employees'],
    [{ name: 'x', employees: 1.5 }, 'employees'],
    [{ name: 'x', employees: -1 }, 'employees'],
    [{ name: 'x', key_account: 'yes' }, 'key_account'],
    [{ name: 'x', credit_limit: 100 }, 'credit_limit'],
    [{ name: 'x', credit_limit: { amount: 100 } }, 'credit_limit'],
    [{ name: 'x', credit_limit: { amount: 100, currency: 'yuan' } }, 'credit_limit'],
    [{ name: 'x', credit_limit: { amount: '100', currency: 'CNY' } }, 'credit_limit'],
    [{ name: 'x', phones: '13800138000' }, 'phones'],
    [{ name: 'x', tags: 'vip' }, 'tags'],
    [{ name: 'x', address: 'Main St 1' }, 'address'],
    [{ name: 'x', address: { planet: 'Mars' } }, 'address'],
    [{ name: 'x', owner_id: 'not-an-id' }, 'owner_id'],
    [{ name: 'x', owner_id: '9999999999999999999' }, 'owner_id'], // beyond int64: was a 500
    [{ name: 'x', name2: 1 }, null], // unknown field is 400, checked above
  ];
  for (const [body, field] of cases) {
    if (!field) continue;
    assertProblem(await admin.post('/api/v1/accounts', body), 422, 'validation_failed', field);
  }
  assertProblem(await admin.post('/api/v1/contacts', { full_name: 'x', account_id: '9999999999999999999' }), 422, 'validation_failed', 'account_id');
  assertProblem(await admin.post('/api/v1/contacts', { full_name: 'x', birthday: '1980-13-45' }), 422, 'validation_failed', 'birthday');
});

test('FailingCreate: required field missing, null or blank → 422 naming it', async () => {
  assertProblem(await admin.post('/api/v1/accounts', { city: '北京' }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/accounts', { name: null }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/accounts', { name: '   ' }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/accounts', {}), 422, 'validation_failed', 'name');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, { name: null }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/interactions', { subject: 's', occurred_at: '2024-01-01T00:00:00Z' }), 422, 'validation_failed', 'channel');
});

test('FailingCreate: enum and multi-enum with an unknown option → 422', async () => {
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', kind: 'alien' }), 422, 'validation_failed', 'kind');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', tier: 'Z' }), 422, 'validation_failed', 'tier');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', tags: ['vip', 'nope'] }), 422, 'validation_failed', 'tags');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, { customer_type: 'Customer' }), 422, 'validation_failed', 'customer_type');
});

test('FailingCreate: a bad address in an email list → 422 emails; good ones are accepted in both forms', async () => {
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', emails: ['not-an-email'] }), 422, 'validation_failed', 'emails');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', emails: ['ok@example.com', 'two@@example.com'] }), 422, 'validation_failed', 'emails');
  assertProblem(await admin.post('/api/v1/contacts', { full_name: 'x', emails: [{ value: 'a b@c.d' }] }), 422, 'validation_failed', 'emails');
  const ok = await admin.create('accounts', { name: 'Mail OK', emails: ['a@b.cn', { value: 'c@d.com', label: 'work' }] });
  assert.equal(ok.emails.length, 2);
  assert.equal(ok.emails[0].value, 'a@b.cn');
  assert.deepEqual(ok.emails[1], { value: 'c@d.com', label: 'work' });
});

test('FailingCreate: too-long text (in characters, not bytes), bad pattern, multi-line text → 422', async () => {
  const ok = await admin.create('accounts', { name: '张'.repeat(200) });
  assert.equal([...ok.name].length, 200, '200 Chinese characters fit a 200-character field');
  assertProblem(await admin.post('/api/v1/accounts', { name: '张'.repeat(201) }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'a'.repeat(201) }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', customer_code: 'has space' }), 422, 'validation_failed', 'customer_code');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'x', currency: 'cny' }), 422, 'validation_failed', 'currency');
  assertProblem(await admin.post('/api/v1/accounts', { name: 'line one\nline two' }), 422, 'validation_failed', 'name');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, { bank_account: '1'.repeat(65) }), 422, 'validation_failed', 'bank_account');
});

test('FailingCreate: a duplicate unique value → 409 duplicate naming the field', async () => {
  assertProblem(await admin.post('/api/v1/accounts', { name: 'Dup', customer_code: 'VB-1' }), 409, 'duplicate', 'customer_code');
  const other = await admin.create('accounts', { name: 'Dup 2', customer_code: 'VB-2' });
  assertProblem(await admin.patch(`/api/v1/accounts/${other.id}`, { customer_code: 'VB-1' }), 409, 'duplicate', 'customer_code');
});

test('FailingCreate: malformed JSON, non-object bodies, bad UTF-8, hostile nesting → 400 bad_request naming the field "body"', async () => {
  for (const body of ['{"name":', '{name: "x"}', '', 'null', '[]', '[{"name":"x"}]', '"name"', '42', 'true',
    '{"name":"x"} trailing', '['.repeat(100_000), '{"a":'.repeat(50_000)]) {
    const r = await admin.post('/api/v1/accounts', body);
    assertProblem(r, 400, 'bad_request', 'body');
  }
  const badUtf8 = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  assertProblem(await admin.post('/api/v1/accounts', badUtf8), 400, 'bad_request', 'body');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, '[1,2]'), 400, 'bad_request', 'body');
  assertProblem(await admin.patch(`/api/v1/accounts/${acc.id}`, '{"city":'), 400, 'bad_request', 'body');
  // The same for the other JSON bodies: merge, duplicate check, custom fields, login.
  assertProblem(await admin.post(`/api/v1/accounts/${acc.id}/merge`, '{"others":'), 400, 'bad_request', 'body');
  assertProblem(await admin.post('/api/v1/accounts/duplicates/check', '[]'), 400, 'bad_request', 'body');
  assertProblem(await admin.post('/api/v1/metadata/account/fields', 'nope'), 400, 'bad_request', 'body');
  assertProblem(await srv.request('POST', '/api/v1/auth/login', { body: '{"username":"admin"' }), 400, 'bad_request', 'body');
  // The server is still up after the nesting attack.
  assert.equal((await srv.request('GET', '/healthz')).status, 200);
});

// Sends a POST whose body is declared (Content-Length) or streamed (chunked) larger than the
// server's limit over a raw socket, reading all along, and stops writing as soon as an answer
// arrives; resolves with the parsed answer even if the server then closes the connection.
function oversizePost(url, token, { chunked }) {
  const { hostname, port } = new URL(url);
  const total = 11 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      const text = received.toString('utf8');
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const headers = Object.fromEntries(text.slice(0, head).split('\r\n').slice(1).map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
      }));
      const body = text.slice(head + 4);
      if (headers['content-length'] && Buffer.byteLength(body) < Number(headers['content-length'])) return;
      done = true;
      sock.destroy();
      resolve({ status: Number(m[1]), headers, text: body });
    };
    sock.on('data', (d) => { received = Buffer.concat([received, d]); finish(); });
    sock.on('error', (e) => { finish(); if (!done) { done = true; reject(e); } });
    sock.on('close', () => { finish(); if (!done) { done = true; reject(new Error(`closed without an answer: ${received}`)); } });
    sock.on('connect', () => {
      sock.write(`POST ${new URL(url).pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
        `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n` +
        (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${total}\r\n`) + '\r\n');
      const chunk = Buffer.alloc(64 * 1024, 'x');
      if (!chunked) {
        // The declared length is refused as soon as the headers are read: send a little of the
        // body and wait (the server drains at most 1 MiB after refusing, then closes).
        sock.write(chunk);
        return;
      }
      // Streamed: the server can only count. One chunk per turn of the event loop, so an answer
      // is seen before much more is sent.
      const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
      let sent = 0;
      const pump = () => {
        if (done || received.length > 0 || sent >= total) return;
        sent += chunk.length;
        if (sock.write(framed)) setImmediate(pump);
        else sock.once('drain', () => setImmediate(pump));
      };
      pump();
    });
  });
}

test('FailingCreate: a body over 10 MiB → 413 too_large (declared or streamed); under the limit is parsed', async () => {
  for (const chunked of [false, true]) {
    const r = await oversizePost(`${srv.url}/api/v1/accounts`, admin.token, { chunked });
    assert.equal(r.status, 413, `chunked=${chunked}: ${r.status} ${r.text}`);
    assert.match(r.headers['content-type'], /application\/problem\+json/);
    const p = JSON.parse(r.text);
    assert.equal(p.code, 'too_large');
    assert.equal(p.type, 'https://rapport.dev/problems/too_large');
    assert.equal(p.status, 413);
  }
  // 9 MiB gets past the body limit to the validator (long_text has its own, smaller limit).
  const nine = JSON.stringify({ name: 'nine', description: 'y'.repeat(9 * 1024 * 1024) });
  const r = await admin.post('/api/v1/accounts', nine);
  assert.ok(r.status === 201 || (r.status === 422 && r.json.field === 'description'), `${r.status} ${r.text.slice(0, 200)}`);
  assert.equal((await admin.list('accounts', { filter: { field: 'name', op: '=', value: 'big' } })).items.length, 0);
});

test('FailingWrite: a failed request writes nothing (list count, record, version and history unchanged)', async () => {
  const before = await snapshot();
  const failures = [
    () => admin.patch(`/api/v1/accounts/${acc.id}`, { city: '重庆', employees: 'lots' }),
    () => admin.patch(`/api/v1/accounts/${acc.id}`, { city: '重庆', bogus: 1 }),
    () => admin.patch(`/api/v1/accounts/${acc.id}`, { city: '重庆', owner_id: '123456789' }),
    () => admin.patch(`/api/v1/accounts/${acc.id}`, { city: '重庆' }, { headers: { 'if-match': '"999"' } }),
    () => admin.post('/api/v1/accounts', { name: 'Partial', city: '重庆', kind: 'alien' }),
    () => admin.post('/api/v1/accounts', { name: 'Partial', customer_code: 'VB-1' }),
    () => admin.post('/api/v1/contacts', { full_name: 'Partial', account_id: '77777' }),
    () => admin.post('/api/v1/accounts', '{"name":"Partial",'),
  ];
  for (const f of failures) {
    const r = await f();
    assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.text}`);
  }
  const after = await snapshot();
  assert.equal(after.count, before.count);
  assert.equal(after.history, before.history);
  assert.deepEqual(after.record, before.record);
  const contacts = await admin.list('contacts', { filter: { field: 'full_name', op: '=', value: 'Partial' } });
  assert.equal(contacts.items.length, 0);
  const search = await admin.get('/api/v1/search?q=Partial');
  assert.deepEqual(search.json.items, [], 'nothing reached the search index');
});

test('FailingInput: a spray of odd values for every account field never yields a 5xx', async () => {
  const meta = await admin.get('/api/v1/metadata');
  const account = meta.json.entities.find((e) => e.name === 'account');
  const odd = [null, '', ' ', 0, -1, 2 ** 53, 1e308, -0.5, true, [], {}, [null], [[]], { amount: null, currency: null },
    '9'.repeat(40), '\u0000', '😀'.repeat(300), '<script>', "'; DROP TABLE account; --", { value: 1 }];
  let count = 0;
  for (const f of account.fields) {
    for (const v of odd) {
      const r = await admin.post('/api/v1/accounts', { name: 'Spray', [f.name]: v });
      assert.ok(r.status < 500, `${f.name}=${JSON.stringify(v)} → ${r.status} ${r.text}`);
      assert.ok([201, 400, 409, 422].includes(r.status), `${f.name}=${JSON.stringify(v)} → ${r.status}`);
      if (r.status >= 400) assert.ok(r.json?.code, 'problem code present');
      count++;
    }
  }
  assert.ok(count > 500);
  // Odd query strings on the list endpoint, too.
  for (const q of ['filter=%7B', 'filter=%5B%5D', 'filter=null', 'sort=', 'sort=-', 'sort=,,', 'limit=-5', 'limit=99999999999',
    'cursor=', 'cursor=00', 'fields=', 'fields=,,', 'q=%00', 'deleted=maybe', 'filter=%zz']) {
    const r = await admin.get(`/api/v1/accounts?${q}`);
    assert.ok(r.status < 500, `${q} → ${r.status} ${r.text}`);
  }
  assert.equal((await srv.request('GET', '/healthz')).status, 200);
});

test('FailingQuery: a query parameter that is not UTF-8 → 400 bad_request naming it, on every endpoint; nothing changes', async () => {
  const before = await admin.get('/api/v1/accounts?limit=1');
  assert.equal(before.status, 200);
  for (const [path, param] of [
    ['/api/v1/accounts?q=%FF', 'q'],
    ['/api/v1/accounts?limit=5&filter=%C3', 'filter'],
    ['/api/v1/search?q=%FF', 'q'],
    ['/api/v1/search?q=ab%C0%AF', 'q'],
    ['/api/v1/lookup/phone?number=%FF', 'number'],
    ['/api/v1/accounts/export.csv?q=%ED%A0%80', 'q'],
  ]) {
    const r = await admin.get(path);
    assertProblem(r, 400, 'bad_request', param);
    assert.equal(r.json.detail, `query parameter '${param}' is not valid UTF-8`, `${path} → ${r.text}`);
  }
  // A write with a bad query string is refused before it happens.
  const r = await admin.post('/api/v1/accounts?dedupe=%FF', { name: 'Never created 0xFF' });
  assertProblem(r, 400, 'bad_request', 'dedupe');
  const search = await admin.get(`/api/v1/accounts?q=${encodeURIComponent('Never created 0xFF')}`);
  assert.equal(search.status, 200);
  assert.equal(search.json.items.length, 0);
  // Well-formed UTF-8 is still accepted.
  assert.equal((await admin.get(`/api/v1/search?q=${encodeURIComponent('张三')}`)).status, 200);
});
