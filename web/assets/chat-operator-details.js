// The operator's chat window: the visitor's details beside the chat (fields, page
// parameters, tags, notes, pages seen, earlier chats).

import {
  button, dateTime, el, FIELDS, isRealText, link, time, verifiedList,
} from '/assets/chat-operator-base.js';
import { enqueue } from '/assets/chat-operator-link.js';
import { eventItem, lockMark, markAnswer } from '/assets/chat-operator-conversation.js';

// ---------------------------------------------------------------- visitor details

export function renderDetails(c) {
  const v = c.view || {};
  const changed = (key, value) => {
    const sig = JSON.stringify(value ?? null);
    if (c.sigs[key] === sig) return false;
    c.sigs[key] = sig;
    return true;
  };
  renderFields(c, v.visitor || {});
  if (changed('params', v.params)) renderParams(c, v.params || {});
  if (changed('tags', v.tags)) renderTags(c, Array.isArray(v.tags) ? v.tags : []);
  if (changed('notes', v.notes)) renderNotes(c, Array.isArray(v.notes) ? v.notes : []);
  if (changed('pages', v.pages)) renderPages(c, Array.isArray(v.pages) ? v.pages : []);
  if (changed('past', v.past)) renderPast(c, Array.isArray(v.past) ? v.past : []);
}

function renderFields(c, visitor) {
  const box = c.pane.querySelector('.d-fields');
  const verified = verifiedList(c.view);
  const shape = JSON.stringify(verified);
  if (c.sigs.fieldsShape !== shape) {
    c.sigs.fieldsShape = shape;
    c.fieldForms.clear();
    box.replaceChildren(...FIELDS.map(([name, label]) => {
      if (verified.includes(name)) {
        return el('div', { class: 'field-row verified', dataset: { field: name } },
          el('span', { class: 'field-label', text: label }),
          el('span', { class: 'field-value' }), ' ', lockMark());
      }
      const input = el('input', { name: 'value', maxlength: '200', type: name === 'email' ? 'email' : (name === 'phone' ? 'tel' : 'text') });
      const form = el('form', { class: 'field-form inline-form', dataset: { field: name } },
        el('label', {}, label, input),
        el('button', { type: 'submit', class: 'secondary small', 'aria-label': `Save ${label.toLowerCase()}` }, 'Save'),
        el('span', { class: 'field-saved muted', 'aria-live': 'polite' }));
      input.addEventListener('input', () => { form.dataset.dirty = '1'; form.querySelector('.field-saved').textContent = ''; });
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        form.dataset.dirty = '';
        form.dataset.saving = '1';
        form.querySelector('.field-saved').textContent = 'saving…';
        enqueue({ t: 'field', chat: c.id, name, value: input.value.trim() });
      });
      c.fieldForms.set(name, form);
      return form;
    }));
  }
  for (const row of box.children) {
    const name = row.dataset.field;
    const value = visitor[name] == null ? '' : String(visitor[name]);
    if (row.classList.contains('verified')) {
      row.querySelector('.field-value').textContent = value || '—';
    } else {
      const input = row.querySelector('input');
      if (!row.dataset.dirty && document.activeElement !== input) input.value = value;
      if (row.dataset.saving && input.value.trim() === value) formSaved(row);
    }
  }
}

export function formSaved(form) {
  form.dataset.saving = '';
  form.querySelector('.field-saved').textContent = 'saved';
}

function renderParams(c, params) {
  const dl = c.pane.querySelector('.d-params dl');
  const labels = { page_url: 'Page', browser: 'Browser', os: 'Operating system' };
  const keys = ['page_url', 'browser', 'os', ...Object.keys(params).filter((k) => !(k in labels))];
  const rows = [];
  for (const key of keys) {
    const value = params[key];
    let shown;
    if (value == null || value === '') shown = '—';
    else if (typeof value === 'object') shown = JSON.stringify(value);
    else shown = String(value);
    rows.push(el('dt', { text: labels[key] || key.replace(/_/g, ' ') }),
      el('dd', {}, key === 'page_url' && isRealText(value) ? link(String(value)) : shown));
  }
  dl.replaceChildren(...rows);
}

function renderTags(c, tags) {
  const list = c.pane.querySelector('.tag-list');
  list.replaceChildren(...tags.map((tag) => {
    const t = typeof tag === 'string' ? tag : (tag.tag || tag.name || '');
    return el('li', { class: 'tag' }, el('span', { text: t }),
      button('✕', {
        class: 'secondary small', 'aria-label': `Remove tag ${t}`,
        onclick: () => enqueue({ t: 'tag', chat: c.id, remove: t }),
      }));
  }));
  if (tags.length === 0) list.append(el('li', { class: 'muted', text: 'No tags.' }));
}

function renderNotes(c, notes) {
  const list = c.pane.querySelector('.note-list');
  list.replaceChildren(...notes.map((n) => el('li', { class: 'note' },
    el('div', { class: 'note-meta' }, el('strong', { text: n.user || n.name || '' }), ' ', el('span', { class: 'muted', text: dateTime(n.at) })),
    el('div', { class: 'note-text', text: n.text || '' }))));
  if (notes.length === 0) list.append(el('li', { class: 'muted', text: 'No notes.' }));
}

function renderPages(c, pages) {
  const list = c.pane.querySelector('.page-list');
  list.replaceChildren(...pages.map((p) => el('li', {},
    link(p.url, p.title || p.url), ' ', el('span', { class: 'muted', text: time(p.at) }))));
  if (pages.length === 0) list.append(el('li', { class: 'muted', text: 'None recorded.' }));
}

function renderPast(c, past) {
  const box = c.pane.querySelector('.past-list');
  box.replaceChildren(...past.map((p) => {
    const summary = [dateTime(p.started_at), p.operator, p.queue ? `queue ${p.queue}` : null].filter(isRealText).join(' · ');
    const details = el('details', { class: 'past' }, el('summary', { text: summary || `Chat ${p.id}` }));
    details.addEventListener('toggle', () => {
      if (!details.open || details.dataset.filled) return;
      details.dataset.filled = '1';
      const transcript = Array.isArray(p.transcript) ? p.transcript : [];
      const log = el('ol', { class: 'chat-log past-log', 'aria-label': `Transcript of ${summary}` },
        ...transcript.map((f) => eventItem(f, c)));
      for (const f of transcript) if (f.kind === 'answer' && f.data) markAnswer(log, f.data.menu_seq, f.data.choice);
      if (transcript.length === 0) log.append(el('li', { class: 'muted', text: 'No messages.' }));
      details.append(log);
    });
    return details;
  }));
  if (past.length === 0) box.append(el('p', { class: 'muted', text: 'No earlier chats.' }));
}
