// The import wizard's pure helpers: CSV reading, header matching in both languages, templates,
// CSV writing the server reads back, upsert keys and the column an error names.
import { describe, expect, it } from 'vitest';
import type { EntityMeta } from '../api/types';
import {
  applyTemplate,
  autoMatch,
  cellText,
  columnOfField,
  decodeBytes,
  duplicateTargets,
  importTargets,
  isValidUtf8,
  parseCsvText,
  toCsv,
  upsertKeyMapped,
  upsertKeys,
} from './logic';

const account: EntityMeta = {
  name: 'account',
  plural: 'accounts',
  fields: [
    { name: 'id', type: 'text', readonly: true, system: true },
    { name: 'name', type: 'text', required: true, label: { en: 'Name', 'zh-CN': '名称' } },
    { name: 'customer_code', type: 'text', unique: true, label: { en: 'Customer code', 'zh-CN': '客户编码' } },
    { name: 'city', type: 'text', label: { en: 'City', 'zh-CN': '城市' } },
    { name: 'credit_limit', type: 'money', label: { en: 'Credit limit', 'zh-CN': '信用额度' } },
    { name: 'address', type: 'address', label: { en: 'Address', 'zh-CN': '地址' } },
    { name: 'emails', type: 'email_list', label: { en: 'E-mails', 'zh-CN': '电子邮箱' } },
    { name: 'bank_account', type: 'text', permission: 'read', label: { en: 'Bank account', 'zh-CN': '银行账号' } },
    { name: 'created_at', type: 'datetime', readonly: true, system: true },
  ],
};

describe('parseCsvText', () => {
  it('detects ; and tab, strips the BOM, keeps quoted delimiters and line breaks, drops blank rows', () => {
    expect(parseCsvText('\ufeffname;city\r\n"A;B";北京\r\n\r\n"x\ny";上海\r\n')).toEqual({
      header: ['name', 'city'],
      rows: [
        ['A;B', '北京'],
        ['x\ny', '上海'],
      ],
    });
    expect(parseCsvText('name\tcity\nA\tB\n').rows).toEqual([['A', 'B']]);
  });
  it('names empty header cells like the server ("column N") and trims headers', () => {
    expect(parseCsvText(' name ,,city\n1,2,3\n').header).toEqual(['name', 'column 2', 'city']);
  });
});

describe('encoding', () => {
  it('recognises non-UTF-8 bytes and reads them as GB18030', () => {
    const gbk = new Uint8Array([0xd5, 0xc5, 0xc8, 0xfd]); // 张三
    expect(isValidUtf8(gbk)).toBe(false);
    expect(decodeBytes(gbk, 'gb18030')).toBe('张三');
    expect(isValidUtf8(new TextEncoder().encode('张三'))).toBe(true);
  });
});

describe('cellText (exceljs values)', () => {
  it('turns numbers, booleans, dates, rich text, formulas and links into text', () => {
    expect(cellText(42)).toBe('42');
    expect(cellText(0.1 + 0.2)).toBe('0.3');
    expect(cellText(true)).toBe('true');
    expect(cellText(new Date(Date.UTC(2024, 2, 5)))).toBe('2024-03-05');
    expect(cellText(new Date(Date.UTC(2024, 2, 5, 9, 30)))).toBe('2024-03-05T09:30:00Z');
    expect(cellText({ richText: [{ text: '北京' }, { text: '华为' }] })).toBe('北京华为');
    expect(cellText({ formula: 'A1*2', result: 84 })).toBe('84');
    expect(cellText({ text: 'site', hyperlink: 'https://x' })).toBe('site');
    expect(cellText(null)).toBe('');
  });
});

describe('mapping', () => {
  it('offers writable fields and money/address parts, not system or read-only fields', () => {
    const values = importTargets(account).map((t) => t.value);
    expect(values).toContain('credit_limit.amount');
    expect(values).toContain('address.city');
    expect(values).not.toContain('id');
    expect(values).not.toContain('created_at');
    expect(values).not.toContain('bank_account');
  });
  it('matches headers by name, English or Chinese label, case and width folded; unknown → skipped', () => {
    const m = autoMatch(['名称', 'CUSTOMER CODE', 'ｃｉｔｙ', 'credit_limit.currency', 'Favourite colour', 'Name'], account);
    expect(m).toEqual({
      名称: 'name',
      'CUSTOMER CODE': 'customer_code',
      'ｃｉｔｙ': 'city',
      'credit_limit.currency': 'credit_limit.currency',
      'Favourite colour': '',
      Name: '', // name is already taken by 名称
    });
  });
  it('applies a saved template over the automatic match, ignoring targets that no longer exist', () => {
    const header = ['Firma', 'Ort', 'city'];
    const base = autoMatch(header, account);
    expect(applyTemplate(header, '{"Firma":"name","Ort":"address.city","city":"gone"}', base, account)).toEqual({
      Firma: 'name',
      Ort: 'address.city',
      city: 'city',
    });
    expect(applyTemplate(header, { city: '' }, base, account).city).toBe('');
  });
  it('reports targets chosen twice', () => {
    expect(duplicateTargets({ a: 'name', b: 'name', c: 'city', d: '' })).toEqual({ name: ['a', 'b'] });
  });
  it('upsert keys are unique text fields and email; the key must be mapped', () => {
    expect(upsertKeys(account)).toEqual(['customer_code', 'email']);
    expect(upsertKeyMapped('customer_code', { x: 'name' }, account)).toBe(false);
    expect(upsertKeyMapped('email', { x: 'emails' }, account)).toBe(true);
    expect(upsertKeyMapped('', {}, account)).toBe(true);
  });
  it('finds the column a row error names, also through a part', () => {
    const m = { Firma: 'name', Umsatz: 'credit_limit.amount' };
    expect(columnOfField('name', m)).toBe('Firma');
    expect(columnOfField('credit_limit', m)).toBe('Umsatz');
    expect(columnOfField('city', m)).toBeNull();
    expect(columnOfField(undefined, m)).toBeNull();
  });
});

describe('toCsv', () => {
  it('writes RFC 4180 that parses back to the same cells', () => {
    const header = ['name', 'notes'];
    const rows = [
      ['Acme, Inc.', 'says "hi"'],
      ['北京', 'two\nlines'],
      [' padded ', ''],
    ];
    const csv = toCsv(header, rows);
    expect(csv.startsWith('name,notes\r\n"Acme, Inc.","says ""hi"""\r\n')).toBe(true);
    expect(parseCsvText(csv)).toEqual({ header, rows });
  });
});
