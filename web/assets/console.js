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
