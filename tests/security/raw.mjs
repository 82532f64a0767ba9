// Raw-socket HTTP helpers for the hostile-input tests (requests fetch() refuses to send).
import net from 'node:net';

/**
 * Sends `data` (string or Buffer) on a new connection and reads until the server closes it or
 * `timeoutMs` passes. Resolves to {status (number or null), head (string), text, closed
 * (server closed the connection), ms}.
 */
export function raw(url, data, { timeoutMs = 5000, endAfterWrite = false } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks = [];
    let closed = false;
    const sock = net.connect({ host: hostname, port: Number(port) });
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const end = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : null, head: end >= 0 ? text.slice(0, end) : text, text, closed, ms: Date.now() - t0 });
      sock.destroy();
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => { closed = true; done(); });
    sock.on('close', () => { closed = true; done(); });
    sock.on('connect', () => {
      sock.write(data, () => { if (endAfterWrite) sock.end(); });
    });
  });
}

/** A header value from a raw response head (case-insensitive name), or null. */
export function header(head, name) {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
  const m = re.exec(head);
  return m ? m[1].trim() : null;
}

/** Opens a connection and resolves once connected (the socket is returned open). */
export function openSocket(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: hostname, port: Number(port) }, () => resolve(s));
    s.on('error', reject);
  });
}
