// Client-side checks of a form value against its field metadata, and the mapping of a server
// problem (problem+json with `field`) to a message in the user's language on that field.
import type { ApiError } from '../api/client';
import type { FieldMeta } from '../api/types';

/** A message to show: an i18n key with parameters, or literal text from the server. */
export interface FieldMessage {
  key?: string;
  params?: Record<string, unknown>;
  text?: string;
}

export type Translate = (key: string, params?: Record<string, unknown>) => string;
export type HasKey = (key: string) => boolean;

export function isEmptyValue(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'string') return v.trim() === '';
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('amount' in o && 'currency' in o) return o.amount === null || o.amount === undefined || o.amount === '';
    return Object.values(o).every((x) => isEmptyValue(x));
  }
  return false;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE_RE = /^\+?[0-9 ()\-.]{3,}([ ]*(x|ext\.?)[ ]*\d+)?$/i;

function listItemValue(item: unknown): string {
  if (item && typeof item === 'object') return String((item as Record<string, unknown>).value ?? '');
  return String(item ?? '');
}

function codePoints(s: string): number {
  return [...s].length;
}

/** Whether the field's required_when condition holds for the record's (form's) values. */
export function conditionHolds(field: FieldMeta, values: Record<string, unknown> | undefined): boolean {
  const rw = field.required_when;
  if (!rw || !values) return false;
  const v = values[rw.field];
  return v !== null && v !== undefined && JSON.stringify(v) === JSON.stringify(rw.equals);
}

/** Whether the field must have a value: always, or while its required_when condition holds. */
export function isRequired(field: FieldMeta, values?: Record<string, unknown>): boolean {
  return !!field.required || conditionHolds(field, values);
}

export interface ValidateOptions {
  creating?: boolean;
  /** The whole record's values, for conditional requirements (required_when). */
  values?: Record<string, unknown>;
  /** The condition's field and value as the user reads them (label, formatted value). */
  describeCondition?: (field: FieldMeta) => { field: string; value: string };
}

/** Checks one value; returns the first problem found, or null. */
export function validateField(field: FieldMeta, value: unknown, opts: ValidateOptions = {}): FieldMessage | null {
  if (field.required && isEmptyValue(value)) {
    // A password field the form adds for users is only required when creating.
    if (!(field.name === 'password' && !opts.creating)) return { key: 'errors.required' };
  }
  if (!field.required && isEmptyValue(value) && conditionHolds(field, opts.values)) {
    const rw = field.required_when!;
    const params = opts.describeCondition?.(field) ?? { field: rw.field, value: JSON.stringify(rw.equals) };
    return { key: 'errors.requiredWhen', params };
  }
  if (isEmptyValue(value)) return null;
  switch (field.type) {
    case 'text':
    case 'long_text': {
      const s = String(value);
      if (field.max_length && codePoints(s) > field.max_length) {
        return { key: 'errors.max_length', params: { max: field.max_length } };
      }
      if (field.pattern) {
        let re: RegExp | null = null;
        try {
          re = new RegExp(field.pattern, 'u');
        } catch {
          re = null; // a pattern JavaScript cannot read is left to the server
        }
        if (re && !re.test(s)) return { key: 'errors.pattern' };
      }
      return null;
    }
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? null : { key: 'errors.integer' };
    case 'decimal':
      return typeof value === 'number' && Number.isFinite(value) ? null : { key: 'errors.number' };
    case 'money': {
      const m = value as { amount?: unknown; currency?: unknown };
      if (typeof m.amount !== 'number' || !Number.isFinite(m.amount)) return { key: 'errors.number' };
      if (typeof m.currency !== 'string' || !/^[A-Z]{3}$/.test(m.currency)) return { key: 'errors.currency' };
      return null;
    }
    case 'email_list': {
      const list = Array.isArray(value) ? value : [];
      return list.every((it) => EMAIL_RE.test(listItemValue(it).trim())) ? null : { key: 'errors.email' };
    }
    case 'phone_list': {
      const list = Array.isArray(value) ? value : [];
      return list.every((it) => PHONE_RE.test(listItemValue(it).trim())) ? null : { key: 'errors.phone' };
    }
    case 'json':
      return value === INVALID_JSON ? { key: 'errors.json' } : null;
    default:
      return null;
  }
}

/** Marker a JSON textarea emits while its text does not parse. */
export const INVALID_JSON = Symbol('invalid-json');

/** Validates all fields; returns a map field name → message. */
export function validateAll(
  fields: FieldMeta[],
  values: Record<string, unknown>,
  opts: ValidateOptions = {},
): Record<string, FieldMessage> {
  const out: Record<string, FieldMessage> = {};
  for (const f of fields) {
    const m = validateField(f, values[f.name], { values, ...opts });
    if (m) out[f.name] = m;
  }
  return out;
}

/**
 * The message for a server error: the i18n text of its code (errors.codes.<code>), or the server's
 * detail when the code has no translation. For field errors (validation_failed, duplicate, …) the
 * server's detail is usually the more specific text, so it is shown after the translated code when
 * the UI language is the server's language (English); in Chinese the translated code is shown and
 * the detail is kept as a tooltip by the caller.
 */
export function problemMessage(err: Pick<ApiError, 'code' | 'detail' | 'title'>, t: Translate, te: HasKey): string {
  const key = `errors.codes.${err.code}`;
  if (err.code && te(key)) return t(key);
  return err.detail || err.title || err.code || t('errors.codes.internal');
}

/** The field-level message for a server problem naming a field, or null when no field is named. */
export function problemToFieldMessage(err: Pick<ApiError, 'code' | 'detail' | 'title' | 'field'>): {
  field: string;
  message: FieldMessage;
} | null {
  if (!err.field) return null;
  return { field: err.field, message: { key: `errors.codes.${err.code}`, text: err.detail || err.title || '' } };
}

/** Renders a FieldMessage: its key when translatable, else its literal text. */
export function renderMessage(m: FieldMessage, t: Translate, te: HasKey): string {
  if (m.key && te(m.key)) {
    const base = t(m.key, m.params);
    return base;
  }
  return m.text || (m.key ? m.key : '');
}
