// CSV export (BOM, header, RFC 4180 quoting, filters), metadata labels, and the OpenAPI document
// checked with a real OpenAPI 3.1 validator.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startServer, assertProblem, qs } from './harness.mjs';

let srv;
let admin;
const rec = {};

before(async () => {
  srv = await startServer();
  admin = await srv.userClient('admin', { role: 'Administrator' });
  rec.tricky = await admin.create('accounts', {
    name: 'Smith, "Junior" & Sons', city: '北京', description: 'first line\nsecond, with "quotes"\r\nthird',
    credit_limit: { amount: 123456, currency: 'CNY' }, tier: 'A', tags: ['vip', 'online'],
  });
  rec.formula = await admin.create('accounts', { name: '=HYPERLINK("http://evil.example","x")', tier: 'B' });
  rec.plain = await admin.create('accounts', { name: '上海浦东发展公司', city: '上海', tier: 'B', phones: ['021-1234-5678'] });
});
after(async () => { await srv?.stop(); });

// RFC 4180 parser: returns rows of cells; quoted cells may hold commas, quotes ("") and newlines.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      cell += c; i++; continue;
    }
    if (c === '"') {
      assert.equal(cell, '', `a quote may only open a cell (row ${rows.length + 1})`);
      quoted = true; i++; continue;
    }
    if (c === ',') { row.push(cell); cell = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i += 2; continue; }
    assert.notEqual(c, '\n', 'bare LF outside quotes: lines end with CRLF');
    cell += c; i++;
  }
  assert.ok(!quoted, 'unterminated quoted cell');
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

async function exportCsv(params = {}) {
  const r = await admin.get(`/api/v1/accounts/export.csv?${qs(params)}`, { raw: true });
  assert.equal(r.status, 200, r.text);
  return r;
}

test('export.csv: UTF-8 BOM, text/csv, attachment, header row then one CRLF row per record', async () => {
  const r = await exportCsv();
  assert.deepEqual([...r.body.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'starts with the UTF-8 BOM');
  assert.match(r.headers.get('content-type'), /^text\/csv; charset=utf-8/);
  assert.match(r.headers.get('content-disposition'), /attachment; filename="accounts\.csv"/);
  const rows = parseCsv(r.text.slice(1));
  const header = rows[0];
  for (const col of ['id', 'name', 'city', 'credit_limit', 'created_at']) assert.ok(header.includes(col), `header has ${col}`);
  assert.equal(rows.length, 4, 'header + 3 records');
  for (const row of rows) assert.equal(row.length, header.length, 'every row has every column');
});

test('export.csv: RFC 4180 quoting keeps commas, quotes and newlines; Chinese intact; formulas defused', async () => {
  const rows = parseCsv((await exportCsv()).text.slice(1));
  const header = rows[0];
  const byId = Object.fromEntries(rows.slice(1).map((r) => [r[header.indexOf('id')], Object.fromEntries(header.map((h, i) => [h, r[i]]))]));
  const t = byId[rec.tricky.id];
  assert.ok(t, 'tricky row present');
  assert.equal(t.name, 'Smith, "Junior" & Sons');
  assert.equal(t.description, 'first line\nsecond, with "quotes"\r\nthird');
  assert.equal(t.city, '北京');
  assert.match(t.credit_limit, /1234\.?56|123456/);
  assert.equal(byId[rec.plain.id].name, '上海浦东发展公司');
  const f = byId[rec.formula.id].name;
  assert.ok(!f.startsWith('='), `a cell must not start with = (spreadsheet formula): ${f}`);
  assert.ok(f.includes('HYPERLINK'), 'the text itself is kept');
});

test('export.csv respects filter, sort and fields', async () => {
  const rows = parseCsv((await exportCsv({ filter: { field: 'tier', op: '=', value: 'B' }, sort: 'name', fields: 'name,tier' })).text.slice(1));
  assert.deepEqual(rows[0], ['name', 'tier']);
  assert.equal(rows.length, 3);
  assert.ok(rows[1][0].includes('HYPERLINK'), 'sorted by name: "=…" before "上…"');
  assert.equal(rows[2][0], '上海浦东发展公司');
  assert.ok(rows.slice(1).every((r) => r[1] === 'B'));
  const none = parseCsv((await exportCsv({ filter: { field: 'city', op: '=', value: '火星' } })).text.slice(1));
  assert.equal(none.length, 1, 'only the header when nothing matches');
  assertProblem(await admin.get(`/api/v1/accounts/export.csv?${qs({ filter: { field: 'nope', op: '=', value: 1 } })}`), 400, 'bad_filter', 'nope');
  assertProblem(await admin.get('/api/v1/accounts/export.csv?fields=nope'), 400, 'unknown_field', 'fields');
  assertProblem(await srv.request('GET', '/api/v1/accounts/export.csv'), 401, 'unauthenticated');
  assert.equal((await admin.get('/api/v1/contacts/export.csv')).status, 200);
});

test('export.csv pages through more rows than one list page (500)', async () => {
  const batch = Array.from({ length: 520 }, (_, i) => ({ name: `Bulk ${String(i).padStart(4, '0')}` }));
  for (let i = 0; i < batch.length; i += 20) {
    await Promise.all(batch.slice(i, i + 20).map((b) => admin.create('accounts', b)));
  }
  const rows = parseCsv((await exportCsv({ filter: { field: 'name', op: 'starts_with', value: 'Bulk ' }, fields: 'name' })).text.slice(1));
  assert.equal(rows.length, 521);
  assert.equal(new Set(rows.slice(1).map((r) => r[0])).size, 520, 'no duplicates, none missing');
});

test('metadata: entities with plural names and en + zh-CN labels on entities, fields and options', async () => {
  const r = await admin.get('/api/v1/metadata');
  assert.equal(r.status, 200);
  const byName = Object.fromEntries(r.json.entities.map((e) => [e.name, e]));
  for (const [name, plural] of [['account', 'accounts'], ['contact', 'contacts'], ['interaction', 'interactions'], ['user', 'users'], ['team', 'teams'], ['role', 'roles']]) {
    assert.ok(byName[name], `${name} declared`);
    assert.equal(byName[name].plural, plural);
  }
  for (const e of r.json.entities) {
    assert.ok(e.label.en && e.label['zh-CN'], `${e.name} label`);
    assert.ok(e.title_field && e.fields.some((f) => f.name === e.title_field), `${e.name} title_field`);
    for (const f of e.fields) {
      assert.ok(f.label.en && f.label['zh-CN'], `${e.name}.${f.name} label`);
      assert.ok(['text', 'long_text', 'integer', 'decimal', 'money', 'boolean', 'date', 'datetime', 'enum', 'multi_enum',
        'phone_list', 'email_list', 'address', 'reference', 'json'].includes(f.type), `${e.name}.${f.name} type ${f.type}`);
      assert.ok(['read', 'write'].includes(f.permission));
      for (const o of f.options || []) assert.ok(o.value && o.label.en && o.label['zh-CN'], `${e.name}.${f.name} option ${o.value}`);
    }
  }
  assert.equal(byName.account.label['zh-CN'], '客户');
  const name = byName.account.fields.find((f) => f.name === 'name');
  assert.deepEqual(name.label, { en: 'Name', 'zh-CN': '名称' });
  assert.equal(name.required, true);
  assert.equal(name.max_length, 200);
  assert.equal(byName.interaction.fields.find((f) => f.name === 'channel').options.find((o) => o.value === 'visit').label['zh-CN'], '拜访');
  for (const sys of ['id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by', 'owner_id', 'team_id']) {
    assert.ok(byName.account.fields.some((f) => f.name === sys), `system field ${sys}`);
  }
  assertProblem(await srv.request('GET', '/api/v1/metadata'), 401, 'unauthenticated');
});

test('openapi.json is a valid OpenAPI 3.1 document covering every collection', async () => {
  const r = await admin.get('/api/v1/openapi.json');
  assert.equal(r.status, 200);
  const spec = r.json;
  assert.match(spec.openapi, /^3\.1\./);
  const v = new Validator();
  const res = await v.validate(spec);
  assert.ok(res.valid, `OpenAPI validation errors: ${JSON.stringify(res.errors, null, 1)?.slice(0, 3000)}`);
  assert.equal(v.version, '3.1');
  // The validator does reject a broken document (so the check above can fail).
  const broken = structuredClone(spec);
  delete broken.info;
  broken.paths['/api/v1/accounts'].get.responses = 'none';
  assert.equal((await new Validator().validate(broken)).valid, false);
  // Every $ref resolves.
  const refs = [];
  (function walk(x) {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') for (const [k, val] of Object.entries(x)) (k === '$ref' ? refs.push(val) : walk(val));
  })(spec);
  assert.ok(refs.length > 0);
  for (const ref of refs) {
    assert.match(ref, /^#\//, `local ref ${ref}`);
    const target = ref.slice(2).split('/').reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
    assert.ok(target !== undefined, `unresolved $ref ${ref}`);
  }
  const paths = Object.keys(spec.paths);
  for (const p of ['accounts', 'contacts', 'interactions']) {
    assert.ok(paths.some((x) => x === `/api/v1/${p}`), `path for ${p}`);
    assert.ok(paths.some((x) => x.startsWith(`/api/v1/${p}/{`)), `item path for ${p}`);
  }
  assert.ok(spec.paths['/api/v1/accounts'].get && spec.paths['/api/v1/accounts'].post);
  assert.ok(JSON.stringify(spec).includes('bank_account'), 'the document describes the schema, not one caller\'s view');
});

test('openapi.json describes every module action (method, path and query parameters, bodies, answers)', async () => {
  const spec = (await admin.get('/api/v1/openapi.json')).json;
  const actions = [
    ['get', '/lookup/phone', ['number']],
    ['get', '/accounts/{id}/360', ['id', 'channel', 'limit']],
    ['post', '/accounts/duplicates/check', []],
    ['post', '/contacts/duplicates/check', []],
    ['post', '/accounts/{id}/merge', ['id']],
    ['post', '/contacts/{id}/merge', ['id']],
    ['post', '/accounts/merge', []],
    ['post', '/contacts/merge', []],
    ['post', '/duplicates/scan', []],
    ['get', '/duplicates/scan', []],
    ['post', '/duplicates/scan/run', [], '202'],
    ['post', '/merges/{merge_id}/undo', ['merge_id']],
  ];
  const described = Object.entries(spec.paths).flatMap(([path, ops]) =>
    Object.entries(ops).filter(([, op]) => op.tags?.includes('actions')).map(([m]) => `${m} ${path}`));
  assert.deepEqual(described.sort(), actions.map(([m, p]) => `${m} /api/v1${p}`).sort(), 'exactly the registered actions');
  const ids = new Set();
  for (const [method, path, params, ok = '200'] of actions) {
    const op = spec.paths[`/api/v1${path}`][method];
    assert.ok(op.summary, `${method} ${path} has a summary`);
    assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is unique`);
    ids.add(op.operationId);
    assert.deepEqual(op.parameters.map((p) => p.name), params, `${method} ${path} parameters`);
    assert.ok(op.responses[ok]?.content['application/json'].schema, `${method} ${path} answer schema (${ok})`);
    assert.ok(op.responses['404'], `${method} ${path} lists its problems`);
    if (method === 'post' && !path.endsWith('/undo') && !path.endsWith('/run')) assert.ok(op.requestBody?.content['application/json'].schema, `${method} ${path} body`);
    // and the route it describes exists (answers something other than "no route")
    const url = `/api/v1${path.replace('{id}', '1').replace('{merge_id}', '1')}`;
    const r = method === 'get' ? await admin.get(url) : await admin.post(url, {});
    assert.ok(!(r.status === 404 && /no route/.test(r.json?.detail ?? '')), `${method} ${url}: ${r.status} ${r.text}`);
  }
  assert.equal(spec.paths['/api/v1/lookup/phone'].get.parameters[0].required, true);
  assert.ok(spec.paths['/api/v1/accounts/{id}/360'].get.responses['308'], 'a merged id is redirected');
  assert.deepEqual(spec.paths['/api/v1/accounts/duplicates/check'].post.requestBody.content['application/json'].schema,
    { $ref: '#/components/schemas/account_input' });
  assert.equal(spec.paths['/api/v1/accounts/{id}/merge'].post.requestBody.content['application/json'].schema.properties.others.maxItems, 20);
  const v = new Validator();
  const res = await v.validate(spec);
  assert.ok(res.valid, `OpenAPI validation errors: ${JSON.stringify(res.errors, null, 1)?.slice(0, 3000)}`);
});

/** Checks a value against the small JSON-schema subset the spec's fixed schemas use (type,
 *  enum, properties, required, items); returns the first mismatch or null. */
function schemaMismatch(schema, value, at = '$') {
  const types = [].concat(schema.type ?? []);
  const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  const t = typeOf(value);
  if (types.length && !types.includes(t) && !(t === 'integer' && types.includes('number'))) return `${at}: ${t} is not ${types}`;
  if (schema.enum && !schema.enum.includes(value)) return `${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`;
  for (const k of schema.required ?? []) if (!(k in value)) return `${at}.${k} missing`;
  for (const [k, sub] of Object.entries(schema.properties ?? {})) {
    if (value && k in value) { const m = schemaMismatch(sub, value[k], `${at}.${k}`); if (m) return m; }
  }
  if (schema.items && Array.isArray(value)) {
    for (const [i, v] of value.entries()) { const m = schemaMismatch(schema.items, v, `${at}[${i}]`); if (m) return m; }
  }
  return null;
}

test('openapi.json describes GET /{plural}/aggregate for every entity, and real answers fit its schema', async () => {
  const spec = (await admin.get('/api/v1/openapi.json')).json;
  const meta = (await admin.get('/api/v1/metadata')).json;
  for (const e of meta.entities) {
    const op = spec.paths[`/api/v1/${e.plural}/aggregate`]?.get;
    assert.ok(op, `aggregate of ${e.plural}`);
    assert.equal(op.operationId, `aggregate_${e.plural}`);
    const params = Object.fromEntries(op.parameters.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(params).sort(), ['bucket', 'filter', 'group_by', 'q']);
    assert.equal(params.group_by.required, true);
    assert.equal(params.group_by.in, 'query');
    assert.equal(params.filter.required, false);
    assert.deepEqual(op.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/Aggregate' });
    assert.equal(op.responses['400'].content['application/problem+json'].schema.$ref, '#/components/schemas/Problem');
  }
  const schema = spec.components.schemas.Aggregate;
  const mine = (await admin.create('accounts', { name: '聚合测试客户', tier: 'A' })).id;
  await admin.create('interactions', { subject: 'Aggregate call', channel: 'phone', account_id: mine, occurred_at: '2026-03-04T05:06:07Z' });
  for (const [plural, query] of [
    ['accounts', { group_by: 'tier' }],
    ['accounts', { group_by: 'key_account' }],
    ['interactions', { group_by: 'channel,occurred_at', bucket: 'month' }],
  ]) {
    const r = await admin.get(`/api/v1/${plural}/aggregate?${qs(query)}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.groups.length > 0);
    assert.equal(schemaMismatch(schema, r.json), null, `${plural} ${JSON.stringify(query)}: ${JSON.stringify(r.json)}`);
  }
  // The schema check does catch an answer of another shape.
  assert.match(schemaMismatch(schema, { entity: 'account', group_by: ['tier'], bucket: 'week', groups: [], total: 0, truncated: false }), /bucket/);
  assert.match(schemaMismatch(schema, { entity: 'account', group_by: ['tier'], bucket: null, groups: [{ values: [{}], count: 1 }], total: 1, truncated: false }), /values\[0\]/);
});

test('openapi.json describes import, export and the import report for every entity, and real answers fit it', async () => {
  const spec = (await admin.get('/api/v1/openapi.json')).json;
  const meta = (await admin.get('/api/v1/metadata')).json;
  const problem = { $ref: '#/components/schemas/Problem' };
  const ids = new Set();
  for (const e of meta.entities) {
    const imp = spec.paths[`/api/v1/${e.plural}/import`]?.post;
    assert.ok(imp, `import of ${e.plural}`);
    assert.equal(imp.operationId, `import_${e.plural}`);
    const params = Object.fromEntries(imp.parameters.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(params).sort(), ['encoding', 'file_name', 'mapping', 'mode', 'template', 'upsert']);
    for (const p of Object.values(params)) assert.equal(p.in, 'query');
    assert.deepEqual(params.mode.schema.enum, ['dry_run', 'commit']);
    assert.equal(params.mode.schema.default, 'dry_run');
    assert.equal(imp.requestBody.required, true);
    for (const media of ['text/csv', 'text/vcard']) assert.ok(imp.requestBody.content[media], `${e.plural} import accepts ${media}`);
    assert.match(imp.requestBody.description, /Excel/);
    assert.deepEqual(imp.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/ImportResult' });
    for (const s of ['400', '403', '413', '422']) assert.deepEqual(imp.responses[s].content['application/problem+json'].schema, problem);

    const hasCards = e.fields.some((f) => f.type === 'phone_list' || f.type === 'email_list');
    for (const [suffix, media] of [['csv', 'text/csv'],
      ['xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'], ['vcf', 'text/vcard']]) {
      const op = spec.paths[`/api/v1/${e.plural}/export.${suffix}`]?.get;
      if (suffix === 'vcf' && !hasCards) { assert.equal(op, undefined, `${e.plural} has no vCard export`); continue; }
      assert.ok(op, `export.${suffix} of ${e.plural}`);
      assert.ok(!ids.has(op.operationId));
      ids.add(op.operationId);
      const names = op.parameters.map((p) => p.name).sort();
      assert.deepEqual(names, suffix === 'vcf' ? ['deleted', 'filter', 'q', 'sort'] : ['deleted', 'fields', 'filter', 'q', 'sort']);
      assert.deepEqual(op.responses['200'].content[media].schema, { type: 'string', format: 'binary' });
      assert.ok(op.responses['200'].headers['Content-Disposition']);
      assert.deepEqual(op.responses['400'].content['application/problem+json'].schema, problem);
    }
  }
  const report = spec.paths['/api/v1/imports/{id}/report.csv'].get;
  assert.deepEqual(report.parameters.map((p) => [p.name, p.in, p.required]), [['id', 'path', true]]);
  assert.ok(report.responses['200'].content['text/csv']);
  assert.deepEqual(report.responses['404'].content['application/problem+json'].schema, problem);

  // Real answers: a dry run with a row error and a likely duplicate fits ImportResult, as does a commit.
  const schema = spec.components.schemas.ImportResult;
  const csv = 'name,website,tier\nOpenAPI Import Co,https://openapi-import.cn,B\nNo tier,,Z\nOpenAPI Import Twin,openapi-import.cn/about,A\n';
  for (const mode of ['dry_run', 'commit']) {
    const r = await admin.post(`/api/v1/accounts/import?${qs({ mode, file_name: 'a.csv' })}`, csv, { headers: { 'content-type': 'text/csv' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.errors.length, 1);
    assert.ok(r.json.duplicates.length >= 1, r.text);
    assert.equal(schemaMismatch(schema, r.json), null, `${mode}: ${r.text}`);
    const rep = await admin.get(r.json.report);
    assert.equal(rep.status, 200);
    assert.match(rep.headers.get('content-type'), /^text\/csv/);
    assert.match(rep.headers.get('content-disposition'), /attachment/);
  }
  const vcf = 'BEGIN:VCARD\r\nVERSION:4.0\r\nFN:OpenAPI vCard\r\nTEL:+86 10 6253 1234\r\nEND:VCARD\r\n';
  const rv = await admin.post('/api/v1/contacts/import?mode=dry_run', vcf, { headers: { 'content-type': 'text/vcard' } });
  assert.equal(rv.status, 200, rv.text);
  assert.equal(schemaMismatch(schema, rv.json), null, rv.text);
  // The schema check does catch another shape, and the documented problems are what the server answers.
  assert.match(schemaMismatch(schema, { ...rv.json, mode: 'try' }), /mode/);
  assertProblem(await admin.post('/api/v1/accounts/import?mode=maybe', csv, { headers: { 'content-type': 'text/csv' } }), 400, 'bad_request', 'mode');
  assertProblem(await admin.post('/api/v1/accounts/import?encoding=latin1', csv, { headers: { 'content-type': 'text/csv' } }), 400, 'bad_request', 'encoding');
  assertProblem(await admin.get('/api/v1/interactions/export.vcf'), 400, 'bad_request');
  assertProblem(await admin.get('/api/v1/imports/999999/report.csv'), 404, 'not_found');
  for (const suffix of ['csv', 'xlsx', 'vcf']) {
    const r = await admin.get(`/api/v1/accounts/export.${suffix}?${qs({ filter: JSON.stringify({ field: 'tier', op: '=', value: 'B' }), sort: '-created_at', q: '浦东', deleted: 'false' })}`);
    assert.equal(r.status, 200, `${suffix}: ${r.text}`);
    assert.match(r.headers.get('content-disposition'), /attachment/);
  }
  const v = new Validator();
  const res = await v.validate(spec);
  assert.ok(res.valid, `OpenAPI validation errors: ${JSON.stringify(res.errors, null, 1)?.slice(0, 3000)}`);
});
