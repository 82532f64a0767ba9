// Customer 360 (issue 4) in the browser: an account's 360 page shows its contact, profile and the
// communication timeline (newest first, filterable by channel chips, cost shown), and the phone
// lookup in the top bar finds a contact from a differently written number; an unknown number
// offers a new contact prefilled with it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page;
let account, contact;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  const api = await app.api('admin');
  account = await api.create('accounts', { name: '杭州青禾茶业有限公司', city: '杭州', phones: ['0571-8888 1234'], tax_id: '91330100MA2XYZ1234' });
  contact = await api.create('contacts', { full_name: '王晓明', account_id: account.id, title: '采购经理', phones: ['138-1234-5678'] });
  await api.create('interactions', {
    subject: 'Spring tea tasting visit',
    account_id: account.id,
    contact_id: contact.id,
    occurred_at: '2025-03-10T09:00:00Z',
    channel: 'visit',
    cost: { amount: 45000, currency: 'CNY' },
    products_provided: 'Longjing samples',
  });
  await api.create('interactions', {
    subject: 'Follow-up call about the order',
    account_id: account.id,
    contact_id: contact.id,
    occurred_at: '2025-04-02T03:30:00Z',
    channel: 'phone',
  });
  await api.create('account_profiles', { account_id: account.id, recorded_on: '2025-01-15', attitude: 'favourable', demand: 'Gift boxes for the autumn festival' });
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

uiTest('the account page links to the 360 page, which shows master data, contact, profile and timeline', P, async () => {
  await page.goto(`/accounts/${account.id}`);
  await page.getByTestId('open-360').click();
  await page.waitForURL(new RegExp(`/accounts/${account.id}/360$`));
  assert.equal((await page.getByTestId('c360-title').textContent()).trim(), '杭州青禾茶业有限公司');
  assert.match(await page.getByTestId('c360-value-tax_id').textContent(), /91330100MA2XYZ1234/);

  const contactRow = page.getByTestId('c360-contact');
  assert.equal(await contactRow.count(), 1);
  assert.match(await contactRow.textContent(), /王晓明/);
  assert.match(await contactRow.textContent(), /采购经理/);

  assert.match(await page.getByTestId('c360-profile-entry').first().textContent(), /Gift boxes/);

  const items = page.getByTestId('c360-timeline-item');
  assert.equal(await items.count(), 2);
  // Newest first: the April call above the March visit.
  assert.match(await items.nth(0).textContent(), /Follow-up call/);
  assert.match(await items.nth(1).textContent(), /Spring tea tasting visit/);
  assert.match(await items.nth(1).getByTestId('c360-cost').textContent(), /450/);
  assert.match(await items.nth(1).getByTestId('c360-products').textContent(), /Longjing samples/);

  // Channel chips narrow the timeline; "All channels" brings everything back.
  await page.getByTestId('c360-chip-visit').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="c360-timeline-item"]').length === 1);
  assert.equal(await items.first().getAttribute('data-channel'), 'visit');
  await page.getByTestId('c360-chip-email').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="c360-timeline-item"]').length === 1);
  await page.getByTestId('c360-chip-visit').click();
  await page.getByTestId('c360-timeline-empty').waitFor();
  await page.getByTestId('c360-chip-all').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="c360-timeline-item"]').length === 2);
  assert.deepEqual(page.consoleErrors, []);
});

// R-CUS-1: the 360 lists the first 50 contacts by name; "Load more" under them brings the rest
// from the generic list (the 360 answer pages its contacts since session 15).
uiTest('an account with more than 50 contacts shows 50, and the rest after "Load more"', P, async () => {
  const api = await app.api('admin');
  const big = await api.create('accounts', { name: '宁波五十一人贸易有限公司' });
  for (let i = 1; i <= 51; i++) {
    await api.create('contacts', { full_name: `联系人 ${String(i).padStart(2, '0')}`, account_id: big.id });
  }
  await page.goto(`/accounts/${big.id}/360`);
  const rows = page.getByTestId('c360-contact');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="c360-contact"]').length === 50);
  assert.match(await rows.nth(49).textContent(), /联系人 50/);
  await page.getByTestId('c360-contacts-more').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="c360-contact"]').length === 51);
  assert.match(await rows.nth(50).textContent(), /联系人 51/);
  assert.equal(await page.getByTestId('c360-contacts-more').count(), 0, 'nothing more to load');
  assert.deepEqual(page.consoleErrors, []);
});

uiTest('phone lookup finds the contact from a differently written number', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('phone-lookup-input').fill('+86 138 1234 5678');
  await page.getByTestId('phone-lookup-input').press('Enter');
  await page.waitForURL(new RegExp(`/contacts/${contact.id}$`));
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), '王晓明');

  // The account's number, written another way, opens the account on its 360 page.
  await page.getByTestId('phone-lookup-input').fill('+86 571 88881234');
  await page.getByTestId('phone-lookup-submit').click();
  await page.waitForURL(new RegExp(`/accounts/${account.id}/360$`));
  await page.getByTestId('c360-contact').waitFor();
});

uiTest('an unknown number offers a new contact prefilled with it', P, async () => {
  await page.getByTestId('phone-lookup-input').fill('139 0000 1111');
  await page.getByTestId('phone-lookup-submit').click();
  await page.getByTestId('phone-lookup-none').waitFor();
  await page.getByTestId('phone-lookup-new').click();
  await page.waitForURL(/\/contacts\/new\?/);
  await page.getByTestId('record-form').waitFor();
  assert.equal(await page.getByTestId('field-phones-0').inputValue(), '+8613900001111');
});
