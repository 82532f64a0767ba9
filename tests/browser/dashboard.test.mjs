// The dashboard draws ECharts charts from GET /{plural}/aggregate: accounts by customer type and by
// tier, communication records per channel and month; the numbers are in a table under each chart,
// a row opens the filtered list, and a Sales user's charts count only their team's records.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

let app, browser, page;
const month = (back) => {
  const d = new Date();
  const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 10, 4));
  return { iso: x.toISOString(), ym: x.toISOString().slice(0, 7) };
};

before(async () => {
  [app, browser] = await Promise.all([
    startApp({
      users: [
        { name: 'admin', role: 'Administrator' },
        { name: 'north1', role: 'Sales', team: '华北销售部' },
      ],
    }),
    launchBrowser(),
  ]);
  const [admin, north] = await Promise.all([app.api('admin'), app.api('north1')]);
  const acc = await north.create('accounts', { name: 'Chart North A', tier: 'A', customer_type: 'customer' });
  await north.create('accounts', { name: 'Chart North B', tier: 'B', customer_type: 'customer' });
  for (const [name, tier, type] of [['Chart HQ 1', 'A', 'prospect'], ['Chart HQ 2', 'A', 'partner'], ['Chart HQ 3', null, 'customer']]) {
    await admin.create('accounts', { name, ...(tier ? { tier } : {}), customer_type: type });
  }
  const ia = (c, channel, at) => c.create('interactions', { subject: `${channel} ${at}`, account_id: acc.id, occurred_at: at, channel, direction: 'inbound' });
  await ia(north, 'phone', month(0).iso);
  await ia(north, 'phone', month(1).iso);
  await ia(north, 'visit', month(1).iso);
  await ia(admin, 'email', month(0).iso);
  page = await newPage(browser, app);
  await loginAs(page, 'admin');
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;
const rows = (chart) =>
  page.getByTestId(chart).getByTestId('chart-row').evaluateAll((rs) => rs.map((r) => [r.dataset.value, Number(r.dataset.count)]));

uiTest('charts of accounts and communication records, each with its numbers', P, async () => {
  await page.getByTestId('nav-dashboard').click();
  await page.waitForURL(/\/dashboard$/);
  const tier = page.getByTestId('chart-accounts-tier');
  await tier.locator('canvas').waitFor();
  assert.match(await tier.locator('h2').textContent(), /Accounts by Tier/);
  assert.deepEqual(await rows('chart-accounts-tier'), [['A', 3], ['B', 1], ['null', 1]]);
  await page.getByTestId('chart-accounts-customer_type').locator('canvas').waitFor();
  assert.deepEqual(new Map(await rows('chart-accounts-customer_type')), new Map([['customer', 3], ['prospect', 1], ['partner', 1]]));

  const ch = page.getByTestId('chart-interactions-channel-month');
  await ch.locator('canvas').waitFor();
  const periods = await ch.getByTestId('chart-row').evaluateAll((rs) => rs.map((r) => r.dataset.period));
  assert.equal(periods.length, 12, 'the last twelve months');
  assert.equal(periods[11], month(0).ym);
  const cell = (period, channel) => ch.locator(`[data-period="${period}"] td[data-value="${channel}"]`).getAttribute('data-count');
  assert.equal(await cell(month(0).ym, 'phone'), '1');
  assert.equal(await cell(month(0).ym, 'email'), '1');
  assert.equal(await cell(month(1).ym, 'phone'), '1');
  assert.equal(await cell(month(1).ym, 'visit'), '1');
  assert.equal(page.consoleErrors.length, 0, page.consoleErrors.join('\n'));
});

uiTest('a row of the numbers opens the list filtered to it', P, async () => {
  await page.goto('/dashboard');
  const tier = page.getByTestId('chart-accounts-tier');
  await tier.locator('summary').click();
  await tier.getByRole('link', { name: 'A', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/accounts' && u.searchParams.has('filter'));
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get('filter')), { field: 'tier', op: '=', value: 'A' });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="list-row"]').length === 3);
});

uiTest('a Sales user charts only the records in their scope, in Chinese', P, async () => {
  const p2 = await newPage(browser, app, { locale: 'zh-CN' });
  try {
    await loginAs(p2, 'north1');
    await p2.goto('/dashboard');
    const tier = p2.getByTestId('chart-accounts-tier');
    await tier.locator('canvas').waitFor();
    assert.match(await tier.locator('h2').textContent(), /客户（按等级）/);
    const got = await tier.getByTestId('chart-row').evaluateAll((rs) => rs.map((r) => [r.dataset.value, Number(r.dataset.count)]));
    assert.deepEqual(got, [['A', 1], ['B', 1]]);
  } finally {
    await p2.context().close();
  }
});

uiTest('the list charts itself as filtered; a bar of the numbers narrows the list', P, async () => {
  await page.goto('/accounts');
  await page.getByTestId('list-row').first().waitFor();
  await page.getByTestId('chart-toggle').click();
  const chart = page.getByTestId('list-chart');
  await chart.getByTestId('list-chart-field').selectOption('tier');
  await chart.locator('canvas').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="list-chart-total"]')?.textContent?.includes('5 records'));
  const rowsOf = () => chart.getByTestId('chart-row').evaluateAll((rs) => rs.map((r) => [r.dataset.value, Number(r.dataset.count)]));
  // The total is 5 under the previous grouping too: wait for the rows of the tier grouping.
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="list-chart"] [data-testid="chart-row"]')].some((r) => r.dataset.value === 'A'));
  assert.deepEqual(await rowsOf(), [['A', 3], ['B', 1], ['null', 1]]);

  // the quick search narrows the chart as it narrows the list
  await page.getByTestId('quick-search').fill('Chart North');
  await page.waitForFunction(() => document.querySelector('[data-testid="list-chart-total"]')?.textContent?.includes('2 records'));
  assert.deepEqual(await rowsOf(), [['A', 1], ['B', 1]]);
  await page.getByTestId('quick-search').fill('');
  await page.waitForFunction(() => document.querySelector('[data-testid="list-chart-total"]')?.textContent?.includes('5 records'));

  await chart.locator('summary').click();
  await chart.getByTestId('chart-pick').filter({ hasText: 'A' }).first().click();
  await page.waitForURL((u) => u.searchParams.has('filter'));
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get('filter')), { field: 'tier', op: '=', value: 'A' });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="list-row"]').length === 3);
  await page.waitForFunction(() => document.querySelector('[data-testid="list-chart-total"]')?.textContent?.includes('3 records'));
  assert.deepEqual(await rowsOf(), [['A', 3]]);
  assert.equal((await page.getByTestId('filter-toggle').textContent()).trim(), 'Filters (1)');
});
