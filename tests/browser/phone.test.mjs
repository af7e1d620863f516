// The console as the operator's phone (PRODUCT T7), in Chromium with a fake microphone
// that plays MIC_WAV (a 1 kHz tone, made by tests/run.sh). A SIPp caller (PCMA, playing
// g711a.pcap) queues for support; anna's console tab is her phone. tests/run.sh captures
// what the daemon sends the caller (media port 16180) and checks that it carries anna's
// microphone tone and the keypad's 5 as RFC 4733.
//
// 1. anna chooses "this browser"; the call rings her tab (the caller's number shown
//    before she answers); she answers in the page and hears the caller; she holds and
//    resumes from the call panel; she presses 5 on the keypad.
// 2. A second call: answered, then the page is reloaded mid-call; the caller stays (on
//    hold) and the reloaded tab picks the call up again and hears the caller.
// 3. anna dials a customer from the page: her tab connects by itself, then the customer
//    behind the fake trunk (SIPp on 15099) is called and heard.
// 4. A caller answered in the browser is transferred from the call panel to bela, whose
//    SIP phone (SIPp, 1002 on 15082) answers.
// 5. anna's tab closes mid-call and does not come back within [web] phone_reattach_secs
//    (4 s here): the caller goes back to the queue, and bela's phone takes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  env, chromiumForTests, logInNewPage, operatorPhone, setStatus, sipp as sippIn,
} from './lib.mjs';

const getBrowser = chromiumForTests(['--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${env('MIC_WAV')}`,
  '--autoplay-policy=no-user-gesture-required',
  // The daemon's candidate is on 127.0.0.1 here; Chromium skips loopback unless told.
  '--allow-loopback-in-peer-connection']);
const work = mkdtempSync(join(tmpdir(), 'hotline-phone-'));
const sipp = (...args) => sippIn(work, ...args);

// A caller from port `sipPort`, media on 16180, talking for `ms`, then hanging up. Their
// phone takes RFC 4733 events (PT 101), as most do, so the keypad can reach them.
const caller = (sipPort, ms) => sipp('caller_talks.xml.in', ['-s', '500', env('SIP_ADDR'),
  '-i', '127.0.0.1', '-p', String(sipPort), '-mi', '127.0.0.1', '-mp', '16180', '-m', '1',
  '-d', String(ms)], (t) => t.replace('RTP/AVP 8\n', 'RTP/AVP 8 101\n')
  .replace('a=rtpmap:8 PCMA/8000\n', 'a=rtpmap:8 PCMA/8000\n      a=rtpmap:101 telephone-event/8000\n'));

const phoneState = (page) => page.evaluate(() => window.hotlinePhone?.state);

// The loudest the caller's audio got in the page over `ms` (RMS, 0..1).
async function loudestRemote(page, ms) {
  let loudest = 0;
  for (let t = 0; t < ms; t += 100) {
    loudest = Math.max(loudest, await page.evaluate(() => window.hotlinePhone.remoteLevel()));
    await page.waitForTimeout(100);
  }
  return loudest;
}

// What the page's phone said and heard, for the log when a check fails.
function trace(page) {
  page.on('console', (m) => console.log(`page: ${m.text()}`));
  page.on('websocket', (ws) => {
    const show = (dir) => (f) => {
      const text = String(f.payload);
      if (/"type":"(use_browser|phone|ring|answer|answered|connected|ended|error|decline|hangup|dtmf)"/.test(text)) {
        console.log(`ws ${dir} ${text.slice(0, 200)}`);
      }
    };
    ws.on('framesent', show('>'));
    ws.on('framereceived', show('<'));
  });
}

async function chooseBrowser(page) {
  trace(page);
  await page.getByLabel('this browser').check();
  await page.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
}

// anna online with this tab as her phone; bela (when asked for) logged in and paused, so
// the queue rings anna only.
async function annaOnTheBrowser({ withBela = false } = {}) {
  const anna = await logInNewPage(getBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  let bela = null;
  if (withBela) {
    bela = await logInNewPage(getBrowser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
    await setStatus(bela, 'pause');
  }
  await chooseBrowser(anna);
  // Setting the status may reload the page: the choice stays for this session.
  await setStatus(anna, 'online');
  await anna.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
  return { anna, bela };
}

async function answerWhenRung(page, callerNumber) {
  await page.getByText(`Incoming call from ${callerNumber}`).waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Answer' }).click();
  await page.waitForFunction(() => window.hotlinePhone?.state === 'connected', null,
    { timeout: 10_000 });
}

test('the console rings, answers in the page, hears the caller, holds and keys a digit', async () => {
  const { anna, bela } = await annaOnTheBrowser({ withBela: true });
  assert.equal(await anna.getByLabel('this browser').isChecked(), true);
  assert.ok(await anna.locator('#mic-level').count(), 'a microphone level meter is shown');

  const call = caller(15178, 14_000);
  await answerWhenRung(anna, '+36209990000');
  // The caller's voice reaches the page.
  const heard = await loudestRemote(anna, 2_000);
  assert.ok(heard > 0.01, `the caller is heard in the page (level ${heard})`);

  // The call panel knows the call; hold and resume from it.
  const panel = anna.locator('#my-call');
  await panel.getByText('+36209990000').waitFor({ timeout: 5_000 });
  await panel.getByRole('button', { name: 'Hold' }).click();
  await panel.getByText('On hold').waitFor({ timeout: 5_000 });
  await anna.waitForTimeout(1_500);
  await panel.getByRole('button', { name: 'Resume' }).click();
  await panel.getByRole('button', { name: 'Hold' }).waitFor({ timeout: 5_000 });

  // A keypad digit for the caller (run.sh finds it in the capture).
  await anna.getByRole('button', { name: 'Key 5' }).click();
  await anna.waitForTimeout(1_000);

  // The caller hangs up: the page says so and is idle again.
  const result = await call;
  assert.equal(result.code, 0, result.output);
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  assert.equal(await phoneState(anna), 'idle');
  await bela.context().close();
  await anna.context().close();
});

test('a page reloaded mid-call picks the held call up again', async () => {
  const { anna } = await annaOnTheBrowser();
  const call = caller(15179, 16_000);
  await answerWhenRung(anna, '+36209990000');
  assert.ok(await loudestRemote(anna, 1_500) > 0.01, 'the caller is heard before the reload');

  await anna.reload();
  // The tab is still the phone after the reload, and the held call is offered again.
  await anna.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
  await anna.getByRole('button', { name: 'Resume call' }).click({ timeout: 10_000 });
  await anna.waitForFunction(() => window.hotlinePhone?.state === 'connected', null,
    { timeout: 10_000 });
  const heard = await loudestRemote(anna, 2_000);
  assert.ok(heard > 0.01, `the caller is heard again after the reload (level ${heard})`);

  // The caller never noticed: their call ends normally with their own BYE.
  const result = await call;
  assert.equal(result.code, 0, result.output);
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  await anna.getByLabel('my SIP phone').check();
  await anna.context().close();
});

test('the operator dials a customer from the page and talks in the browser', async () => {
  const { anna } = await annaOnTheBrowser();
  const customer = sipp('customer_answers.xml', ['-s', '0', '-i', '127.0.0.1', '-p', '15099',
    '-mi', '127.0.0.1', '-mp', '16070', '-m', '1', '-d', '6000']);
  await anna.getByLabel('Number to call').fill('+36301234567');
  await anna.getByRole('button', { name: 'Dial' }).click();
  // No ring for a call she placed: the tab connects by itself, then the customer answers.
  await anna.waitForFunction(() => window.hotlinePhone?.state === 'connected', null,
    { timeout: 10_000 });
  const heard = await loudestRemote(anna, 3_000);
  assert.ok(heard > 0.01, `the customer is heard in the page (level ${heard})`);
  const result = await customer;
  assert.equal(result.code, 0, result.output);
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  await anna.context().close();
});

test('a call answered in the browser is transferred from the panel to a colleague', async () => {
  const { anna, bela } = await annaOnTheBrowser({ withBela: true });
  const belasPhone = operatorPhone(work, '1002', 15082, 16040, 300);
  const call = caller(15177, 12_000);
  await answerWhenRung(anna, '+36209990000');

  await setStatus(bela, 'online');
  const panel = anna.locator('#my-call');
  await anna.waitForFunction(() => [...document.querySelectorAll('#transfer-to option')]
    .some((o) => o.value === 'operator:bela' && /online/.test(o.textContent)), null, { timeout: 10_000 });
  await panel.getByLabel('Transfer to').selectOption('operator:bela');
  await panel.getByRole('button', { name: 'Transfer' }).click();
  // bela's phone has the caller; anna's tab is free again.
  await bela.locator('#my-call').getByText('+36209990000').waitFor({ timeout: 15_000 });
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  assert.equal(await phoneState(anna), 'idle');
  const [c, b] = await Promise.all([call, belasPhone]);
  assert.equal(c.code, 0, c.output);
  assert.equal(b.code, 0, b.output);
  await anna.getByLabel('my SIP phone').check();
  await anna.context().close();
  await bela.context().close();
});

test('a call whose page never comes back goes back to the queue, not to the void', async () => {
  const { anna, bela } = await annaOnTheBrowser({ withBela: true });
  const call = caller(15176, 16_000);
  await answerWhenRung(anna, '+36209990000');
  await setStatus(bela, 'online');
  const belasPhone = operatorPhone(work, '1002', 15082, 16040, 300);

  // anna's tab is gone for good.
  await anna.context().close();
  // After the reattach time the caller is queued again and bela's phone answers.
  const belaPanel = bela.locator('#my-call');
  await belaPanel.getByText('+36209990000').waitFor({ timeout: 20_000 });
  await belaPanel.getByText(/browser lost the call/).waitFor({ timeout: 5_000 });
  const [c, b] = await Promise.all([call, belasPhone]);
  assert.equal(c.code, 0, c.output);
  assert.equal(b.code, 0, b.output);
  await bela.context().close();
});
