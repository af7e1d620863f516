// The missed-calls widget in two operators' browsers at once (tests/run.sh first makes a
// caller give up in the queue, so +36209990000 is on the list): both see the entry, one
// calls back, it vanishes from the other's list, and the other, clicking too, is told.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/run.sh sets it)`);
  return v;
};

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
});

async function logIn(user, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${BASE}/`);
  return page;
}

test('one shared list: a claim takes the entry off every other operator\'s list', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  const row = (page) => page.locator('#callback-list tr[data-number="+36209990000"]');
  await row(anna).waitFor({ timeout: 10_000 });
  await row(bela).waitFor({ timeout: 10_000 });
  assert.match(await row(anna).innerText(), /\+36209990000\s+1\s/);
  const id = await row(bela).getAttribute('data-id');

  await row(anna).getByRole('button', { name: 'Call back' }).click();
  assert.match(await anna.locator('#callback-message').innerText(), /You are calling back \+36209990000/);
  // Gone from bela's list without a reload, and from anna's.
  await row(bela).waitFor({ state: 'detached', timeout: 5_000 });
  await row(anna).waitFor({ state: 'detached', timeout: 5_000 });

  // bela clicked at the same moment (his page still had the button): he is told who has it.
  const answer = await bela.evaluate(async (entry) => {
    const csrf = document.querySelector('#callback-list').dataset.csrf;
    const res = await fetch(`/console/callbacks/${entry}/claim`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
    return { status: res.status, body: await res.json() };
  }, id);
  assert.equal(answer.status, 409);
  assert.match(answer.body.error, /anna is already calling this customer back/);
  // Without the CSRF token nothing is claimed at all.
  const forged = await bela.context().request.post(`${BASE}/console/callbacks/${id}/claim`);
  assert.equal(forged.status(), 403);
});
