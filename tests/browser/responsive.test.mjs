// The app at the sizes people use it: a phone (390×844) works the record view end to end — menu
// button instead of the navigation, fields in one column, every tab reachable, the edit form, the
// customer's 360 page —
// without the page ever scrolling sideways; and the top bar of a small laptop (901–1240 px) fits
// the window with every navigation item, the search and the phone lookup in sight.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, launchBrowser, newPage, loginAs, uiTest } from './helpers.mjs';

const NAME = '杭州西湖贸易有限公司 Hangzhou West Lake International Trading Company';
let app, browser, page, account, contact;

before(async () => {
  [app, browser] = await Promise.all([
    startApp({ users: [{ name: 'admin', role: 'Administrator' }] }),
    launchBrowser(),
  ]);
  const api = await app.api('admin');
  account = await api.create('accounts', {
    name: NAME,
    city: '杭州',
    phones: ['138-1234-5678'],
    address: { street: '西湖区文三路 90 号东部软件园科技大厦', city: '杭州', country: 'CN' },
  });
  contact = await api.create('contacts', { full_name: '王晓明', account_id: account.id, title: '采购经理' });
}, { timeout: 90_000 });
after(async () => {
  await browser?.close();
  await app?.stop();
}, { timeout: 90_000 });

const P = () => page;

/** The page is no wider than the window (nothing makes it scroll sideways). */
async function assertNoHorizontalOverflow(p, where) {
  const { scrollWidth, innerWidth } = await p.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${where}: page is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

/** The element's box lies inside the window horizontally. */
async function assertInsideWindow(p, locator, what) {
  const box = await locator.boundingBox();
  assert.ok(box, `${what} is shown`);
  const width = p.viewportSize().width;
  assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5, `${what} at x=${box.x}..${box.x + box.width} in ${width} px`);
}

uiTest('on a phone: open an account from the menu and list, read it, see its contacts, edit and save', P, async () => {
  page = await newPage(browser, app, { viewport: { width: 390, height: 844 } });
  await loginAs(page, 'admin');
  await assertNoHorizontalOverflow(page, 'after login');

  // The navigation hides behind the menu button.
  const toggle = page.getByTestId('menu-toggle');
  assert.equal(await toggle.isVisible(), true, 'menu button shown');
  assert.equal(await page.getByTestId('nav-accounts').isVisible(), false, 'navigation collapsed');
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.getByTestId('nav-accounts').click();
  await page.waitForURL(/\/accounts$/);
  await page.getByTestId('nav-accounts').waitFor({ state: 'hidden' }); // the menu closes after a choice
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await assertNoHorizontalOverflow(page, 'account list');

  // The list shows rows as cards; the account opens from its name.
  const row = page.locator(`[data-testid="list-row"][data-id="${account.id}"]`);
  await row.getByRole('link', { name: NAME }).click();
  await page.waitForURL(new RegExp(`/accounts/${account.id}$`));
  assert.equal((await page.getByTestId('record-title').textContent()).trim(), NAME);

  // Fields stack: label above value, every section card the same column.
  const city = page.getByTestId('value-city');
  assert.match(await city.textContent(), /杭州/);
  const dt = await city.locator('dt').boundingBox();
  const dd = await city.locator('dd').boundingBox();
  assert.ok(dd.y >= dt.y + dt.height - 1, `value below its label (label y=${dt.y}, value y=${dd.y})`);
  const cardXs = await page.locator('[data-testid^="section-"]').evaluateAll((els) =>
    els.map((e) => Math.round(e.getBoundingClientRect().left)),
  );
  assert.ok(cardXs.length >= 2, 'several sections');
  assert.equal(new Set(cardXs).size, 1, `sections in one column (left edges ${cardXs})`);
  await assertNoHorizontalOverflow(page, 'record page');

  // Every tab is on screen; the contacts tab lists the account's contact.
  for (const tab of await page.getByRole('tab').all()) await assertInsideWindow(page, tab, `tab "${await tab.textContent()}"`);
  await page.getByTestId('tab-contacts-account_id').click();
  const related = page.getByTestId('related-row').filter({ hasText: '王晓明' });
  await related.waitFor();
  await assertNoHorizontalOverflow(page, 'contacts tab');

  // The edit form fits (phone list and address inputs included) and saves.
  await page.getByTestId('edit').click();
  await page.waitForURL(new RegExp(`/accounts/${account.id}/edit$`));
  const cityInput = page.getByTestId('field-city');
  await cityInput.waitFor();
  await assertNoHorizontalOverflow(page, 'edit form');
  for (const id of ['field-phones-0', 'field-phones-0-label', 'field-address-street', 'field-address-country', 'save']) {
    await assertInsideWindow(page, page.getByTestId(id), id);
  }
  await cityInput.fill('宁波');
  await page.getByTestId('save').click();
  await page.waitForURL(new RegExp(`/accounts/${account.id}$`));
  assert.match(await page.getByTestId('value-city').textContent(), /宁波/);
  const got = await (await app.api('admin')).get(`/api/v1/accounts/${account.id}`);
  assert.equal(got.json.city, '宁波');
  await assertNoHorizontalOverflow(page, 'record page after saving');

  // The customer's 360 page fits too (the timeline's "new" button included).
  await page.getByTestId('open-360').click();
  await page.getByTestId('c360-timeline').waitFor();
  await page.getByTestId('c360-contact').first().waitFor();
  await assertNoHorizontalOverflow(page, 'customer 360');
  await assertInsideWindow(page, page.getByTestId('c360-new-interaction'), 'new interaction on the 360 page');
  await page.context().close();
  page = null;
});

uiTest('on a phone the column chooser stays inside the screen', P, async () => {
  page = await newPage(browser, app, { viewport: { width: 390, height: 844 } });
  await loginAs(page, 'admin');
  await page.goto('/accounts');
  await page.getByTestId('column-chooser').locator('summary').click();
  await assertInsideWindow(page, page.getByTestId('column-chooser').locator('.popover-body'), 'column chooser');
  await assertNoHorizontalOverflow(page, 'column chooser open');
  await page.context().close();
  page = null;
});

uiTest('between 901 and 1240 px the top bar fits the window with all its parts in sight', P, async () => {
  page = await newPage(browser, app, { viewport: { width: 1024, height: 768 } });
  await loginAs(page, 'admin');
  for (const width of [901, 1024, 1240]) {
    await page.setViewportSize({ width, height: 768 });
    for (const path of ['/accounts', `/accounts/${account.id}`, '/settings']) {
      await page.goto(path);
      await page.getByTestId('logout').waitFor();
      await assertNoHorizontalOverflow(page, `${path} at ${width} px`);
      for (const id of ['nav-dashboard', 'nav-accounts', 'nav-contacts', 'nav-interactions', 'nav-settings', 'global-search', 'phone-lookup-input', 'lang-switch', 'logout']) {
        await assertInsideWindow(page, page.getByTestId(id), `${id} at ${width} px`);
      }
    }
  }
  // The menu button is for phones only.
  assert.equal(await page.getByTestId('menu-toggle').isVisible(), false);
  await page.context().close();
  page = null;
});
