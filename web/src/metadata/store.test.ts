import { describe, expect, it } from 'vitest';
import type { EntityMeta } from '../api/types';
import { textSearchParams } from './store';

const entity = (fields: EntityMeta['fields'], extra: Partial<EntityMeta> = {}): EntityMeta =>
  ({ name: 'thing', plural: 'things', label: { en: 'Thing', 'zh-CN': '东西' }, fields, ...extra }) as EntityMeta;

describe('textSearchParams (reference pickers)', () => {
  it('uses full-text q when the entity has a searchable field', () => {
    const e = entity([{ name: 'name', type: 'text', searchable: true }] as EntityMeta['fields']);
    expect(textSearchParams(e, '  华东 ')).toEqual({ q: '华东' });
  });

  it('filters the title field by contains when nothing is searchable (roles)', () => {
    const e = entity([{ name: 'name', type: 'text' }, { name: 'permissions', type: 'json' }] as EntityMeta['fields']);
    expect(textSearchParams(e, 'Sales')).toEqual({ filter: { field: 'name', op: 'contains', value: 'Sales' } });
  });

  it('asks for the plain list when nothing is typed or there is no title to filter', () => {
    const e = entity([{ name: 'name', type: 'text' }] as EntityMeta['fields']);
    expect(textSearchParams(e, '   ')).toEqual({});
    expect(textSearchParams(entity([{ name: 'amount', type: 'integer' }] as EntityMeta['fields']), 'x')).toEqual({});
  });
});
