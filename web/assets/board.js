// The supervisors' live board and wallboard (board.html): the daemon pushes the whole
// board over /supervisor/live when it changed (`{"type":"board","data":{queues,
// operators, calls, chats}}`); the tables are redrawn from it. The socket comes back by
// itself after a daemon restart or a network change.

import { el } from './dom.js';
import { request } from './request.js';

const root = document.querySelector('#board');
const status = document.querySelector('#board-status');
const monitorMessage = document.querySelector('#monitor-message');

// A cell: text, or an element (the supervise buttons).
function cell(content) {
  const td = document.createElement('td');
  if (content instanceof Node) td.append(content);
  else td.textContent = content ?? '—';
  return td;
}

function fill(id, rows, columns, empty) {
  const body = document.querySelector(`#${id} tbody`);
  if (!body) return;
  const trs = rows.map((row) => {
    const tr = document.createElement('tr');
    tr.append(...columns(row).map(cell));
    if (row.call_id) tr.dataset.callId = row.call_id;
    return tr;
  });
  if (trs.length === 0) {
    const tr = document.createElement('tr');
    const td = cell(empty);
    td.colSpan = body.parentElement.querySelectorAll('th').length;
    tr.append(td);
    trs.push(tr);
  }
  body.replaceChildren(...trs);
}

function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  const m = Math.floor(secs / 60);
  return `${m}:${String(secs % 60).padStart(2, '0')}`;
}

// Where a call is: its flow step, the queue it waits in, its operator.
function where(call) {
  switch (call.state) {
    case 'in_flow': return call.flow ? `in the flow ${call.flow}` : 'in a flow';
    case 'waiting': return 'waiting';
    case 'ringing': return `ringing ${call.operator ?? ''}`.trim();
    case 'talking': return 'talking';
    case 'held': return 'on hold';
    case 'transferring': return `transferring to ${call.transfer_to ?? '…'}`;
    default: return call.state;
  }
}

function draw(board) {
  // Answered within the queue's target (else 20 s), in % of calls offered today (short
  // abandons aside).
  const sl = (q) => {
    const v = board.service_level?.[q.queue];
    return v === null || v === undefined ? '—' : `${Math.round(v)} %`;
  };
  // Chats count in the queue's figures too (Q4): waiting (or offered) and active.
  const chats = (q, active) => String(board.chats.filter((c) => c.queue === q.queue
    && (c.state === 'active') === active).length);
  fill('board-queues', board.queues, (q) => [q.queue, String(q.waiting),
    duration(q.longest_wait_secs), sl(q), chats(q, false), chats(q, true), String(q.online), String(q.busy), String(q.wrap_up),
    String(q.paused), String(q.away)], 'No queues.');
  // Each operator's call, and how many chats besides it.
  const callOf = new Map(board.calls.filter((c) => c.operator).map((c) => [c.operator, c]));
  const chatsOf = (name) => board.chats.filter((c) => c.operator === name && c.state === 'active').length;
  const conversation = (o) => {
    const call = callOf.get(o.operator);
    const chats = chatsOf(o.operator);
    const parts = [];
    if (call) parts.push(`${where(call)} with ${call.caller} (${duration(call.duration_secs)})`);
    if (chats) parts.push(`${chats} chat${chats === 1 ? '' : 's'}`);
    return parts.join(', ') || '—';
  };
  fill('board-operators', board.operators, (o) => [o.operator, o.state,
    duration(o.since_secs), conversation(o), o.chosen,
    o.registered ? 'reachable' : 'no phone'], 'No operators.');
  fill('board-calls', board.calls, (c) => [c.caller, c.called, where(c), c.queue,
    c.operator, duration(c.duration_secs), supervisor(c), superviseButtons(c)], 'No calls.');
  fill('board-monitoring', board.monitoring ?? [], (m) => [
    new Date(m.at_ms).toLocaleTimeString(), m.supervisor,
    m.detail ? `${ACTIONS[m.action] ?? m.action}: ${m.detail}` : (ACTIONS[m.action] ?? m.action),
    m.caller, m.operator, m.queue], 'Nobody has listened to a call yet.');
  fill('board-chats', board.chats, (c) => [c.site, c.queue, c.state, c.visitor,
    c.operator, duration(c.for_secs)], 'No chats.');
}

// ---- listen, whisper, barge, take over ---------------------------------------------------

const ACTIONS = {
  ringing: 'ringing their phone', listen: 'listening', whisper: 'whispering',
  barge: 'barged in', take_over: 'took over', ended: 'left',
};
const me = root?.dataset.operator || '';

function supervisor(call) {
  const m = call.monitor;
  const who = m ? `${m.supervisor} ${ACTIONS[m.mode] ?? m.mode}` : '';
  const rec = call.recording ? '● recorded' : '';
  return [who, rec].filter(Boolean).join(', ') || '—';
}

// The buttons a connected call offers: the modes, then take over and stop once it is mine.
function superviseButtons(call) {
  if (!['talking', 'held', 'transferring'].includes(call.state)) return '—';
  const mine = call.monitor?.supervisor === me && me !== '';
  const box = el('span', { class: 'supervise' });
  const add = (action, label) => box.append(el('button', {
    type: 'button', 'data-action': action, 'data-call': call.call_id,
    'aria-label': `${label} ${call.caller}`, text: label,
  }));
  add('listen', 'Listen');
  add('whisper', 'Whisper');
  add('barge', 'Barge');
  if (mine) {
    add('take_over', 'Take over');
    add('stop', 'Stop');
  }
  for (const b of box.querySelectorAll('button')) {
    if (mine && b.dataset.action === call.monitor.mode) b.setAttribute('aria-pressed', 'true');
  }
  // A queue that records on demand: the supervisor may start and stop it too.
  if (call.record_on_demand) {
    const label = call.recording ? 'Stop recording' : 'Record';
    box.append(el('button', {
      type: 'button', 'data-record': call.recording ? 'off' : 'on', 'data-call': call.call_id,
      'aria-label': `${label} ${call.caller}`, text: label,
    }));
  }
  return box;
}

// One listener for the table: its rows are redrawn with every update.
document.querySelector('#board-calls')?.addEventListener('click', async (e) => {
  const recordButton = e.target.closest('button[data-record]');
  if (recordButton) {
    const on = recordButton.dataset.record === 'on';
    recordButton.disabled = true;
    const res = await request('POST', '/supervisor/record', { call_id: recordButton.dataset.call, on });
    recordButton.disabled = false;
    monitorMessage.textContent = res.ok
      ? (on ? 'Recording the call.' : 'Recording stopped.')
      : (res.error ?? 'That did not work.');
    return;
  }
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  monitorMessage.textContent = '';
  button.disabled = true;
  const res = await request('POST', '/supervisor/monitor',
    { call_id: button.dataset.call, action: button.dataset.action });
  button.disabled = false;
  monitorMessage.textContent = res.ok
    ? { listen: 'Listening: your phone rings and picks up by itself.',
      whisper: 'Whispering: only the operator hears you.',
      barge: 'Barged in: everyone hears you.',
      take_over: 'The call is yours now.', stop: 'You left the call.' }[button.dataset.action]
    : (res.error ?? 'That did not work.');
});

let retry = 1000;
function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/supervisor/live`);
  ws.addEventListener('open', () => { retry = 1000; });
  ws.addEventListener('message', (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    if (msg.type === 'board') {
      draw(msg.data);
      status.textContent = `Live · ${new Date().toLocaleTimeString()}`;
    } else if (msg.type === 'unavailable') {
      status.textContent = 'The telephony side does not answer; the figures shown may be old.';
    }
  });
  ws.addEventListener('close', () => {
    status.textContent = 'Connection lost; reconnecting…';
    // Backs off to 10 s so a stopped daemon is not hammered.
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10_000);
  });
}

if (root) connect();
