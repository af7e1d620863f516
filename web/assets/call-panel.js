// The operator's call panel (home page): who is on the line, since when and from which
// queue, a note a colleague left with a transfer, Hold/Resume, and a transfer to an
// operator (with their state), a queue (with its waiting callers) or a number: at once,
// or after consulting the operator or number while the caller hears music (then
// Complete transfer, or Back to the caller). The live
// socket (console.js) hands it each change of the call; the buttons post to
// /console/call/*. A form being filled in survives the updates.
//
// The screen pop: a call ringing the operator's phone (browser or SIP) is shown before
// they answer ("Ringing: number name VIP"), and both then and during the call what the
// caller did in the IVR (flow path, digits, variables, wait, queue, skill) and the
// number's history (previous calls, callback entries, open tasks, past chats).

import { el } from './dom.js';
import { request } from './request.js';

const panel = document.querySelector('#my-call');
let shownCall = null;

async function post(url, body) {
  const res = await request('POST', url, body);
  return { ok: res.ok, error: res.error };
}

function clock(sinceMs) {
  const secs = Math.max(0, Math.floor((Date.now() - sinceMs) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

let timer = null;

// A call's identity: a ringing one has no call_id (it is not the operator's to wrap up).
const callKey = (call) => call.call_id ?? call.ringing_call_id;

function when(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

function duration(ms) {
  const secs = Math.max(0, Math.round(Number(ms) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

// The name a task or chat knows for the caller, and the VIP mark, after their number.
function whoExtras(call) {
  return [
    call.name ? el('span', { class: 'caller-name', text: ` ${call.name}` }) : '',
    call.vip ? el('span', { class: 'vip-mark', title: 'VIP caller', text: ' VIP' }) : '',
  ];
}

// A titled list, or nothing when it has no items.
function section(title, cls, items) {
  if (!items.length) return '';
  return el('div', { class: `pop-section ${cls}` }, el('h3', { text: title }),
    el('ul', {}, ...items.map((text) => el('li', { text }))));
}

// What the caller did in the IVR and what the store knows of the number.
function screenPop(call) {
  const soFar = call.so_far ?? {};
  const history = call.history ?? {};
  const facts = [];
  const path = [soFar.flow, ...(soFar.path ?? [])].filter(Boolean);
  if (path.length) facts.push(el('p', { class: 'ivr-path' }, 'IVR path: ', el('span', { text: path.join(' → ') })));
  if (soFar.digits) facts.push(el('p', { class: 'ivr-digits', text: `Digits: ${soFar.digits}` }));
  const vars = Object.entries(soFar.variables ?? {});
  if (vars.length) {
    facts.push(el('p', { class: 'ivr-variables', text: `Variables: ${vars.map(([k, v]) => `${k}=${v}`).join(', ')}` }));
  }
  if (soFar.queue || soFar.wait_ms != null) {
    const parts = [];
    if (soFar.wait_ms != null) parts.push(`Waited ${duration(soFar.wait_ms)}`);
    if (soFar.queue) parts.push(`${parts.length ? 'in' : 'In'} the ${soFar.queue} queue`);
    if (soFar.skill) parts.push(`(skill ${soFar.skill})`);
    facts.push(el('p', { class: 'ivr-wait', text: parts.join(' ') }));
  }
  const calls = (history.calls ?? []).map((c) => {
    const outcome = c.answered
      ? `answered by ${c.operator}`
      : `not answered (${(c.end_reason ?? 'still open').replaceAll('_', ' ')})`;
    return [when(c.started_at_ms), outcome, c.queue ? `${c.queue} queue` : '',
      c.wrapup_category ? `wrap-up: ${c.wrapup_category}` : ''].filter(Boolean).join(' · ');
  });
  const callbacks = (history.callbacks ?? []).map((e) => [
    e.state === 'open' ? 'On the callback list' : 'Called back',
    `since ${when(e.last_at_ms)}`, `${e.count} call(s)`,
    e.queue ? `${e.queue} queue` : '',
    e.promised_at_ms ? `promised ${when(e.promised_at_ms)}` : '',
    e.attempts ? `${e.attempts} attempt(s), last ${(e.last_outcome ?? '').replaceAll('_', ' ')}` : '',
  ].filter(Boolean).join(' · '));
  const tasks = (history.tasks ?? []).map((t) => `${t.title} · due ${when(t.due_at_ms)}`);
  const chats = (history.chats ?? []).map((c) => [when(c.created_at_ms), c.topic || 'chat',
    `${c.queue} queue`, c.operators?.length ? `with ${c.operators.join(', ')}` : ''].filter(Boolean).join(' · '));
  const pop = el('div', { id: 'screen-pop', class: 'screen-pop' }, ...facts,
    calls.length ? section('Previous calls', 'previous-calls', calls)
      : el('p', { class: 'previous-calls', text: 'First call from this number.' }),
    section('Callback list', 'callback-entries', callbacks),
    section('Open tasks', 'open-tasks', tasks),
    section('Past chats', 'past-chats', chats),
    history.incomplete ? el('p', { class: 'pop-incomplete', text: 'Part of the history could not be read.' }) : '');
  pop.dataset.shown = popKey(call);
  return pop;
}

const popKey = (call) => JSON.stringify([call.so_far, call.history, call.name, call.vip]);

// Before the answer: who is calling and what is known of them; no buttons yet.
function buildRinging(call, keep) {
  const who = el('p', { class: 'caller ringing' }, 'Ringing: ', el('strong', { text: call.caller }),
    ...whoExtras(call));
  panel.replaceChildren(who, screenPop(call), keep ?? '');
  clearInterval(timer);
}

function build(call) {
  const message = el('p', { role: 'status', id: 'call-message' });
  const who = el('p', { class: 'caller' }, el('strong', { text: call.caller }), ...whoExtras(call),
    call.queue ? ` from the ${call.queue} queue` : '', ' · ', el('span', { id: 'call-clock' }));
  const note = call.note
    ? el('p', { class: 'transfer-note' }, `Transferred from ${call.note_from}: `,
      el('q', { text: call.note }))
    : '';
  const state = el('p', { id: 'call-state' });
  const hold = el('button', { type: 'button', id: 'call-hold' });
  hold.addEventListener('click', async () => {
    hold.disabled = true;
    const { ok, error } = await post('/console/call/hold', { held: hold.dataset.held !== 'true' });
    message.textContent = ok ? '' : (error || 'The call could not be held.');
    hold.disabled = false;
  });
  // Recording: shown when the queue records; a button where it records on demand.
  const recorded = el('span', { id: 'call-recorded', class: 'recorded', role: 'status' });
  const record = el('button', { type: 'button', id: 'call-record', class: 'secondary' });
  record.hidden = call.record !== 'on_demand';
  record.addEventListener('click', async () => {
    record.disabled = true;
    const on = record.dataset.recording !== 'true';
    const { ok, error } = await post('/console/call/record', { on });
    message.textContent = ok ? '' : (error || 'The recording could not be changed.');
    record.disabled = false;
  });
  const select = el('select', { id: 'transfer-to', name: 'to' });
  const number = el('input', { id: 'transfer-number', name: 'number', type: 'tel',
    placeholder: '+36 30 123 4567', autocomplete: 'off' });
  const noteInput = el('input', { id: 'transfer-note', name: 'note', maxlength: '500' });
  const form = el('form', { id: 'transfer-form', class: 'inline' },
    el('label', { for: 'transfer-to', text: 'Transfer to' }), select,
    el('label', { for: 'transfer-number', text: 'or number' }), number,
    el('label', { for: 'transfer-note', text: 'Note for the colleague' }), noteInput,
    el('button', { type: 'submit', value: 'blind', text: 'Transfer' }),
    el('button', { type: 'submit', value: 'consult', text: 'Consult first' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const consult = e.submitter?.value === 'consult';
    const typed = number.value.trim();
    const to = typed ? `number:${typed}` : select.value;
    if (!to) { message.textContent = 'Choose an operator or a queue, or type a number.'; return; }
    const { ok, error } = await post('/console/call/transfer', { to, note: noteInput.value, consult });
    if (ok) message.textContent = consult ? '' : 'Transferring…';
    else message.textContent = error || 'The transfer failed.';
  });
  // For an operator whose phone is out of reach (the browser phone has its own Hang up).
  const end = el('button', { type: 'button', id: 'call-end', text: 'End call' });
  end.addEventListener('click', async () => {
    end.disabled = true;
    const { ok, error } = await post('/console/call/hangup', {});
    message.textContent = ok ? 'Call ended.' : (error || 'The call could not be ended.');
    end.disabled = false;
  });
  const consult = el('div', { id: 'call-consult' });
  const visual = el('p', { id: 'call-visual' });
  const invite = document.querySelector('#invite-form')
    ? el('button', { type: 'button', id: 'call-invite', class: 'secondary', text: 'Send visual session invite' })
    : '';
  invite?.addEventListener?.('click', () => prefillInvite(call));
  // The record's category, note and tags can be written while talking, and stay for
  // the wrap-up.
  const notes = wrapup(call);
  notes.querySelector('.wrapup-title').replaceChildren('Notes for the call record');
  panel.replaceChildren(who, note, state,
    el('p', {}, hold, ' ', end, ' ', record, ' ', invite, ' ', recorded), visual, form,
    consult, message, screenPop(call), notes);
  clearInterval(timer);
  timer = setInterval(() => {
    const c = panel.querySelector('#call-clock');
    if (c && shownCall) c.textContent = clock(shownCall.since_ms);
  }, 1000);
}

function update(call) {
  panel.querySelector('#call-clock').textContent = clock(call.since_ms);
  showVisual(call.visual_sessions ?? []);
  panel.querySelector('#call-state').textContent = call.held
    ? 'On hold: the caller hears music.' : '';
  const hold = panel.querySelector('#call-hold');
  hold.dataset.held = String(call.held);
  hold.textContent = call.held ? 'Resume' : 'Hold';
  const record = panel.querySelector('#call-record');
  record.dataset.recording = String(!!call.recording);
  record.textContent = call.recording ? 'Stop recording' : 'Record';
  panel.querySelector('#call-recorded').textContent = call.recording ? '● Recording' : '';
  showConsult(call.consult);
  const select = panel.querySelector('#transfer-to');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '', text: 'Choose…' }), ...call.targets.map((t) => {
    const o = el('option', { value: t.value, text: t.label });
    if (t.value === chosen) o.selected = true;
    return o;
  }));
}

// The consultation under way: whom, and the buttons that end it; or how it ended.
function showConsult(consult) {
  const area = panel.querySelector('#call-consult');
  const message = panel.querySelector('#call-message');
  const key = JSON.stringify(consult ?? null);
  if (area.dataset.shown === key) return;
  area.dataset.shown = key;
  // No second transfer while one is under way.
  const busy = Boolean(consult && !consult.ended);
  panel.querySelectorAll('#transfer-form button').forEach((b) => { b.disabled = busy; });
  if (!consult) { area.replaceChildren(); return; }
  if (consult.ended) { area.replaceChildren(el('p', { text: consult.ended })); return; }
  const end = (complete, label) => {
    const b = el('button', { type: 'button', text: label });
    b.addEventListener('click', async () => {
      b.disabled = true;
      const { ok, error } = await post('/console/call/consult', { complete });
      message.textContent = ok ? (complete ? 'Transferred.' : '') : (error || 'That did not work.');
      b.disabled = false;
    });
    return b;
  };
  const status = consult.talking
    ? `Talking with ${consult.with}. The caller hears music.`
    : `Calling ${consult.with}… The caller hears music.`;
  // The caller can go to them once they answered.
  const buttons = consult.talking
    ? [end(true, 'Complete transfer'), ' ', end(false, 'Back to the caller')]
    : [end(false, 'Back to the caller')];
  area.replaceChildren(el('p', { class: 'consult', text: status }), el('p', {}, ...buttons));
}

// After the call: its wrap-up (a category, as for chats, and a note) for the call record.
function wrapup(call) {
  const select = el('select', { id: 'wrapup-category', name: 'category' });
  select.innerHTML = document.querySelector('#wrapup-categories')?.innerHTML ?? '';
  const note = el('textarea', { id: 'wrapup-note', name: 'note', rows: '2', maxlength: '2000' });
  const tags = el('input', { id: 'wrapup-tags', name: 'tags', maxlength: '400',
    placeholder: 'refund, complaint', autocomplete: 'off' });
  const message = el('p', { role: 'status' });
  const form = el('form', { id: 'wrapup-form' },
    el('p', { class: 'wrapup-title' }, 'Wrap-up of the call with ', el('strong', { text: call.caller })),
    el('label', { for: 'wrapup-category', text: 'Category' }), select,
    el('label', { for: 'wrapup-note', text: 'Wrap-up note' }), note,
    el('label', { for: 'wrapup-tags', text: 'Tags' }), tags,
    el('button', { type: 'submit', text: 'Save wrap-up' }), ' ', ready(message), message);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { ok, error } = await post('/console/call/wrapup',
      { call_id: call.call_id, category: select.value, note: note.value, tags: tags.value });
    message.textContent = ok ? 'Wrap-up saved.' : (error || 'The wrap-up could not be saved.');
  });
  return form;
}

// The call's visual sessions, each a link to its page.
function showVisual(sessions) {
  const area = panel.querySelector('#call-visual');
  const key = JSON.stringify(sessions);
  if (!area || area.dataset.shown === key) return;
  area.dataset.shown = key;
  area.replaceChildren(...sessions.flatMap((v, i) => [i ? ' · ' : 'Visual session: ',
    el('a', { href: `/visual/${v.id}`, text: `case ${v.case_number}` }), ` (${v.state})`]));
}

// The visual-session form (seed 000, PRODUCT V4) filled in for this caller: SMS to their
// number, linked to this call; the operator picks the license and sends it.
function prefillInvite(call) {
  const form = document.querySelector('#invite-form');
  if (!form) return;
  form.querySelector('input[name="channel"][value="sms"]')?.click();
  form.querySelector('input[name="phone"]').value = call.caller;
  form.querySelector('input[name="call_id"]').value = call.call_id;
  const note = form.querySelector('#invite-call');
  note.textContent = `For the call with ${call.caller}.`;
  note.hidden = false;
  form.scrollIntoView({ behavior: 'smooth', block: 'center' });
  form.querySelector('select[name="license"]')?.focus();
}

// Ends the wrap-up time early: the queues may ring the operator at once.
function ready(message) {
  const b = el('button', { type: 'button', class: 'secondary', text: 'Ready for the next call' });
  b.addEventListener('click', async () => {
    b.disabled = true;
    const { ok, error } = await post('/console/call/ready', {});
    message.textContent = ok ? 'You are ready for the next call.' : (error || 'That did not work.');
    b.disabled = false;
  });
  return b;
}

export function showCall(call) {
  if (!panel) return;
  if (!call) {
    const ended = shownCall;
    shownCall = null;
    clearInterval(timer);
    // A call that only rang was not the operator's: nothing to wrap up. A wrap-up form
    // kept under a ring that ended stays.
    if (ended?.ringing) {
      panel.replaceChildren(el('p', { text: 'No call.' }), panel.querySelector('#wrapup-form') ?? '');
      return;
    }
    // What was typed during the call stays: the same form, now the wrap-up.
    const typed = ended && panel.querySelector('#wrapup-form');
    if (typed) {
      typed.querySelector('.wrapup-title').replaceChildren('Wrap-up of the call with ',
        el('strong', { text: ended.caller }));
    }
    panel.replaceChildren(el('p', { text: 'No call.' }), typed || (ended ? wrapup(ended) : ''));
    return;
  }
  if (call.ringing) {
    // A wrap-up still being filled in stays under the ring.
    if (!shownCall?.ringing || callKey(shownCall) !== callKey(call)) {
      buildRinging(call, panel.querySelector('#wrapup-form'));
    }
    shownCall = call;
    return;
  }
  if (!shownCall || shownCall.ringing || shownCall.call_id !== call.call_id) build(call);
  else refreshPop(call);
  shownCall = call;
  update(call);
}

// The history and IVR facts change rarely (the history is read once per call): redrawn
// only when they did, so nothing the operator is reading jumps every second.
function refreshPop(call) {
  const pop = panel.querySelector('#screen-pop');
  if (pop && pop.dataset.shown !== popKey(call)) pop.replaceWith(screenPop(call));
}
