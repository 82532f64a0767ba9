// Server limits (issue 5): the connection cap (`serve --max-connections N`: a connection beyond
// it is answered 503 problem+json and closed; open ones are unaffected) and the request header
// count (more than 100 header fields → 431 problem+json). Raw sockets only, so no pooled
// keep-alive connection of the test itself counts against the cap unnoticed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, sleep } from '../api/harness.mjs';
import { raw, header } from '../security/raw.mjs';

const CAP = 8;
let srv;

before(async () => {
  srv = await startServer({ args: ['--max-connections', String(CAP)] });
});
after(async () => { await srv?.stop(); });

const host = () => new URL(srv.url).host;

/**
 * A keep-alive connection that sends requests one at a time. `ask()` resolves to the raw text
 * of one response ({status, head, body}) or {closed: true} when the server closes first.
 */
function connect() {
  const { hostname, port } = new URL(srv.url);
  const sock = net.connect({ host: hostname, port: Number(port) });
  let buf = Buffer.alloc(0);
  let waiter = null;
  let closed = false;
  const settle = () => {
    if (!waiter) return;
    const text = buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end >= 0) {
      const head = text.slice(0, end);
      const len = Number(header(head, 'content-length') ?? 0);
      if (text.length >= end + 4 + len) {
        const body = text.slice(end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        const w = waiter;
        waiter = null;
        w({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), head, body });
        return;
      }
    }
    if (closed) {
      const w = waiter;
      waiter = null;
      w({ closed: true });
    }
  };
  sock.on('data', (c) => { buf = Buffer.concat([buf, c]); settle(); });
  sock.on('error', () => {});
  sock.on('close', () => { closed = true; settle(); });
  return {
    sock,
    ask(path = '/healthz') {
      return new Promise((resolve) => {
        waiter = resolve;
        sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host()}\r\n\r\n`);
        settle();
      });
    },
    isClosed: () => closed,
  };
}

test(`connection cap: beyond --max-connections ${CAP} a new connection gets 503 problem+json and is closed; open ones keep working`, async () => {
  const open = [];
  let refused = null;
  try {
    // The harness's own start-up check may still hold a connection or two: open until refused.
    for (let i = 0; i < CAP + 4 && !refused; i++) {
      const c = connect();
      const r = await c.ask();
      if (r.status === 200) open.push(c);
      else refused = { c, r };
    }
    assert.ok(refused, `no connection refused after ${open.length} open`);
    assert.ok(open.length <= CAP, `${open.length} connections open with a cap of ${CAP}`);
    assert.ok(open.length >= CAP - 2, `refused already at ${open.length + 1} connections`);
    const { c, r } = refused;
    assert.equal(r.status, 503);
    assert.equal(header(r.head, 'content-type'), 'application/problem+json');
    assert.equal(header(r.head, 'retry-after'), '1');
    assert.equal(header(r.head, 'x-content-type-options'), 'nosniff');
    assert.deepEqual(JSON.parse(r.body), {
      type: 'https://rapport.dev/problems/too_many_connections',
      title: 'Service Unavailable',
      status: 503,
      code: 'too_many_connections',
    });
    // The refused connection is closed by the server.
    for (let i = 0; i < 500 && !c.isClosed(); i++) await sleep(10);
    assert.ok(c.isClosed(), 'the refused connection stays open');

    // Every connection that was open before still answers, on the same socket.
    for (const o of open) {
      const again = await o.ask('/healthz');
      assert.equal(again.status, 200);
      assert.equal(again.body, '{"status":"ok"}');
    }
  } finally {
    for (const o of open) o.sock.destroy();
  }
  // Once they are closed, new connections are served again (the server notices the closes
  // asynchronously: poll).
  let status = null;
  for (let i = 0; i < 200 && status !== 200; i++) {
    status = (await raw(srv.url, `GET /healthz HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`)).status;
    if (status !== 200) await sleep(25);
  }
  assert.equal(status, 200);
});

function withHeaders(n) {
  // Host, Connection and n - 2 others: n header fields in all.
  let head = `GET /healthz HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n`;
  for (let i = 2; i < n; i++) head += `X-Extra-${i}: v\r\n`;
  return head + '\r\n';
}

test('header count: 100 header fields are served, 101 → 431 problem+json and the connection closed', async () => {
  const ok = await raw(srv.url, withHeaders(100));
  assert.equal(ok.status, 200, ok.text.slice(0, 300));

  const r = await raw(srv.url, withHeaders(101));
  assert.equal(r.status, 431, r.text.slice(0, 300));
  assert.equal(header(r.head, 'content-type'), 'application/problem+json');
  assert.equal(header(r.head, 'connection'), 'close');
  const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
  assert.deepEqual(JSON.parse(body), {
    type: 'https://rapport.dev/problems/too_many_headers',
    title: 'Request Header Fields Too Large',
    status: 431,
    code: 'too_many_headers',
  });
  assert.ok(r.closed, 'connection left open after 431');

  const after431 = await raw(srv.url, `GET /healthz HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
  assert.equal(after431.status, 200);
});
