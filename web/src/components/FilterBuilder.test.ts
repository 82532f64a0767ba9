// The filter builder UI: choosing field → operator → value and AND/OR/NOT emits the API's JSON.
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import { reactive } from 'vue';
import type { FieldMeta } from '../api/types';
import { emptyGroup, type GroupNode } from '../filter/filter';
import { makeI18n } from '../i18n';
import FilterBuilder from './FilterBuilder.vue';

const fields: FieldMeta[] = [
  { name: 'name', type: 'text', label: { en: 'Name', 'zh-CN': '名称' } },
  { name: 'employees', type: 'integer', label: { en: 'Employees', 'zh-CN': '员工数' } },
  {
    name: 'tier',
    type: 'enum',
    label: { en: 'Tier', 'zh-CN': '等级' },
    options: [
      { value: 'gold', label: { en: 'Gold', 'zh-CN': '金牌' } },
      { value: 'silver', label: { en: 'Silver', 'zh-CN': '银牌' } },
    ],
  },
  { name: 'founded', type: 'date' },
];

function setup() {
  const root = reactive(emptyGroup('and')) as GroupNode;
  const w = mount(FilterBuilder, { props: { root, fields }, global: { plugins: [makeI18n('en')] } });
  return { w, root };
}

describe('FilterBuilder', () => {
  it('builds an AND of a text and a number condition', async () => {
    const { w } = setup();
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    const rows = w.findAll('[data-testid="filter-condition"]');
    expect(rows).toHaveLength(2);
    // Row 1: name contains 北京 (text fields default to "contains").
    expect((rows[0].find('[data-testid="filter-op"]').element as HTMLSelectElement).value).toBe('contains');
    await rows[0].find('[data-testid="filter-value"]').setValue('北京');
    // Row 2: employees >= 100.
    await rows[1].find('[data-testid="filter-field"]').setValue('employees');
    const ops = rows[1].findAll('[data-testid="filter-op"] option').map((o) => o.attributes('value'));
    expect(ops).toContain('between');
    expect(ops).not.toContain('contains');
    await rows[1].find('[data-testid="filter-op"]').setValue('>=');
    await rows[1].find('[data-testid="filter-value"]').setValue('100');
    await w.find('form').trigger('submit');
    expect(w.emitted('apply')![0][0]).toEqual({
      and: [
        { field: 'name', op: 'contains', value: '北京' },
        { field: 'employees', op: '>=', value: 100 },
      ],
    });
  });

  it('switches to OR, negates, and offers enum options and is_null', async () => {
    const { w } = setup();
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    const rows = w.findAll('[data-testid="filter-condition"]');
    await rows[0].find('[data-testid="filter-field"]').setValue('tier');
    await rows[0].find('[data-testid="filter-value"]').setValue('gold');
    await rows[1].find('[data-testid="filter-op"]').setValue('is_null');
    await rows[1].find('[data-testid="filter-value"]').setValue('false');
    await w.find('[data-testid="filter-logic"]').setValue('or');
    await w.find('[data-testid="filter-not"]').setValue(true);
    await w.find('form').trigger('submit');
    expect(w.emitted('apply')![0][0]).toEqual({
      not: {
        or: [
          { field: 'tier', op: '=', value: 'gold' },
          { field: 'name', op: 'is_null', value: false },
        ],
      },
    });
  });

  it('nests groups and uses two inputs for between', async () => {
    const { w } = setup();
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    await w.findAll('[data-testid="filter-value"]')[0].setValue('Acme');
    await w.find('[data-testid="filter-add-group"]').trigger('click');
    const inner = w.findAll('[data-testid="filter-group"]')[1];
    const row = inner.find('[data-testid="filter-condition"]');
    await row.find('[data-testid="filter-field"]').setValue('founded');
    await row.find('[data-testid="filter-op"]').setValue('between');
    await row.find('[data-testid="filter-value"]').setValue('2020-01-01');
    await row.find('[data-testid="filter-value2"]').setValue('2020-12-31');
    await inner.find('[data-testid="filter-add-condition"]').trigger('click');
    const row2 = inner.findAll('[data-testid="filter-condition"]')[1];
    await row2.find('[data-testid="filter-field"]').setValue('tier');
    await row2.find('[data-testid="filter-op"]').setValue('in');
    const multi = row2.find('[data-testid="filter-value"]');
    (multi.element as HTMLSelectElement).options[0].selected = true;
    (multi.element as HTMLSelectElement).options[1].selected = true;
    await multi.trigger('change');
    await w.find('form').trigger('submit');
    expect(w.emitted('apply')![0][0]).toEqual({
      and: [
        { field: 'name', op: 'contains', value: 'Acme' },
        {
          or: [
            { field: 'founded', op: 'between', value: ['2020-01-01', '2020-12-31'] },
            { field: 'tier', op: 'in', value: ['gold', 'silver'] },
          ],
        },
      ],
    });
    // Removing the inner group leaves the single condition.
    await inner.find('[data-testid="filter-remove-group"]').trigger('click');
    await w.find('form').trigger('submit');
    expect(w.emitted('apply')![1][0]).toEqual({ field: 'name', op: 'contains', value: 'Acme' });
  });

  it('emits null when nothing is complete, and clear on request', async () => {
    const { w } = setup();
    await w.find('[data-testid="filter-add-condition"]').trigger('click');
    await w.find('form').trigger('submit');
    expect(w.emitted('apply')![0][0]).toBeNull();
    await w.find('[data-testid="filter-clear"]').trigger('click');
    expect(w.emitted('clear')).toHaveLength(1);
  });
});
