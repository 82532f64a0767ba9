// The filter builder's model: a tree of AND/OR groups (optionally negated) and conditions, the
// operators each field type offers, and the conversion to and from the JSON filter of docs/API.md.
import type { FieldMeta, FieldType, FilterExpr, FilterOp } from '../api/types';

export interface ConditionNode {
  kind: 'condition';
  id: number;
  field: string;
  op: FilterOp;
  /** The value as typed (strings for inputs; arrays for enum multi-selects; booleans for is_null). */
  value: unknown;
  /** Second bound for `between`. */
  value2?: unknown;
}

export interface GroupNode {
  kind: 'group';
  id: number;
  logic: 'and' | 'or';
  negate: boolean;
  children: FilterNode[];
}

export type FilterNode = ConditionNode | GroupNode;

let nextId = 1;
export const newId = (): number => nextId++;

export function emptyGroup(logic: 'and' | 'or' = 'and'): GroupNode {
  return { kind: 'group', id: newId(), logic, negate: false, children: [] };
}

export function newCondition(field = '', op: FilterOp = '=', value: unknown = ''): ConditionNode {
  return { kind: 'condition', id: newId(), field, op, value };
}

const NUMERIC: FilterOp[] = ['=', '!=', '<', '<=', '>', '>=', 'between', 'in', 'not_in', 'is_null'];
const ORDERED: FilterOp[] = ['=', '!=', '<', '<=', '>', '>=', 'between', 'is_null'];
const TEXT: FilterOp[] = ['contains', 'starts_with', '=', '!=', 'in', 'not_in', 'is_null'];

/** Operators that make sense for a field type (the first is the default). */
export function operatorsFor(type: FieldType | string): FilterOp[] {
  switch (type) {
    case 'text':
    case 'long_text':
      return TEXT;
    case 'integer':
    case 'decimal':
    case 'money':
      return NUMERIC;
    case 'date':
    case 'datetime':
      return ORDERED;
    case 'boolean':
      return ['=', 'is_null'];
    case 'enum':
      return ['=', '!=', 'in', 'not_in', 'is_null'];
    case 'multi_enum':
      return ['contains', 'is_null'];
    case 'phone_list':
    case 'email_list':
    case 'address':
      return ['contains', 'is_null'];
    case 'reference':
      return ['=', '!=', 'in', 'not_in', 'is_null'];
    case 'json':
      return ['is_null'];
    default:
      return ['=', '!=', 'is_null'];
  }
}

/** The i18n key suffix of an operator (message keys avoid symbols). */
export function opKey(op: FilterOp): string {
  const map: Partial<Record<FilterOp, string>> = { '=': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge' };
  return map[op] ?? op;
}

export const isListOp = (op: FilterOp): boolean => op === 'in' || op === 'not_in';

/** The default value of an operator's input. */
export function defaultValue(op: FilterOp, type?: string): unknown {
  if (op === 'is_null') return true;
  if (isListOp(op)) return type === 'enum' ? [] : '';
  if (type === 'boolean') return true;
  return '';
}

function splitList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter((x) => x !== '');
  return String(v ?? '')
    .split(/[,，]/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/**
 * Converts one typed scalar to the JSON value the server compares with. Returns undefined when the
 * input is empty or not a valid value of the type (the condition is then left out).
 * Money is entered in major units and sent in minor units (x100), like the stored amounts.
 */
export function coerceScalar(raw: unknown, type: string | undefined): unknown {
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw === 'string' && raw.trim() === '') return undefined;
  switch (type) {
    case 'integer': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      return Number.isInteger(n) ? n : undefined;
    }
    case 'decimal': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      return Number.isFinite(n) ? n : undefined;
    }
    case 'money': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
      return Number.isFinite(n) ? Math.round(n * 100) : undefined;
    }
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      return undefined;
    case 'datetime': {
      // datetime-local inputs give local wall time; the server stores UTC.
      const s = String(raw).trim();
      if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(s)) {
        const d = new Date(s);
        return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
      }
      return s;
    }
    default:
      return typeof raw === 'string' ? raw.trim() : raw;
  }
}

/** The JSON condition for one builder row, or null when it is incomplete. */
export function conditionToJSON(c: ConditionNode, fields?: Map<string, FieldMeta> | FieldMeta[]): FilterExpr | null {
  if (!c.field) return null;
  const map = Array.isArray(fields) ? new Map(fields.map((f) => [f.name, f])) : fields;
  const type = map?.get(c.field)?.type;
  if (c.op === 'is_null') {
    const v = c.value === false || c.value === 'false' ? false : true;
    return { field: c.field, op: 'is_null', value: v };
  }
  if (isListOp(c.op)) {
    const vals = splitList(c.value)
      .map((v) => coerceScalar(v, type))
      .filter((v) => v !== undefined);
    if (!vals.length) return null;
    return { field: c.field, op: c.op, value: vals };
  }
  if (c.op === 'between') {
    const a = coerceScalar(c.value, type);
    const b = coerceScalar(c.value2, type);
    if (a === undefined || b === undefined) return null;
    return { field: c.field, op: 'between', value: [a, b] };
  }
  const v = coerceScalar(c.value, type);
  if (v === undefined) return null;
  return { field: c.field, op: c.op, value: v };
}

/**
 * The JSON filter for a node: complete conditions only, empty groups dropped, a group of one
 * reduced to its child, a negated group wrapped in {"not": …}. Null when nothing is left.
 */
export function toFilterJSON(node: FilterNode, fields?: FieldMeta[] | Map<string, FieldMeta>): FilterExpr | null {
  const map = Array.isArray(fields) ? new Map(fields.map((f) => [f.name, f])) : fields;
  if (node.kind === 'condition') return conditionToJSON(node, map);
  const parts = node.children.map((ch) => toFilterJSON(ch, map)).filter((x): x is FilterExpr => x !== null);
  if (!parts.length) return null;
  const inner: FilterExpr = parts.length === 1 ? parts[0] : node.logic === 'or' ? { or: parts } : { and: parts };
  return node.negate ? { not: inner } : inner;
}

function scalarToInput(v: unknown, type: string | undefined): unknown {
  if (type === 'money' && typeof v === 'number') return String(v / 100);
  if (type === 'datetime' && typeof v === 'string' && /Z$|[+-]\d{2}:\d{2}$/.test(v)) {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) {
      const pad = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    }
  }
  if (typeof v === 'boolean') return v;
  return v === null || v === undefined ? '' : String(v);
}

/** Rebuilds a builder tree from a JSON filter (e.g. of a saved view). Always returns a group. */
export function fromFilterJSON(expr: unknown, fields?: FieldMeta[]): GroupNode {
  const map = new Map((fields ?? []).map((f) => [f.name, f]));
  const build = (e: unknown): FilterNode | null => {
    if (!e || typeof e !== 'object') return null;
    const o = e as Record<string, unknown>;
    if (Array.isArray(o.and) || Array.isArray(o.or)) {
      const logic = Array.isArray(o.and) ? 'and' : 'or';
      const g = emptyGroup(logic);
      g.children = ((o[logic] as unknown[]) ?? []).map(build).filter((x): x is FilterNode => x !== null);
      return g;
    }
    if ('not' in o) {
      const inner = build(o.not);
      if (!inner) return null;
      if (inner.kind === 'group' && !inner.negate) {
        inner.negate = true;
        return inner;
      }
      const g = emptyGroup('and');
      g.negate = true;
      g.children = [inner];
      return g;
    }
    if (typeof o.field === 'string' && typeof o.op === 'string') {
      const type = map.get(o.field)?.type;
      const op = o.op as FilterOp;
      const c = newCondition(o.field, op, '');
      if (op === 'is_null') c.value = o.value !== false;
      else if (isListOp(op) && Array.isArray(o.value))
        c.value = type === 'enum' ? o.value.map(String) : o.value.map((v) => scalarToInput(v, type)).join(', ');
      else if (op === 'between' && Array.isArray(o.value)) {
        c.value = scalarToInput(o.value[0], type);
        c.value2 = scalarToInput(o.value[1], type);
      } else c.value = scalarToInput(o.value, type);
      return c;
    }
    return null;
  };
  const root = build(expr);
  if (!root) return emptyGroup('and');
  if (root.kind === 'group') return root;
  const g = emptyGroup('and');
  g.children = [root];
  return g;
}

/** Number of complete conditions in a tree (shown on the filter button). */
export function countConditions(node: FilterNode, fields?: FieldMeta[]): number {
  if (node.kind === 'condition') return conditionToJSON(node, fields) ? 1 : 0;
  return node.children.reduce((n, ch) => n + countConditions(ch, fields), 0);
}
