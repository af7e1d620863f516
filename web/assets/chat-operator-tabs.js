// The operator's chat window: one tab per offer and per chat, switched with the mouse or
// the arrow keys; the page's title and load line.

import {
  baseTitle, capacity, chats, current, el, emptyEl, loadEl, offers, order, panesEl, save,
  tabsEl,
} from '/assets/chat-operator-base.js';
import { open } from '/assets/chat-operator-dialogs.js';
import { renderTabLabel, scrollToEnd } from '/assets/chat-operator-conversation.js';
import { openWrapup } from '/assets/chat-operator-wrapup.js';

// ---------------------------------------------------------------- tabs

export function addTab(key, pane, label, instead = null) {
  const tab = el('button', {
    type: 'button', role: 'tab', id: `tab-${key.replace(':', '-')}`, 'aria-selected': 'false',
    tabindex: '-1', 'aria-controls': `pane-${key.replace(':', '-')}`, class: 'chat-tab',
    dataset: { key },
  });
  tab.append(label);
  tab.addEventListener('click', () => select(key));
  pane.id = `pane-${key.replace(':', '-')}`;
  pane.setAttribute('aria-labelledby', tab.id);
  pane.hidden = true;
  const at = instead ? order.indexOf(instead) : -1;
  const old = at >= 0 ? chatOrOfferTab(instead) : null;
  if (old) {
    old.before(tab);
    order.splice(at, 0, key);
  } else {
    tabsEl.append(tab);
    order.push(key);
  }
  panesEl.append(pane);
  updateChrome();
  return tab;
}

export function removeTab(key) {
  const i = order.indexOf(key);
  if (i < 0) return;
  order.splice(i, 1);
  const [kind, id] = key.split(':');
  const item = kind === 'chat' ? chats.get(Number(id)) : offers.get(Number(id));
  item?.tab.remove();
  item?.pane.remove();
  if (current.key === key) {
    current.key = null;
    const next = order[Math.min(i, order.length - 1)];
    if (next) select(next);
  }
  updateChrome();
}

export function select(key, { focus = false } = {}) {
  if (!order.includes(key)) return;
  current.key = key;
  for (const k of order) {
    const [kind, id] = k.split(':');
    const item = kind === 'chat' ? chats.get(Number(id)) : offers.get(Number(id));
    if (!item) continue;
    const on = k === key;
    item.tab.setAttribute('aria-selected', on ? 'true' : 'false');
    item.tab.tabIndex = on ? 0 : -1;
    item.pane.hidden = !on;
  }
  const [kind, id] = key.split(':');
  if (kind === 'chat') {
    const c = chats.get(Number(id));
    c.unread = 0;
    renderTabLabel(c);
    scrollToEnd(c, true);
    if (c.ended && c.wantsWrapup && !document.querySelector('dialog[open]')) openWrapup(c);
    if (focus) c.input.focus();
  } else if (focus) {
    offers.get(Number(id))?.acceptButton.focus();
  }
  updateChrome();
  save();
}

export function step(delta) {
  if (order.length === 0) return;
  const i = order.indexOf(current.key);
  const next = order[((i < 0 ? 0 : i + delta) % order.length + order.length) % order.length];
  select(next, { focus: true });
}

tabsEl.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
    e.preventDefault();
    step(e.key === 'ArrowRight' ? 1 : -1);
    chatOrOfferTab(current.key)?.focus();
  } else if (e.key === 'Home' || e.key === 'End') {
    e.preventDefault();
    const key = e.key === 'Home' ? order[0] : order[order.length - 1];
    if (key) { select(key); chatOrOfferTab(key)?.focus(); }
  }
});

function chatOrOfferTab(key) {
  if (!key) return null;
  const [kind, id] = key.split(':');
  return (kind === 'chat' ? chats.get(Number(id)) : offers.get(Number(id)))?.tab ?? null;
}

export function currentChat() {
  if (!current.key || !current.key.startsWith('chat:')) return null;
  return chats.get(Number(current.key.slice(5))) ?? null;
}

// The page's own bits: the empty note, the load line, the title with unread counts.
export function updateChrome() {
  emptyEl.hidden = order.length > 0;
  const open = [...chats.values()].filter((c) => !c.closing).length;
  let text = `${open} of ${capacity} chat${capacity === 1 ? '' : 's'}`;
  if (offers.size) text += `, ${offers.size} offer${offers.size === 1 ? '' : 's'} waiting`;
  loadEl.textContent = text;
  const unread = [...chats.values()].reduce((n, c) => n + c.unread, 0);
  const waiting = unread + offers.size;
  document.title = waiting ? `(${waiting}) ${baseTitle}` : baseTitle;
}
