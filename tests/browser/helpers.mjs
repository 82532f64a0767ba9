// Helpers for the browser tests: the real `rapport` binary serving the built web app (web/dist) on a
// temp data dir, and Debian's Chromium driven by playwright-core (never a downloaded browser).
//
//   const app = await startApp({ users: [{ name: 'admin', role: 'Administrator' }] });
//   const browser = await launchBrowser();
//   const page = await newPage(browser, app);          // English UI, fresh profile
//   await loginAs(page, app, 'admin');
//   await shot(page, 'name');                            // on failure (see uiTest)
//   await app.api('admin').create('accounts', {...});    // seed data through the API (bearer token)
//
// Everything (server, browser, temp dirs) is torn down by stop()/close() and, as a last resort,
// when the test process exits.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { BIN, Client, addUser, createToken, databaseFor } from '../api/harness.mjs';

export { BIN };

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const WEB_DIST = resolve(process.env.RAPPORT_WEB_DIST || join(ROOT, 'web/dist'));
if (!existsSync(join(WEB_DIST, 'index.html'))) {
  throw new Error(`built web app not found at ${WEB_DIST} (run "cd web && npm run build" or set RAPPORT_WEB_DIST)`);
}
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SCREENSHOTS = join(ROOT, 'tests/artifacts/screenshots');
export const PASSWORD = 'browser-test-pw-1';

const live = new Set();
const dirs = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const d of dirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/**
 * Starts `rapport serve --static web/dist` on a fresh data dir with the given users
 * ([{name, role, team, password}], password defaults to PASSWORD). Resolves to
 * {url, dataDir, users: {name: {id, password, …}}, api(name) → Client with a bearer token, stop()}.
 * With RAPPORT_TEST_PG_URL set, the data dir's database is a fresh one on that PostgreSQL
 * (as for the API harness's commands); `databaseUser` then names the role the server logs in as.
 */
export async function startApp({ users = [], databaseUser, args = [] } = {}) {
  const dataDir = tempDir('rapport-browser-');
  const byName = {};
  for (const u of users) {
    byName[u.name] = await addUser(dataDir, u.name, { password: u.password || PASSWORD, role: u.role, team: u.team });
  }
  const database = [];
  const dbUrl = await databaseFor(dataDir);
  if (dbUrl) {
    const u = new URL(dbUrl);
    if (databaseUser) u.username = databaseUser;
    database.push('--database', u.toString());
  }
  const proc = spawn(BIN, ['serve', '--data', dataDir, '--port', '0', '--log-level', 'warn', '--static', WEB_DIST, ...database, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const exited = new Promise((res) => proc.on('exit', (code, signal) => { live.delete(proc); res({ code, signal }); }));
  let output = '';
  const keep = (c) => { output = (output + c.toString()).slice(-100_000); };
  proc.stderr.on('data', keep);
  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start in 20 s:\n${output}`)), 20_000);
    proc.stdout.on('data', (c) => {
      keep(c);
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); rej(new Error(`server exited (${code}):\n${output}`)); });
  });
  const clients = {};
  const app = {
    url,
    dataDir,
    users: byName,
    get output() { return output; },
    /** A bearer-token API client acting as the named user (token created on first use). */
    async api(name) {
      if (!clients[name]) {
        const c = new Client(url, { token: await createToken(dataDir, name) });
        c.user = byName[name];
        clients[name] = c;
      }
      return clients[name];
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
      dirs.delete(dataDir);
    },
  };
  return app;
}

/** Headless Chromium from Debian with a throw-away profile; no network beyond the test server. */
export async function launchBrowser() {
  const args = [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
  ];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.unshift('--no-sandbox');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 30_000 });
}

/**
 * A new context (own cookies and localStorage) and page on the app. locale sets navigator.language,
 * which picks the first UI language (English unless it starts with "zh").
 */
export async function newPage(browser, app, { locale = 'en-US', viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ baseURL: app.url, locale, viewport, timezoneId: 'Asia/Shanghai' });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => page.consoleErrors.push(String(e)));
  return page;
}

/** Fills the login form on the current page (must be /login) and waits to leave it. */
export async function submitLogin(page, username, password = PASSWORD) {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

/** Opens /login and signs in; resolves once the app shell is shown. */
export async function loginAs(page, username, password = PASSWORD) {
  await page.goto('/login');
  await submitLogin(page, username, password);
  await page.getByTestId('logout').waitFor();
}

/** Saves a full-page PNG to tests/artifacts/screenshots/<name>.png; never throws. */
export async function shot(page, name) {
  try {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const file = join(SCREENSHOTS, `${name.replace(/[^\w.-]+/g, '_').slice(0, 120)}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
    return file;
  } catch {
    return null;
  }
}

/**
 * The usual set-up of a test file: before its tests, Rapport (startApp's `users` and `args`) and
 * Chromium started, a page opened and logged in as `login`, then `ready({ app, browser, page })`;
 * after them both stopped.
 */
export function appSession({ users = [{ name: 'admin', role: 'Administrator' }], args = [], login = 'admin' }, ready) {
  let app, browser;
  before(async () => {
    [app, browser] = await Promise.all([startApp({ users, args }), launchBrowser()]);
    const page = await newPage(browser, app);
    await loginAs(page, login);
    ready({ app, browser, page });
  }, { timeout: 90_000 });
  after(async () => {
    await browser?.close();
    await app?.stop();
  }, { timeout: 90_000 });
}

/**
 * A node:test test that screenshots the page when it fails. getPage is called at failure time, so
 * tests can share a page created in before().
 */
export function uiTest(name, getPage, fn, opts = {}) {
  return test(name, { timeout: 60_000, ...opts }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const page = getPage();
      if (page) {
        const file = await shot(page, `${t.fullName ?? t.name ?? name}`);
        if (file) t.diagnostic(`screenshot: ${file}`);
        t.diagnostic(`url at failure: ${page.url()}`);
        if (page.consoleErrors?.length) t.diagnostic(`console errors: ${page.consoleErrors.slice(-5).join(' | ')}`);
      }
      throw e;
    }
  });
}

/** The record id at the end of a /plural/:id URL. */
export function idFromUrl(page) {
  const m = /\/[a-z_]+\/(\d+)(?:[/?#]|$)/.exec(new URL(page.url()).pathname + '/');
  return m ? m[1] : null;
}
