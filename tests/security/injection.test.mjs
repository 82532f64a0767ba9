// SQL injection, the fast version of tests/security/sqlmap.sh: classic payloads in filter values,
// filter field names and operators, sort, q, cursor, fields, search and path ids. Every answer
// is a 200 (a value is only ever data), 400 or 404 — never 5xx — and afterwards the database is
// unchanged: same account count, the canary record intact, the tables still there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, qs } from '../api/harness.mjs';

const PAYLOADS = [
  "' OR '1'='1",
  "' OR 1=1 --",
  '" OR ""="',
  "'; DROP TABLE account; --",
  "1; DELETE FROM account",
  "') OR ('a'='a",
  "1' UNION SELECT name, sql, 1, 1 FROM sqlite_master --",
  "' UNION SELECT NULL,NULL,NULL--",
  "1 AND SLEEP(5)",
  "1' AND pg_sleep(5)--",
  "'||(SELECT 1)||'",
  "%' AND 1=1 AND '%'='",
  '\\\'; UPDATE account SET name = \'pwned\'; --',
  "name; DROP TABLE audit_log",
  'name"; DROP TABLE account; --',
  "name) OR 1=1 --",
  "*/ OR 1=1 /*",
  "\u0000' OR 1=1",
  "1e999",
  '$1',
  '?',
];

let srv;
let admin;
let canary;
let count;

async function accountCount() {
  // Page through ids only: the count of rows the API sees.
  let n = 0;
  let cursor;
  for (;;) {
    const page = await admin.list('accounts', { fields: 'id', limit: 500, cursor });
    n += page.items.length;
    if (!page.next_cursor) return n;
    cursor = page.next_cursor;
  }
}

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('inj-admin', { role: 'Administrator' });
  canary = await admin.create('accounts', { name: 'Canary 金丝雀', city: 'Lhasa', employees: 7 });
  for (let i = 0; i < 12; i++) await admin.create('accounts', { name: `Other ${i}`, city: 'Xi\'an' });
  count = await accountCount();
});

after(async () => { await srv?.stop(); });

const wrong = [];
async function probe(what, path, allowed, check) {
  const r = await admin.get(path);
  if (!allowed.includes(r.status)) wrong.push(`${what}: ${path.slice(0, 140)} → ${r.status} ${r.text.slice(0, 120)}`);
  else if (check) {
    const msg = check(r);
    if (msg) wrong.push(`${what}: ${path.slice(0, 140)}: ${msg}`);
  }
  return r;
}
const noLeak = (r) => (r.status === 200 && r.json.items.some((a) => a.id === canary.id) ? 'the canary matched an injected value' : null);

test('injection payloads in filter values match nothing (200, empty)', async () => {
  for (const p of PAYLOADS) {
    for (const op of ['=', '!=', 'contains', 'starts_with', '<', '>']) {
      const f = { field: 'name', op, value: p };
      const expectNone = ['=', 'contains', 'starts_with'].includes(op);
      await probe(`value ${op}`, `/api/v1/accounts?${qs({ filter: f })}`, [200, 400], expectNone ? noLeak : null);
    }
    await probe('value in', `/api/v1/accounts?${qs({ filter: { field: 'city', op: 'in', value: [p, 'x'] } })}`, [200, 400], noLeak);
    await probe('value between', `/api/v1/accounts?${qs({ filter: { field: 'employees', op: 'between', value: [p, p] } })}`, [400]);
    await probe('number value', `/api/v1/accounts?${qs({ filter: { field: 'employees', op: '=', value: p } })}`, [400]);
  }
  assert.deepEqual(wrong.splice(0), []);
});

test('injection payloads as field names, operators, sort, fields → 400', async () => {
  for (const p of PAYLOADS) {
    await probe('field name', `/api/v1/accounts?${qs({ filter: { field: p, op: '=', value: 'x' } })}`, [400]);
    await probe('operator', `/api/v1/accounts?${qs({ filter: { field: 'name', op: p, value: 'x' } })}`, [400]);
    await probe('combinator', `/api/v1/accounts?${qs({ filter: { [p]: [{ field: 'name', op: '=', value: 'x' }] } })}`, [400]);
    await probe('sort', `/api/v1/accounts?${qs({ sort: p })}`, [400]);
    await probe('sort desc', `/api/v1/accounts?${qs({ sort: `-${p}` })}`, [400]);
    await probe('sort list', `/api/v1/accounts?${qs({ sort: `name,${p}` })}`, [400]);
    await probe('fields', `/api/v1/accounts?${qs({ fields: p })}`, [400]);
    await probe('limit', `/api/v1/accounts?${qs({ limit: p })}`, [400]);
  }
  assert.deepEqual(wrong.splice(0), []);
});

test('injection payloads in q, search, cursor → 200 without the canary, or 400', async () => {
  const page = await admin.list('accounts', { sort: 'name', limit: 2 });
  assert.ok(page.next_cursor);
  for (const p of PAYLOADS) {
    await probe('q', `/api/v1/accounts?${qs({ q: p })}`, [200, 400], noLeak);
    await probe('search', `/api/v1/search?${qs({ q: p })}`, [200, 400], (r) => (r.status === 200 && r.json.items.some((i) => i.id === canary.id) ? 'canary found' : null));
    await probe('search entity', `/api/v1/search?${qs({ q: 'Canary', entity: p })}`, [400, 404]);
    await probe('cursor', `/api/v1/accounts?${qs({ sort: 'name', limit: 2, cursor: p })}`, [400]);
    await probe('cursor b64', `/api/v1/accounts?${qs({ sort: 'name', limit: 2, cursor: Buffer.from(p).toString('base64url') })}`, [400]);
    // A real cursor with the payload appended, and a real cursor of another sort.
    await probe('cursor tampered', `/api/v1/accounts?${qs({ sort: 'name', limit: 2, cursor: page.next_cursor + Buffer.from(p).toString('base64url') })}`, [400]);
  }
  await probe('cursor of another sort', `/api/v1/accounts?${qs({ sort: '-created_at', limit: 2, cursor: page.next_cursor })}`, [200, 400]);
  assert.deepEqual(wrong.splice(0), []);
});

test('injection payloads as path ids → 400/404', async () => {
  for (const p of PAYLOADS) {
    const id = encodeURIComponent(p);
    await probe('id', `/api/v1/accounts/${id}`, [400, 404]);
    await probe('id history', `/api/v1/accounts/${id}/history`, [400, 404]);
    await probe('id with canary', `/api/v1/accounts/${canary.id}${id}`, [400, 404]);
    await probe('entity', `/api/v1/${id}`, [400, 404]);
    const r = await admin.patch(`/api/v1/accounts/${id}`, { name: 'pwned' });
    if (![400, 404].includes(r.status)) wrong.push(`PATCH id ${p} → ${r.status}`);
    const d = await admin.del(`/api/v1/accounts/${id}`);
    if (![400, 404].includes(d.status)) wrong.push(`DELETE id ${p} → ${d.status}`);
  }
  assert.deepEqual(wrong.splice(0), []);
});

test('payloads stored as data come back verbatim', async () => {
  const made = [];
  for (const p of PAYLOADS.slice(0, 8)) {
    const a = await admin.create('accounts', { name: `inj ${p}`, description: p });
    made.push(a);
    const back = await admin.get(`/api/v1/accounts/${a.id}`);
    assert.equal(back.json.name, `inj ${p}`);
    assert.equal(back.json.description, p);
    const found = await admin.list('accounts', { filter: { field: 'name', op: '=', value: `inj ${p}` } });
    assert.deepEqual(found.items.map((x) => x.id), [a.id], `exact match on ${p}`);
  }
  for (const a of made) assert.equal((await admin.del(`/api/v1/accounts/${a.id}`)).status < 300, true);
});

test('the database is unchanged: count, canary, other tables', async () => {
  assert.equal(await accountCount(), count);
  const c = await admin.get(`/api/v1/accounts/${canary.id}`);
  assert.equal(c.status, 200);
  assert.equal(c.json.name, 'Canary 金丝雀');
  assert.equal(c.json.city, 'Lhasa');
  assert.equal(c.json.employees, 7);
  assert.equal(c.json.version, 1);
  const h = await admin.get(`/api/v1/accounts/${canary.id}/history`);
  assert.equal(h.status, 200);
  assert.equal(h.json.items.length, 1);
  assert.equal((await admin.get('/api/v1/users')).status, 200);
  assert.equal((await admin.get('/api/v1/contacts')).status, 200);
  const hz = await srv.request('GET', '/healthz');
  assert.equal(hz.status, 200);
});

test('a NUL in a filter value is refused: 400 on both backends (in contains it used to end the LIKE pattern and match every row)', async () => {
  for (const op of ['contains', 'starts_with', '=', '!=', '>']) {
    const r = await admin.get(`/api/v1/accounts?${qs({ filter: { field: 'name', op, value: '\u0000zzz' } })}`);
    assert.equal(r.status, 400, `${op} → ${r.status} ${r.text.slice(0, 200)}`);
  }
  // A record id with a NUL after the digits is not that id.
  const r = await admin.get(`/api/v1/accounts?${qs({ filter: { field: 'owner_id', op: '=', value: `${admin.user.id}\u0000x` } })}`);
  assert.equal(r.status, 400, `owner_id → ${r.status}`);
});
