// A recorded call (PRODUCT S2). Calls to 520 hear a notice, then wait in support, whose
// queue step records every answered call. anna answers in her browser (fake microphone:
// MIC_WAV, 1 kHz); the SIPp caller plays TONE_PCAP (400 Hz). Her call panel says the
// call is recorded. When the caller has hung up, sara (supervisor) finds the recording on
// /supervisor/recordings with its marks, and it plays in her page; anna gets 403 for
// the file, and both the playback and the refusal are in the log. The recording's file
// (relative to the recordings directory) goes to RECORDING_OUT for tests/run.sh, which
// checks that it holds both tones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, env, chromiumForTests, logInNewPage, setStatus, sipp as sippIn } from './lib.mjs';

const browser = chromiumForTests(['--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${env('MIC_WAV')}`,
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection']);
const work = mkdtempSync(join(tmpdir(), 'hotline-recording-'));
const CALLER = '+36209990000';

const caller = (ms) => sippIn(work, 'caller_talks.xml.in', ['-s', '520', env('SIP_ADDR'),
  '-i', '127.0.0.1', '-p', '15176', '-mi', '127.0.0.1', '-mp', '16182', '-m', '1',
  '-d', String(ms)],
(t) => t.replace(/play_pcap_audio="[^"]*"/, `play_pcap_audio="${env('TONE_PCAP')}"`));

test('a recorded call plays for a supervisor and not for an operator', async () => {
  const anna = await logInNewPage(browser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logInNewPage(browser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await anna.getByLabel('this browser').check();
  await anna.getByText('This browser is your phone.').waitFor({ timeout: 10_000 });
  await setStatus(anna, 'online');

  const call = caller(15_000);
  await anna.getByText(`Incoming call from ${CALLER}`).waitFor({ timeout: 20_000 });
  await anna.getByRole('button', { name: 'Answer' }).click();
  await anna.waitForFunction(() => window.hotlinePhone?.state === 'connected', null,
    { timeout: 15_000 });
  // The queue records always: the panel says so, and offers no button to stop it.
  await anna.locator('#call-recorded').getByText('● Recording').waitFor({ timeout: 5_000 });
  assert.equal(await anna.locator('#call-record').isHidden(), true);
  const result = await call;
  assert.equal(result.code, 0, result.output);

  const sara = await logInNewPage(browser(), env('SUPERVISOR_USER'), env('SUPERVISOR_PASSWORD'));
  await sara.goto(`${BASE}/supervisor/recordings`);
  const row = sara.locator('#recordings tr', { hasText: CALLER }).first();
  await row.waitFor({ timeout: 10_000 });
  await row.getByText('talking with anna').waitFor();
  await row.getByText(/call ended/).waitFor();
  const id = await row.getAttribute('data-recording');
  // It plays, and seeks: a mark's button moves the player there.
  const audio = row.locator('audio');
  await audio.evaluate((a) => a.play());
  await sara.waitForFunction((i) => {
    const a = document.querySelector(`tr[data-recording="${i}"] audio`);
    return a && a.currentTime > 1 && !a.paused;
  }, id, { timeout: 10_000 });
  const length = await audio.evaluate((a) => a.duration);
  console.log('the recording plays in the page; its length:', length, 's');
  assert.ok(length > 5, `a recording of several seconds (${length})`);
  await row.getByText(/call ended/).click();
  await sara.waitForFunction((i) => {
    const a = document.querySelector(`tr[data-recording="${i}"] audio`);
    return a && a.currentTime > a.duration - 2;
  }, id, { timeout: 5_000 });

  // anna may not have it.
  const refused = await anna.evaluate(async (i) => (await fetch(`/supervisor/recordings/${i}/audio`)).status, id);
  assert.equal(refused, 403);
  await sara.reload();
  const log = sara.locator('#recording-log');
  await log.locator('tr', { hasText: 'sara' }).filter({ hasText: 'play' }).first().waitFor();
  await log.locator('tr', { hasText: 'anna' }).filter({ hasText: 'refused' }).first().waitFor();

  const path = await sara.evaluate(async (i) => {
    const res = await fetch(`/supervisor/recordings/${i}/download`);
    return res.headers.get('content-disposition');
  }, id);
  assert.match(path, /^attachment; filename="recording-/);
  writeFileSync(env('RECORDING_OUT'), id);
  for (const page of [anna, bela, sara]) await page.context().close();
});
