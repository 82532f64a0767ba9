// The filter builder's JSON output: every operator kind, and/or/not groups, and the round trip.
import { describe, expect, it } from 'vitest';
import type { FieldMeta } from '../api/types';
import {
  conditionToJSON,
  countConditions,
  emptyGroup,
  fromFilterJSON,
  newCondition,
  operatorsFor,
  toFilterJSON,
  type GroupNode,
} from './filter';

const fields: FieldMeta[] = [
  { name: 'name', type: 'text', indexed: true },
  { name: 'employees', type: 'integer' },
  { name: 'rating', type: 'decimal' },
  { name: 'credit_limit', type: 'money' },
  { name: 'active', type: 'boolean' },
  { name: 'founded', type: 'date' },
  { name: 'last_contact', type: 'datetime' },
  {
    name: 'tier',
    type: 'enum',
    options: [{ value: 'gold' }, { value: 'silver' }],
  },
  { name: 'tags', type: 'multi_enum', options: [{ value: 'vip' }] },
  { name: 'phones', type: 'phone_list' },
  { name: 'account_id', type: 'reference', reference: 'account' },
  { name: 'extra', type: 'json' },
];

const group = (logic: 'and' | 'or', ...children: GroupNode['children']): GroupNode => {
  const g = emptyGroup(logic);
  g.children = children;
  return g;
};

describe('conditions per operator kind', () => {
  it('text contains / starts_with / equals', () => {
    expect(conditionToJSON(newCondition('name', 'contains', ' 北京 '), fields)).toEqual({
      field: 'name',
      op: 'contains',
      value: '北京',
    });
    expect(conditionToJSON(newCondition('name', 'starts_with', 'Acme'), fields)).toEqual({
      field: 'name',
      op: 'starts_with',
      value: 'Acme',
    });
    expect(conditionToJSON(newCondition('name', '!=', 'x'), fields)).toEqual({ field: 'name', op: '!=', value: 'x' });
  });

  it('comparison operators convert numbers', () => {
    for (const op of ['=', '<', '<=', '>', '>='] as const) {
      expect(conditionToJSON(newCondition('employees', op, '42'), fields)).toEqual({
        field: 'employees',
        op,
        value: 42,
      });
    }
    expect(conditionToJSON(newCondition('rating', '>=', '4.5'), fields)).toEqual({
      field: 'rating',
      op: '>=',
      value: 4.5,
    });
  });

  it('rejects a non-integer for an integer field', () => {
    expect(conditionToJSON(newCondition('employees', '=', '4.5'), fields)).toBeNull();
    expect(conditionToJSON(newCondition('employees', '=', 'abc'), fields)).toBeNull();
  });

  it('money is typed in major units and sent in minor units', () => {
    expect(conditionToJSON(newCondition('credit_limit', '>', '1000.5'), fields)).toEqual({
      field: 'credit_limit',
      op: '>',
      value: 100050,
    });
  });

  it('in / not_in take arrays from comma-separated input (also the Chinese comma)', () => {
    expect(conditionToJSON(newCondition('name', 'in', 'a, b，c,,'), fields)).toEqual({
      field: 'name',
      op: 'in',
      value: ['a', 'b', 'c'],
    });
    expect(conditionToJSON(newCondition('employees', 'not_in', '1,2'), fields)).toEqual({
      field: 'employees',
      op: 'not_in',
      value: [1, 2],
    });
    expect(conditionToJSON(newCondition('tier', 'in', ['gold', 'silver']), fields)).toEqual({
      field: 'tier',
      op: 'in',
      value: ['gold', 'silver'],
    });
    expect(conditionToJSON(newCondition('name', 'in', ''), fields)).toBeNull();
  });

  it('between takes a two-element array', () => {
    const c = newCondition('founded', 'between', '2020-01-01');
    c.value2 = '2020-12-31';
    expect(conditionToJSON(c, fields)).toEqual({ field: 'founded', op: 'between', value: ['2020-01-01', '2020-12-31'] });
    c.value2 = '';
    expect(conditionToJSON(c, fields)).toBeNull();
  });

  it('is_null takes a boolean', () => {
    expect(conditionToJSON(newCondition('phones', 'is_null', true), fields)).toEqual({
      field: 'phones',
      op: 'is_null',
      value: true,
    });
    expect(conditionToJSON(newCondition('phones', 'is_null', false), fields)).toEqual({
      field: 'phones',
      op: 'is_null',
      value: false,
    });
  });

  it('booleans, references and datetimes', () => {
    expect(conditionToJSON(newCondition('active', '=', 'false'), fields)).toEqual({
      field: 'active',
      op: '=',
      value: false,
    });
    expect(conditionToJSON(newCondition('account_id', '=', '7300000000000000001'), fields)).toEqual({
      field: 'account_id',
      op: '=',
      value: '7300000000000000001',
    });
    const dt = conditionToJSON(newCondition('last_contact', '>=', '2024-05-01T08:30'), fields) as {
      value: string;
    };
    expect(dt.value).toBe(new Date('2024-05-01T08:30').toISOString());
  });

  it('skips incomplete rows', () => {
    expect(conditionToJSON(newCondition('', '=', 'x'), fields)).toBeNull();
    expect(conditionToJSON(newCondition('name', 'contains', '   '), fields)).toBeNull();
  });
});

describe('groups', () => {
  it('AND of two conditions', () => {
    const g = group('and', newCondition('name', 'contains', '北京'), newCondition('employees', '>', '10'));
    expect(toFilterJSON(g, fields)).toEqual({
      and: [
        { field: 'name', op: 'contains', value: '北京' },
        { field: 'employees', op: '>', value: 10 },
      ],
    });
  });

  it('OR of two conditions', () => {
    const g = group('or', newCondition('tier', '=', 'gold'), newCondition('tier', '=', 'silver'));
    expect(toFilterJSON(g, fields)).toEqual({
      or: [
        { field: 'tier', op: '=', value: 'gold' },
        { field: 'tier', op: '=', value: 'silver' },
      ],
    });
  });

  it('NOT wraps a negated group', () => {
    const g = group('or', newCondition('tier', '=', 'gold'), newCondition('active', '=', true));
    g.negate = true;
    expect(toFilterJSON(g, fields)).toEqual({
      not: {
        or: [
          { field: 'tier', op: '=', value: 'gold' },
          { field: 'active', op: '=', value: true },
        ],
      },
    });
  });

  it('nested groups: a AND (b OR NOT c)', () => {
    const inner = group('or', newCondition('tier', '=', 'gold'));
    const notC = group('and', newCondition('active', '=', true));
    notC.negate = true;
    inner.children.push(notC);
    const root = group('and', newCondition('name', 'starts_with', 'A'), inner);
    expect(toFilterJSON(root, fields)).toEqual({
      and: [
        { field: 'name', op: 'starts_with', value: 'A' },
        { or: [{ field: 'tier', op: '=', value: 'gold' }, { not: { field: 'active', op: '=', value: true } }] },
      ],
    });
    expect(countConditions(root, fields)).toBe(3);
  });

  it('a group of one is its child; empty groups and incomplete rows vanish', () => {
    const root = group('and', newCondition('name', 'contains', 'x'), group('or'), newCondition('', '=', ''));
    expect(toFilterJSON(root, fields)).toEqual({ field: 'name', op: 'contains', value: 'x' });
    expect(toFilterJSON(group('and'), fields)).toBeNull();
    expect(toFilterJSON(group('or', group('and', newCondition('name', 'in', ''))), fields)).toBeNull();
  });
});

describe('operators by type', () => {
  it('offers type-appropriate operators', () => {
    expect(operatorsFor('text')).toContain('contains');
    expect(operatorsFor('text')).not.toContain('between');
    expect(operatorsFor('integer')).toEqual(expect.arrayContaining(['<', '>=', 'between', 'in']));
    expect(operatorsFor('date')).toContain('between');
    expect(operatorsFor('boolean')).toEqual(['=', 'is_null']);
    expect(operatorsFor('enum')).toEqual(expect.arrayContaining(['in', 'not_in']));
    expect(operatorsFor('json')).toEqual(['is_null']);
    for (const t of ['text', 'integer', 'date', 'boolean', 'enum', 'phone_list', 'reference', 'money']) {
      expect(operatorsFor(t)).toContain('is_null');
    }
  });
});

describe('round trip from saved JSON', () => {
  it('rebuilds the same JSON', () => {
    const json = {
      and: [
        { field: 'name', op: 'contains', value: '上海' },
        { field: 'credit_limit', op: 'between', value: [10000, 50000] },
        { not: { or: [{ field: 'tier', op: 'in', value: ['gold'] }, { field: 'phones', op: 'is_null', value: true }] } },
      ],
    };
    const tree = fromFilterJSON(json, fields);
    expect(toFilterJSON(tree, fields)).toEqual(json);
  });

  it('wraps a single condition and tolerates garbage', () => {
    const tree = fromFilterJSON({ field: 'employees', op: 'in', value: [1, 2] }, fields);
    expect(tree.kind).toBe('group');
    expect(toFilterJSON(tree, fields)).toEqual({ field: 'employees', op: 'in', value: [1, 2] });
    expect(toFilterJSON(fromFilterJSON('nonsense', fields), fields)).toBeNull();
    expect(toFilterJSON(fromFilterJSON(null, fields), fields)).toBeNull();
  });
});
