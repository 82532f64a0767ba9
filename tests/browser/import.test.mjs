// The import wizard (/accounts/import): a CSV whose headers are matched in both languages, a dry run
// that shows the bad row's error, fixing the value in the wizard, the import with its result and
// report, and the rows in the list; an .xlsx workbook (written here with exceljs, the library the
// wizard reads it with) with a column mapped by hand, saved as a template, a bad row skipped.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { appSession, uiTest } from './helpers.mjs';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const ExcelJS = require('exceljs');

let app, page;

appSession({ users: [{ name: 'admin', role: 'Administrator' }] }, (s) => ({ app, page } = s));

const P = () => page;
const CSV =
  '名称,Customer code,城市,Tier\r\n' +
  'Import Alpha,IMP-1,北京,A\r\n' +
  'Import Beta,IMP-2,上海,Z\r\n' +
  'Import Gamma,IMP-3,广州,B\r\n';

async function accountsNamed(prefix) {
  const api = await app.api('admin');
  const r = await api.list('accounts', { filter: { field: 'name', op: 'starts_with', value: prefix }, limit: 100 });
  return r.items;
}

uiTest('CSV: auto-matched columns, a dry-run error fixed in the wizard, imported, shown in the list', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('import-records').click();
  await page.waitForURL(/\/accounts\/import$/);
  await page.getByTestId('import-file').setInputFiles({ name: 'accounts.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  await page.getByTestId('import-mapping').waitFor();
  assert.match(await page.getByTestId('import-file-info').textContent(), /accounts\.csv: 3 rows, 4 columns/);
  // headers in Chinese and English matched to fields
  assert.equal(await page.getByTestId('map-0').inputValue(), 'name');
  assert.equal(await page.getByTestId('map-1').inputValue(), 'customer_code');
  assert.equal(await page.getByTestId('map-2').inputValue(), 'city');
  assert.equal(await page.getByTestId('map-3').inputValue(), 'tier');

  await page.getByTestId('import-dry-run').click();
  await page.getByTestId('import-check').waitFor();
  assert.match(await page.getByTestId('import-summary').textContent(), /3 rows: 2 would be created, 0 updated, 1 with errors/);
  const bad = page.getByTestId('import-error-row');
  assert.equal(await bad.count(), 1);
  assert.equal(await bad.getAttribute('data-row'), '3');
  assert.equal(await bad.getByTestId('import-error-message').getAttribute('data-field'), 'tier');
  assert.equal((await accountsNamed('Import ')).length, 0, 'a dry run writes nothing');

  // fix the value and check again: no errors left
  const fix = page.getByTestId('import-fix-3-tier');
  assert.equal(await fix.inputValue(), 'Z');
  await fix.fill('C');
  await fix.press('Tab');
  await page.getByTestId('import-recheck').click();
  await page.waitForFunction(() => /3 would be created/.test(document.querySelector('[data-testid="import-summary"]')?.textContent ?? ''));
  assert.equal(await page.getByTestId('import-error-row').count(), 0);

  await page.getByTestId('import-run').click();
  await page.getByTestId('import-done').waitFor();
  assert.match(await page.getByTestId('import-result').textContent(), /3 created, 0 updated, 0 skipped/);
  const href = await page.getByTestId('import-report').getAttribute('href');
  assert.match(href, /^\/api\/v1\/imports\/\d+\/report\.csv$/);
  const rep = await page.evaluate(async (u) => (await fetch(u)).status, href);
  assert.equal(rep, 200);

  const landed = await accountsNamed('Import ');
  assert.deepEqual(landed.map((a) => a.name).sort(), ['Import Alpha', 'Import Beta', 'Import Gamma']);
  assert.equal(landed.find((a) => a.name === 'Import Beta').tier, 'C');
  assert.equal(landed.find((a) => a.name === 'Import Alpha').city, '北京');

  await page.getByTestId('import-to-list').click();
  await page.waitForURL(/\/accounts$/);
  await page.getByTestId('list-row').first().waitFor();
  const names = await page.getByTestId('list-row').locator('td:first-child').allTextContents();
  for (const n of ['Import Alpha', 'Import Beta', 'Import Gamma']) assert.ok(names.some((x) => x.includes(n)), `${n} in ${names}`);
});

async function workbook(rows) {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('Kunden');
  for (const r of rows) ws.addRow(r);
  return Buffer.from(await wb.xlsx.writeBuffer());
}

uiTest('xlsx: a column mapped by hand and saved as a template, a bad row skipped, the rest imported', P, async () => {
  const xlsx = await workbook([
    ['Firma', '客户编码', 'Employees', 'Gegründet'],
    ['Excel Eins GmbH', 'XL-1', 12, new Date(Date.UTC(2001, 0, 2))],
    [null, 'XL-2', 5, null], // no name: refused
    ['Excel Drei AG', 'XL-3', 1200, null],
  ]);
  await page.goto('/accounts/import');
  await page.getByTestId('import-file').setInputFiles({
    name: 'kunden.xlsx',
    mimeType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    buffer: xlsx,
  });
  await page.getByTestId('import-mapping').waitFor();
  assert.match(await page.getByTestId('import-file-info').textContent(), /kunden\.xlsx: 3 rows, 4 columns/);
  assert.equal(await page.getByTestId('map-0').inputValue(), '', 'Firma is no field name or label');
  assert.equal(await page.getByTestId('map-1').inputValue(), 'customer_code');
  assert.equal(await page.getByTestId('map-2').inputValue(), 'employees');
  assert.equal(await page.getByTestId('map-3').inputValue(), '');
  await page.getByTestId('map-0').selectOption('name');
  await page.getByTestId('import-upsert').selectOption('customer_code');

  // save the mapping as a template; it is an import_templates record
  await page.getByTestId('import-template-name').fill('Excel Kunden');
  await page.getByTestId('import-template-save').click();
  await page.getByTestId('import-template-message').filter({ hasText: 'saved' }).waitFor();
  const api = await app.api('admin');
  const tpl = (await api.list('import_templates', { filter: { field: 'name', op: '=', value: 'Excel Kunden' } })).items[0];
  assert.equal(tpl.entity, 'account');
  const savedMapping = typeof tpl.mapping === 'string' ? JSON.parse(tpl.mapping) : tpl.mapping;
  assert.equal(savedMapping.Firma, 'name');

  // a fresh read of the file forgets the hand mapping; choosing the template brings it back
  await page.getByTestId('import-restart').click();
  await page.getByTestId('import-file').setInputFiles({
    name: 'kunden.xlsx',
    mimeType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    buffer: xlsx,
  });
  await page.getByTestId('import-mapping').waitFor();
  assert.equal(await page.getByTestId('map-0').inputValue(), '');
  await page.getByTestId('import-template').selectOption({ label: 'Excel Kunden' });
  assert.equal(await page.getByTestId('map-0').inputValue(), 'name');

  await page.getByTestId('import-dry-run').click();
  await page.getByTestId('import-check').waitFor();
  assert.match(await page.getByTestId('import-summary').textContent(), /3 rows: 2 would be created, 0 updated, 1 with errors/);
  assert.match(await page.getByTestId('import-ignored').textContent(), /Gegründet/);
  const bad = page.getByTestId('import-error-row');
  assert.equal(await bad.getAttribute('data-row'), '3');
  assert.equal(await bad.getByTestId('import-error-message').getAttribute('data-field'), 'name');
  await page.getByTestId('import-skip-3').click();
  await page.getByTestId('import-unskip-3').waitFor();
  await page.getByTestId('import-run').click(); // "Import 2 rows"
  await page.getByTestId('import-done').waitFor();
  assert.match(await page.getByTestId('import-result').textContent(), /2 created, 0 updated, 0 skipped/);

  const landed = await accountsNamed('Excel ');
  assert.deepEqual(landed.map((a) => [a.name, a.customer_code, a.employees]).sort(), [
    ['Excel Drei AG', 'XL-3', 1200],
    ['Excel Eins GmbH', 'XL-1', 12],
  ]);
  assert.equal((await api.list('accounts', { filter: { field: 'customer_code', op: '=', value: 'XL-2' } })).items.length, 0);
});

// Issue #4 "vCard 4 import": the wizard takes a .vcf file for entities with phones or e-mails and
// sends it as it is (no columns to map); the dry run names the bad card; upsert by e-mail. Before,
// the file chooser took CSV and .xlsx only and vCards could be imported through the API alone.
const VCF = [
  'BEGIN:VCARD', 'VERSION:4.0', 'FN:张伟', 'N:张;伟;;;', 'TEL;TYPE=cell:138 0000 1111', 'EMAIL;TYPE=work:zhang.wei@vcard.example.cn', 'TITLE:采购经理', 'END:VCARD',
  'BEGIN:VCARD', 'VERSION:4.0', 'FN:Broken Mail', 'EMAIL:not-an-address', 'END:VCARD',
  'BEGIN:VCARD', 'VERSION:3.0', 'FN:Li Na', 'TEL;TYPE=WORK,VOICE:(010) 6253-0001', 'END:VCARD',
].join('\r\n') + '\r\n';

async function contactsNamed(names) {
  const api = await app.api('admin');
  return (await api.list('contacts', { filter: { field: 'full_name', op: 'in', value: names }, limit: 100 })).items;
}

uiTest('vCard: a .vcf file is imported card by card — the bad card named by the dry run, then upsert by e-mail', P, async () => {
  await page.goto('/contacts/import');
  assert.match(await page.getByTestId('import-file').getAttribute('accept'), /\.vcf/);
  await page.getByTestId('import-file').setInputFiles({ name: 'team.vcf', mimeType: 'text/vcard', buffer: Buffer.from(VCF) });
  await page.getByTestId('import-mapping').waitFor();
  assert.match(await page.getByTestId('import-file-info').textContent(), /team\.vcf: 3 vCards/);
  await page.getByTestId('import-vcard-fields').waitFor();
  assert.equal(await page.getByTestId('map-0').count(), 0, 'no columns to map');

  await page.getByTestId('import-dry-run').click();
  await page.getByTestId('import-check').waitFor();
  assert.match(await page.getByTestId('import-summary').textContent(), /3 rows: 2 would be created, 0 updated, 1 with errors/);
  const errs = page.getByTestId('import-card-error');
  assert.equal(await errs.count(), 1);
  assert.match(await errs.textContent(), /vCard 2: .*not-an-address/);
  assert.equal((await contactsNamed(['张伟', 'Li Na'])).length, 0, 'a dry run writes nothing');

  await page.getByTestId('import-run').click();
  await page.getByTestId('import-done').waitFor();
  assert.match(await page.getByTestId('import-result').textContent(), /2 created, 0 updated, 1 skipped/);
  const [zw] = await contactsNamed(['张伟']);
  assert.deepEqual(zw.phones, [{ value: '138 0000 1111', label: 'mobile' }]);
  assert.deepEqual(zw.emails, [{ value: 'zhang.wei@vcard.example.cn', label: 'work' }]);
  assert.equal(zw.title, '采购经理');
  assert.equal((await contactsNamed(['Li Na'])).length, 1);

  // The same person again with a new title: "update by e-mail" updates, nothing new.
  await page.getByRole('button', { name: 'Import another file' }).click();
  const again = VCF.split('END:VCARD')[0].replace('TITLE:采购经理', 'TITLE:采购总监') + 'END:VCARD\r\n';
  await page.getByTestId('import-file').setInputFiles({ name: 'again.vcf', mimeType: 'text/vcard', buffer: Buffer.from(again) });
  await page.getByTestId('import-mapping').waitFor();
  await page.getByTestId('import-upsert').selectOption('email');
  await page.getByTestId('import-dry-run').click();
  await page.getByTestId('import-check').waitFor();
  assert.match(await page.getByTestId('import-summary').textContent(), /1 rows: 0 would be created, 1 updated, 0 with errors/);
  await page.getByTestId('import-run').click();
  await page.getByTestId('import-done').waitFor();
  assert.match(await page.getByTestId('import-result').textContent(), /0 created, 1 updated, 0 skipped/);
  const [updated] = await contactsNamed(['张伟']);
  assert.equal(updated.id, zw.id);
  assert.equal(updated.title, '采购总监');

  // Communication records have no phones or e-mails: the file chooser offers no vCard there.
  await page.goto('/interactions/import');
  assert.doesNotMatch(await page.getByTestId('import-file').getAttribute('accept'), /vcf/);
  assert.deepEqual(page.consoleErrors, []);
});

uiTest('the wizard speaks Chinese', P, async () => {
  await page.goto('/accounts/import');
  await page.getByTestId('lang-switch').selectOption('zh-CN');
  await page.getByTestId('import-file').setInputFiles({ name: 'a.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
  await page.getByTestId('import-mapping').waitFor();
  assert.match(await page.locator('h1').textContent(), /导入/);
  assert.match(await page.getByTestId('import-dry-run').textContent(), /试运行/);
  await page.getByTestId('lang-switch').selectOption('en');
});
