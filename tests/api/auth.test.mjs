// Authentication: login, session cookie + CSRF, bearer tokens, logout, /auth/me, throttling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, login } from './harness.mjs';

let srv;
let alice; // Sales user in team North, with an API token
const PW = 'alice-password-1';

before(async () => {
  srv = await startServer();
  alice = await srv.userClient('alice', { password: PW, role: 'Sales', team: 'North' });
});
after(async () => { await srv?.stop(); });

test('login answers 200 with user, csrf_token and an HttpOnly SameSite=Lax session cookie', async () => {
  const s = await srv.login('alice', PW);
  const r = s.response;
  assert.equal(r.json.user.username, 'alice');
  assert.equal(r.json.user.role, 'Sales');
  assert.equal(r.json.user.is_admin, false);
  assert.equal(typeof r.json.user.id, 'string', 'ids are JSON strings');
  assert.match(r.json.csrf_token, /^\S{16,}$/);
  const c = r.headers.get('set-cookie');
  assert.match(c, /^rapport_session=[^;]+;/);
  assert.match(c, /;\s*HttpOnly/i);
  assert.match(c, /;\s*SameSite=Lax/i);
  assert.match(c, /;\s*Path=\//);
});

test('/auth/me returns the user, the csrf token and works with cookie and bearer', async () => {
  const s = await srv.login('alice', PW);
  const me = await srv.request('GET', '/api/v1/auth/me', { session: s });
  assert.equal(me.status, 200);
  assert.equal(me.json.user.username, 'alice');
  assert.equal(me.json.csrf_token, s.csrf);
  const viaToken = await alice.get('/api/v1/auth/me');
  assert.equal(viaToken.status, 200);
  assert.equal(viaToken.json.user.username, 'alice');
  assert.equal(viaToken.json.user.id, me.json.user.id);
});

test('FailingLogin: wrong password → 401 invalid_credentials, unknown user too', async () => {
  let r = await srv.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'wrong-password' } });
  assertProblem(r, 401, 'invalid_credentials');
  assert.equal(r.headers.get('set-cookie'), null, 'no cookie on a failed login');
  r = await srv.request('POST', '/api/v1/auth/login', { body: { username: 'nobody-here', password: 'whatever-1' } });
  assertProblem(r, 401, 'invalid_credentials');
});

test('FailingLogin: missing username/password → 422 naming the field, malformed body → 400', async () => {
  let r = await srv.request('POST', '/api/v1/auth/login', { body: { password: 'x' } });
  assertProblem(r, 422, 'validation_failed', 'username');
  r = await srv.request('POST', '/api/v1/auth/login', { body: { username: 'alice' } });
  assertProblem(r, 422, 'validation_failed', 'password');
  r = await srv.request('POST', '/api/v1/auth/login', { body: '{"username":' });
  assertProblem(r, 400, 'bad_request');
});

test('FailingAuth: no credentials → 401 unauthenticated on every kind of endpoint', async () => {
  for (const [method, path] of [
    ['GET', '/api/v1/accounts'],
    ['POST', '/api/v1/accounts'],
    ['GET', '/api/v1/auth/me'],
    ['GET', '/api/v1/metadata'],
    ['GET', '/api/v1/search?q=abc'],
    ['GET', '/api/v1/accounts/export.csv'],
    ['GET', '/api/v1/accounts/123'],
  ]) {
    const r = await srv.request(method, path, method === 'POST' ? { body: { name: 'x' } } : {});
    assertProblem(r, 401, 'unauthenticated');
  }
});

test('FailingAuth: unknown bearer token, non-Bearer scheme and stale cookie → 401 unauthenticated', async () => {
  let r = await srv.request('GET', '/api/v1/accounts', { token: 'rpt_not-a-real-token' });
  assertProblem(r, 401, 'unauthenticated');
  r = await srv.request('GET', '/api/v1/accounts', { headers: { authorization: 'Basic YWxpY2U6eA==' } });
  assertProblem(r, 401, 'unauthenticated');
  r = await srv.request('GET', '/api/v1/accounts', { headers: { cookie: 'rapport_session=deadbeef' } });
  assertProblem(r, 401, 'unauthenticated');
});

test('FailingCsrf: a session-cookie write without X-CSRF-Token → 403 csrf and writes nothing; with it → 201', async () => {
  const s = await srv.login('alice', PW);
  const before = (await srv.request('GET', '/api/v1/accounts', { session: s })).json.items.length;
  let r = await srv.request('POST', '/api/v1/accounts', { session: s, csrf: false, body: { name: 'csrf-less' } });
  assertProblem(r, 403, 'csrf');
  r = await srv.request('POST', '/api/v1/accounts', {
    session: s, csrf: false, headers: { 'x-csrf-token': 'wrong' }, body: { name: 'csrf-wrong' },
  });
  assertProblem(r, 403, 'csrf');
  const mid = (await srv.request('GET', '/api/v1/accounts', { session: s })).json.items.length;
  assert.equal(mid, before, 'a refused write must not create anything');
  r = await srv.request('POST', '/api/v1/accounts', { session: s, body: { name: 'with-csrf' } });
  assert.equal(r.status, 201, r.text);
  // Reads with the cookie alone are fine.
  r = await srv.request('GET', `/api/v1/accounts/${r.json.id}`, { session: s });
  assert.equal(r.status, 200);
  // PATCH and DELETE need it as well.
  const id = r.json.id;
  r = await srv.request('PATCH', `/api/v1/accounts/${id}`, { session: s, csrf: false, body: { city: 'x' } });
  assertProblem(r, 403, 'csrf');
  r = await srv.request('DELETE', `/api/v1/accounts/${id}`, { session: s, csrf: false });
  assertProblem(r, 403, 'csrf');
  r = await srv.request('DELETE', `/api/v1/accounts/${id}`, { session: s });
  assert.equal(r.status, 204);
});

test('bearer token writes need no CSRF header', async () => {
  const r = await alice.post('/api/v1/accounts', { name: 'token write' });
  assert.equal(r.status, 201, r.text);
  assert.ok(!r.headers.get('set-cookie'));
});

test('logout ends the session: the cookie no longer works, and logout is cleared client-side', async () => {
  const s = await srv.login('alice', PW);
  let r = await srv.request('POST', '/api/v1/auth/logout', { session: s, csrf: false });
  assertProblem(r, 403, 'csrf');
  r = await srv.request('POST', '/api/v1/auth/logout', { session: s });
  assert.equal(r.status, 204);
  assert.match(r.headers.get('set-cookie') || '', /rapport_session=;.*Max-Age=0/);
  r = await srv.request('GET', '/api/v1/auth/me', { session: s });
  assertProblem(r, 401, 'unauthenticated');
  r = await srv.request('GET', '/api/v1/accounts', { session: s });
  assertProblem(r, 401, 'unauthenticated');
});

test('two sessions are independent: logging out one keeps the other', async () => {
  const a = await srv.login('alice', PW);
  const b = await srv.login('alice', PW);
  assert.notEqual(a.cookie, b.cookie);
  assert.equal((await srv.request('POST', '/api/v1/auth/logout', { session: a })).status, 204);
  assert.equal((await srv.request('GET', '/api/v1/auth/me', { session: b })).status, 200);
});

test('FailingLogin: after 5 failures the user is throttled → 429 rate_limited, even with the right password', async () => {
  // A server of its own: failures also count against the client address (127.0.0.1).
  const s2 = await startServer();
  try {
    await s2.addUser('bob', { password: 'bob-password-1', role: 'Sales' });
    await s2.addUser('carol', { password: 'carol-password-1', role: 'Sales' });
    for (let i = 0; i < 5; i++) {
      const r = await s2.request('POST', '/api/v1/auth/login', { body: { username: 'bob', password: `bad-${i}` } });
      assertProblem(r, 401, 'invalid_credentials');
    }
    let r = await s2.request('POST', '/api/v1/auth/login', { body: { username: 'bob', password: 'bad-again' } });
    assertProblem(r, 429, 'rate_limited');
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After is set');
    r = await s2.request('POST', '/api/v1/auth/login', { body: { username: 'bob', password: 'bob-password-1' } });
    assertProblem(r, 429, 'rate_limited');
    assert.equal(r.headers.get('set-cookie'), null);
    // The address is throttled too: another user from 127.0.0.1 is refused as well.
    r = await s2.request('POST', '/api/v1/auth/login', { body: { username: 'carol', password: 'carol-password-1' } });
    assertProblem(r, 429, 'rate_limited');
  } finally {
    await s2.stop();
  }
});

test('a successful login before the limit resets the per-user count', async () => {
  const s3 = await startServer();
  try {
    await s3.addUser('dave', { password: 'dave-password-1', role: 'Sales' });
    for (let i = 0; i < 2; i++) {
      const r = await s3.request('POST', '/api/v1/auth/login', { body: { username: 'dave', password: 'nope-nope' } });
      assertProblem(r, 401, 'invalid_credentials');
    }
    const ok = await login(s3.url, 'dave', 'dave-password-1');
    assert.equal(ok.user.username, 'dave');
  } finally {
    await s3.stop();
  }
});
