// A consult-then-complete transfer from the call panel (PRODUCT T6), with real phones
// (SIPp). tests/run.sh has registered anna's phone (1001 on port 15081) and bela's (1002
// on 15082), records what reaches bela's phone, and reads the call record afterwards.
//
// A caller queues for support; anna's phone answers. From her panel she consults the
// sales queue, whose free member is bela: the caller holds, bela's phone rings and
// answers, and anna's panel says she is talking with bela. She completes the transfer:
// bela's panel shows the caller and anna's note, anna's is empty. The caller presses 5 twenty seconds into the call, which bela's phone
// must receive (run.sh checks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  env, chromiumForTests, logInNewPage, operatorPhone, setStatus, sipp as sippIn,
} from './lib.mjs';

const getBrowser = chromiumForTests();
const work = mkdtempSync(join(tmpdir(), 'hotline-consult-'));
const sipp = (...args) => sippIn(work, ...args);
const phone = (...args) => operatorPhone(work, ...args);

test('the operator consults a colleague, then completes the transfer', async () => {
  const anna = await logInNewPage(getBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logInNewPage(getBrowser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await setStatus(anna, 'online');
  const annaPanel = anna.locator('#my-call');
  const belaPanel = bela.locator('#my-call');

  const annasPhone = phone('1001', 15081, 16030, 300);
  const belasPhone = phone('1002', 15082, 16040, 2500);
  // The caller talks, presses 5 at 20 s (by then bela has them), and hangs up 4 s later.
  const caller = sipp('caller_presses_while_bridged.xml.in', ['-s', '500', env('SIP_ADDR'),
    '-i', '127.0.0.1', '-p', '15078', '-mi', '127.0.0.1', '-mp', '16080', '-m', '1', '-d', '4000'],
  (t) => t.replace('<pause milliseconds="3000"/>', '<pause milliseconds="20000"/>'));

  await annaPanel.getByText('+36209990000').waitFor({ timeout: 15_000 });
  await setStatus(bela, 'online');
  await anna.waitForFunction(() => [...document.querySelectorAll('#transfer-to option')]
    .some((o) => o.value === 'operator:bela' && /online/.test(o.textContent)), null, { timeout: 10_000 });

  // Consulting the sales queue reaches its free member now: bela.
  await annaPanel.getByLabel('Transfer to').selectOption('queue:sales');
  await annaPanel.getByLabel('Note for the colleague').fill('Asks about invoice 2026-118');
  await annaPanel.getByRole('button', { name: 'Consult first' }).click();
  await annaPanel.getByText('Calling bela').waitFor({ timeout: 5_000 });
  assert.match(await annaPanel.innerText(), /On hold/);
  // While bela's phone rings there is nothing to complete, and no second transfer.
  assert.equal(await annaPanel.getByRole('button', { name: 'Complete transfer' }).count(), 0);
  assert.ok(await annaPanel.getByRole('button', { name: 'Transfer', exact: true }).isDisabled());
  await annaPanel.getByText('Talking with bela').waitFor({ timeout: 10_000 });
  // bela's console does not show the caller while she only talks with anna.
  assert.match(await belaPanel.innerText(), /No call/);

  await annaPanel.getByRole('button', { name: 'Complete transfer' }).click();
  await belaPanel.getByText('+36209990000').waitFor({ timeout: 10_000 });
  await belaPanel.getByText('Asks about invoice 2026-118').waitFor({ timeout: 5_000 });
  assert.match(await belaPanel.innerText(), /from anna/);
  await annaPanel.getByText('No call').waitFor({ timeout: 5_000 });

  const [callerDone, annaDone, belaDone] = await Promise.all([caller, annasPhone, belasPhone]);
  assert.equal(callerDone.code, 0, `the caller: ${callerDone.output.slice(-2000)}`);
  assert.equal(annaDone.code, 0, `anna's phone: ${annaDone.output.slice(-2000)}`);
  assert.equal(belaDone.code, 0, `bela's phone: ${belaDone.output.slice(-2000)}`);
  await belaPanel.getByText('No call').waitFor({ timeout: 5_000 });
  // bela's wrap-up ends before the chat test offers her chats.
  await bela.waitForTimeout(2_000);
  await anna.context().close();
  await bela.context().close();
});
