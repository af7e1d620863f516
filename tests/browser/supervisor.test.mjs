// A supervisor on a live call (PRODUCT S1), two browsers: anna (operator) in one whose
// fake microphone plays MIC_WAV (1 kHz), sara (supervisor) in another whose microphone
// plays SUPERVISOR_WAV (1.7 kHz). Both use their console tab as the phone. A SIPp caller
// plays TONE_PCAP (400 Hz, media on 16180) and waits for support; anna answers.
//
// On the board sara listens (she hears the caller's 400 Hz and anna's 1 kHz; anna does
// not hear her), whispers (anna hears her 1.7 kHz), barges in, and takes the call over
// (anna's phone is free, sara's panel has the caller, who is still heard); an operator
// is refused. Every step is
// in the board's monitoring log. The times of the whisper and the barge are written to
// PHASES, and tests/run.sh checks the caller's capture: no 1.7 kHz while sara whispered,
// 1.7 kHz mixed in while she barged in. A second call does it with sara's SIP phone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BASE, env, chromiumForTests, logInNewPage, operatorPhone, setStatus, sipp as sippIn,
} from './lib.mjs';

const mediaArgs = (wav) => ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`, '--autoplay-policy=no-user-gesture-required',
  // The daemon's candidate is on 127.0.0.1 here; Chromium skips loopback unless told.
  '--allow-loopback-in-peer-connection'];
const annasBrowser = chromiumForTests(mediaArgs(env('MIC_WAV')));
const sarasBrowser = chromiumForTests(mediaArgs(env('SUPERVISOR_WAV')));
const work = mkdtempSync(join(tmpdir(), 'hotline-supervisor-'));

const CALLER = '+36209990000';
const [CALLER_HZ, ANNA_HZ, SARA_HZ] = [400, 1000, 1700];

// Each tone's level in the page's remote audio at its strongest over `ms`, in dB below
// the loudest frequency (0: it is the loudest).
async function tones(page, ms) {
  const best = { [CALLER_HZ]: -Infinity, [ANNA_HZ]: -Infinity, [SARA_HZ]: -Infinity };
  for (let t = 0; t < ms; t += 100) {
    const now = await page.evaluate((hzs) => hzs.map((hz) => window.hotlinePhone.remoteTone(hz)),
      Object.keys(best).map(Number));
    Object.keys(best).forEach((hz, i) => { best[hz] = Math.max(best[hz], now[i]); });
    await page.waitForTimeout(100);
  }
  return best;
}
// A voice heard is within 25 dB of the loudest; G.711's own distortion of the others
// stays below -40 dB.
// When each phase ran (Unix seconds), for run.sh's checks of the captures.
const phases = {};
const HEARD = -25;
const NOT_HEARD = -40;

async function usesThisBrowser(page) {
  await page.getByLabel('this browser').check();
  await page.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
}

// A caller from `sipPort` playing TONE_PCAP (400 Hz), media on 16180, hanging up after `ms`.
const caller = (sipPort, ms) => sippIn(work, 'caller_talks.xml.in', ['-s', '500', env('SIP_ADDR'),
  '-i', '127.0.0.1', '-p', String(sipPort), '-mi', '127.0.0.1', '-mp', '16180', '-m', '1',
  '-d', String(ms)],
(t) => t.replace(/play_pcap_audio="[^"]*"/, `play_pcap_audio="${env('TONE_PCAP')}"`));

const connected = (page) => page.waitForFunction(
  () => window.hotlinePhone?.state === 'connected', null, { timeout: 15_000 });

test('a supervisor listens, whispers, barges into and takes over a call', async () => {
  const anna = await logInNewPage(annasBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logInNewPage(annasBrowser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await usesThisBrowser(anna);
  await setStatus(anna, 'online');
  await anna.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });

  // sara's console tab is her phone; the board is another tab of the same session.
  const saraPhone = await logInNewPage(sarasBrowser(), env('SUPERVISOR_USER'), env('SUPERVISOR_PASSWORD'));
  await usesThisBrowser(saraPhone);
  const board = await saraPhone.context().newPage();
  await board.goto(`${BASE}/supervisor`);

  const call = caller(15175, 40_000);
  await anna.getByText(`Incoming call from ${CALLER}`).waitFor({ timeout: 15_000 });
  await anna.getByRole('button', { name: 'Answer' }).click();
  await connected(anna);

  // The board shows the call with anna; sara listens.
  const row = board.locator('#board-calls tr', { hasText: CALLER });
  await row.getByText('anna').waitFor({ timeout: 10_000 });
  await row.getByRole('button', { name: `Listen ${CALLER}` }).click();
  await board.getByText('Listening: your phone rings').waitFor({ timeout: 5_000 });
  await connected(saraPhone);
  await row.getByText('sara listening').waitFor({ timeout: 5_000 });
  await saraPhone.waitForTimeout(1_000);
  let sara = await tones(saraPhone, 2_000);
  let annas = await tones(anna, 2_000);
  console.log('listen: sara hears', sara, 'anna hears', annas);
  assert.ok(sara[CALLER_HZ] > HEARD, 'listening, sara hears the caller');
  assert.ok(sara[ANNA_HZ] > HEARD, 'listening, sara hears anna');
  assert.ok(annas[SARA_HZ] < NOT_HEARD, 'listening, anna does not hear sara');
  assert.ok(annas[CALLER_HZ] > HEARD, 'anna still hears the caller');

  // Whisper: anna hears sara; the caller does not (run.sh checks the capture).
  await row.getByRole('button', { name: `Whisper ${CALLER}` }).click();
  await row.getByText('sara whispering').waitFor({ timeout: 5_000 });
  await anna.waitForTimeout(1_000);
  const whisper = [Date.now() / 1000];
  annas = await tones(anna, 3_000);
  whisper.push(Date.now() / 1000);
  console.log('whisper: anna hears', annas);
  assert.ok(annas[SARA_HZ] > HEARD, 'whispering, anna hears sara');
  assert.ok(annas[CALLER_HZ] > HEARD, 'whispering, anna still hears the caller');

  // Barge: everyone hears sara.
  await row.getByRole('button', { name: `Barge ${CALLER}` }).click();
  await row.getByText('sara barged in').waitFor({ timeout: 5_000 });
  await anna.waitForTimeout(1_000);
  const barge = [Date.now() / 1000];
  await anna.waitForTimeout(3_000);
  barge.push(Date.now() / 1000);
  phases.whisper = whisper;
  phases.barge = barge;

  // Take over: anna's leg drops, sara keeps the caller and has the call panel.
  await row.getByRole('button', { name: `Take over ${CALLER}` }).click();
  await board.getByText('The call is yours now.').waitFor({ timeout: 5_000 });
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  assert.equal(await anna.evaluate(() => window.hotlinePhone.state), 'idle');
  await saraPhone.locator('#my-call').getByText(CALLER).waitFor({ timeout: 10_000 });
  // What the page's jitter buffer still held of the three-way mix plays out first.
  await saraPhone.waitForTimeout(1_000);
  sara = await tones(saraPhone, 2_000);
  console.log('taken over: sara hears', sara);
  assert.ok(sara[CALLER_HZ] > HEARD, 'sara talks with the caller');
  assert.ok(sara[ANNA_HZ] < NOT_HEARD, 'anna is gone');
  await row.getByText('sara', { exact: true }).waitFor({ timeout: 5_000 });

  // Every step is in the log, with who and which call.
  const log = board.locator('#board-monitoring');
  for (const what of ['listening', 'whispering', 'barged in', 'took over']) {
    await log.locator('tr', { hasText: what }).filter({ hasText: CALLER }).first()
      .waitFor({ timeout: 5_000 });
  }

  // An operator may not monitor. The caller hangs up (40 s after calling).
  const refused = await anna.evaluate(async (callId) => {
    const csrf = document.querySelector('[data-csrf]')?.dataset.csrf
      ?? document.querySelector('input[name="_csrf"]')?.value;
    const res = await fetch('/supervisor/monitor', { method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ call_id: callId, action: 'listen' }) });
    return res.status;
  }, await row.getAttribute('data-call-id'));
  assert.equal(refused, 403);
  const result = await call;
  assert.equal(result.code, 0, result.output);
  for (const page of [anna, bela, saraPhone]) await page.context().close();
});

// sara's SIP phone this time (1009, registered from 15089 by run.sh, media on 16089; her
// console tab is not her phone): it answers the monitoring call by itself, hears caller
// and anna mixed while she listens (run.sh checks its capture), and has the caller alone
// after she takes over.
test('a supervisor with a SIP phone listens and takes over', async () => {
  const anna = await logInNewPage(annasBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  await usesThisBrowser(anna);
  await setStatus(anna, 'online');
  await anna.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
  const sara = await logInNewPage(sarasBrowser(), env('SUPERVISOR_USER'), env('SUPERVISOR_PASSWORD'));
  const board = await sara.context().newPage();
  await board.goto(`${BASE}/supervisor`);

  const call = caller(15174, 25_000);
  await anna.getByText(`Incoming call from ${CALLER}`).waitFor({ timeout: 15_000 });
  await anna.getByRole('button', { name: 'Answer' }).click();
  await connected(anna);
  const saraPhone = operatorPhone(work, '1009', 15089, 16089, 200);
  const row = board.locator('#board-calls tr', { hasText: CALLER });
  await row.getByText('anna').waitFor({ timeout: 10_000 });
  await row.getByRole('button', { name: `Listen ${CALLER}` }).click();
  await row.getByText('sara listening').waitFor({ timeout: 5_000 });
  await board.waitForTimeout(1_000);
  const listen = [Date.now() / 1000];
  await board.waitForTimeout(3_000);
  listen.push(Date.now() / 1000);

  await row.getByRole('button', { name: `Take over ${CALLER}` }).click();
  await board.getByText('The call is yours now.').waitFor({ timeout: 5_000 });
  await anna.getByText(/Call ended/).waitFor({ timeout: 10_000 });
  await row.getByText('sara', { exact: true }).waitFor({ timeout: 5_000 });
  await board.waitForTimeout(1_000);
  const takenOver = [Date.now() / 1000];
  await board.waitForTimeout(3_000);
  takenOver.push(Date.now() / 1000);
  writeFileSync(env('PHASES'), JSON.stringify({ ...phases, sip_listen: listen, sip_taken_over: takenOver }));

  // The caller hangs up: sara's phone gets the BYE.
  const [c, p] = await Promise.all([call, saraPhone]);
  assert.equal(c.code, 0, c.output);
  assert.equal(p.code, 0, p.output);
  for (const page of [anna, sara]) await page.context().close();
});
