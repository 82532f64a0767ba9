// Display formatting by field type, and money input ↔ minor units in the form.
import { describe, expect, it } from 'vitest';
import { mount } from '@vue/test-utils';
import { createMemoryHistory, createRouter } from 'vue-router';
import { makeI18n } from '../i18n';
import FieldInput from '../components/FieldInput.vue';
import { formatAddress, formatMoney, formatValue, listItems } from './format';

describe('formatValue', () => {
  it('formats money from minor units with the currency', () => {
    expect(formatMoney({ amount: 123456, currency: 'CNY' }, 'en')).toBe('CN¥1,234.56');
    expect(formatMoney({ amount: 500, currency: 'JPY' }, 'en')).toBe('¥500');
  });
  it('formats enums with their label, lists and addresses', () => {
    const tier = { name: 'tier', type: 'enum' as const, options: [{ value: 'gold', label: { en: 'Gold', 'zh-CN': '金牌' } }] };
    expect(formatValue(tier, 'gold', 'zh-CN')).toBe('金牌');
    expect(formatValue(tier, 'unknown', 'en')).toBe('unknown');
    expect(listItems(['+86 138', { value: 'a@b.cn', label: 'work' }])).toEqual([
      { value: '+86 138' },
      { value: 'a@b.cn', label: 'work' },
    ]);
    expect(formatValue({ name: 'p', type: 'phone_list' }, [{ value: '+86 138', label: '手机' }], 'en')).toBe('+86 138 (手机)');
    expect(formatAddress({ street: '中关村大街 1 号', city: '北京', country: 'CN' })).toBe('中关村大街 1 号, 北京, CN');
    expect(formatValue({ name: 'b', type: 'boolean' }, false, 'en', ['Y', 'N'])).toBe('N');
    expect(formatValue({ name: 'x', type: 'text' }, null, 'en')).toBe('');
  });
});

describe('FieldInput money', () => {
  function mountMoney(modelValue: unknown) {
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/', component: { template: '<div/>' } }] });
    return mount(FieldInput, {
      props: {
        field: { name: 'credit_limit', type: 'money' },
        modelValue,
        inputId: 'f-credit_limit',
        labelId: 'l-credit_limit',
        label: 'Credit limit',
      },
      global: { plugins: [makeI18n('en'), router] },
    });
  }
  it('shows major units and emits minor units', async () => {
    const w = mountMoney({ amount: 150050, currency: 'CNY' });
    const amount = w.find('[data-testid="field-credit_limit-amount"]');
    expect((amount.element as HTMLInputElement).value).toBe('1500.5');
    await amount.setValue('99.99');
    expect(w.emitted('update:modelValue')!.at(-1)).toEqual([{ amount: 9999, currency: 'CNY' }]);
    await amount.setValue('');
    expect(w.emitted('update:modelValue')!.at(-1)).toEqual([null]);
  });
  it('passes invalid text through so validation can report it', async () => {
    const w = mountMoney(null);
    await w.find('[data-testid="field-credit_limit-amount"]').setValue('12abc');
    expect(w.emitted('update:modelValue')!.at(-1)).toEqual([{ amount: '12abc', currency: 'CNY' }]);
  });
});
