// The web app's API types (web/src/api/openapi.ts) are generated from the server's
// /api/v1/openapi.json with openapi-typescript; this fails when the committed file is not what
// the live spec of this binary generates, and says how to regenerate it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { startServer } from './harness.mjs';

const GEN = new URL('../../web/scripts/gen-api-types.mjs', import.meta.url);
const OPENAPI_TS = new URL('../../web/node_modules/openapi-typescript/package.json', import.meta.url);

const SKIP = !existsSync(OPENAPI_TS) && 'web/node_modules missing: run npm ci in web/';
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

test('web/src/api/openapi.ts matches the live /api/v1/openapi.json', { skip: SKIP }, async () => {
  const { generateTypes, TYPES_FILE, REGENERATE } = await import(GEN.href);
  const r = await fetch(`${srv.url}/api/v1/openapi.json`);
  assert.equal(r.status, 200);
  const spec = await r.json();
  const want = await generateTypes(spec);
  const have = readFileSync(TYPES_FILE, 'utf8');
  if (have !== want) {
    const a = have.split('\n');
    const b = want.split('\n');
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    assert.fail(
      `${TYPES_FILE} is out of date with the server's /api/v1/openapi.json ` +
        `(first difference at line ${i + 1}: committed ${JSON.stringify(a[i])}, spec gives ${JSON.stringify(b[i])}). ` +
        `Regenerate it with \`${REGENERATE}\` (npm script gen:api) and commit the result.`,
    );
  }
});

test('the generated types are deterministic for the same spec', { skip: SKIP }, async () => {
  const { generateTypes } = await import(GEN.href);
  const spec = await (await fetch(`${srv.url}/api/v1/openapi.json`)).json();
  assert.equal(await generateTypes(spec), await generateTypes(JSON.parse(JSON.stringify(spec))));
});
