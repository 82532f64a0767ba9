// Charts from GET /{plural}/aggregate answers: series for ECharts (a bar or pie of one field, a
// stacked bar of a field per period), labels from the metadata, and the list filter a chart
// element stands for (so a bar or a row of the data table opens the matching records).
import type { AggregateAnswer, AggValue, FieldMeta, FilterExpr } from '../api/types';
import { optionLabel } from '../metadata/store';

export type { AggregateAnswer, AggValue };

/** The text shown for a group value: option labels for enums, yes/no, "(none)" for null. */
export function valueLabel(
  field: FieldMeta | undefined,
  v: AggValue,
  locale: string,
  words: { none: string; yes: string; no: string },
): string {
  if (v === null || v === '') return words.none;
  if (typeof v === 'boolean') return v ? words.yes : words.no;
  if (field && (field.type === 'enum' || field.type === 'multi_enum')) return optionLabel(field, v, locale);
  return String(v);
}

export interface Slice {
  value: AggValue;
  label: string;
  count: number;
}

/** One field's groups as slices: enum fields in the order of their options, others largest first. */
export function slices(
  answer: AggregateAnswer,
  field: FieldMeta | undefined,
  locale: string,
  words: { none: string; yes: string; no: string },
): Slice[] {
  const out = answer.groups.map((g) => ({ value: g.values[0], label: valueLabel(field, g.values[0], locale, words), count: g.count }));
  if (field?.type === 'enum' && field.options) {
    const order = new Map(field.options.map((o, i) => [o.value, i]));
    const rank = (v: AggValue) => (v === null ? Number.MAX_SAFE_INTEGER : (order.get(String(v)) ?? order.size));
    out.sort((a, b) => rank(a.value) - rank(b.value));
  }
  return out;
}

/** The months from `from` to `to` (YYYY-MM), inclusive, so empty months show as gaps. */
export function monthRange(from: string, to: string): string[] {
  const out: string[] = [];
  let [y, m] = from.split('-').map(Number);
  const [ty, tm] = to.split('-').map(Number);
  for (let i = 0; i < 600 && (y < ty || (y === ty && m <= tm)); i++) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m++;
    if (m > 12) {
      m = 1;
      y++;
    }
  }
  return out;
}

/** The month `n` months before `d` (UTC), as YYYY-MM. */
export function monthsBefore(d: Date, n: number): string {
  const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - n, 1));
  return `${x.getUTCFullYear()}-${String(x.getUTCMonth() + 1).padStart(2, '0')}`;
}

export interface StackedSeries {
  periods: string[];
  series: { value: AggValue; label: string; data: number[] }[];
}

/**
 * Groups of (category, period) as one series per category over every period from the first to
 * `last` (or the last with data). Categories in option order for enums.
 */
export function stacked(
  answer: AggregateAnswer,
  category: FieldMeta | undefined,
  locale: string,
  words: { none: string; yes: string; no: string },
  range?: { from: string; to: string },
): StackedSeries {
  const periods = new Set<string>();
  const cats = new Map<string, AggValue>();
  for (const g of answer.groups) {
    cats.set(JSON.stringify(g.values[0]), g.values[0]);
    if (g.values[1] !== null) periods.add(String(g.values[1]));
  }
  const sorted = [...periods].sort();
  const axis =
    range && answer.bucket === 'month'
      ? monthRange(range.from, range.to)
      : answer.bucket === 'month' && sorted.length
        ? monthRange(sorted[0], sorted[sorted.length - 1])
        : sorted;
  let catValues = [...cats.values()];
  if (category?.type === 'enum' && category.options) {
    const order = new Map(category.options.map((o, i) => [o.value, i]));
    catValues = catValues.sort((a, b) => (order.get(String(a)) ?? 99) - (order.get(String(b)) ?? 99));
  }
  const index = new Map(axis.map((p, i) => [p, i]));
  const series = catValues.map((c) => {
    const data = axis.map(() => 0);
    for (const g of answer.groups) {
      if (JSON.stringify(g.values[0]) !== JSON.stringify(c)) continue;
      const i = index.get(String(g.values[1]));
      if (i !== undefined) data[i] += g.count;
    }
    return { value: c, label: valueLabel(category, c, locale, words), data };
  });
  return { periods: axis, series };
}

/** The list filter of one group value of a field (null → is_null). */
export function filterFor(field: string, v: AggValue): FilterExpr {
  if (v === null) return { field, op: 'is_null', value: true };
  return { field, op: '=', value: v };
}

/** The list filter of a month of a date or date-time field: [first day, first day of the next month). */
export function monthFilter(field: string, month: string, dateOnly = false): FilterExpr {
  const [y, m] = month.split('-').map(Number);
  const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
  const start = (ym: string) => (dateOnly ? `${ym}-01` : `${ym}-01T00:00:00Z`);
  return {
    and: [
      { field, op: '>=', value: start(month) },
      { field, op: '<', value: start(next) },
    ],
  };
}

/** Fields a list can be charted by: choices (enum), yes/no, and dates by month. */
export function chartableFields(fields: FieldMeta[]): FieldMeta[] {
  return fields.filter((f) => ['enum', 'boolean', 'date', 'datetime'].includes(f.type) && f.name !== 'updated_at');
}

/** The filter of one bar of a list chart: a value, or a month of a date field. */
export function barFilter(field: FieldMeta, v: AggValue): FilterExpr {
  if ((field.type === 'date' || field.type === 'datetime') && typeof v === 'string')
    return monthFilter(field.name, v, field.type === 'date');
  return filterFor(field.name, v);
}

/** The current list filter narrowed by a chart element's filter. */
export function narrow(current: FilterExpr | null, extra: FilterExpr): FilterExpr {
  return current ? { and: [current, extra] } : extra;
}
