// What the browser tests share: the settings tests/run.sh passes, Debian's Chromium
// started the way this machine needs, an operator's log-in in a fresh context, SIPp
// phones, and an operator's status.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

// Runs SIPp on a scenario from tests/sipp (`@PCAPS@` filled in, then `edit` applied),
// written into `dir`; resolves with its exit code and output.
export function sipp(dir, scenario, args, edit = (t) => t) {
  const text = edit(readFileSync(join(env('SIPP_DIR'), scenario), 'utf8')
    .replaceAll('@PCAPS@', env('PCAPS')));
  const file = join(dir, scenario.replace('.in', ''));
  writeFileSync(file, text);
  const child = spawn('sipp', ['-sf', file, ...args, '-nostdin', '-timeout', '60s', '-timeout_error'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

// An operator's phone (registered from `port` by tests/run.sh) answering one call after
// `ms`, until the BYE.
export const operatorPhone = (dir, user, port, mediaPort, ms) => sipp(dir, 'operator_answers.xml',
  ['-s', user, '-i', '127.0.0.1', '-p', String(port), '-mi', '127.0.0.1', '-mp', String(mediaPort),
    '-m', '1', '-d', String(ms)]);

// Chooses a state on the home page; a call still ending (its wrap-up) shows as busy or
// wrap-up a moment longer, so the page is read again until the chosen state shows.
export async function setStatus(page, state) {
  await page.getByRole('button', { name: state, exact: true }).click();
  for (let i = 0; i < 30; i += 1) {
    await page.getByRole('heading', { name: 'My status' }).waitFor();
    if (await page.locator('#my-status').innerText() === state) return;
    await page.waitForTimeout(500);
    await page.goto(`${BASE}/`);
  }
  assert.equal(await page.locator('#my-status').innerText(), state);
}
