// The scheduled duplicate scan (issue 4: "a review queue lists candidate pairs found by a
// background scan"): `rapport serve --scan-every DURATION` fills the review queue without anyone
// calling POST /duplicates/scan, and GET /duplicates/scan shows administrators the last run.
// A malformed duration is refused at start-up naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, assertProblem, listAll, sleep, BIN, tempDir } from './harness.mjs';

const execFileP = promisify(execFile);

test('serve --scan-every 1s: two likely duplicates reach the review queue by themselves', async () => {
  const srv = await startServer({ args: ['--scan-every', '1s'] });
  try {
    const [admin, mgr] = await Promise.all([
      srv.userClient('admin', { role: 'Administrator' }),
      srv.userClient('manager', { role: 'Sales manager', team: 'North' }),
    ]);
    // The same mobile written two ways and the same name in characters and in pinyin.
    const a = await admin.create('contacts', { full_name: '李四', phones: ['13900001111'] });
    const b = await admin.create('contacts', { full_name: 'Li Si', phones: ['+86 139 0000 1111'] });
    const [lo, hi] = BigInt(a.id) < BigInt(b.id) ? [a.id, b.id] : [b.id, a.id];
    let pair;
    for (let i = 0; i < 300 && !pair; i++) {
      const queue = await listAll(admin, 'duplicate_candidates');
      pair = queue.find((c) => c.entity === 'contact' && c.record_a === lo && c.record_b === hi);
      if (!pair) await sleep(100);
    }
    assert.ok(pair, 'the pair was queued by the scheduled scan within 30 s');
    assert.equal(pair.status, 'open');
    assert.ok(pair.score >= 0.75, JSON.stringify(pair));

    const status = await admin.get('/api/v1/duplicates/scan');
    assert.equal(status.status, 200, status.text);
    const run = status.json.last_run;
    assert.ok(run, status.text);
    assert.ok(run.scanned >= 1, status.text);
    assert.ok(run.pairs >= 0 && run.added >= 0, status.text);
    assert.ok(Date.parse(run.finished_at) >= Date.parse(run.started_at), status.text);
    assert.equal(run.error, null);
    // Runs after the first look only at records changed since the previous successful one.
    let incremental = run.changed_since !== null ? run : undefined;
    for (let i = 0; i < 100 && !incremental; i++) {
      await sleep(100);
      const s = await admin.get('/api/v1/duplicates/scan');
      if (s.json.last_run.changed_since !== null) incremental = s.json.last_run;
    }
    assert.ok(incremental, 'a later run is incremental');
    assert.ok(Date.parse(incremental.changed_since) < Date.parse(incremental.started_at));

    // The queue is left as it is: one pair, still open, no matter how many runs passed.
    const queue = await listAll(admin, 'duplicate_candidates');
    assert.equal(queue.filter((c) => c.record_a === lo && c.record_b === hi).length, 1);

    assertProblem(await mgr.get('/api/v1/duplicates/scan'), 403, 'forbidden');
  } finally {
    await srv.stop();
  }
});

test('serve --scan-every 0: no background scan; the status says none ran', async () => {
  const srv = await startServer({ args: ['--scan-every', '0'] });
  try {
    const admin = await srv.userClient('admin', { role: 'Administrator' });
    await admin.create('contacts', { full_name: '王五', phones: ['13900002222'] });
    await admin.create('contacts', { full_name: 'Wang Wu', phones: ['139-0000-2222'] });
    const status = await admin.get('/api/v1/duplicates/scan');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.json.last_run, null);
    assert.equal((await listAll(admin, 'duplicate_candidates')).length, 0);
  } finally {
    await srv.stop();
  }
});

test('serve --scan-every nonsense is refused naming the option', async () => {
  for (const bad of ['nonsense', '10', '-1h', '5x', '']) {
    await assert.rejects(
      execFileP(BIN, ['serve', '--data', tempDir(), '--port', '0', '--scan-every', bad], { timeout: 30_000 }),
      (e) => {
        assert.notEqual(e.code, 0);
        assert.match(e.stderr, /--scan-every/);
        assert.match(e.stderr, /duration/);
        return true;
      },
      `--scan-every ${JSON.stringify(bad)}`);
  }
});
