// Form validation display: client checks and server problems (problem+json `field`) shown on the
// named field, in the user's language, highlighted and focused; 409 shows the conflict notice.
import { describe, expect, it } from 'vitest';
import { flushPromises, mount } from '@vue/test-utils';
import { createRouter, createMemoryHistory } from 'vue-router';
import { ApiError } from '../api/client';
import type { EntityMeta } from '../api/types';
import { makeI18n } from '../i18n';
import { problemMessage, validateAll, validateField } from '../forms/validation';
import { setMetadata } from '../metadata/store';
import RecordForm from './RecordForm.vue';

const account: EntityMeta = {
  name: 'account',
  plural: 'accounts',
  label: { en: 'Account', 'zh-CN': '客户' },
  title_field: 'name',
  fields: [
    { name: 'name', type: 'text', label: { en: 'Name', 'zh-CN': '名称' }, required: true, max_length: 10 },
    { name: 'code', type: 'text', label: { en: 'Code', 'zh-CN': '编号' }, pattern: '^[A-Z]{2}[0-9]+$' },
    { name: 'emails', type: 'email_list', label: { en: 'Emails', 'zh-CN': '邮箱' }, section: 'contact' },
    { name: 'employees', type: 'integer', label: { en: 'Employees', 'zh-CN': '员工数' } },
    {
      name: 'tier',
      type: 'enum',
      label: { en: 'Tier', 'zh-CN': '等级' },
      options: [{ value: 'gold', label: { en: 'Gold', 'zh-CN': '金牌' } }],
    },
  ],
};

function setup(locale: 'en' | 'zh-CN' = 'en', record: Record<string, unknown> | null = null) {
  setMetadata([account]);
  const i18n = makeI18n(locale);
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:p*', component: { template: '<div/>' } }] });
  return mount(RecordForm, {
    props: { entity: account, record: record as never },
    global: { plugins: [i18n, router] },
    attachTo: document.body,
  });
}

describe('RecordForm server errors', () => {
  it('shows a problem naming a field next to that field, highlighted and focused (English)', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme', emails: [{ value: 'a@b.cn' }] });
    await w.setProps({
      serverError: new ApiError({
        status: 400,
        code: 'validation_failed',
        field: 'emails',
        detail: 'emails[0]: not an e-mail address',
      }),
    });
    await flushPromises();
    const err = w.find('[data-testid="error-emails"]');
    expect(err.exists()).toBe(true);
    expect(err.text()).toContain('This value is not valid.');
    expect(err.text()).toContain('emails[0]: not an e-mail address');
    expect(w.find('[data-testid="row-emails"]').classes()).toContain('has-error');
    const input = w.find('#f-emails');
    expect(input.attributes('aria-invalid')).toBe('true');
    expect(input.attributes('aria-describedby')).toBe('err-emails');
    expect(document.activeElement?.id).toBe('f-emails');
    // No other field is marked.
    expect(w.find('[data-testid="error-name"]').exists()).toBe(false);
    w.unmount();
  });

  it('translates the error code into Chinese', async () => {
    const w = setup('zh-CN', { id: '1', version: 2, name: 'Acme' });
    await w.setProps({
      serverError: new ApiError({ status: 409, code: 'duplicate', field: 'name', detail: 'name already exists' }),
    });
    await flushPromises();
    expect(w.find('[data-testid="error-name"]').text()).toContain('该值已被其他记录使用。');
    // A duplicate is a field error, not an edit conflict.
    expect(w.find('[data-testid="conflict"]').exists()).toBe(false);
    w.unmount();
  });

  it('falls back to the server detail for an unknown code', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme' });
    await w.setProps({
      serverError: new ApiError({ status: 422, code: 'credit_hold', field: 'tier', detail: 'Account is on credit hold' }),
    });
    await flushPromises();
    expect(w.find('[data-testid="error-tier"]').text()).toContain('Account is on credit hold');
    w.unmount();
  });

  it('shows a banner for problems without a known field, and the conflict notice on 409', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme' });
    await w.setProps({ serverError: new ApiError({ status: 403, code: 'forbidden', detail: 'no' }) });
    await flushPromises();
    expect(w.find('[data-testid="form-error"]').text()).toBe('You do not have permission to do this.');
    await w.setProps({ serverError: new ApiError({ status: 409, code: 'conflict', detail: 'stale' }) });
    await flushPromises();
    expect(w.find('[data-testid="conflict"]').text()).toContain('Someone else changed this record');
    await w.find('[data-testid="reload"]').trigger('click');
    expect(w.emitted('reload')).toHaveLength(1);
    w.unmount();
  });

  it('clears the server error on a field once the user edits it', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme' });
    await w.setProps({ serverError: new ApiError({ status: 400, code: 'validation_failed', field: 'name' }) });
    await flushPromises();
    expect(w.find('[data-testid="error-name"]').exists()).toBe(true);
    await w.find('[data-testid="field-name"]').setValue('Acme 2');
    expect(w.find('[data-testid="error-name"]').exists()).toBe(false);
    w.unmount();
  });
});

describe('RecordForm client validation', () => {
  it('blocks submit and shows required / max_length / pattern / integer messages', async () => {
    const w = setup('en');
    await w.find('[data-testid="field-code"]').setValue('abc');
    await w.find('[data-testid="field-employees"]').setValue('12.5');
    await w.find('form').trigger('submit');
    await flushPromises();
    expect(w.emitted('submit')).toBeUndefined();
    expect(w.find('[data-testid="error-name"]').text()).toBe('This field is required.');
    expect(w.find('[data-testid="error-code"]').text()).toBe('The value does not have the expected format.');
    expect(w.find('[data-testid="error-employees"]').text()).toBe('Enter a whole number.');
    expect(document.activeElement?.id).toBe('f-name');

    await w.find('[data-testid="field-name"]').setValue('This name is far too long');
    expect(w.find('[data-testid="error-name"]').text()).toBe('At most 10 characters.');
    w.unmount();
  });

  it('emits only changed values on edit, and all filled values on create', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme', code: 'AB1', employees: 5 });
    await w.find('[data-testid="field-employees"]').setValue('7');
    await w.find('form').trigger('submit');
    await flushPromises();
    expect(w.emitted('submit')![0][0]).toMatchObject({ changed: { employees: 7 } });
    w.unmount();

    const c = setup('en');
    await c.find('[data-testid="field-name"]').setValue('北京科技');
    await c.find('[data-testid="field-tier"]').setValue('gold');
    await c.find('form').trigger('submit');
    await flushPromises();
    expect(c.emitted('submit')![0][0]).toMatchObject({ changed: { name: '北京科技', tier: 'gold' } });
    c.unmount();
  });

  it('Escape cancels', async () => {
    const w = setup('en');
    await w.find('[data-testid="field-name"]').trigger('keydown', { key: 'Escape' });
    expect(w.emitted('cancel')).toHaveLength(1);
    w.unmount();
  });
});

describe('RecordForm conditional requirement (required_when)', () => {
  const keyed: EntityMeta = {
    name: 'account',
    plural: 'accounts',
    title_field: 'name',
    fields: [
      { name: 'name', type: 'text', label: { en: 'Name', 'zh-CN': '名称' }, required: true },
      { name: 'key_account', type: 'boolean', label: { en: 'Key account', 'zh-CN': '重点客户' } },
      {
        name: 'account_manager_id',
        type: 'reference',
        reference: 'user',
        label: { en: 'Account manager', 'zh-CN': '大客户经理' },
        required_when: { field: 'key_account', equals: true },
      },
    ],
  };
  function mountKeyed(locale: 'en' | 'zh-CN') {
    setMetadata([keyed]);
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:p*', component: { template: '<div/>' } }] });
    return mount(RecordForm, {
      props: { entity: keyed, record: null },
      global: { plugins: [makeI18n(locale), router] },
      attachTo: document.body,
    });
  }

  it('marks the field required while the condition holds and blocks submit with a message naming it', async () => {
    const w = mountKeyed('en');
    await w.find('[data-testid="field-name"]').setValue('Acme');
    expect(w.find('[data-testid="required-account_manager_id"]').exists()).toBe(false);
    expect(w.find('[data-testid="required-name"]').exists()).toBe(true);
    await w.find('#f-key_account').setValue(true);
    expect(w.find('[data-testid="required-account_manager_id"]').exists()).toBe(true);
    await w.find('form').trigger('submit');
    await flushPromises();
    expect(w.emitted('submit')).toBeUndefined();
    expect(w.find('[data-testid="error-account_manager_id"]').text()).toBe(
      'This field is required when “Key account” is Yes.',
    );
    // turning the flag off lifts the requirement and its message at once
    await w.find('#f-key_account').setValue(false);
    expect(w.find('[data-testid="error-account_manager_id"]').exists()).toBe(false);
    expect(w.find('[data-testid="required-account_manager_id"]').exists()).toBe(false);
    await w.find('form').trigger('submit');
    await flushPromises();
    expect(w.emitted('submit')![0][0]).toMatchObject({ changed: { name: 'Acme', key_account: false } });
    w.unmount();
  });

  it('says it in Chinese', async () => {
    const w = mountKeyed('zh-CN');
    await w.find('[data-testid="field-name"]').setValue('华为');
    await w.find('#f-key_account').setValue(true);
    await w.find('form').trigger('submit');
    await flushPromises();
    expect(w.find('[data-testid="error-account_manager_id"]').text()).toBe('“重点客户”为是时，此字段为必填项。');
    w.unmount();
  });

  it("shows the server's refusal on the field when the client did not catch it", async () => {
    const w = mountKeyed('en');
    await w.setProps({
      serverError: new ApiError({
        status: 422,
        code: 'validation_failed',
        field: 'account_manager_id',
        detail: 'account_manager_id is required when key_account is true',
      }),
    });
    await flushPromises();
    const err = w.find('[data-testid="error-account_manager_id"]');
    expect(err.text()).toContain('This value is not valid.');
    expect(err.text()).toContain('account_manager_id is required when key_account is true');
    expect(w.find('[data-testid="form-error"]').exists()).toBe(false);
    w.unmount();
  });

  it('validateAll applies the rule on the whole record only', () => {
    const [, flag, manager] = keyed.fields;
    expect(validateField(manager, null)).toBeNull(); // no record values: no condition
    expect(validateAll([flag, manager], { key_account: true, account_manager_id: null })).toEqual({
      account_manager_id: { key: 'errors.requiredWhen', params: { field: 'key_account', value: 'true' } },
    });
    expect(validateAll([flag, manager], { key_account: true, account_manager_id: '7' })).toEqual({});
    expect(validateAll([flag, manager], { key_account: false, account_manager_id: null })).toEqual({});
  });
});

describe('validation helpers', () => {
  it('checks e-mail lists and money', () => {
    const emails = account.fields[2];
    expect(validateField(emails, [{ value: 'ok@example.com' }])).toBeNull();
    expect(validateField(emails, [{ value: 'not-an-email' }])).toEqual({ key: 'errors.email' });
    const money = { name: 'limit', type: 'money' as const };
    expect(validateField(money, { amount: 100, currency: 'CNY' })).toBeNull();
    expect(validateField(money, { amount: 100, currency: 'yuan' })).toEqual({ key: 'errors.currency' });
  });

  it('problemMessage prefers the translation, then detail', () => {
    const i18n = makeI18n('zh-CN');
    const t = i18n.global.t as (k: string) => string;
    const te = i18n.global.te as (k: string) => boolean;
    expect(problemMessage({ code: 'rate_limited', detail: 'x', title: '' }, t, te)).toBe('尝试次数过多，请稍后再试。');
    expect(problemMessage({ code: 'weird', detail: 'Server detail', title: '' }, t, te)).toBe('Server detail');
  });
});

describe('RecordForm dirty state (for the unsaved-form guard)', () => {
  it('is dirty while a value differs from the record, clean again when it is typed back', async () => {
    const w = setup('en', { id: '1', version: 2, name: 'Acme' });
    await flushPromises();
    const input = w.find('#f-name');
    await input.setValue('Acme 2');
    expect(w.emitted('dirty')?.at(-1)).toEqual([true]);
    await input.setValue('Acme');
    expect(w.emitted('dirty')?.at(-1)).toEqual([false]);
    w.unmount();
  });
});
