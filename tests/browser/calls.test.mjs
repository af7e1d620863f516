// The call panel on the operator's home page (PRODUCT T6 from the console), with real
// phones (SIPp) for the operators and the caller. tests/run.sh has registered anna's phone
// (SIP user 1001 on port 15081) and bela's (1002 on 15082), and passes SIP_ADDR.
//
// A caller queues for support; anna's phone rings (2 s) and her console shows who is
// calling before she answers: the number, the IVR path, and the previous call from that
// number (caller_takes_offer's, earlier in run.sh's console block: with ONLY, run that
// check too). Answered, her console
// shows the caller. She
// holds (the caller hears the queue's music) and resumes, then transfers the caller to
// bela with a note: bela's phone rings and answers, bela's console shows the caller and
// anna's note, and anna's panel offers the wrap-up, which she saves. run.sh then reads
// the call record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  env, chromiumForTests, logInNewPage, operatorPhone, setStatus, sipp as sippIn,
} from './lib.mjs';

const getBrowser = chromiumForTests();
const work = mkdtempSync(join(tmpdir(), 'hotline-calls-'));
const sipp = (...args) => sippIn(work, ...args);
const phone = (...args) => operatorPhone(work, ...args);

async function logIn(user, password) {
  const page = await logInNewPage(getBrowser(), user, password);
  return page;
}

test('the operator sees the caller, holds, and transfers them to a colleague with a note', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await setStatus(anna, 'online');
  const annaPanel = anna.locator('#my-call');
  const belaPanel = bela.locator('#my-call');
  assert.match(await annaPanel.innerText(), /No call/);

  // anna's phone rings 2 s: long enough for the live socket's 1 s tick to show the ring.
  const annasPhone = phone('1001', 15081, 16030, 2000);
  const belasPhone = phone('1002', 15082, 16040, 300);
  const caller = sipp('caller_talks.xml.in', ['-s', '500', env('SIP_ADDR'), '-i', '127.0.0.1',
    '-p', '15078', '-mi', '127.0.0.1', '-mp', '16080', '-m', '1', '-d', '16000']);

  // The screen pop while her phone rings: who is calling and what they did in the IVR
  // (500's flow, queue-test: its queue step), with the number's previous call.
  await annaPanel.getByText('Ringing:').waitFor({ timeout: 15_000 });
  const ringing = await annaPanel.innerText();
  assert.match(ringing, /Ringing: \+36209990000/);
  assert.match(ringing, /IVR path: queue-test → wait/);
  assert.match(ringing, /in the support queue/);
  const previous = annaPanel.locator('.previous-calls li');
  assert.ok(await previous.count() >= 1, `a previous call is listed: ${ringing}`);
  assert.match(await previous.first().innerText(), /answered/);
  // Nothing to press before the answer.
  assert.equal(await annaPanel.getByRole('button').count(), 0);

  // Answered: anna's panel shows who is calling and from which queue, and still the pop.
  await annaPanel.getByRole('button', { name: 'Hold' }).waitFor({ timeout: 10_000 });
  await annaPanel.getByText('+36209990000').waitFor({ timeout: 15_000 });
  assert.match(await annaPanel.innerText(), /support/);
  assert.match(await annaPanel.locator('.ivr-path').innerText(), /queue-test → wait/);
  assert.ok(await annaPanel.locator('.previous-calls li').count() >= 1);

  // Hold and resume from the console.
  await annaPanel.getByRole('button', { name: 'Hold' }).click();
  await annaPanel.getByText('On hold').waitFor({ timeout: 5_000 });
  await anna.waitForTimeout(2_000);
  await annaPanel.getByRole('button', { name: 'Resume' }).click();
  await annaPanel.getByRole('button', { name: 'Hold' }).waitFor({ timeout: 5_000 });

  // bela becomes free; anna picks her (her state is shown) and adds a note.
  await setStatus(bela, 'online');
  const target = annaPanel.getByLabel('Transfer to');
  await anna.waitForFunction(() => [...document.querySelectorAll('#transfer-to option')]
    .some((o) => o.value === 'operator:bela' && /online/.test(o.textContent)), null, { timeout: 10_000 });
  await target.selectOption('operator:bela');
  await annaPanel.getByLabel('Note for the colleague').fill('Wants a refund for order 4711');
  await annaPanel.getByRole('button', { name: 'Transfer' }).click();

  // bela's phone answers: her panel shows the caller and anna's note; anna's is empty.
  await belaPanel.getByText('+36209990000').waitFor({ timeout: 15_000 });
  await belaPanel.getByText('Wants a refund for order 4711').waitFor({ timeout: 5_000 });
  assert.match(await belaPanel.innerText(), /from anna/);
  await annaPanel.getByText('No call').waitFor({ timeout: 5_000 });

  // anna wraps up her part: a category and a note for the call record.
  await annaPanel.getByLabel('Category').selectOption('Complaint');
  await annaPanel.getByLabel('Wrap-up note').fill('refund promised, sent on to billing');
  await annaPanel.getByLabel('Tags').fill(' refund ,billing,refund');
  await annaPanel.getByRole('button', { name: 'Save wrap-up' }).click();
  await annaPanel.getByText('Wrap-up saved.').waitFor({ timeout: 5_000 });
  // A call her panel never showed is not hers to wrap up.
  const stranger = await anna.evaluate(async () => {
    const csrf = document.querySelector('#my-call').dataset.csrf;
    const res = await fetch('/console/call/wrapup', {
      method: 'POST',
      headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
      body: JSON.stringify({ call_id: 'someone-elses-call', category: 'Order' }),
    });
    return { status: res.status, body: await res.json() };
  });
  assert.equal(stranger.status, 403);
  assert.match(stranger.body.error, /not one of your calls/);

  const [callerDone, annaDone, belaDone] = await Promise.all([caller, annasPhone, belasPhone]);
  assert.equal(callerDone.code, 0, `the caller: ${callerDone.output.slice(-2000)}`);
  assert.equal(annaDone.code, 0, `anna's phone: ${annaDone.output.slice(-2000)}`);
  assert.equal(belaDone.code, 0, `bela's phone: ${belaDone.output.slice(-2000)}`);
  await belaPanel.getByText('No call').waitFor({ timeout: 5_000 });
  // bela's wrap-up (the support queue's) ends before the chat test offers her chats.
  await bela.waitForTimeout(2_000);
  await anna.context().close();
  await bela.context().close();
});
