// Display formatting of field values by type, in the user's locale.
import type { Address, FieldMeta, ListItemValue, Money } from '../api/types';
import { optionLabel } from '../metadata/store';

export function formatMoney(m: Money | null | undefined, locale: string): string {
  if (!m || typeof m.amount !== 'number') return '';
  const currency = m.currency || 'CNY';
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(m.amount / 10 ** digits);
  } catch {
    return `${(m.amount / 100).toFixed(2)} ${currency}`;
  }
}

export function formatDateTime(v: unknown, locale: string): string {
  if (typeof v !== 'string' || !v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return v;
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

export function formatDate(v: unknown, locale: string): string {
  if (typeof v !== 'string' || !v) return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (!m) return v;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium' }).format(d);
}

export function listItems(v: unknown): ListItemValue[] {
  if (!Array.isArray(v)) return [];
  return v.map((it) =>
    it && typeof it === 'object'
      ? { value: String((it as ListItemValue).value ?? ''), label: (it as ListItemValue).label }
      : { value: String(it ?? '') },
  );
}

export function formatAddress(a: Address | null | undefined): string {
  if (!a || typeof a !== 'object') return '';
  return [a.street, a.city, a.region, a.postal_code, a.country].filter((x) => x && String(x).trim()).join(', ');
}

/** Plain-text rendering of a value (references show their id; components resolve titles). */
export function formatValue(
  field: FieldMeta | undefined,
  v: unknown,
  locale: string,
  yesNo: [string, string] = ['Yes', 'No'],
): string {
  if (v === null || v === undefined || v === '') return '';
  if (!field) return typeof v === 'object' ? JSON.stringify(v) : String(v);
  switch (field.type) {
    case 'money':
      return formatMoney(v as Money, locale);
    case 'boolean':
      return v ? yesNo[0] : yesNo[1];
    case 'date':
      return formatDate(v, locale);
    case 'datetime':
      return formatDateTime(v, locale);
    case 'enum':
      return optionLabel(field, v, locale);
    case 'multi_enum':
      return Array.isArray(v) ? v.map((x) => optionLabel(field, x, locale)).join(', ') : String(v);
    case 'phone_list':
    case 'email_list':
      return listItems(v)
        .map((i) => (i.label ? `${i.value} (${i.label})` : i.value))
        .join(', ');
    case 'address':
      return formatAddress(v as Address);
    case 'integer':
    case 'decimal':
      return typeof v === 'number' ? new Intl.NumberFormat(locale, { maximumFractionDigits: 10 }).format(v) : String(v);
    case 'json':
      return JSON.stringify(v);
    default:
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
}

/** Debounce for as-you-type inputs. */
export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): ((...args: A) => void) & {
  cancel: () => void;
} {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const d = (...args: A) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
  d.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return d;
}

