// Pure helpers of the import wizard (/:plural/import): reading a CSV or .xlsx file into a header and
// rows, the mapping targets an entity offers, matching headers to fields by name or label (en and
// zh-CN, folded like the server does), writing the rows back as RFC 4180 CSV for the server's
// import API, and the upsert keys. The server does the real work (docs/API.md "Import").
import Papa from 'papaparse';
import type { EntityMeta, FieldMeta } from '../api/types';
import { SYSTEM_FIELDS, fieldLabel } from '../metadata/store';

export interface Table {
  header: string[];
  rows: string[][];
}

/** A place a column can go: a field, or a part of a money or address field. */
export interface Target {
  value: string; // "name", "annual_revenue.amount", "address.city"
  field: FieldMeta;
  part: string; // "" for the whole field
}

export const MONEY_PARTS = ['amount', 'currency'];
export const ADDRESS_PARTS = ['street', 'city', 'region', 'postal_code', 'country'];

/** Header cells as the server reads them: trimmed, an empty one is "column N". */
export function normalizeHeader(header: string[]): string[] {
  return header.map((h, i) => {
    const t = String(h ?? '')
      .replace(/^[\s\u3000]+|[\s\u3000]+$/g, '')
      .trim();
    return t || `column ${i + 1}`;
  });
}

/** Drops rows whose cells are all empty (the server skips blank lines; numbering stays aligned). */
export function dropBlankRows(rows: string[][]): string[][] {
  return rows.filter((r) => r.some((c) => String(c ?? '').trim() !== ''));
}

/** Parses CSV text (delimiter `,` `;` or tab detected, quotes per RFC 4180). */
export function parseCsvText(text: string): Table {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const res = Papa.parse<string[]>(body, {
    delimiter: '', // auto-detect
    delimitersToGuess: [',', ';', '\t'],
    skipEmptyLines: 'greedy',
  });
  const data = res.data.map((r) => r.map((c) => String(c ?? '')));
  if (!data.length) return { header: [], rows: [] };
  const [header, ...rows] = data;
  return { header: normalizeHeader(header), rows: dropBlankRows(rows) };
}

/** Decodes file bytes: UTF-8 (BOM stripped) unless an encoding is chosen; GBK/GB2312 read as GB18030. */
export function decodeBytes(bytes: ArrayBuffer | Uint8Array, encoding = ''): string {
  const enc = !encoding || encoding === 'utf-8' ? 'utf-8' : 'gb18030';
  return new TextDecoder(enc, { fatal: enc === 'utf-8' }).decode(bytes);
}

/** Whether UTF-8 decoding fails (then the wizard asks for GB18030). */
export function isValidUtf8(bytes: ArrayBuffer | Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/**
 * The text of one spreadsheet cell value as exceljs gives it: numbers and booleans as written,
 * dates as YYYY-MM-DD (or with the time when it is not midnight), rich text joined, formulas by
 * their result, hyperlinks by their text.
 */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(15)));
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) {
    const d = `${v.getUTCFullYear()}-${pad(v.getUTCMonth() + 1)}-${pad(v.getUTCDate())}`;
    if (v.getUTCHours() === 0 && v.getUTCMinutes() === 0 && v.getUTCSeconds() === 0) return d;
    return `${d}T${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}Z`;
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.richText)) return (o.richText as { text?: string }[]).map((p) => p.text ?? '').join('');
    if ('result' in o) return cellText(o.result);
    if ('text' in o) return cellText(o.text);
    if ('error' in o) return '';
  }
  return String(v);
}

/** The first worksheet of an .xlsx workbook as a table (read with exceljs, loaded on demand). */
export async function readXlsx(bytes: ArrayBuffer): Promise<Table> {
  const ExcelJS = (await import('exceljs')).default;
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(bytes);
  const ws = wb.worksheets[0];
  if (!ws) return { header: [], rows: [] };
  const grid: string[][] = [];
  let width = 0;
  ws.eachRow({ includeEmpty: true }, (row, n) => {
    const cells: string[] = [];
    row.eachCell({ includeEmpty: true }, (cell, c) => {
      cells[c - 1] = cellText(cell.value);
    });
    for (let i = 0; i < cells.length; i++) if (cells[i] === undefined) cells[i] = '';
    grid[n - 1] = cells;
    width = Math.max(width, cells.length);
  });
  for (let i = 0; i < grid.length; i++) if (!grid[i]) grid[i] = [];
  const first = grid.findIndex((r) => r.some((c) => c.trim() !== ''));
  if (first < 0) return { header: [], rows: [] };
  const header = grid[first];
  // Trailing empty header cells are not columns.
  let cols = header.length;
  while (cols > 0 && header[cols - 1].trim() === '') cols--;
  width = cols;
  const fit = (r: string[]) => Array.from({ length: width }, (_, i) => r[i] ?? '');
  return { header: normalizeHeader(fit(header)), rows: dropBlankRows(grid.slice(first + 1).map(fit)) };
}

function csvCell(s: string): string {
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV (comma, CRLF), UTF-8 text; the server reads it back cell for cell. */
export function toCsv(header: string[], rows: string[][]): string {
  const lines = [header, ...rows].map((r) => r.map((c) => csvCell(String(c ?? ''))).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** Where columns can go for this user: writable declared fields and money/address parts. */
export function importTargets(entity: EntityMeta): Target[] {
  const out: Target[] = [];
  for (const f of entity.fields) {
    if (f.readonly || f.permission === 'read' || f.permission === 'hidden') continue;
    if ((SYSTEM_FIELDS as readonly string[]).includes(f.name) && f.name !== 'owner_id' && f.name !== 'team_id') continue;
    out.push({ value: f.name, field: f, part: '' });
    const parts = f.type === 'money' ? MONEY_PARTS : f.type === 'address' ? ADDRESS_PARTS : [];
    for (const p of parts) out.push({ value: `${f.name}.${p}`, field: f, part: p });
  }
  return out;
}

/** Case- and width-folded text for matching headers (like the server's text::fold, for ASCII and CJK). */
export function fold(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[\s_\-.:：]+/g, ' ').trim();
}

/**
 * The target each header goes to by default: a field whose name, English or Chinese label equals
 * the header (folded), or `name.part` written out; "" when nothing matches. A target is used once.
 */
export function autoMatch(header: string[], entity: EntityMeta): Record<string, string> {
  const targets = importTargets(entity);
  const byKey = new Map<string, string>();
  for (const t of targets) {
    const keys: string[] = [t.value];
    if (!t.part) {
      keys.push(t.field.name, fieldLabel(t.field, 'en'), fieldLabel(t.field, 'zh-CN'));
    }
    for (const k of keys) if (k && !byKey.has(fold(k))) byKey.set(fold(k), t.value);
  }
  const used = new Set<string>();
  const out: Record<string, string> = {};
  for (const h of header) {
    const t = byKey.get(fold(h)) ?? '';
    out[h] = t && !used.has(t) ? t : '';
    if (out[h]) used.add(out[h]);
  }
  return out;
}

/** A saved template's mapping applied to this file's headers; headers it does not name keep `base`. */
export function applyTemplate(
  header: string[],
  templateMapping: unknown,
  base: Record<string, string>,
  entity: EntityMeta,
): Record<string, string> {
  const valid = new Set(importTargets(entity).map((t) => t.value));
  const m = typeof templateMapping === 'string' ? safeJson(templateMapping) : templateMapping;
  const out = { ...base };
  if (!m || typeof m !== 'object' || Array.isArray(m)) return out;
  for (const h of header) {
    const v = (m as Record<string, unknown>)[h];
    if (typeof v === 'string' && (v === '' || valid.has(v))) out[h] = v;
  }
  return out;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

/** Targets chosen more than once (the server refuses that): target → headers. */
export function duplicateTargets(mapping: Record<string, string>): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const [h, t] of Object.entries(mapping)) if (t) (by[t] ??= []).push(h);
  return Object.fromEntries(Object.entries(by).filter(([, hs]) => hs.length > 1));
}

/** Keys an import can update on: unique text fields, and `email` when the entity has an e-mail list. */
export function upsertKeys(entity: EntityMeta): string[] {
  const keys = entity.fields
    .filter((f) => f.unique && f.type === 'text' && !f.readonly && f.permission !== 'read')
    .map((f) => f.name);
  if (entity.fields.some((f) => f.type === 'email_list' && f.permission !== 'read')) keys.push('email');
  return keys;
}

/** Whether the upsert key's column is mapped (the server requires it). */
export function upsertKeyMapped(key: string, mapping: Record<string, string>, entity: EntityMeta): boolean {
  if (!key) return true;
  const field = key === 'email' ? entity.fields.find((f) => f.type === 'email_list')?.name : key;
  return Object.values(mapping).some((t) => t === field);
}

/** The file's column a server error names (the column mapped to the field or one of its parts). */
export function columnOfField(field: string | undefined | null, mapping: Record<string, string>): string | null {
  if (!field) return null;
  for (const [h, t] of Object.entries(mapping)) if (t === field) return h;
  for (const [h, t] of Object.entries(mapping)) if (t.startsWith(field + '.')) return h;
  return null;
}
