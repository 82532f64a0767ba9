// The scheduled duplicate scan (issue 4: "a review queue lists candidate pairs found by a
// background scan"): `rapport serve --scan-every DURATION` fills the review queue without anyone
// calling POST /duplicates/scan, and GET /duplicates/scan shows administrators the last run.
// A malformed duration is refused at start-up naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, startServers, assertProblem, listAll, sleep, BIN, tempDir, PG_URL } from './harness.mjs';

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
    // The first run is full and sees both records; a later one looks only at records changed
    // since the run before it, and by now that may have been nothing (scanned 0).
    assert.ok(run.changed_since === null ? run.scanned >= 2 : run.scanned >= 0, status.text);
    assert.ok(run.pairs >= 0 && run.added >= 0, status.text);
    assert.ok(Date.parse(run.finished_at) >= Date.parse(run.started_at), status.text);
    assert.equal(run.error, null);
    // Between runs (1 s apart) a run under way shows its progress; either way the field is there.
    assert.ok('running' in status.json, status.text);
    if (status.json.running) assert.ok(status.json.running.scanned >= 0 && status.json.running.updated_at, status.text);
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
    assert.equal(status.json.running, null);
    assert.equal((await listAll(admin, 'duplicate_candidates')).length, 0);
  } finally {
    await srv.stop();
  }
});

test('POST /duplicates/scan/run ("Scan now") starts the scheduled scan at once, recorded as its last run', async () => {
  const srv = await startServer({ args: ['--scan-every', '0'] });
  try {
    const [admin, mgr] = await Promise.all([
      srv.userClient('admin', { role: 'Administrator' }),
      srv.userClient('manager', { role: 'Sales manager', team: 'North' }),
    ]);
    const a = await admin.create('contacts', { full_name: '赵六', phones: ['13900003333'] });
    const b = await admin.create('contacts', { full_name: 'Zhao Liu', phones: ['+86 139 0000 3333'] });
    const [lo, hi] = BigInt(a.id) < BigInt(b.id) ? [a.id, b.id] : [b.id, a.id];
    assertProblem(await mgr.post('/api/v1/duplicates/scan/run', {}), 403, 'forbidden');
    assert.equal((await admin.get('/api/v1/duplicates/scan')).json.last_run, null, 'the refused call started nothing');

    const before = Date.now();
    const started = await admin.post('/api/v1/duplicates/scan/run', {});
    assert.equal(started.status, 202, started.text);
    assert.deepEqual(started.json, { started: true });
    let run;
    for (let i = 0; i < 300 && !run; i++) {
      run = (await admin.get('/api/v1/duplicates/scan')).json.last_run;
      if (!run) await sleep(100);
    }
    assert.ok(run, 'the run was recorded within 30 s');
    assert.equal(run.error, null);
    assert.equal(run.changed_since, null, 'the first run reads every record');
    assert.ok(run.scanned >= 2 && run.added >= 1, JSON.stringify(run));
    assert.ok(Date.parse(run.started_at) >= before - 1000, JSON.stringify(run));
    const queue = await listAll(admin, 'duplicate_candidates');
    assert.equal(queue.filter((c) => c.record_a === lo && c.record_b === hi).length, 1);

    // A second "Scan now" right after runs again (no schedule holds it back): records changed since.
    await admin.create('contacts', { full_name: '赵六', emails: ['zhao.liu@example.cn'] });
    assert.equal((await admin.post('/api/v1/duplicates/scan/run', {})).status, 202);
    let second;
    for (let i = 0; i < 300 && !second; i++) {
      const r = (await admin.get('/api/v1/duplicates/scan')).json.last_run;
      if (r.started_at !== run.started_at) second = r;
      else await sleep(100);
    }
    assert.ok(second, 'the second run was recorded within 30 s');
    assert.ok(second.changed_since !== null, JSON.stringify(second));
    assert.ok(second.scanned >= 1, JSON.stringify(second));
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

test('two servers with --scan-every 1s on one PostgreSQL database: never two scans at once, one run per period', { skip: PG_URL ? false : 'needs PostgreSQL: set RAPPORT_TEST_PG_URL (make test does)' }, async () => {
  const dir = tempDir();
  const args = ['--scan-every', '1s', '--log-level', 'info'];
  const [a, b] = await startServers({ dataDir: dir, args }, { dataDir: dir, args });
  try {
    const admin = await a.userClient('admin', { role: 'Administrator' });
    // Some records, so that a run takes a while; more arrive while the servers scan.
    for (let i = 0; i < 40; i++) await admin.create('contacts', { full_name: `扫描 ${i}`, phones: [`1390000${String(i).padStart(4, '0')}`] });
    const starts = new Set();
    const runs = () => [a, b].flatMap((s, n) => [...s.output.matchAll(/duplicate scan: .* \(ran (\d+)\.\.(\d+)\)/g)]
      .map((m) => ({ server: 'AB'[n], started: Number(m[1]), finished: Number(m[2]) })));
    // Until five runs are logged and the status has shown two (the creates above may take as
    // long as several periods on a loaded machine).
    for (let i = 0; i < 200 && (runs().length < 5 || starts.size < 2); i++) {
      const s = await admin.get('/api/v1/duplicates/scan');
      if (s.json.last_run) starts.add(s.json.last_run.started_at);
      if (i % 5 === 0) await admin.create('contacts', { full_name: `后来 ${i}` });
      await sleep(100);
    }
    const all = runs().sort((x, y) => x.started - y.started);
    assert.ok(all.length >= 5, `five runs within 20 s: ${JSON.stringify(all)}\n${a.output}\n${b.output}`);
    for (let i = 1; i < all.length; i++) {
      assert.ok(all[i].started >= all[i - 1].finished, `runs overlap: ${JSON.stringify([all[i - 1], all[i]])}`);
      assert.ok(all[i].started - all[i - 1].started >= 1000, `two runs in one period: ${JSON.stringify([all[i - 1], all[i]])}`);
    }
    // The job_run record shows these runs, one at a time.
    const recorded = new Set(all.map((r) => new Date(r.started).toISOString()));
    for (const s of starts) assert.ok(recorded.has(s), `job_run shows a run no server logged: ${s}`);
    assert.ok(starts.size >= 2, `job_run moved on from run to run: ${[...starts]}`);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
