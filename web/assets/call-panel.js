// The operator's call panel (home page): who is on the line, since when and from which
// queue, a note a colleague left with a transfer, Hold/Resume, and a transfer to an
// operator (with their state), a queue (with its waiting callers) or a number: at once,
// or after consulting the operator or number while the caller hears music (then
// Complete transfer, or Back to the caller). The live
// socket (console.js) hands it each change of the call; the buttons post to
// /console/call/*. A form being filled in survives the updates.

import { request } from './request.js';

const panel = document.querySelector('#my-call');
let shownCall = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

async function post(url, body) {
  const res = await request('POST', url, body);
  return { ok: res.ok, error: res.error };
}

function clock(sinceMs) {
  const secs = Math.max(0, Math.floor((Date.now() - sinceMs) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

let timer = null;

function build(call) {
  const message = el('p', { role: 'status', id: 'call-message' });
  const who = el('p', { class: 'caller' }, el('strong', { text: call.caller }),
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
  const consult = el('div', { id: 'call-consult' });
  panel.replaceChildren(who, note, state, el('p', {}, hold), form, consult, message);
  clearInterval(timer);
  timer = setInterval(() => {
    const c = panel.querySelector('#call-clock');
    if (c && shownCall) c.textContent = clock(shownCall.since_ms);
  }, 1000);
}

function update(call) {
  panel.querySelector('#call-clock').textContent = clock(call.since_ms);
  panel.querySelector('#call-state').textContent = call.held
    ? 'On hold: the caller hears music.' : '';
  const hold = panel.querySelector('#call-hold');
  hold.dataset.held = String(call.held);
  hold.textContent = call.held ? 'Resume' : 'Hold';
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
  const message = el('p', { role: 'status' });
  const form = el('form', { id: 'wrapup-form' },
    el('p', {}, 'Wrap-up of the call with ', el('strong', { text: call.caller })),
    el('label', { for: 'wrapup-category', text: 'Category' }), select,
    el('label', { for: 'wrapup-note', text: 'Wrap-up note' }), note,
    el('button', { type: 'submit', text: 'Save wrap-up' }), message);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { ok, error } = await post('/console/call/wrapup',
      { call_id: call.call_id, category: select.value, note: note.value });
    message.textContent = ok ? 'Wrap-up saved.' : (error || 'The wrap-up could not be saved.');
  });
  return form;
}

export function showCall(call) {
  if (!panel) return;
  if (!call) {
    const ended = shownCall;
    shownCall = null;
    clearInterval(timer);
    panel.replaceChildren(el('p', { text: 'No call.' }), ended ? wrapup(ended) : '');
    return;
  }
  if (!shownCall || shownCall.call_id !== call.call_id) build(call);
  shownCall = call;
  update(call);
}
