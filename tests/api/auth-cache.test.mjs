// The authentication cache: a session's or token's user is answered from memory, and every
// change that ends or narrows a credential — logout, token revocation, a new password, a user
// disabled, deleted or moved to another role, a role's permissions edited — takes effect on the
// very next request. The server runs with a 10-minute cache so that only the invalidation (not
// the age limit) can explain a refusal. Both backends; across servers see two-servers.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertProblem, cli, tempDir, BIN } from './harness.mjs';
import { execFile } from 'node:child_process';

let srv;
let admin;

before(async () => {
  srv = await startServer({ args: ['--auth-cache', '10m'] });
  admin = await srv.userClient('root', { role: 'Administrator', password: 'root-password-1' });
});
after(async () => { await srv?.stop(); });

const me = (opts) => srv.request('GET', '/api/v1/auth/me', opts);

async function salesRole() {
  return (await admin.list('roles')).items.find((r) => r.name === 'Sales');
}

test('a cached session ends at once on logout; another session of the user stays', async () => {
  await srv.addUser('ann', { password: 'ann-password-1' });
  const s1 = await srv.login('ann', 'ann-password-1');
  const s2 = await srv.login('ann', 'ann-password-1');
  for (let i = 0; i < 3; i++) assert.equal((await me({ session: s1 })).status, 200);
  assert.equal((await me({ session: s2 })).status, 200);
  assert.equal((await srv.request('POST', '/api/v1/auth/logout', { session: s1 })).status, 204);
  assertProblem(await me({ session: s1 }), 401, 'unauthenticated');
  assert.equal((await me({ session: s2 })).status, 200);
});

test('POST /auth/revoke-tokens: a cached token is refused at once; by name; own tokens; failures are problems', async () => {
  const bob = await srv.userClient('bob', { password: 'bob-password-1' });
  const named = (await cli('token', 'create', 'bob', '--name', 'sync', '--data', srv.dataDir)).trim();
  assert.equal((await bob.get('/api/v1/auth/me')).status, 200);
  assert.equal((await srv.request('GET', '/api/v1/auth/me', { token: named })).status, 200);
  // Only the tokens called "sync".
  let r = await admin.post('/api/v1/auth/revoke-tokens', { user_id: bob.user.id, name: 'sync' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { revoked: 1 });
  const gone = await srv.request('GET', '/api/v1/auth/me', { token: named });
  assertProblem(gone, 401, 'unauthenticated');
  assert.match(gone.json.detail, /unknown API token/);
  assert.equal((await bob.get('/api/v1/auth/me')).status, 200, 'the other token still works');
  const bobId = (await bob.get('/api/v1/auth/me')).json.user.id;
  // Failures change nothing.
  assertProblem(await bob.post('/api/v1/auth/revoke-tokens', { user_id: (await admin.get('/api/v1/auth/me')).json.user.id }), 403, 'forbidden', 'user_id');
  assertProblem(await admin.post('/api/v1/auth/revoke-tokens', {}), 422, 'validation_failed', 'user_id');
  assertProblem(await admin.post('/api/v1/auth/revoke-tokens', { user_id: 'abc' }), 422, 'validation_failed', 'user_id');
  assertProblem(await admin.post('/api/v1/auth/revoke-tokens', { user_id: bobId, name: 7 }), 422, 'validation_failed', 'name');
  assertProblem(await admin.post('/api/v1/auth/revoke-tokens', { user_id: '999999999' }), 404, 'not_found', 'user_id');
  assertProblem(await srv.request('POST', '/api/v1/auth/revoke-tokens', { body: { user_id: bobId } }), 401, 'unauthenticated');
  assert.equal((await bob.get('/api/v1/auth/me')).status, 200);
  assert.equal((await admin.get('/api/v1/auth/me')).status, 200);
  // A user revokes their own tokens, the one in use included.
  r = await bob.post('/api/v1/auth/revoke-tokens', { user_id: bobId });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { revoked: 1 });
  assertProblem(await bob.get('/api/v1/auth/me'), 401, 'unauthenticated');
});

test('a new password ends the user\'s other sessions at once; the session that set it stays; an admin\'s change ends all', async () => {
  // An administrator changes their own password (other users may not write users).
  await srv.addUser('boss', { role: 'Administrator', password: 'boss-password-1' });
  const b1 = await srv.login('boss', 'boss-password-1');
  const b2 = await srv.login('boss', 'boss-password-1');
  assert.equal((await me({ session: b1 })).status, 200);
  assert.equal((await me({ session: b2 })).status, 200);
  let r = await srv.request('PATCH', `/api/v1/users/${b1.user.id}`, { session: b1, body: { password: 'boss-password-2' } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await me({ session: b1 })).status, 200, 'the session that changed the password stays');
  assertProblem(await me({ session: b2 }), 401, 'unauthenticated');
  // An administrator sets another user's password: every session of that user ends.
  await srv.addUser('cat', { password: 'cat-password-1' });
  const s1 = await srv.login('cat', 'cat-password-1');
  const s2 = await srv.login('cat', 'cat-password-1');
  assert.equal((await me({ session: s1 })).status, 200);
  assert.equal((await me({ session: s2 })).status, 200);
  r = await srv.request('PATCH', `/api/v1/users/${s1.user.id}`, { session: b1, body: { password: 'cat-password-2' } });
  assert.equal(r.status, 200, r.text);
  assertProblem(await me({ session: s1 }), 401, 'unauthenticated');
  assertProblem(await me({ session: s2 }), 401, 'unauthenticated');
  // A refused password (too short) ends nothing.
  const s3 = await srv.login('cat', 'cat-password-2');
  assert.equal((await me({ session: s3 })).status, 200);
  assertProblem(await admin.patch(`/api/v1/users/${s3.user.id}`, { password: 'short' }), 422, 'validation_failed', 'password');
  assert.equal((await me({ session: s3 })).status, 200);
});

test('disabling or deleting a user refuses their cached token and session at once', async () => {
  const dan = await srv.userClient('dan', { password: 'dan-password-1' });
  const s = await srv.login('dan', 'dan-password-1');
  assert.equal((await dan.get('/api/v1/auth/me')).status, 200);
  assert.equal((await me({ session: s })).status, 200);
  const id = s.user.id;
  let r = await admin.patch(`/api/v1/users/${id}`, { active: false });
  assert.equal(r.status, 200, r.text);
  const t = await dan.get('/api/v1/auth/me');
  assertProblem(t, 401, 'unauthenticated');
  assert.match(t.json.detail, /user is disabled or deleted/);
  assertProblem(await me({ session: s }), 401, 'unauthenticated');
  r = await admin.patch(`/api/v1/users/${id}`, { active: true });
  assert.equal(r.status, 200, r.text);
  assert.equal((await dan.get('/api/v1/auth/me')).status, 200, 'enabled again: the token works');
  r = await admin.del(`/api/v1/users/${id}`);
  assert.ok(r.status === 200 || r.status === 204, r.text);
  assertProblem(await dan.get('/api/v1/auth/me'), 401, 'unauthenticated');
});

test('a role\'s permissions edited, or a user moved to another role, apply to cached principals at once', async () => {
  const eve = await srv.userClient('eve', { password: 'eve-password-1' });
  const sales = await salesRole();
  assert.equal((await eve.get('/api/v1/contacts')).status, 200);
  const perms = structuredClone(sales.permissions);
  perms.entities.contact = { create: false, read: 'none', update: 'none', delete: 'none' };
  const p = await admin.patch(`/api/v1/roles/${sales.id}`, { permissions: perms });
  assert.equal(p.status, 200, p.text);
  try {
    assertProblem(await eve.get('/api/v1/contacts'), 403, 'forbidden');
  } finally {
    const back = await admin.patch(`/api/v1/roles/${sales.id}`, { permissions: sales.permissions });
    assert.equal(back.status, 200, back.text);
  }
  assert.equal((await eve.get('/api/v1/contacts')).status, 200);
  // Moved to a role without contacts.
  const none = await admin.create('roles', { name: 'No contacts', permissions: { entities: { '*': { create: false, read: 'none', update: 'none', delete: 'none' } } } });
  const eveId = (await eve.get('/api/v1/auth/me')).json.user.id;
  const m = await admin.patch(`/api/v1/users/${eveId}`, { role_id: none.id });
  assert.equal(m.status, 200, m.text);
  assertProblem(await eve.get('/api/v1/contacts'), 403, 'forbidden');
  assert.equal((await eve.get('/api/v1/auth/me')).json.user.role, 'No contacts');
});

test('rapport token revoke deletes a user\'s tokens (all, or by --name); an unknown user fails', async () => {
  const t1 = (await cli('token', 'create', 'root', '--name', 'one', '--data', srv.dataDir)).trim();
  const t2 = (await cli('token', 'create', 'root', '--name', 'two', '--data', srv.dataDir)).trim();
  const out = await cli('token', 'revoke', 'root', '--name', 'one', '--data', srv.dataDir);
  assert.match(out, /^1 token\(s\) of root revoked/);
  assertProblem(await srv.request('GET', '/api/v1/auth/me', { token: t1 }), 401, 'unauthenticated');
  assert.equal((await srv.request('GET', '/api/v1/auth/me', { token: t2 })).status, 200);
  await assert.rejects(cli('token', 'revoke', 'nobody', '--data', srv.dataDir), /no user nobody/);
});

test('--auth-cache refuses a value that is not a duration, naming the option', async () => {
  const dir = tempDir();
  const err = await new Promise((res) => execFile(BIN, ['serve', '--data', dir, '--port', '0', '--auth-cache', 'soon'], { timeout: 20_000 }, (e, so, se) => res({ code: e?.code, stderr: se })));
  assert.notEqual(err.code, 0);
  assert.match(err.stderr, /--auth-cache/);
});
