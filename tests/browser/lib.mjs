// What the browser tests share: the settings tests/run.sh passes, Debian's Chromium
// started the way this machine needs, and an operator's log-in in a fresh context.
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE = process.env.BASE_URL;

// A setting tests/run.sh passes in the environment; its absence is a mistake.
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/run.sh sets it)`);
  return v;
}

// One Chromium for the test file, started before its tests and closed after them; the
// returned getter gives it to the tests.
export function chromiumForTests(extraArgs = []) {
  let browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
    });
  });
  after(async () => {
    await browser?.close();
  });
  return () => browser;
}

// Logs `user` in through the login form in a context of their own; the home page.
export async function logInNewPage(browser, user, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${BASE}/`);
  return page;
}
