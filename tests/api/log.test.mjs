// The server's log to a pipe is buffered (one write per buffer, not per line) yet complete: a
// request's access line arrives within about a second, and everything up to the last line is
// written when the server stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from './harness.mjs';

test('access lines reach a piped log within seconds, and the log is complete at a graceful stop', async () => {
  const srv = await startServer({ args: ['--log-level', 'info'] });
  try {
    const r = await srv.request('GET', '/healthz', { headers: { 'x-request-id': 'log-test-request-1' } });
    assert.equal(r.status, 200);
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      seen = /info access log-test-request-1 GET \/healthz 200 [\d.]+ms/.test(srv.output);
      if (!seen) await sleep(100);
    }
    assert.ok(seen, `no access line after 10 s:\n${srv.output.slice(-2000)}`);
    await srv.request('GET', '/healthz', { headers: { 'x-request-id': 'log-test-request-2' } });
  } finally {
    const { code } = await srv.stop();
    assert.equal(code, 0);
  }
  // The pipe may still hold the last lines when the exit is reported.
  for (let i = 0; i < 50 && !/info stopped\n/.test(srv.output); i++) await sleep(100);
  assert.match(srv.output, /access log-test-request-2 GET \/healthz 200/);
  assert.match(srv.output, /info stopped\n/);
});
