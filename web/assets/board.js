// The supervisors' live board and wallboard (board.html): the daemon pushes the whole
// board over /supervisor/live when it changed (`{"type":"board","data":{queues,
// operators, calls, chats}}`); the tables are redrawn from it. The socket comes back by
// itself after a daemon restart or a network change.

const root = document.querySelector('#board');
const status = document.querySelector('#board-status');

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text ?? '—';
  return td;
}

function fill(id, rows, columns, empty) {
  const body = document.querySelector(`#${id} tbody`);
  if (!body) return;
  const trs = rows.map((row) => {
    const tr = document.createElement('tr');
    tr.append(...columns(row).map(cell));
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
  fill('board-queues', board.queues, (q) => [q.queue, String(q.waiting),
    duration(q.longest_wait_secs), String(q.online), String(q.busy), String(q.wrap_up),
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
    c.operator, duration(c.duration_secs)], 'No calls.');
  fill('board-chats', board.chats, (c) => [c.site, c.queue, c.state, c.visitor,
    c.operator, duration(c.for_secs)], 'No chats.');
}

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
