// The tasks widget on the operator home (PRODUCT C4): my tasks, my colleagues' queue tasks
// and unassigned ones, overdue first; add, call, complete, reschedule, history.
// The list is fetched every few seconds and after each action; `refresh` is exported on
// window.hotlineTasks so a live channel can call it when tasks change.
import { request } from './request.js';

const widget = document.querySelector('#tasks');
const REFRESH_MS = 5000;

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text == null || text === '' ? '—' : String(text);
  return td;
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', () => onClick(b));
  return b;
}

// Due times are entered on the console's wall clock (its time zone, which the browser's
// may not be): the server tells its "now" as a datetime-local value, and defaults are
// that plus some time, counted on the wall clock.
function wallClockPlus(nowInput, fetchedAt, ms) {
  const t = Date.parse(`${nowInput}:00Z`) + (Date.now() - fetchedAt) + ms;
  return new Date(t).toISOString().slice(0, 16);
}

if (widget) {
  const body = widget.querySelector('#task-list tbody');
  const message = widget.querySelector('#task-message');
  const error = widget.querySelector('#task-error');
  const showDone = widget.querySelector('#task-show-done');
  const addForm = widget.querySelector('#task-add');
  const paramRows = addForm.querySelector('.task-param-rows');
  const reschedule = widget.querySelector('#task-reschedule');
  const history = widget.querySelector('#task-history');
  let lastJson = '';
  let generation = 0;
  let me = '';
  // The console's wall clock at the last answer, and when it came (see wallClockPlus).
  let serverNow = null;
  let serverNowAt = 0;
  const later = (ms) => (serverNow ? wallClockPlus(serverNow, serverNowAt, ms) : '');

  // The alert is hidden while empty, so the page has no stray alert role.
  const say = (text) => { error.textContent = ''; error.hidden = true; message.textContent = text; };
  const complain = (text) => { message.textContent = ''; error.textContent = text; error.hidden = false; };

  function render(tasks) {
    if (tasks.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No tasks.');
      td.colSpan = 7;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...tasks.map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.id = t.id;
      tr.dataset.title = t.title;
      tr.dataset.state = t.state;
      if (t.overdue) tr.classList.add('overdue');
      if (t.state === 'done') tr.classList.add('done');

      const title = cell(t.title);
      if (t.calling) {
        const calling = document.createElement('span');
        calling.className = 'task-calling';
        calling.textContent = t.calling === me ? ' (you are calling)' : ` (${t.calling} is calling)`;
        title.append(calling);
      }
      const due = cell(t.due);
      if (t.overdue) {
        const flag = document.createElement('strong');
        flag.className = 'overdue-flag';
        flag.textContent = 'overdue';
        due.append(' ', flag);
      }
      if (t.state === 'done') {
        const flag = document.createElement('span');
        flag.className = 'muted';
        flag.textContent = ` done by ${t.done_by} ${t.done}`;
        due.append(flag);
      }
      const params = document.createElement('td');
      if (t.params.length === 0) {
        params.textContent = '—';
      } else {
        const dl = document.createElement('dl');
        dl.className = 'task-params';
        for (const p of t.params) {
          const dt = document.createElement('dt');
          dt.textContent = p.key;
          const dd = document.createElement('dd');
          dd.textContent = p.value;
          dl.append(dt, dd);
        }
        params.append(dl);
      }
      const note = cell(t.note);
      note.classList.add('task-note');

      const actions = document.createElement('td');
      actions.className = 'task-actions';
      if (t.state === 'open') {
        if (t.number) actions.append(button('Call', `Call ${t.number} for “${t.title}”`, (b) => call(t, b)));
        actions.append(
          button('Done', `Done: ${t.title}`, (b) => complete(t, b)),
          button('Reschedule', `Reschedule ${t.title}`, () => openReschedule(t)),
        );
      }
      actions.append(button('History', `History of ${t.title}`, () => showHistory(t)));

      tr.append(title, cell(t.number), due, cell(t.assignee ? t.assignee.label : 'anyone'), params, note, actions);
      return tr;
    }));
  }

  // Fetches and shows the list; a slower, older answer never overwrites a newer one.
  async function refresh() {
    const mine = ++generation;
    const res = await request('GET', `/console/tasks${showDone.checked ? '?done=1' : ''}`);
    if (mine !== generation) return;
    if (!res.ok) {
      complain(res.body.error || 'The tasks could not be loaded.');
      return;
    }
    me = res.body.me;
    const first = serverNow === null;
    serverNow = res.body.now_input;
    serverNowAt = Date.now();
    if (first && !addForm.elements.due.value) addForm.elements.due.value = later(3600 * 1000);
    // Unchanged: leave the rows (and the focus in them) alone.
    const json = JSON.stringify(res.body.tasks);
    if (json === lastJson) return;
    lastJson = json;
    render(res.body.tasks);
  }

  async function call(task, b) {
    b.disabled = true;
    const res = await request('POST', `/console/tasks/${task.id}/call`);
    if (res.ok) say(res.body.message || `You are calling ${task.number}.`);
    else complain(res.body.error || 'The call could not start.');
    b.disabled = false;
    await refresh();
  }

  async function complete(task, b) {
    b.disabled = true;
    const res = await request('POST', `/console/tasks/${task.id}/complete`, {});
    if (res.ok) say(`Done: ${task.title}.`);
    else complain(res.body.error || 'The task could not be completed.');
    b.disabled = false;
    await refresh();
  }

  function openReschedule(task) {
    history.hidden = true;
    reschedule.dataset.id = task.id;
    reschedule.dataset.title = task.title;
    reschedule.querySelector('#task-reschedule-title').textContent = `“${task.title}”`;
    const due = reschedule.elements.due;
    // Suggest tomorrow, same time, for an overdue task; else keep its time.
    due.value = task.overdue ? later(24 * 3600 * 1000) : task.due_input;
    reschedule.elements.note.value = '';
    reschedule.hidden = false;
    due.focus();
  }

  reschedule.addEventListener('submit', async (e) => {
    e.preventDefault();
    const res = await request('POST', `/console/tasks/${reschedule.dataset.id}/reschedule`, {
      due: reschedule.elements.due.value,
      note: reschedule.elements.note.value,
    });
    if (res.ok) {
      say(`Rescheduled: ${reschedule.dataset.title}, now due ${res.body.due}.`);
      reschedule.hidden = true;
    } else {
      complain(res.body.error || 'The task could not be rescheduled.');
    }
    await refresh();
  });

  async function showHistory(task) {
    reschedule.hidden = true;
    const res = await request('GET', `/console/tasks/${task.id}/events`);
    if (!res.ok) {
      complain(res.body.error || 'The history could not be loaded.');
      return;
    }
    history.querySelector('h3').textContent = `History of “${task.title}”`;
    history.querySelector('ol').replaceChildren(...res.body.events.map((e) => {
      const li = document.createElement('li');
      let text = `${e.at} ${e.kind} by ${e.operator}`;
      if (e.due) text += `, due ${e.due}`;
      if (e.note) text += `: ${e.note}`;
      li.textContent = text;
      return li;
    }));
    history.hidden = false;
    history.querySelector('button').focus();
  }

  for (const panel of [reschedule, history]) {
    panel.querySelector('[data-close]').addEventListener('click', () => { panel.hidden = true; });
  }

  // Parameters: repeated key/value rows.
  function addParamRow(key = '', value = '') {
    const n = paramRows.children.length + 1;
    const row = document.createElement('div');
    row.className = 'task-param';
    const k = document.createElement('input');
    k.name = 'param-key';
    k.maxLength = 40;
    k.value = key;
    k.placeholder = 'name';
    k.setAttribute('aria-label', `Parameter ${n} name`);
    const v = document.createElement('input');
    v.name = 'param-value';
    v.maxLength = 500;
    v.value = value;
    v.placeholder = 'value';
    v.setAttribute('aria-label', `Parameter ${n} value`);
    const remove = button('Remove', `Remove parameter ${n}`, () => row.remove());
    remove.className = 'secondary';
    row.append(k, v, remove);
    paramRows.append(row);
    return k;
  }
  addForm.querySelector('#task-add-param').addEventListener('click', () => {
    if (paramRows.children.length >= 20) {
      complain('A task can have at most 20 parameters.');
      return;
    }
    addParamRow().focus();
  });

  function resetAddForm() {
    addForm.reset();
    paramRows.replaceChildren();
    addForm.elements.due.value = later(3600 * 1000);
  }

  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = addForm.elements;
    // Rows left entirely empty are ignored; half-filled ones go to the server to be refused.
    const params = [...paramRows.querySelectorAll('.task-param')]
      .map((row) => ({ key: row.children[0].value, value: row.children[1].value }))
      .filter((p) => p.key.trim() !== '' || p.value.trim() !== '');
    const payload = {
      title: f.title.value,
      number: f.number.value,
      due: f.due.value,
      note: f.note.value,
      assignee: f.assignee.value,
      params,
    };
    if (f.call_id.value) payload.call_id = f.call_id.value;
    if (f.callback_entry_id.value) payload.callback_entry_id = Number(f.callback_entry_id.value);
    const res = await request('POST', '/console/tasks', payload);
    if (res.ok) {
      say(`Task added: ${res.body.title}.`);
      resetAddForm();
    } else {
      complain(res.body.error || 'The task could not be added.');
    }
    await refresh();
  });

  // Fills the add form for a call (the missed-calls widget or a call's wrap-up can use it).
  function prefill({ title = '', number = '', callId = '', callbackEntryId = '' } = {}) {
    const f = addForm.elements;
    f.title.value = title;
    f.number.value = number;
    f.call_id.value = callId;
    f.callback_entry_id.value = callbackEntryId;
    f.title.focus();
  }

  async function loadAssignees() {
    const res = await request('GET', '/console/tasks/assignees');
    if (!res.ok) return;
    const select = addForm.elements.assignee;
    const group = (label, items) => {
      const g = document.createElement('optgroup');
      g.label = label;
      g.append(...items.map(([value, text]) => {
        const o = document.createElement('option');
        o.value = value;
        o.textContent = text;
        return o;
      }));
      return g;
    };
    const others = res.body.operators.filter((o) => o.name !== res.body.me);
    if (others.length) {
      select.append(group('Operators', others.map((o) => [`operator:${o.name}`,
        o.display_name && o.display_name !== o.name ? `${o.display_name} (${o.name})` : o.name])));
    }
    if (res.body.queues.length) {
      select.append(group('Queues', res.body.queues.map((q) => [`queue:${q}`, `queue ${q}`])));
    }
  }

  showDone.addEventListener('change', () => { lastJson = ''; refresh(); });
  resetAddForm();
  window.hotlineTasks = { refresh, prefill };
  loadAssignees();
  refresh();
  setInterval(refresh, REFRESH_MS);
}
