// The operator's browser phone (PRODUCT T7) on the home page: "Calls ring: this browser /
// my SIP phone", then ringing, answering over WebRTC, mute, keypad and hang-up in this
// tab. The signalling goes over the home page's live socket (console.js owns it and hands
// the phone's messages here); the daemon is ICE-lite with a host candidate and takes no
// trickled candidates, so the page sends its offer once ICE gathering is complete.
// Hold and transfer stay in the call panel (call-panel.js).
//
// For tests: window.hotlinePhone.state ('idle', 'ringing', 'connecting', 'connected') and
// window.hotlinePhone.remoteLevel(), the RMS (0..1) of the caller's audio, and remoteTone(hz), how far
// one frequency is below the loudest in it (dB).

import { el } from './dom.js';
import { request } from './request.js';

const panel = document.querySelector('#phone');
const radios = panel ? [...panel.querySelectorAll('input[name="phone-use"]')] : [];
const statusLine = panel?.querySelector('#phone-status');
const alertLine = panel?.querySelector('#phone-alert');
const callArea = panel?.querySelector('#phone-call');
const devices = panel?.querySelector('#phone-devices');
const micSelect = panel?.querySelector('#phone-mic');
const speakerSelect = panel?.querySelector('#phone-speaker');
const micMeter = panel?.querySelector('#mic-level');
const soundHint = panel?.querySelector('#phone-sound-hint');
const remoteAudio = panel?.querySelector('#phone-audio');
// STUN/TURN servers ([[web.ice_servers]]): the daemon is reachable at its public address
// alone, but a browser behind strict NAT reaches it only through a TURN relay.
const iceServers = readIceServers();

// The choice is the tab's, for this login (sessionStorage); the devices the browser's.
const CHOICE_KEY = `hotline.phone.${panel?.dataset.operator ?? ''}`;
const MIC_KEY = 'hotline.phone.mic';
const SPEAKER_KEY = 'hotline.phone.speaker';
const RING_HZ = 425;
const RING_ON_S = 1;
const RING_PERIOD_MS = 5000;
// The daemon takes no trickled candidates; host candidates come at once, so this is only
// a cap for a browser that never says gathering is complete.
const ICE_GATHERING_MS = 5000;
const CAN_CHOOSE_SPEAKER = typeof HTMLMediaElement !== 'undefined'
  && 'setSinkId' in HTMLMediaElement.prototype;

export const PHONE_TYPES = new Set(['phone', 'ring', 'answered', 'connected', 'ended', 'error']);

let state = 'idle';
// The call this tab rings for or talks on: { leg, caller, resume, stream, pc, remote,
// since, timer, muted }.
let call = null;
// The last call that ended here, for the reason the daemon gives after a hang-up.
let lastLeg = null;
// Sends a message on the live socket; null while it is down.
let send = null;
let wantBrowser = readStore(sessionStorage, CHOICE_KEY) === 'browser';
let micStream = null;
// A microphone being opened (one prompt at a time), and which opening is the latest: a
// stop or a newer opening makes an older one drop its stream.
let micStarting = null;
let micGeneration = 0;
let micMeterNodes = null;
let meterTimer = null;
let audioCtx = null;
let ringing = null;
let notification = null;

function button(text, onClick, attrs = {}) {
  const b = el('button', { type: 'button', text, ...attrs });
  b.addEventListener('click', onClick);
  return b;
}

// Storage can be switched off (private modes): the phone then just forgets.
function readStore(store, key) {
  try { return store.getItem(key); } catch { return null; }
}

function writeStore(store, key, value) {
  try { store.setItem(key, value); } catch { /* forgotten, as said above */ }
}

function readIceServers() {
  try {
    const list = JSON.parse(panel?.dataset.ice || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function setStatus(text) {
  if (statusLine) statusLine.textContent = text;
}

function setAlert(text) {
  if (alertLine) alertLine.textContent = text;
}

function setState(next) {
  state = next;
  panel.dataset.state = next;
  // The phone is not changed in the middle of a call.
  for (const r of radios) r.disabled = next !== 'idle';
}

function checkRadio(value) {
  for (const r of radios) r.checked = r.value === value;
}

function setWant(browser) {
  wantBrowser = browser;
  writeStore(sessionStorage, CHOICE_KEY, browser ? 'browser' : 'sip');
}

function tell(message) {
  if (!send) return false;
  send(message);
  return true;
}

// ---- the live socket (console.js) -------------------------------------------------------

// The socket is (again) open: `sender` sends a message on it. A tab that is the phone
// says so again, since the daemon forgot it with the old socket.
export function phoneSocketOpened(sender) {
  if (!panel) return;
  send = sender;
  if (wantBrowser) tell({ type: 'use_browser', on: true });
}

// The socket is down. The daemon puts a call of this tab on hold and rings it again
// (resume) when the socket is back, so the call here is over.
export function phoneSocketClosed() {
  if (!panel) return;
  send = null;
  if (!call) return;
  const talking = state !== 'ringing';
  finish(call, talking
    ? 'The connection to the server was lost: your call waits on hold until it is back.'
    : '');
}

export function phoneNews(msg) {
  if (!panel) return;
  switch (msg.type) {
    case 'phone': showPhone(msg); break;
    case 'ring': ring(msg); break;
    case 'answered': answered(msg); break;
    case 'connected': connected(msg); break;
    case 'ended': ended(msg); break;
    case 'error': failed(msg); break;
    default: break;
  }
}

// ---- which phone rings ------------------------------------------------------------------

// The daemon's word on which phone rings: the radio follows it.
function showPhone({ browser, message }) {
  if (browser) {
    checkRadio('browser');
    setStatus('This browser is your phone.');
    if (!micStream) startMic().then((why) => { if (why) giveUpBrowser(why); });
    return;
  }
  setWant(false);
  checkRadio('sip');
  stopMic();
  setStatus(message || 'Your SIP phone rings.');
}

async function chooseBrowser() {
  resumeAudio();
  setAlert('');
  setStatus('Asking for the microphone…');
  for (const r of radios) r.disabled = true;
  const why = await startMic();
  for (const r of radios) r.disabled = state !== 'idle';
  if (why) {
    checkRadio('sip');
    setStatus('');
    setAlert(`${why} Calls keep ringing your SIP phone.`);
    return;
  }
  // Asked once, while the operator is choosing: a ring then shows on the desktop too.
  if ('Notification' in window && Notification.permission === 'default') {
    // A promise in today's browsers, a callback in old ones.
    Promise.resolve(Notification.requestPermission()).catch(() => {});
  }
  setWant(true);
  setStatus(send ? 'Asking the server…' : 'Waiting for the server…');
  tell({ type: 'use_browser', on: true });
}

function chooseSip() {
  setAlert('');
  setWant(false);
  stopMic();
  if (!tell({ type: 'use_browser', on: false })) setStatus('Your SIP phone rings.');
}

// The tab was the phone but cannot be any longer (the microphone went away on a reload).
function giveUpBrowser(why) {
  setWant(false);
  checkRadio('sip');
  stopMic();
  setAlert(`${why} Calls ring your SIP phone again.`);
  tell({ type: 'use_browser', on: false });
}

// ---- microphone, speaker, level meter ---------------------------------------------------

function micConstraint() {
  const id = readStore(localStorage, MIC_KEY);
  return id ? { deviceId: id } : true;
}

// Opens the chosen microphone for the level meter and lists the devices; the reason it
// failed, or null.
function startMic() {
  micStarting ??= openMic().finally(() => { micStarting = null; });
  return micStarting;
}

async function openMic() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return 'This browser cannot use a microphone on this page (the console needs HTTPS).';
  }
  const generation = ++micGeneration;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: micConstraint() });
  } catch (e) {
    return e?.name === 'NotAllowedError'
      ? 'The microphone was not allowed.'
      : `The microphone could not be opened (${e?.message || e?.name || e}).`;
  }
  if (generation !== micGeneration) {
    stopStream(stream);
    return null;
  }
  closeMic();
  micStream = stream;
  devices.hidden = false;
  startMeter(stream);
  await listDevices();
  return null;
}

function closeMic() {
  clearInterval(meterTimer);
  meterTimer = null;
  disconnect(micMeterNodes);
  micMeterNodes = null;
  stopStream(micStream);
  micStream = null;
  if (micMeter) micMeter.value = 0;
}

// No more meter: the tab is not the phone.
function stopMic() {
  micGeneration += 1;
  closeMic();
  if (devices) devices.hidden = true;
}

function stopStream(stream) {
  for (const t of stream?.getTracks() ?? []) t.stop();
}

function startMeter(stream) {
  micMeterNodes = analyse(stream);
  if (!micMeterNodes) return;
  meterTimer = setInterval(() => {
    // Speech is around 0.1-0.3 RMS: scaled so the meter moves visibly.
    micMeter.value = Math.min(1, rms(micMeterNodes.analyser) * 3);
  }, 100);
}

async function listDevices() {
  let list;
  try {
    list = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  fillDevices(micSelect, list.filter((d) => d.kind === 'audioinput'),
    readStore(localStorage, MIC_KEY), 'Microphone');
  if (CAN_CHOOSE_SPEAKER) {
    fillDevices(speakerSelect, list.filter((d) => d.kind === 'audiooutput'),
      readStore(localStorage, SPEAKER_KEY), 'Speaker');
  } else {
    speakerSelect.replaceChildren(el('option', { value: '', text: "The browser's default" }));
    speakerSelect.disabled = true;
  }
}

function fillDevices(select, list, chosen, kind) {
  select.replaceChildren(...list.map((d, i) => {
    const o = el('option', { value: d.deviceId, text: d.label || `${kind} ${i + 1}` });
    if (d.deviceId === chosen) o.selected = true;
    return o;
  }));
}

async function chooseMic() {
  writeStore(localStorage, MIC_KEY, micSelect.value);
  if (!wantBrowser) return;
  const why = await startMic();
  if (why) setAlert(why);
  // The call goes on with the new microphone.
  const c = call;
  if (!c?.pc) return;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: micConstraint() });
    const [track] = stream.getAudioTracks();
    track.enabled = !c.muted;
    const sender = c.pc.getSenders().find((s) => s.track?.kind === 'audio');
    await sender?.replaceTrack(track);
    stopStream(c.stream);
    c.stream = stream;
  } catch (e) {
    setAlert(`The call keeps the old microphone (${e?.message || e}).`);
  }
}

function chooseSpeaker() {
  writeStore(localStorage, SPEAKER_KEY, speakerSelect.value);
  applySpeaker();
}

function applySpeaker() {
  const id = readStore(localStorage, SPEAKER_KEY);
  if (!id || !CAN_CHOOSE_SPEAKER) return;
  remoteAudio.setSinkId(id).catch(() => {});
  // The ring plays through the audio context (Chromium can send it to a device too).
  audioCtx?.setSinkId?.(id).catch(() => {});
}

// One audio context for the ring, the meter and the caller's level. Browsers start it
// suspended until the operator did something on the page.
function audioContext() {
  if (!audioCtx) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audioCtx = new Ctx();
    audioCtx.addEventListener('statechange', showSoundHint);
    applySpeaker();
  }
  return audioCtx;
}

function resumeAudio() {
  audioContext();
  wakeAudio();
}

// A context made before the operator did anything starts suspended.
function wakeAudio() {
  if (audioCtx?.state === 'suspended') audioCtx.resume().catch(() => {});
}

function showSoundHint() {
  if (soundHint) soundHint.hidden = !audioCtx || audioCtx.state !== 'suspended';
}

// An analyser on `stream`, pulled through a silent path (some browsers only run nodes
// that reach the destination).
function analyse(stream) {
  const ctx = audioContext();
  if (!ctx) return null;
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  // Levels as they are now, not averaged over the last frames.
  analyser.smoothingTimeConstant = 0;
  const silent = ctx.createGain();
  silent.gain.value = 0;
  source.connect(analyser);
  analyser.connect(silent).connect(ctx.destination);
  showSoundHint();
  return { source, analyser, silent };
}

function disconnect(nodes) {
  if (!nodes) return;
  nodes.source.disconnect();
  nodes.analyser.disconnect();
  nodes.silent.disconnect();
}

function rms(analyser) {
  const samples = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(samples);
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

function remoteLevel() {
  return call?.remote ? rms(call.remote.analyser) : 0;
}

// How strong `hz` is in the remote audio now against its loudest frequency (dB, 0 when it
// is the loudest): what a check that one voice reaches this ear needs.
function remoteTone(hz) {
  const analyser = call?.remote?.analyser;
  if (!analyser) return -Infinity;
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const width = analyser.context.sampleRate / analyser.fftSize;
  const at = Math.round(hz / width);
  const peak = Math.max(...bins.slice(Math.max(0, at - 1), at + 2));
  const loudest = Math.max(...bins);
  return Number.isFinite(loudest) ? peak - loudest : -Infinity;
}

// ---- ringing ----------------------------------------------------------------------------

function ring(msg) {
  // The daemon rings a busy tab for nothing else; a ring in the middle of a call is stale.
  if (state === 'connecting' || state === 'connected') return;
  stopRinging();
  setAlert('');
  call = { leg: msg.leg, caller: msg.caller, resume: Boolean(msg.resume) };
  setState('ringing');
  // A call the operator placed (the dial field, a callback): no ring, it connects.
  if (msg.auto_answer) {
    answer();
    return;
  }
  showRinging(call);
  if (!call.resume) {
    startRingSound();
    notify(call.caller);
  }
}

function showRinging(c) {
  if (c.resume) {
    callArea.replaceChildren(
      el('p', { class: 'incoming' }, 'Your call with ', el('strong', { text: c.caller }),
        ' is waiting on hold'),
      el('p', {}, button('Resume call', answer, { class: 'answer' })));
    return;
  }
  // Backquotes: with plain quotes assets.rs's import check takes this line for an import.
  callArea.replaceChildren(
    el('p', { class: 'incoming' }, `Incoming call from `, el('strong', { text: c.caller })),
    el('p', {}, button('Answer', answer, { class: 'answer' }), ' ',
      button('Decline', decline, { class: 'decline' })));
}

// 425 Hz, 1 s on, 4 s off, through WebAudio (no sound file).
function startRingSound() {
  const ctx = audioContext();
  if (!ctx) return;
  const osc = ctx.createOscillator();
  osc.frequency.value = RING_HZ;
  const gain = ctx.createGain();
  gain.gain.value = 0;
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  const burst = () => {
    const t = ctx.currentTime;
    // Short ramps: a hard step clicks.
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(0.2, t + 0.02);
    gain.gain.setValueAtTime(0.2, t + RING_ON_S - 0.02);
    gain.gain.linearRampToValueAtTime(0, t + RING_ON_S);
  };
  burst();
  ringing = { osc, gain, timer: setInterval(burst, RING_PERIOD_MS) };
}

function notify(caller) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    notification = new Notification('Incoming call', { body: `Call from ${caller}`, tag: 'hotline-ring' });
    notification.addEventListener('click', () => { window.focus(); notification?.close(); });
  } catch {
    // Some browsers only notify from a service worker: the page and the ring remain.
  }
}

function stopRinging() {
  if (ringing) {
    clearInterval(ringing.timer);
    ringing.osc.stop();
    ringing.osc.disconnect();
    ringing.gain.disconnect();
    ringing = null;
  }
  notification?.close();
  notification = null;
}

function decline() {
  const c = call;
  if (!c || state !== 'ringing') return;
  tell({ type: 'decline', leg: c.leg });
  finish(c, c.resume ? '' : 'Declined.');
}

// ---- the call ---------------------------------------------------------------------------

// Answer (or Resume call): the microphone, an offer with every candidate, to the daemon.
async function answer() {
  const c = call;
  if (!c || state !== 'ringing') return;
  stopRinging();
  resumeAudio();
  setAlert('');
  setState('connecting');
  showConnecting(c);
  try {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this page cannot use a microphone');
    c.stream = await navigator.mediaDevices.getUserMedia({ audio: micConstraint() });
    if (call !== c) { stopStream(c.stream); return; }
    const pc = new RTCPeerConnection({ iceServers });
    c.pc = pc;
    for (const track of c.stream.getAudioTracks()) pc.addTrack(track, c.stream);
    pc.addEventListener('track', (e) => playRemote(c, e));
    pc.addEventListener('connectionstatechange', () => {
      if (call === c && pc.connectionState === 'failed') {
        setAlert('The audio connection failed. Hang up, or wait for the server.');
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (call !== c) return;
    if (!tell({ type: 'answer', leg: c.leg, sdp: pc.localDescription.sdp })) {
      throw new Error('the connection to the server is down');
    }
  } catch (e) {
    if (call !== c) return;
    backToRinging(c, `The call could not be answered: ${e?.message || e}.`);
  }
}

function iceGathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    let timer = null;
    const check = () => {
      if (pc.iceGatheringState !== 'complete') return;
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }, ICE_GATHERING_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// The answer failed here or was refused: the call still rings (silently) for another try.
function backToRinging(c, why) {
  closeMedia(c);
  setAlert(why);
  setState('ringing');
  showRinging(c);
}

function playRemote(c, e) {
  if (call !== c) return;
  const stream = e.streams[0] ?? new MediaStream([e.track]);
  remoteAudio.srcObject = stream;
  applySpeaker();
  remoteAudio.play().catch(() => {});
  disconnect(c.remote);
  c.remote = analyse(stream);
}

async function answered(msg) {
  const c = call;
  if (!c?.pc || c.leg !== msg.leg) return;
  try {
    await c.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
  } catch (e) {
    if (call !== c) return;
    tell({ type: 'hangup', leg: c.leg });
    finish(c, '');
    setAlert(`The server's answer could not be used (${e?.message || e}): the call was hung up.`);
  }
}

function connected(msg) {
  const c = call;
  if (!c || c.leg !== msg.leg) return;
  setState('connected');
  c.since = Date.now();
  showConnected(c);
}

function ended(msg) {
  const text = `Call ended: ${msg.reason}`;
  if (call && call.leg === msg.leg) {
    finish(call, text);
  } else if (msg.leg === lastLeg && state === 'idle') {
    // After our own hang-up or decline: the daemon's words replace ours.
    callArea.replaceChildren(el('p', { class: 'ended', text }));
  }
}

function failed(msg) {
  setAlert(msg.message);
  // A refused answer: the call is not taken; it still rings, or ends with `ended`.
  if (call && msg.leg === call.leg && state === 'connecting') backToRinging(call, msg.message);
}

function showConnecting(c) {
  callArea.replaceChildren(
    el('p', {}, 'Calling ', el('strong', { text: c.caller }), '…'),
    el('p', {}, button('Hang up', hangUp, { class: 'hangup' })));
}

function clock(sinceMs) {
  const secs = Math.max(0, Math.floor((Date.now() - sinceMs) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

function showConnected(c) {
  const timer = el('span', { id: 'phone-timer', text: clock(c.since) });
  clearInterval(c.timer);
  c.timer = setInterval(() => { timer.textContent = clock(c.since); }, 1000);
  const mute = button(c.muted ? 'Unmute' : 'Mute', () => {
    c.muted = !c.muted;
    // Local only: the daemon sends silence on, the caller hears nothing.
    for (const t of c.stream?.getAudioTracks() ?? []) t.enabled = !c.muted;
    mute.textContent = c.muted ? 'Unmute' : 'Mute';
  });
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'].map((digit) =>
    button(digit, () => tell({ type: 'dtmf', leg: c.leg, digit }), { 'aria-label': `Key ${digit}` }));
  callArea.replaceChildren(
    el('p', {}, el('strong', { text: 'Connected' }), ' with ', el('strong', { text: c.caller }),
      ' · ', timer),
    el('p', {}, mute, ' ', button('Hang up', hangUp, { class: 'hangup' })),
    el('div', { class: 'keypad', role: 'group', 'aria-label': 'Keypad' }, ...keys));
}

function hangUp() {
  const c = call;
  if (!c) return;
  tell({ type: 'hangup', leg: c.leg });
  finish(c, 'Call ended.');
}

function closeMedia(c) {
  clearInterval(c.timer);
  c.timer = null;
  c.pc?.close();
  c.pc = null;
  stopStream(c.stream);
  c.stream = null;
  disconnect(c.remote);
  c.remote = null;
  if (remoteAudio.srcObject) remoteAudio.srcObject = null;
}

// The call is over here; `text` says how.
function finish(c, text) {
  stopRinging();
  closeMedia(c);
  if (call === c) call = null;
  lastLeg = c.leg;
  setState('idle');
  callArea.replaceChildren(...(text ? [el('p', { class: 'ended', text })] : []));
}

// ---- start ------------------------------------------------------------------------------

if (panel) {
  setState('idle');
  checkRadio(wantBrowser ? 'browser' : 'sip');
  for (const r of radios) {
    r.addEventListener('change', () => {
      if (!r.checked) return;
      if (r.value === 'browser') chooseBrowser();
      else chooseSip();
    });
  }
  micSelect.addEventListener('change', chooseMic);
  speakerSelect.addEventListener('change', chooseSpeaker);
  navigator.mediaDevices?.addEventListener?.('devicechange', () => { if (micStream) listDevices(); });
  // The first click or key on the page lets the ring sound (browsers' autoplay rules).
  for (const kind of ['pointerdown', 'keydown']) document.addEventListener(kind, wakeAudio);
  // After a reload the tab is still the phone: the meter again (use_browser goes with the
  // socket's open).
  if (wantBrowser) startMic().then((why) => { if (why) giveUpBrowser(why); });
  window.hotlinePhone = {
    get state() { return state; },
    remoteLevel,
    remoteTone,
  };
}

// ---- the dial field ---------------------------------------------------------------------

// "Number to call" and Call: the daemon rings this phone (which answers by itself when it
// is this browser), then the number, through the dial plan; its refusal is shown.
const dialForm = panel?.querySelector('#phone-dial');
const dialMessage = panel?.querySelector('#phone-dial-message');
dialForm?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const number = dialForm.querySelector('input[name="number"]').value.trim();
  if (!number) {
    dialMessage.textContent = 'Type the number to call.';
    return;
  }
  dialMessage.textContent = '';
  const res = await request('POST', '/console/call/dial', { number });
  if (res.ok) {
    dialMessage.textContent = `Calling ${number}: your phone connects first.`;
  } else {
    dialMessage.textContent = res.error || 'The call could not be started.';
  }
});
