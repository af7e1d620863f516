// The operator console in a real browser (Debian's Chromium, driven by playwright-core).
// tests/run.sh starts a daemon and passes its address and the users it created:
//   BASE_URL, ADMIN_USER/ADMIN_PASSWORD (admin), OPERATOR_USER/OPERATOR_PASSWORD (works as
//   operator anna).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, env, chromiumForTests } from './lib.mjs';

const getBrowser = chromiumForTests();

async function logIn(page, user, password) {
  await page.goto(`${BASE}/`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

test('a wrong password is refused with a message; the right one opens the home page', async () => {
  const context = await getBrowser().newContext();
  const page = await context.newPage();
  await logIn(page, env('OPERATOR_USER'), 'not-the-password');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /wrong user name or password/);

  await page.getByLabel('User name').fill(env('OPERATOR_USER'));
  await page.getByLabel('Password').fill(env('OPERATOR_PASSWORD'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'My status' }).waitFor();

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'hl_session');
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Lax');
  await context.close();
});

test('the operator sets a status and sees the queue figures live', async () => {
  const context = await getBrowser().newContext();
  const page = await context.newPage();
  await logIn(page, env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  await page.getByRole('heading', { name: 'My status' }).waitFor();
  // The live figures replace "Loading…" with one row per queue.
  const support = page.locator('#queue-figures tr[data-queue="support"]');
  await support.waitFor({ timeout: 10_000 });

  await page.getByRole('button', { name: 'pause', exact: true }).click();
  await page.getByRole('heading', { name: 'My status' }).waitFor();
  assert.equal(await page.locator('#my-status').innerText(), 'pause');
  const onlineCell = () => page.locator('#queue-figures tr[data-queue="support"] td').nth(3);
  await onlineCell().waitFor({ timeout: 10_000 });
  const before = Number(await onlineCell().innerText());
  await page.getByRole('button', { name: 'online', exact: true }).click();
  await page.getByRole('heading', { name: 'My status' }).waitFor();
  assert.equal(await page.locator('#my-status').innerText(), 'online');
  // anna is now online in the support queue: the figures say so without a reload.
  await page.waitForFunction((n) => {
    const row = document.querySelector('#queue-figures tr[data-queue="support"]');
    return row && Number(row.children[3].textContent) === n;
  }, before + 1, { timeout: 10_000 });
  await page.getByRole('button', { name: 'away', exact: true }).click();
  await context.close();
});

test('a form posted without the CSRF token is refused', async () => {
  const context = await getBrowser().newContext();
  const page = await context.newPage();
  await logIn(page, env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  await page.getByRole('heading', { name: 'My status' }).waitFor();
  // The browser's cookies go along, the token does not.
  const res = await context.request.post(`${BASE}/console/status`, { form: { state: 'online' } });
  assert.equal(res.status(), 403);
  assert.match(await res.text(), /did not come from this site/);
  // From another site, even with the token, it is refused too.
  const csrf = await page.locator('input[name=_csrf]').first().inputValue();
  const cross = await context.request.post(`${BASE}/console/status`, {
    form: { state: 'online', _csrf: csrf },
    headers: { Origin: 'https://evil.example' },
  });
  assert.equal(cross.status(), 403);
  await context.close();
});

test('an operator may not open the admin pages; an admin adds a user there', async () => {
  const opContext = await getBrowser().newContext();
  const opPage = await opContext.newPage();
  await logIn(opPage, env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  await opPage.getByRole('heading', { name: 'My status' }).waitFor();
  const res = await opPage.goto(`${BASE}/admin/users`);
  assert.equal(res.status(), 403);
  assert.match(await opPage.getByRole('alert').innerText(), /admin role/);
  await opContext.close();

  const context = await getBrowser().newContext();
  const page = await context.newPage();
  await logIn(page, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('heading', { name: 'Users' }).waitFor();
  const add = async (name, password) => {
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Name shown').fill('Dora Test');
    await page.getByLabel('Role').selectOption('supervisor');
    await page.getByLabel(/^Password/).fill(password);
    await page.getByRole('button', { name: 'Add user' }).click();
  };
  await add('dora', 'short');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /at least 10 characters/);
  await add('dora', 'dora-long-password');
  await page.getByRole('cell', { name: 'dora', exact: true }).waitFor();
  assert.equal(await page.getByRole('row', { name: /dora/ }).getByRole('cell').nth(2).innerText(), 'supervisor');
  await add('eve', 'eve-long-password-1');
  await page.getByRole('cell', { name: 'eve', exact: true }).waitFor();

  // An operator's concurrent chats: 1 to 10, changed on the operators page.
  await page.getByRole('link', { name: 'Operators' }).click();
  await page.getByRole('heading', { name: 'Operators and their phones' }).waitFor();
  const capacity = page.getByLabel('Concurrent chats of bela');
  const form = page.locator('form[action="/admin/operators/bela/capacity"]');
  await capacity.fill('11');
  await form.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').filter({ hasText: /1 to 10/ }).waitFor();
  await page.getByLabel('Concurrent chats of bela').fill('5');
  await page.locator('form[action="/admin/operators/bela/capacity"]').getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(`${BASE}/admin/operators`);
  assert.equal(await page.getByLabel('Concurrent chats of bela').inputValue(), '5');
  await page.getByLabel('Concurrent chats of bela').fill('3');
  await page.locator('form[action="/admin/operators/bela/capacity"]').getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(`${BASE}/admin/operators`);
  assert.equal(await page.getByLabel('Concurrent chats of bela').inputValue(), '3');

  // The notification settings as configured (run.sh: the test's gateway and SMTP server).
  await page.getByRole('link', { name: 'Notifications' }).click();
  await page.getByRole('heading', { name: 'Notification settings' }).waitFor();
  const settings = await page.locator('#notify-settings').innerText();
  assert.match(settings, /Mode\s+send/);
  assert.match(settings, /POST http:\/\/127\.0\.0\.1:\d+\/sms/);
  assert.match(settings, /127\.0\.0\.1:\d+, none/);

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  const back = await page.goto(`${BASE}/admin/users`);
  assert.match(back.url(), /\/login/, 'after logging out the admin pages ask for a login again');
  await context.close();
});

test('repeated failed logins lock the account for a while', async () => {
  const context = await getBrowser().newContext();
  const page = await context.newPage();
  for (let i = 0; i < 5; i++) {
    await logIn(page, 'eve', 'wrong-password-x');
    await page.getByRole('alert').waitFor();
  }
  await logIn(page, 'eve', 'eve-long-password-1');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /too many failed logins/);
  await context.close();
});
