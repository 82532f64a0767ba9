// Chart data from aggregate answers: labels from the metadata, enum order, null and booleans,
// monthly series with empty months filled, and the list filters a chart element opens.
import { describe, expect, it } from 'vitest';
import type { FieldMeta } from '../api/types';
import { barFilter, chartableFields, filterFor, monthFilter, narrow, monthRange, monthsBefore, slices, stacked, valueLabel, type AggregateAnswer } from './aggregate';

const words = { none: '(none)', yes: 'Yes', no: 'No' };
const tier: FieldMeta = {
  name: 'tier',
  type: 'enum',
  options: [
    { value: 'A', label: { en: 'Tier A', 'zh-CN': 'A 级' } },
    { value: 'B', label: { en: 'Tier B', 'zh-CN': 'B 级' } },
    { value: 'C', label: { en: 'Tier C', 'zh-CN': 'C 级' } },
  ],
};
const channel: FieldMeta = {
  name: 'channel',
  type: 'enum',
  options: [
    { value: 'visit', label: { en: 'Visit', 'zh-CN': '拜访' } },
    { value: 'phone', label: { en: 'Phone', 'zh-CN': '电话' } },
  ],
};

describe('slices', () => {
  const answer: AggregateAnswer = {
    entity: 'account',
    group_by: ['tier'],
    bucket: null,
    groups: [
      { values: ['B'], count: 5 },
      { values: [null], count: 3 },
      { values: ['A'], count: 2 },
    ],
    total: 10,
    truncated: false,
  };
  it('labels enum values in the UI language, in option order, "(none)" last', () => {
    expect(slices(answer, tier, 'zh-CN', words)).toEqual([
      { value: 'A', label: 'A 级', count: 2 },
      { value: 'B', label: 'B 级', count: 5 },
      { value: null, label: '(none)', count: 3 },
    ]);
  });
  it('keeps the server order (largest first) for other fields; booleans as yes/no', () => {
    const f: FieldMeta = { name: 'key_account', type: 'boolean' };
    const a = { ...answer, groups: [{ values: [true], count: 4 }, { values: [false], count: 1 }] };
    expect(slices(a, f, 'en', words).map((s) => s.label)).toEqual(['Yes', 'No']);
    expect(valueLabel({ name: 'city', type: 'text' }, '北京', 'en', words)).toBe('北京');
  });
});

describe('months', () => {
  it('lists every month of a range across a year end', () => {
    expect(monthRange('2025-11', '2026-02')).toEqual(['2025-11', '2025-12', '2026-01', '2026-02']);
    expect(monthsBefore(new Date(Date.UTC(2026, 1, 15)), 11)).toBe('2025-03');
  });
  it('stacks channel per month, filling months without records with 0', () => {
    const a: AggregateAnswer = {
      entity: 'interaction',
      group_by: ['channel', 'occurred_at'],
      bucket: 'month',
      groups: [
        { values: ['phone', '2026-01'], count: 2 },
        { values: ['visit', '2026-03'], count: 1 },
        { values: ['phone', '2026-03'], count: 4 },
      ],
      total: 7,
      truncated: false,
    };
    expect(stacked(a, channel, 'en', words, { from: '2025-12', to: '2026-03' })).toEqual({
      periods: ['2025-12', '2026-01', '2026-02', '2026-03'],
      series: [
        { value: 'visit', label: 'Visit', data: [0, 0, 0, 1] },
        { value: 'phone', label: 'Phone', data: [0, 2, 0, 4] },
      ],
    });
    expect(stacked(a, channel, 'en', words).periods).toEqual(['2026-01', '2026-02', '2026-03']);
  });
});

describe('filters of chart elements', () => {
  it('a value, a missing value, a month', () => {
    expect(filterFor('tier', 'A')).toEqual({ field: 'tier', op: '=', value: 'A' });
    expect(filterFor('tier', null)).toEqual({ field: 'tier', op: 'is_null', value: true });
    expect(monthFilter('occurred_at', '2026-12')).toEqual({
      and: [
        { field: 'occurred_at', op: '>=', value: '2026-12-01T00:00:00Z' },
        { field: 'occurred_at', op: '<', value: '2027-01-01T00:00:00Z' },
      ],
    });
  });
});

describe('list charts', () => {
  it('offer enum, boolean and date fields', () => {
    const fields: FieldMeta[] = [tier, { name: 'name', type: 'text' }, { name: 'key_account', type: 'boolean' }, { name: 'founded', type: 'date' }, { name: 'updated_at', type: 'datetime' }];
    expect(chartableFields(fields).map((f) => f.name)).toEqual(['tier', 'key_account', 'founded']);
  });
  it('a bar narrows the current filter to its value or month', () => {
    expect(barFilter(tier, 'A')).toEqual({ field: 'tier', op: '=', value: 'A' });
    expect(barFilter({ name: 'founded', type: 'date' }, '2024-02')).toEqual({
      and: [
        { field: 'founded', op: '>=', value: '2024-02-01' },
        { field: 'founded', op: '<', value: '2024-03-01' },
      ],
    });
    const city = { field: 'city', op: '=', value: '北京' } as const;
    expect(narrow(null, barFilter(tier, null))).toEqual({ field: 'tier', op: 'is_null', value: true });
    expect(narrow(city, barFilter(tier, 'B'))).toEqual({ and: [city, { field: 'tier', op: '=', value: 'B' }] });
  });
});
