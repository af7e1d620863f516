// The missed-calls widget in two operators' browsers at once, with real phones (SIPp) for
// the operators and the customers behind the trunk. tests/run.sh first has a caller take
// the callback offer while waiting in the queue (so +36209990000 is on the list, with a
// promised time),
// registers anna's phone (SIP user
// 1001 on port 15081) and bela's (1002 on 15082), and gives the support queue a 2 s
// success rule and a 4 s hide time.
//
// 1. Both see the entry; anna calls back: it vanishes from bela's list at once, bela
//    clicking too is told; anna's phone rings, then the customer's; they talk 4 s: the
//    entry is done and anna's own list says "reached".
// 2. bela puts a number on the list by hand; anna sees it; bela calls back, the customer
//    doesn't answer: the entry is gone for the hide time, then back in both lists with
//    the attempt shown.
// 3. anna marks her first callback a voicemail: it comes back too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, env, chromiumForTests, logInNewPage } from './lib.mjs';

const getBrowser = chromiumForTests();
const work = mkdtempSync(join(tmpdir(), 'hotline-cb-'));

async function logIn(user, password) {
  const page = await logInNewPage(getBrowser(), user, password);
  return page;
}

// A SIPp phone answering one call on `port`; resolves with its exit code and output.
function phone(scenario, user, port, mediaPort, ms) {
  const text = readFileSync(join(env('SIPP_DIR'), `${scenario}.xml`), 'utf8')
    .replaceAll('@PCAPS@', env('PCAPS'));
  const file = join(work, `${scenario}-${port}.xml`);
  writeFileSync(file, text);
  const child = spawn('sipp', ['-sf', file, '-s', user, '-i', '127.0.0.1', '-p', String(port),
    '-mi', '127.0.0.1', '-mp', String(mediaPort), '-m', '1', '-d', String(ms), '-nostdin',
    '-timeout', '60s', '-timeout_error'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output })));
}

const row = (page, number) => page.locator(`#callback-list tr[data-number="${number}"]`);
const mine = (page, entry) => page.locator(`#my-callbacks tr[data-entry="${entry}"]`);

let firstEntry;

test('a claim takes the entry off every list; the call connects; success ends it', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  const number = '+36209990000';
  await row(anna, number).waitFor({ timeout: 10_000 });
  await row(bela, number).waitFor({ timeout: 10_000 });
  assert.match(await row(anna, number).innerText(), /\+36209990000\s+1\s/);
  // The promise Hotline made to the caller is shown (a time, not a dash).
  assert.match(await row(anna, number).locator('td').nth(5).innerText(), /\d\d:\d\d/);
  firstEntry = await row(bela, number).getAttribute('data-id');

  // The customer answers after ringing and talks 4 s; anna answers after 300 ms.
  const customer = phone('customer_answers', '0', 15099, 16070, 4000);
  const annasPhone = phone('operator_answers', '1001', 15081, 16030, 300);
  await row(anna, number).getByRole('button', { name: 'Call back' }).click();
  await assert.doesNotReject(anna.locator('#callback-message', { hasText: 'Calling back +36209990000' }).waitFor({ timeout: 5_000 }));
  // Gone from bela's list without a reload, and from anna's.
  await row(bela, number).waitFor({ state: 'detached', timeout: 3_000 });
  await row(anna, number).waitFor({ state: 'detached', timeout: 3_000 });

  // bela clicked at the same moment (his page still had the button): he is told who has it.
  const answer = await bela.evaluate(async (entry) => {
    const csrf = document.querySelector('#callback-list').dataset.csrf;
    const res = await fetch(`/console/callbacks/${entry}/claim`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
    return { status: res.status, body: await res.json() };
  }, firstEntry);
  assert.equal(answer.status, 409);
  assert.match(answer.body.error, /anna is already calling this customer back/);
  // Without the CSRF token nothing is claimed at all.
  const forged = await bela.context().request.post(`${BASE}/console/callbacks/${firstEntry}/claim`);
  assert.equal(forged.status(), 403);

  const [c, a] = await Promise.all([customer, annasPhone]);
  assert.equal(c.code, 0, `the customer's phone failed:\n${c.output}`);
  assert.equal(a.code, 0, `anna's phone failed:\n${a.output}`);
  // Connected 4 s, more than the 2 s success rule: reached, and never back on the list.
  await assert.doesNotReject(mine(anna, firstEntry).filter({ hasText: 'reached' }).waitFor({ timeout: 5_000 }));
  assert.match(await mine(anna, firstEntry).innerText(), /connected for [3-5] s/);
  await anna.waitForTimeout(5_000); // longer than the hide time
  assert.equal(await row(bela, number).count(), 0);
  await anna.context().close();
  await bela.context().close();
});

test('no answer: the entry hides for the hide time, then is back for everyone', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  const number = '+36301112222';
  const form = bela.locator('#callback-add');
  await form.getByLabel('Number').fill('+36 30 111 2222');
  await form.getByLabel('Queue').fill('support');
  await form.getByRole('button', { name: 'Add to the list' }).click();
  await bela.locator('#callback-message', { hasText: 'is on the list' }).waitFor({ timeout: 3_000 });
  // Spaces and dashes are dropped: the list has the digits.
  const shown = (page) => row(page, number);
  await shown(anna).waitFor({ timeout: 3_000 });
  // A bad number is explained in the page.
  await form.getByLabel('Number').fill('call me');
  await form.getByRole('button', { name: 'Add to the list' }).click();
  await bela.locator('#callback-message', { hasText: 'digits with an optional leading +' }).waitFor({ timeout: 3_000 });

  const customer = phone('customer_no_answer', '0', 15099, 16070, 0);
  const belasPhone = phone('operator_answers', '1002', 15082, 16032, 300);
  await shown(bela).getByRole('button', { name: 'Call back' }).click();
  await shown(anna).waitFor({ state: 'detached', timeout: 3_000 });
  const [c, b] = await Promise.all([customer, belasPhone]);
  assert.equal(c.code, 0, `the customer's phone failed:\n${c.output}`);
  assert.equal(b.code, 0, `bela's phone failed:\n${b.output}`);
  const hiddenAt = Date.now();
  await assert.doesNotReject(bela.locator('#my-callbacks tr', { hasText: 'no answer' }).waitFor({ timeout: 5_000 }));
  // Still off the list during the hide time (4 s)…
  await anna.waitForTimeout(1_500);
  assert.equal(await shown(anna).count(), 0, 'back before the hide time');
  // …and back for both afterwards, with the attempt.
  await shown(anna).waitFor({ timeout: 6_000 });
  await shown(bela).waitFor({ timeout: 2_000 });
  assert.ok(Date.now() - hiddenAt >= 2_500, 'came back too early');
  assert.match(await shown(anna).innerText(), /1 \(last: no answer\)/);
  await anna.context().close();
  await bela.context().close();
});

test('the operator marks a voicemail: the entry comes back', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const number = '+36209990000';
  const own = mine(anna, firstEntry);
  await own.waitFor({ timeout: 5_000 });
  await own.getByRole('button', { name: 'Not reached (voicemail)' }).click();
  await anna.locator('#callback-message', { hasText: 'goes back on the list' }).waitFor({ timeout: 3_000 });
  await own.filter({ hasText: 'no answer' }).waitFor({ timeout: 3_000 });
  // After the hide time it is on the list again.
  await row(anna, number).waitFor({ timeout: 8_000 });
});
