// The home page's live widgets over one WebSocket per tab (/console/live): queue figures,
// the shared missed-calls list, and the operator's own recent callbacks. The socket
// reconnects by itself; the server sends a widget whenever it changed. The browser
// phone's signalling (phone.js) goes over the same socket, both ways.

import { showCall } from './call-panel.js';
import { PHONE_TYPES, phoneNews, phoneSocketClosed, phoneSocketOpened } from './phone.js';
import { request } from './request.js';

const figures = document.querySelector('#queue-figures tbody');
const callbacks = document.querySelector('#callback-list');
const callbackMessage = document.querySelector('#callback-message');
const mine = document.querySelector('#my-callbacks tbody');

function cell(text) {
  const td = document.createElement('td');
  td.textContent = String(text);
  return td;
}

function emptyRow(text, columns) {
  const tr = document.createElement('tr');
  const td = cell(text);
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

function minutes(secs) {
  return secs < 60 ? `${secs} s` : `${Math.floor(secs / 60)} min ${secs % 60} s`;
}

const OUTCOMES = {
  success: 'reached',
  no_answer: 'no answer',
  busy: 'busy',
  rejected: 'refused',
  failed: 'failed',
};

function showFigures(queues) {
  if (!figures) return;
  figures.replaceChildren(...queues.map((q) => {
    const tr = document.createElement('tr');
    tr.dataset.queue = q.queue;
    tr.append(cell(q.queue), cell(q.waiting), cell(minutes(q.longest_wait_secs)),
      cell(q.online), cell(q.busy), cell(q.paused));
    return tr;
  }));
  if (queues.length === 0) figures.replaceChildren(emptyRow('No queues.', 6));
}

// The missed-calls widget: the same list for every operator. "Call back" claims the entry:
// it leaves everyone's list at once, the operator's phone rings, then the customer's.
function showCallbacks(entries) {
  if (!callbacks) return;
  const body = callbacks.querySelector('tbody');
  body.replaceChildren(...entries.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.number = c.number;
    tr.dataset.id = c.id;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Call back';
    button.addEventListener('click', () => claim(c, button));
    const action = document.createElement('td');
    if (c.undialable) {
      // The dial plan refuses the number (premium rate, abroad): shown, never dialled.
      const why = document.createElement('span');
      why.className = 'undialable';
      why.textContent = 'cannot be dialled';
      why.title = c.undialable;
      action.append(why, ' ', taskButton(`About ${c.number}`, c.number, c.id));
    } else {
      action.append(button, ' ', taskButton(`Call back ${c.number}`, c.number, c.id));
    }
    let attempts = String(c.attempts);
    if (c.last_outcome) attempts += ` (last: ${OUTCOMES[c.last_outcome] ?? c.last_outcome})`;
    if (c.auto_attempts > 0) attempts += `, ${c.auto_attempts} automatic`;
    // A direct-callback customer who missed their operator: say whose it is.
    const queue = (c.queue ?? '—') + (c.for_operator ? ` (for ${c.for_operator})` : '');
    tr.append(cell(c.number), cell(c.count), cell(c.first), cell(c.last), cell(queue),
      cell(c.promised ?? '—'), cell(attempts), action);
    return tr;
  }));
  if (entries.length === 0) body.replaceChildren(emptyRow('No missed calls.', 8));
}

// "Task": a task for this call, in the tasks widget's add form (to edit, then add).
function taskButton(title, number, entryId) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'secondary';
  b.textContent = 'Task';
  b.setAttribute('aria-label', `Task for ${number}`);
  b.addEventListener('click', () => window.hotlineTasks?.prefill({
    title, number, callbackEntryId: String(entryId),
  }));
  return b;
}

async function post(url, body) {
  const res = await request('POST', url, body);
  return { ok: res.ok, answer: res.body };
}

async function claim(entry, button) {
  button.disabled = true;
  const { ok, answer } = await post(`/console/callbacks/${entry.id}/claim`);
  callbackMessage.textContent = ok
    ? `Calling back ${answer.number}: your phone rings first.`
    : (answer.error || 'The entry could not be taken.');
  if (!ok) button.disabled = false;
}

// The operator's own recent callbacks, with their outcome; a voicemail that answered
// counted as reached can be marked "not reached" (the entry comes back later), and the
// other way round.
function showMine(attempts) {
  if (!mine) return;
  mine.replaceChildren(...attempts.map((a) => {
    const tr = document.createElement('tr');
    tr.dataset.entry = a.entry;
    const action = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    const reached = a.outcome === 'success';
    button.textContent = reached ? 'Not reached (voicemail)' : 'Mark reached';
    button.addEventListener('click', async () => {
      button.disabled = true;
      const { ok, answer } = await post(`/console/callbacks/${a.entry}/outcome`,
        reached ? { outcome: 'no_answer', note: 'voicemail' } : { outcome: 'success' });
      callbackMessage.textContent = ok
        ? (reached ? `${a.number} goes back on the list.` : `${a.number} is done.`)
        : (answer.error || 'The outcome could not be changed.');
      if (!ok) button.disabled = false;
    });
    action.append(button, ' ', taskButton(`Follow up ${a.number}`, a.number, a.entry));
    tr.append(cell(a.number), cell(OUTCOMES[a.outcome] ?? a.outcome), cell(a.note ?? ''),
      cell(a.ended ?? ''), action);
    return tr;
  }));
  if (attempts.length === 0) mine.replaceChildren(emptyRow('None in the last hour.', 5));
}

const addForm = document.querySelector('#callback-add');
addForm?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = new FormData(addForm);
  const { ok, answer } = await post('/console/callbacks', {
    number: data.get('number'),
    queue: data.get('queue') || null,
  });
  callbackMessage.textContent = ok
    ? `${data.get('number')} is on the list.`
    : (answer.error || 'The number could not be added.');
  if (ok) addForm.reset();
});

function connect(delay) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/console/live`);
  ws.addEventListener('open', () => {
    delay = 500;
    phoneSocketOpened((message) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    });
  });
  ws.addEventListener('message', (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.type === 'queues') showFigures(msg.data);
    else if (msg.type === 'callbacks') showCallbacks(msg.data);
    else if (msg.type === 'mine') showMine(msg.data);
    else if (msg.type === 'call') showCall(msg.data);
    else if (PHONE_TYPES.has(msg.type)) phoneNews(msg);
  });
  ws.addEventListener('close', () => {
    phoneSocketClosed();
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  });
}

if (figures || callbacks) connect(500);
