// Live queue figures on the home page, over Server-Sent Events (reconnects by itself).
const table = document.querySelector('#queue-figures tbody');

function cell(text) {
  const td = document.createElement('td');
  td.textContent = String(text);
  return td;
}

function minutes(secs) {
  return secs < 60 ? `${secs} s` : `${Math.floor(secs / 60)} min ${secs % 60} s`;
}

if (table) {
  const events = new EventSource('/console/figures/live');
  events.addEventListener('queues', (e) => {
    const queues = JSON.parse(e.data);
    table.replaceChildren(...queues.map((q) => {
      const tr = document.createElement('tr');
      tr.dataset.queue = q.queue;
      tr.append(cell(q.queue), cell(q.waiting), cell(minutes(q.longest_wait_secs)),
        cell(q.online), cell(q.busy), cell(q.paused));
      return tr;
    }));
    if (queues.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No queues.');
      td.colSpan = 6;
      tr.append(td);
      table.replaceChildren(tr);
    }
  });
}

// The missed-calls widget: the same list for every operator, live. "Call back" claims the
// entry; it leaves everyone's list at once, and a colleague who clicked too is told.
const callbacks = document.querySelector('#callback-list');
const callbackMessage = document.querySelector('#callback-message');

if (callbacks) {
  const body = callbacks.querySelector('tbody');
  const events = new EventSource('/console/callbacks/live');
  events.addEventListener('callbacks', (e) => {
    const entries = JSON.parse(e.data);
    body.replaceChildren(...entries.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.number = c.number;
      tr.dataset.id = c.id;
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'Call back';
      button.addEventListener('click', () => claim(c, button));
      const action = document.createElement('td');
      action.append(button);
      tr.append(cell(c.number), cell(c.count), cell(c.first), cell(c.last), cell(c.queue ?? '—'),
        cell(c.promised ?? '—'), cell(c.attempts), action);
      return tr;
    }));
    if (entries.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No missed calls.');
      td.colSpan = 8;
      tr.append(td);
      body.replaceChildren(tr);
    }
  });
}

async function claim(entry, button) {
  button.disabled = true;
  const res = await fetch(`/console/callbacks/${entry.id}/claim`, {
    method: 'POST', headers: { 'X-CSRF-Token': callbacks.dataset.csrf },
  });
  const answer = await res.json().catch(() => ({}));
  callbackMessage.textContent = res.ok
    ? `You are calling back ${answer.number}.`
    : (answer.error || 'The entry could not be taken.');
  if (!res.ok) button.disabled = false;
}
