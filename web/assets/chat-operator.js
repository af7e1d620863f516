// The operator's chat window (PRODUCT H2–H6): offers and chats each in their own tab over
// one WebSocket per browser tab (/console/chat/ws), the conversation with the visitor's
// live draft, private whispers, attachments, canned messages, option menus, the visitor's
// details, invites, transfers, ending and wrap-up.
//
// Nothing anyone typed is ever put in as markup: message text goes through renderText
// (chat-format.js), everything else through textContent.
//
// No message is lost or doubled across reconnects: every frame the operator sends carries
// a client id and stays in this tab's outbox (kept in sessionStorage) until the server
// acks it; after a reconnect the outbox is sent again and the server stores a client id
// once. Events carry the chat's seq; the tab remembers the last one seen per chat
// (sessionStorage, with the events shown) and asks for what came after on `hello`.
// The socket, the client ids and the outbox are chat-link.js's, as on the visitor's page.

import { renderText, formatTime } from '/assets/chat-format.js';
import { request } from '/assets/request.js';
import { newClientId, newSeq, openLink, Outbox } from '/assets/chat-link.js';

const root = document.getElementById('chat-console');
const me = { name: root.dataset.user || '', display: root.dataset.userDisplay || '' };
const capacity = Number(root.dataset.capacity) || 0;

const MAX_FILES = 5;
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const MAX_TEXT = 4000;
const MAX_CHOICES = 10;
const MIN_CHOICES = 2;
const MAX_CHOICE_CHARS = 100;
const TYPING_EVERY_MS = 2000;
const OTHER_TYPING_MS = 3000;
const STORE_KEY = 'hotline.chat.console.v1';
const EVENTS_KEPT = 500;
// Frames that take the operator out of the chat: the tab closes once the server acks them.
const CLOSERS = new Set(['wrapup', 'leave', 'transfer']);
// Frames that are conversation: shown as "sending…" and retried until acked, however long.
const MESSAGES = new Set(['send', 'options']);
// Any other frame is retried on this many connections at most.
const CONTROL_TRIES = 3;
// A control frame (anything but a message) the server neither acked nor refused in this
// long, sent on an open socket, is taken as done (a closing one then closes its tab).
const SETTLE_MS = 6000;
const FIELDS = [['name', 'Name'], ['email', 'E-mail'], ['phone', 'Phone'], ['customer_id', 'Customer ID']];
const EMOJI = ['🙂', '😀', '😉', '😊', '😅', '🙁', '😮', '👍', '👎', '👋', '🙏', '👌',
  '✅', '❌', '❗', '❓', '⭐', '❤️', '🎉', '☕', '📞', '📧', '📄', '⏳'];

const tabsEl = document.getElementById('chat-tabs');
const panesEl = document.getElementById('chat-panes');
const emptyEl = document.getElementById('chat-empty');
const connectionEl = document.getElementById('chat-connection');
const loadEl = document.getElementById('chat-load');
const globalError = document.getElementById('chat-global-error');
const invitesEl = document.getElementById('chat-invites');
const baseTitle = document.title;

// ---------------------------------------------------------------- small helpers

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'hidden') e.hidden = Boolean(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.filter((c) => c != null && c !== false));
  return e;
}

function button(text, props = {}) {
  return el('button', { type: 'button', ...props }, text);
}

function time(ms) {
  if (ms == null || ms === '') return '';
  try { return formatTime(Number(ms)); } catch { return ''; }
}

function dateTime(ms) {
  if (ms == null || ms === '') return '';
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

function timeEl(ms) {
  const text = time(ms);
  if (!text) return '';
  const d = new Date(Number(ms));
  return el('time', { datetime: Number.isNaN(d.getTime()) ? null : d.toISOString(), title: dateTime(ms) }, text);
}

function size(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// Only http(s) addresses become links; anything else stays text.
function safeUrl(url) {
  try {
    const u = new URL(String(url));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch { return null; }
}

function link(url, text) {
  const href = safeUrl(url);
  if (!href) return el('span', { text: text || url || '' });
  return el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text || url);
}

function isRealText(v) { return v != null && String(v).trim() !== ''; }

function participantName(p) {
  if (p == null) return '';
  if (typeof p === 'string') return p;
  return p.display_name || p.name || p.user || '';
}

function visitorName(view) {
  return (view && view.visitor && view.visitor.name) || 'Visitor';
}

function queueLabel(q) { return q ? String(q) : '—'; }

function verifiedList(view) {
  const v = view && view.visitor && view.visitor.verified;
  return Array.isArray(v) ? v.map(String) : [];
}

function fieldLabel(name) {
  const f = FIELDS.find(([n]) => n === name);
  return f ? f[1] : String(name).replace(/_/g, ' ');
}

let globalErrorTimer = null;
function showGlobalError(text) {
  globalError.textContent = text;
  globalError.hidden = !text;
  clearTimeout(globalErrorTimer);
  if (text) globalErrorTimer = setTimeout(() => { globalError.hidden = true; }, 20000);
}

// ---------------------------------------------------------------- state

/** chat id → chat: { id, view, lastSeq, events[], pane, tab, …ui } */
const chats = new Map();
/** chat id → offer: { id, view, expiresAt, pane, tab, expiredAt } */
const offers = new Map();
/** invite id → { invite, li } */
const invites = new Map();
/** Events that came before their chat's `chat` frame. */
const early = new Map();
/** Chats this tab closed (wrapped up, left, transferred): their `chat` frames are ignored
 * unless the operator accepts an offer or invite to them again. */
const closed = new Set();
/** Chats the operator just accepted (offer or invite): their tab is selected on arrival. */
const accepting = new Set();
/** [{ client_id, frame, tries, sentAt, fileInfo }], saved with the chats (saveNow). */
let outboxList = [];
const outbox = new Outbox({ load: () => outboxList, store: (list) => { outboxList = list; save(); } });
/** Tab order: keys 'chat:12' / 'offer:12'. */
let order = [];
let currentKey = null;

const tabKey = (kind, id) => `${kind}:${id}`;

// ---------------------------------------------------------------- persistence

function loadSaved() {
  try { return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {}; } catch { return {}; }
}

let saveTimer = null;
function save() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveNow, 150);
}

function saveNow() {
  clearTimeout(saveTimer);
  const data = { resume: {}, views: {}, events: {}, outbox: outboxList, closed: [...closed].slice(-200), current: currentKey };
  for (const c of chats.values()) {
    data.resume[c.id] = c.lastSeq;
    data.views[c.id] = c.view;
    data.events[c.id] = c.events.slice(-EVENTS_KEPT);
  }
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch {
    // Too much for sessionStorage: keep the chats and the outbox, and ask the server for
    // the whole conversations after a reload.
    for (const id of Object.keys(data.resume)) data.resume[id] = 0;
    data.events = {};
    try { sessionStorage.setItem(STORE_KEY, JSON.stringify(data)); } catch { /* nothing more to do */ }
  }
}

// ---------------------------------------------------------------- the socket

function setConnection(text) {
  const waiting = outboxList.filter((e) => MESSAGES.has(e.frame.t)).length;
  connectionEl.textContent = waiting ? `${text} ${waiting} message${waiting === 1 ? '' : 's'} waiting to be sent.` : text;
  connectionEl.classList.toggle('bad', !socket.isOpen());
}

const socket = openLink({
  url: () => '/console/chat/ws',
  hello: () => {
    const resume = {};
    for (const c of chats.values()) resume[String(c.id)] = c.lastSeq;
    return { t: 'hello', resume };
  },
  backoff: { first: 500, max: 15000, jitter: 0.25 },
  resetOn: 'open',
  onConnecting: () => setConnection('Connecting…'),
  onOpen: () => {
    setConnection('Connected.');
    flushOutbox();
  },
  onFrame: (f) => handleFrame(f),
  onRetry: () => tickReconnect(),
});

function tickReconnect() {
  const at = socket.retryAt();
  if (socket.isOpen() || !at) return;
  const secs = Math.max(0, Math.ceil((at - Date.now()) / 1000));
  setConnection(secs > 0
    ? `The connection was lost; trying again in ${secs} s. (If this lasts, reload the page: you may have been logged out.)`
    : 'Connecting…');
}

function rawSend(frame) {
  return socket.send(frame);
}

function transmit(entry) {
  Outbox.transmit(socket, entry);
}

function flushOutbox() {
  // A control frame tried often enough is given up (a closing one closes its tab).
  outbox.retain((entry) => {
    if (MESSAGES.has(entry.frame.t) || entry.tries < CONTROL_TRIES) return true;
    const c = chats.get(entry.frame.chat);
    if (c && CLOSERS.has(entry.frame.t)) closeChat(c);
    return false;
  });
  for (const entry of outbox.all()) transmit(entry);
  save();
  setConnection('Connected.');
}

/** Sends a frame through the outbox; returns the entry. `fileInfo`: the uploaded files'
 * details, for the pending copy of a message only (not sent). */
function enqueue(frame, fileInfo = null) {
  frame.client_id = newClientId();
  const entry = outbox.add({ client_id: frame.client_id, frame, tries: 0, sentAt: 0, fileInfo });
  if (MESSAGES.has(frame.t)) {
    const c = chats.get(frame.chat);
    if (c) showPending(c, entry);
  }
  transmit(entry);
  saveNow();
  if (!socket.isOpen()) tickReconnect();
  return entry;
}

function takeOutbox(clientId) {
  return outbox.take(clientId);
}

// ---------------------------------------------------------------- frames from the server

function handleFrame(f) {
  switch (f.t) {
    case 'offer': onOffer(f); break;
    case 'offer_gone': removeOffer(Number(f.chat)); break;
    case 'chat': if (f.chat) onChatView(f.chat); break;
    case 'event': onEvent(f); break;
    case 'draft': onDraft(f); break;
    case 'typing': onTyping(f); break;
    case 'invite': if (f.invite) onInvite(f.invite); break;
    case 'invite_gone': removeInvite(f.invite); break;
    case 'closed': { const c = chats.get(Number(f.chat)); if (c) closeChat(c); break; }
    case 'ack': onAck(f); break;
    case 'error': onError(f); break;
    default: break;
  }
}

function onAck(f) {
  const entry = takeOutbox(f.client_id);
  if (!entry) return;
  const c = chats.get(Number(entry.frame.chat));
  if (MESSAGES.has(entry.frame.t)) {
    if (c) pendingSent(c, entry, f.seq);
  } else if (CLOSERS.has(entry.frame.t)) {
    if (c) closeChat(c);
  } else if (entry.frame.t === 'field' && c) {
    const form = c.fieldForms.get(entry.frame.name);
    if (form) formSaved(form);
  }
  setConnection(socket.isOpen() ? 'Connected.' : connectionEl.textContent);
}

function onError(f) {
  const entry = takeOutbox(f.client_id);
  const id = Number(f.chat ?? entry?.frame.chat);
  const c = chats.get(id);
  const message = String(f.message || 'The server refused that.');
  if (entry) {
    const t = entry.frame.t;
    if (MESSAGES.has(t) && c) pendingFailed(c, entry);
    if (t === 'accept') {
      accepting.delete(id);
      const o = offers.get(id);
      if (o) {
        removeOffer(id);
      }
      showGlobalError(message);
      return;
    }
    if (t === 'invite' && c) { c.pendingInvite = null; renderInvitePending(c); inviteDialogError(c, message); }
    if (t === 'invite_answer') showGlobalError(message);
    if (t === 'field' && c) {
      const form = c.fieldForms.get(entry.frame.name);
      if (form) { form.dataset.saving = ''; form.querySelector('.field-saved').textContent = 'not saved'; }
    }
  }
  if (c) {
    if (c.closing) { c.closing = false; renderHead(c); }
    showChatError(c, message);
  } else if (offers.has(id)) {
    const o = offers.get(id);
    o.message.textContent = message;
    o.message.hidden = false;
  } else {
    showGlobalError(message);
  }
}

// ---------------------------------------------------------------- tabs

function addTab(key, pane, label, instead = null) {
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

function removeTab(key) {
  const i = order.indexOf(key);
  if (i < 0) return;
  order.splice(i, 1);
  const [kind, id] = key.split(':');
  const item = kind === 'chat' ? chats.get(Number(id)) : offers.get(Number(id));
  item?.tab.remove();
  item?.pane.remove();
  if (currentKey === key) {
    currentKey = null;
    const next = order[Math.min(i, order.length - 1)];
    if (next) select(next);
  }
  updateChrome();
}

function select(key, { focus = false } = {}) {
  if (!order.includes(key)) return;
  currentKey = key;
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

function step(delta) {
  if (order.length === 0) return;
  const i = order.indexOf(currentKey);
  const next = order[((i < 0 ? 0 : i + delta) % order.length + order.length) % order.length];
  select(next, { focus: true });
}

tabsEl.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
    e.preventDefault();
    step(e.key === 'ArrowRight' ? 1 : -1);
    chatOrOfferTab(currentKey)?.focus();
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

function currentChat() {
  if (!currentKey || !currentKey.startsWith('chat:')) return null;
  return chats.get(Number(currentKey.slice(5))) ?? null;
}

// The page's own bits: the empty note, the load line, the title with unread counts.
function updateChrome() {
  emptyEl.hidden = order.length > 0;
  const open = [...chats.values()].filter((c) => !c.closing).length;
  let text = `${open} of ${capacity} chat${capacity === 1 ? '' : 's'}`;
  if (offers.size) text += `, ${offers.size} offer${offers.size === 1 ? '' : 's'} waiting`;
  loadEl.textContent = text;
  const unread = [...chats.values()].reduce((n, c) => n + c.unread, 0);
  const waiting = unread + offers.size;
  document.title = waiting ? `(${waiting}) ${baseTitle}` : baseTitle;
}

// ---------------------------------------------------------------- offers

const offerTemplate = document.getElementById('offer-template');

function onOffer(f) {
  const view = f.chat;
  if (!view || view.id == null) return;
  const id = Number(view.id);
  if (chats.has(id)) return;
  // The server's clock, when it says what it is, corrects the countdown for our clock.
  const skew = Number.isFinite(Number(f.now)) && f.now ? Date.now() - Number(f.now) : 0;
  const expiresAt = Number(f.expires_at) + skew;
  let o = offers.get(id);
  if (!o) {
    const pane = offerTemplate.content.firstElementChild.cloneNode(true);
    o = { id, view, expiresAt, pane, expiredAt: 0 };
    o.acceptButton = pane.querySelector('.offer-accept');
    o.rejectButton = pane.querySelector('.offer-reject');
    o.countdown = pane.querySelector('.offer-countdown');
    o.message = pane.querySelector('.offer-message');
    o.acceptButton.addEventListener('click', () => acceptOffer(o));
    o.rejectButton.addEventListener('click', () => rejectOffer(o));
    o.label = el('span', { class: 'tab-label' });
    o.tab = addTab(tabKey('offer', id), pane, o.label);
    o.tab.classList.add('offer-tab');
    offers.set(id, o);
    if (!currentKey) select(tabKey('offer', id));
    if (document.hidden) document.title = `New chat offer · ${baseTitle}`;
  }
  o.view = view;
  o.expiresAt = expiresAt;
  renderOffer(o);
  tickOffers();
}

function renderOffer(o) {
  const v = o.view;
  const name = visitorName(v);
  o.label.replaceChildren(el('span', { class: 'offer-mark', text: 'Offer' }), ' ', name, ' ',
    el('span', { class: 'tab-countdown', 'aria-hidden': 'true' }));
  o.pane.querySelector('.offer-title').textContent = `Chat offered: ${name}`;
  o.pane.querySelector('.offer-queue').textContent = queueLabel(v.queue);
  o.pane.querySelector('.offer-topic').textContent = v.topic || '—';
  const verified = verifiedList(v);
  const vd = o.pane.querySelector('.offer-verified');
  vd.replaceChildren(...(verified.length ? verified.map((name) => {
    const value = v.visitor && v.visitor[name];
    return el('span', { class: 'verified-item' }, lockMark(), ' ', fieldLabel(name),
      isRealText(value) ? `: ${value}` : '');
  }) : [document.createTextNode('nothing verified')]));
  const page = v.params && v.params.page_url;
  o.pane.querySelector('.offer-page').replaceChildren(page ? link(page) : document.createTextNode('—'));
}

function acceptOffer(o) {
  o.acceptButton.disabled = true;
  o.rejectButton.disabled = true;
  o.acceptButton.textContent = 'Accepting…';
  closed.delete(o.id);
  accepting.add(o.id);
  enqueue({ t: 'accept', chat: o.id });
}

function rejectOffer(o) {
  enqueue({ t: 'reject', chat: o.id });
  removeOffer(o.id);
}

function removeOffer(id) {
  const o = offers.get(id);
  if (!o) return;
  removeTab(tabKey('offer', id));
  offers.delete(id);
  if (!chats.has(id)) early.delete(id);
  updateChrome();
}

function tickOffers() {
  const now = Date.now();
  for (const o of [...offers.values()]) {
    const left = Math.ceil((o.expiresAt - now) / 1000);
    const tabCount = o.label.querySelector('.tab-countdown');
    if (left > 0) {
      o.countdown.textContent = `Accept within ${left} s.`;
      if (tabCount) tabCount.textContent = `${left} s`;
    } else {
      o.countdown.textContent = 'The offer has expired.';
      if (tabCount) tabCount.textContent = 'expired';
      if (!accepting.has(o.id)) o.acceptButton.disabled = true;
      if (!o.expiredAt) o.expiredAt = now;
      // The server says offer_gone; if it did not, the offer goes anyway.
      if (now - o.expiredAt > (accepting.has(o.id) ? 15000 : 5000)) {
        accepting.delete(o.id);
        removeOffer(o.id);
      }
    }
  }
}

// ---------------------------------------------------------------- chats

const chatTemplate = document.getElementById('chat-template');

function onChatView(view) {
  if (view.id == null) return;
  const id = Number(view.id);
  const fromAccept = accepting.has(id);
  if (closed.has(id) && !fromAccept) return;
  let c = chats.get(id);
  const notMine = view.state === 'waiting' || view.state === 'offered';
  if (!c && notMine && !fromAccept) {
    // Still only offered (or back in the queue): news for the offer tab, if any.
    const o = offers.get(id);
    if (o) { o.view = view; renderOffer(o); }
    return;
  }
  if (c && notMine) return;
  accepting.delete(id);
  if (!c) {
    const wasOffer = offers.has(id) ? tabKey('offer', id) : null;
    const wasCurrent = wasOffer && currentKey === wasOffer;
    c = createChat(view, [], wasOffer);
    if (fromAccept || wasCurrent || !currentKey) select(tabKey('chat', id), { focus: fromAccept });
    removeOffer(id);
    const waiting = early.get(id);
    early.delete(id);
    for (const f of waiting || []) onEvent(f);
  } else {
    removeOffer(id);
    updateView(c, view);
  }
  save();
}

function createChat(view, events, instead = null) {
  const id = Number(view.id);
  const pane = chatTemplate.content.firstElementChild.cloneNode(true);
  const q = (s) => pane.querySelector(s);
  const c = {
    id, view, lastSeq: 0, events: [], pane, unread: 0,
    ended: false, endedBy: null, wantsWrapup: false, closing: false,
    private: false, files: [], lastTyping: 0, typers: new Map(),
    pendingInvite: null, fieldForms: new Map(), sigs: {},
    log: q('.chat-log'), pendingList: q('.chat-pending'), draft: q('.chat-draft'),
    typing: q('.chat-typing'), error: q('.chat-error'), banner: q('.chat-banner'),
    input: q('.chat-input'), composer: q('.chat-composer'), filesList: q('.chat-files'),
    privateButton: q('.tool-private'), emojiPanel: q('.emoji-panel'),
    emojiButton: q('.tool-emoji'), sendButton: q('.chat-send'),
  };
  c.label = el('span', { class: 'tab-label' });
  c.tab = addTab(tabKey('chat', id), pane, c.label, instead);
  chats.set(id, c);
  wireChat(c);
  for (const f of events) addEvent(c, f, { restore: true });
  updateView(c, view);
  for (const entry of outbox.all()) {
    if (Number(entry.frame.chat) !== id) continue;
    if (MESSAGES.has(entry.frame.t)) showPending(c, entry);
    if (CLOSERS.has(entry.frame.t)) c.closing = true;
  }
  renderHead(c);
  return c;
}

function updateView(c, view) {
  const old = c.view;
  c.view = view;
  if ('pending_invite' in view) {
    c.pendingInvite = view.pending_invite ? { label: inviteTargetLabel(view.pending_invite) } : null;
  }
  if (view.state === 'ended' && !c.ended) markEnded(c, null, { ask: true });
  renderHead(c);
  renderInvitePending(c);
  renderDetails(c, old);
}

function closeChat(c) {
  closed.add(c.id);
  removeTab(tabKey('chat', c.id));
  chats.delete(c.id);
  for (const d of document.querySelectorAll('dialog[open]')) {
    if (Number(d.dataset.chat) === c.id) d.close();
  }
  updateChrome();
  saveNow();
}

function renderTabLabel(c) {
  c.label.replaceChildren(visitorName(c.view));
  if (c.closing) c.label.append(' ', el('span', { class: 'tab-state', text: '(closing)' }));
  else if (c.ended) c.label.append(' ', el('span', { class: 'tab-state', text: '(ended)' }));
  if (c.unread > 0) {
    c.label.append(' ', el('span', { class: 'unread-badge' }, String(c.unread),
      el('span', { class: 'sr-only', text: ' unread' })));
  }
  c.tab.classList.toggle('ended', c.ended);
  c.tab.classList.toggle('has-unread', c.unread > 0);
}

function renderHead(c) {
  const v = c.view;
  const name = visitorName(v);
  c.pane.querySelector('.chat-title').textContent = name;
  const meta = [`Queue: ${queueLabel(v.queue)}`];
  if (v.topic) meta.push(`Topic: ${v.topic}`);
  meta.push(`State: ${c.closing ? 'closing' : (c.ended ? 'ended' : (v.state || 'active'))}`);
  c.pane.querySelector('.chat-meta').textContent = meta.join(' · ');
  const people = Array.isArray(v.participants) ? v.participants.map(participantName).filter(Boolean) : [];
  c.pane.querySelector('.chat-participants').textContent = people.length ? `Operators: ${people.join(', ')}` : '';
  const endButton = c.pane.querySelector('.chat-end');
  const wrapButton = c.pane.querySelector('.chat-wrapup');
  endButton.hidden = c.ended;
  wrapButton.hidden = !c.ended;
  c.pane.querySelector('.chat-invite').disabled = c.ended || c.closing || Boolean(c.pendingInvite);
  c.pane.querySelector('.chat-transfer').disabled = c.ended || c.closing;
  // With a colleague in the chat, either may leave it to the other.
  const leaveButton = c.pane.querySelector('.chat-leave');
  leaveButton.hidden = c.ended || people.length < 2;
  leaveButton.disabled = c.closing;
  endButton.disabled = c.closing;
  wrapButton.disabled = c.closing;
  // After the end only private notes to colleagues can be written.
  c.composer.querySelectorAll('button, textarea, input').forEach((e) => { e.disabled = c.closing; });
  c.sendButton.disabled = c.closing || Boolean(c.sending);
  // After the end only private notes to colleagues can be written.
  if (c.ended) {
    c.private = true;
    c.privateButton.disabled = true;
    c.input.placeholder = 'The chat has ended: notes written here are private (only operators see them).';
  }
  renderPrivate(c);
  if (c.ended) {
    c.banner.hidden = false;
    c.banner.textContent = c.endedBy === 'visitor'
      ? 'The visitor ended the chat. Please wrap it up.'
      : (c.endedBy ? `${c.endedBy} ended the chat. Please wrap it up.` : 'The chat has ended. Please wrap it up.');
  } else {
    c.banner.hidden = true;
  }
  if (c.closing) {
    c.banner.hidden = false;
    c.banner.textContent = 'Closing the chat…';
  }
  renderTabLabel(c);
}

function markEnded(c, by, { ask }) {
  c.ended = true;
  if (by) c.endedBy = by;
  c.wantsWrapup = true;
  c.draft.hidden = true;
  renderHead(c);
  if (ask && currentChat() === c && !document.querySelector('dialog[open]')) openWrapup(c);
}

function showChatError(c, text) {
  c.error.textContent = text;
  c.error.hidden = false;
  clearTimeout(c.errorTimer);
  c.errorTimer = setTimeout(() => { c.error.hidden = true; }, 15000);
}

// ---------------------------------------------------------------- events

function isMine(f) {
  if (f.from !== 'operator') return false;
  if (f.user) return f.user === me.name;
  return f.name === me.display || f.name === me.name;
}

function onEvent(f) {
  const id = Number(f.chat);
  const c = chats.get(id);
  if (!c) {
    if (closed.has(id) && !accepting.has(id)) return;
    const list = early.get(id) || [];
    list.push(f);
    early.set(id, list.slice(-EVENTS_KEPT));
    return;
  }
  addEvent(c, f, { restore: false });
}

function addEvent(c, f, { restore }) {
  const seq = newSeq(f.seq, c.lastSeq);
  if (seq === null) return;
  c.lastSeq = seq;
  c.events.push(f);
  if (c.events.length > EVENTS_KEPT * 2) c.events = c.events.slice(-EVENTS_KEPT);
  const stick = nearEnd(c);
  c.log.append(eventItem(f, c));
  // The pending copy of our own message goes once the real one is here.
  for (const li of [...c.pendingList.children]) {
    if ((f.client_id && li.dataset.clientId === f.client_id) || Number(li.dataset.seq) === seq) li.remove();
  }
  if (f.kind === 'answer' && f.data) markAnswer(c.log, f.data.menu_seq, f.data.choice);
  if (f.from === 'visitor' && (f.kind === 'message' || f.kind === 'attachment' || f.kind === 'answer')) {
    c.draft.hidden = true;
  }
  if (f.kind === 'join' && !isMine(f) && c.pendingInvite) {
    c.pendingInvite = null;
    renderInvitePending(c);
    renderHead(c);
  }
  if (f.kind === 'invite' && f.data && (f.data.accepted === false || f.data.declined || f.data.state === 'declined' || f.data.state === 'expired')) {
    c.pendingInvite = null;
    renderInvitePending(c);
    renderHead(c);
  }
  if (f.kind === 'end') {
    const by = f.from === 'visitor' || (f.data && f.data.by === 'visitor') ? 'visitor'
      : (f.name || (f.data && f.data.by) || null);
    markEnded(c, isMine(f) ? null : by, { ask: !restore });
  }
  if (!restore && !isMine(f) && f.kind !== 'join' && f.kind !== 'leave') {
    if (currentChat() !== c || document.hidden) {
      c.unread += 1;
      renderTabLabel(c);
      updateChrome();
    }
  }
  scrollToEnd(c, stick);
  if (!restore) save();
}

function nearEnd(c) {
  const box = c.log;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 60;
}

function scrollToEnd(c, really) {
  if (really) c.log.scrollTop = c.log.scrollHeight;
}

function privateMark() {
  return el('span', { class: 'private-mark', title: 'Private: only operators see it' },
    el('span', { 'aria-hidden': 'true', text: '👁' }), ' private');
}

function lockMark() {
  return el('span', { class: 'verified-mark', title: 'Verified by the website' },
    el('span', { 'aria-hidden': 'true', text: '🔒' }), ' verified');
}

function fileList(files) {
  if (!Array.isArray(files) || files.length === 0) return null;
  return el('ul', { class: 'ev-files', 'aria-label': 'Attachments' }, ...files.map((file) => {
    const href = `/console/chat/files/${encodeURIComponent(file.id)}`;
    const a = el('a', { href, target: '_blank', rel: 'noopener noreferrer' });
    if (typeof file.type === 'string' && file.type.startsWith('image/')) {
      a.append(el('img', { src: href, alt: '', loading: 'lazy' }));
    }
    a.append(el('span', { class: 'file-name', text: file.name || 'file' }));
    return el('li', {}, a, el('span', { class: 'muted', text: ` ${size(file.size)}` }));
  }));
}

function senderName(f, c) {
  if (f.from === 'visitor') return f.name || visitorName(c?.view);
  if (f.from === 'system') return f.name || 'Hotline';
  return f.name || 'Operator';
}

// One conversation line; used for the live chat and for past chats' transcripts.
function eventItem(f, c) {
  const kind = f.kind || 'message';
  const from = f.from || 'system';
  const mine = isMine(f);
  const li = el('li', { class: `ev ev-${kind} from-${from}${mine ? ' mine' : ''}${f.private ? ' private' : ''}` });
  li.dataset.seq = String(f.seq ?? '');
  const text = f.text ?? f.body ?? '';
  const data = f.data || {};
  const meta = () => el('div', { class: 'ev-meta' },
    el('span', { class: 'ev-name', text: senderName(f, c) }),
    f.private ? privateMark() : null, ' ', timeEl(f.at));

  if (kind === 'message' || kind === 'attachment' || kind === 'greeting') {
    li.classList.add('bubble');
    li.append(meta());
    if (isRealText(text)) li.append(el('div', { class: 'ev-text' }, renderText(String(text))));
    const files = fileList(data.files);
    if (files) li.append(files);
  } else if (kind === 'options') {
    li.classList.add('bubble');
    li.append(meta());
    li.append(el('div', { class: 'ev-text' }, el('span', { class: 'muted', text: 'Option menu: ' }),
      renderText(String(data.prompt ?? text ?? ''))));
    const choices = Array.isArray(data.choices) ? data.choices : [];
    li.append(el('ol', { class: 'ev-choices' }, ...choices.map((choice) => el('li', { dataset: { choice: String(choice) }, text: String(choice) }))));
  } else if (kind === 'answer') {
    li.classList.add('bubble');
    li.append(meta());
    li.append(el('div', { class: 'ev-text' }, el('span', { class: 'muted', text: 'Chose: ' }),
      el('strong', { text: String(data.choice ?? text ?? '') })));
  } else {
    li.classList.add('system');
    li.append(el('span', { class: 'ev-system-text' }, f.private ? privateMark() : null, f.private ? ' ' : null,
      systemText(f, c)), ' ', timeEl(f.at));
    if (kind === 'transfer' && isRealText(data.note)) {
      li.append(el('div', { class: 'ev-note' }, el('span', { class: 'muted', text: 'Note: ' }), String(data.note)));
    }
  }
  return li;
}

function inviteTargetLabel(d) {
  if (!d) return '';
  if (d.operator) return String(d.operator_name || d.operator);
  if (d.queue) return `anyone in ${d.queue}`;
  if (d.to) return String(d.to);
  return '';
}

function systemText(f, c) {
  const name = senderName(f, c);
  const data = f.data || {};
  switch (f.kind) {
    case 'join': return `${name} joined the chat.`;
    case 'leave': return `${name} left the chat.`;
    case 'transfer': return `${name} transferred the chat${isRealText(data.to) ? ` to ${data.to}` : ''}.`;
    case 'invite': {
      const whom = inviteTargetLabel(data);
      if (data.accepted === false || data.declined || data.state === 'declined') return `${whom || 'The invitee'} declined the invite.`;
      if (data.state === 'expired') return `The invite${whom ? ` to ${whom}` : ''} expired.`;
      if (isRealText(f.text)) return String(f.text);
      return `${name} invited ${whom || 'an operator'}.`;
    }
    case 'end': {
      if (f.from === 'visitor' || data.by === 'visitor') return 'The visitor ended the chat.';
      return `${name === 'Hotline' && data.by ? data.by : name} ended the chat.`;
    }
    default: return isRealText(f.text) ? String(f.text) : (isRealText(f.body) ? String(f.body) : f.kind || '');
  }
}

function markAnswer(list, menuSeq, choice) {
  if (menuSeq == null) return;
  const menu = list.querySelector(`li.ev-options[data-seq="${CSS.escape(String(menuSeq))}"]`);
  if (!menu) return;
  for (const li of menu.querySelectorAll('.ev-choices > li')) {
    if (li.dataset.choice === String(choice) && !li.classList.contains('chosen')) {
      li.classList.add('chosen');
      li.append(el('span', { class: 'chosen-mark', text: ' ✓ chosen' }));
    }
  }
}

// The operator's own message until the server has it.
function showPending(c, entry) {
  if (c.pendingList.querySelector(`[data-client-id="${CSS.escape(entry.client_id)}"]`)) return;
  const f = entry.frame;
  const li = el('li', { class: `ev bubble mine pending${f.private ? ' private' : ''}`, dataset: { clientId: entry.client_id } });
  li.append(el('div', { class: 'ev-meta' }, el('span', { class: 'ev-name', text: me.display || me.name }),
    f.private ? privateMark() : null, ' ', el('span', { class: 'pending-state', text: 'sending…' })));
  if (f.t === 'options') {
    li.append(el('div', { class: 'ev-text' }, el('span', { class: 'muted', text: 'Option menu: ' }), renderText(String(f.prompt || ''))));
    li.append(el('ol', { class: 'ev-choices' }, ...(f.choices || []).map((x) => el('li', { text: x }))));
  } else {
    if (isRealText(f.text)) li.append(el('div', { class: 'ev-text' }, renderText(String(f.text))));
    if (Array.isArray(entry.fileInfo) && entry.fileInfo.length) li.append(fileList(entry.fileInfo));
  }
  c.pendingList.append(li);
  scrollToEnd(c, true);
}

function pendingSent(c, entry, seq) {
  const li = c.pendingList.querySelector(`[data-client-id="${CSS.escape(entry.client_id)}"]`);
  if (!li) return;
  if (seq != null && Number(seq) <= c.lastSeq) { li.remove(); return; }
  if (seq != null) li.dataset.seq = String(seq);
  const state = li.querySelector('.pending-state');
  if (state) state.textContent = 'sent';
}

// Refused: the text goes back into the input so nothing typed is lost.
function pendingFailed(c, entry) {
  c.pendingList.querySelector(`[data-client-id="${CSS.escape(entry.client_id)}"]`)?.remove();
  if (entry.frame.t === 'send' && isRealText(entry.frame.text)) {
    c.input.value = c.input.value ? `${entry.frame.text}\n${c.input.value}` : entry.frame.text;
  }
}

// ---------------------------------------------------------------- drafts and typing

function onDraft(f) {
  const c = chats.get(Number(f.chat));
  if (!c) return;
  const text = String(f.text ?? '');
  if (!text || c.ended) {
    c.draft.hidden = true;
    c.draft.querySelector('.draft-text').textContent = '';
    return;
  }
  const stick = nearEnd(c);
  c.draft.querySelector('.draft-text').textContent = text;
  c.draft.hidden = false;
  scrollToEnd(c, stick);
}

function onTyping(f) {
  const c = chats.get(Number(f.chat));
  if (!c || !f.name) return;
  const name = String(f.name);
  if (name === me.display || name === me.name) return;
  clearTimeout(c.typers.get(name));
  c.typers.set(name, setTimeout(() => { c.typers.delete(name); renderTyping(c); }, OTHER_TYPING_MS));
  renderTyping(c);
}

function renderTyping(c) {
  const names = [...c.typers.keys()];
  c.typing.textContent = names.length === 0 ? ''
    : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

// ---------------------------------------------------------------- the composer

function wireChat(c) {
  const { input, composer } = c;
  composer.addEventListener('submit', (e) => { e.preventDefault(); sendMessage(c); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !c.emojiPanel.hidden) { e.preventDefault(); toggleEmoji(c, false); return; }
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
      e.preventDefault();
      sendMessage(c);
    }
  });
  input.addEventListener('input', () => {
    if (!input.value || c.ended) return;
    const now = Date.now();
    if (now - c.lastTyping >= TYPING_EVERY_MS) {
      c.lastTyping = now;
      rawSend({ t: 'typing', chat: c.id, private: c.private });
    }
  });
  for (const b of composer.querySelectorAll('[data-format]')) {
    b.addEventListener('click', () => format(c, b.dataset.format));
  }
  c.privateButton.addEventListener('click', () => {
    if (c.ended) return;
    c.private = !c.private;
    renderPrivate(c);
    input.focus();
  });
  composer.querySelector('.tool-canned').addEventListener('click', () => openCanned(c));
  composer.querySelector('.tool-options').addEventListener('click', () => openOptions(c));
  const attach = composer.querySelector('.attach-input');
  attach.addEventListener('change', () => {
    addFiles(c, [...attach.files]);
    attach.value = '';
  });
  // Emoji: a small panel of buttons; Esc closes it.
  c.emojiPanel.append(...EMOJI.map((emoji) => button(emoji, {
    class: 'emoji', 'aria-label': `Insert ${emoji}`,
    onclick: () => { insertAtCursor(input, emoji); toggleEmoji(c, false); input.focus(); },
  })));
  c.emojiButton.addEventListener('click', () => toggleEmoji(c, c.emojiPanel.hidden));
  c.emojiPanel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { e.preventDefault(); toggleEmoji(c, false); c.emojiButton.focus(); }
  });
  const q = (s) => c.pane.querySelector(s);
  q('.chat-end').addEventListener('click', () => openEnd(c));
  q('.chat-wrapup').addEventListener('click', () => openWrapup(c));
  q('.chat-invite').addEventListener('click', () => openInvite(c));
  q('.chat-transfer').addEventListener('click', () => openTransfer(c));
  q('.chat-leave').addEventListener('click', () => {
    c.closing = true;
    renderHead(c);
    enqueue({ t: 'leave', chat: c.id });
  });
  // Details: tags and notes.
  const tagForm = q('.tag-form');
  tagForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const tag = tagForm.elements.tag.value.trim();
    if (!tag) return;
    if (tag.length > 40) { showChatError(c, 'A tag is at most 40 characters.'); return; }
    enqueue({ t: 'tag', chat: c.id, add: tag });
    tagForm.reset();
  });
  const noteForm = q('.note-form');
  noteForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = noteForm.elements.text.value.trim();
    if (!text) return;
    enqueue({ t: 'note', chat: c.id, text });
    noteForm.reset();
  });
}

function renderPrivate(c) {
  c.privateButton.setAttribute('aria-pressed', c.private ? 'true' : 'false');
  c.composer.classList.toggle('is-private', c.private);
  c.sendButton.textContent = c.private ? 'Send privately' : 'Send';
}

function toggleEmoji(c, open) {
  c.emojiPanel.hidden = !open;
  c.emojiButton.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (open) c.emojiPanel.querySelector('button')?.focus();
}

function insertAtCursor(input, text, selectFrom = null, selectTo = null) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? input.value.length;
  input.setRangeText(text, start, end, 'end');
  if (selectFrom != null) input.setSelectionRange(start + selectFrom, start + (selectTo ?? selectFrom));
  input.dispatchEvent(new Event('input'));
}

// The toolbar's marks are the ones renderText understands: **bold**, _italic_, "- " lists,
// and bare http(s) addresses as links.
function format(c, how) {
  const input = c.input;
  const start = input.selectionStart;
  const end = input.selectionEnd;
  const sel = input.value.slice(start, end);
  if (how === 'bold' || how === 'italic') {
    const mark = how === 'bold' ? '**' : '_';
    if (sel) insertAtCursor(input, `${mark}${sel}${mark}`);
    else insertAtCursor(input, `${mark}${mark}`, mark.length);
  } else if (how === 'list') {
    const lineStart = input.value.lastIndexOf('\n', start - 1) + 1;
    const block = input.value.slice(lineStart, end);
    const listed = (block || '').split('\n').map((l) => (l.startsWith('- ') ? l : `- ${l}`)).join('\n');
    input.setSelectionRange(lineStart, end);
    insertAtCursor(input, listed);
  } else if (how === 'link') {
    const prefix = sel && !/^https?:\/\//.test(sel) ? `${sel} ` : '';
    if (sel && /^https?:\/\//.test(sel)) { input.focus(); return; }
    insertAtCursor(input, `${prefix}https://`);
  }
  input.focus();
}

function addFiles(c, chosen) {
  const problems = [];
  for (const file of chosen) {
    if (file.size > MAX_FILE_BYTES) {
      problems.push(`“${file.name}” is ${size(file.size)}; a file may be at most 20 MB.`);
      continue;
    }
    if (c.files.length >= MAX_FILES) {
      problems.push(`“${file.name}” was not added: at most ${MAX_FILES} files go with one message.`);
      continue;
    }
    c.files.push(file);
  }
  if (problems.length) showChatError(c, problems.join(' '));
  renderFiles(c);
}

function renderFiles(c) {
  c.filesList.replaceChildren(...c.files.map((file, i) => el('li', { class: 'file-chip' },
    el('span', { text: `${file.name} (${size(file.size)})` }),
    button('✕', {
      class: 'secondary small', 'aria-label': `Remove ${file.name}`,
      onclick: () => { c.files.splice(i, 1); renderFiles(c); c.input.focus(); },
    }))));
}

async function sendMessage(c) {
  if (c.sending || c.closing) return;
  const text = c.input.value;
  if (!text.trim() && c.files.length === 0) return;
  if (text.length > MAX_TEXT) {
    showChatError(c, `A message is at most ${MAX_TEXT} characters; this one has ${text.length}.`);
    return;
  }
  const isPrivate = c.private || c.ended;
  let fileIds = [];
  let fileInfo = [];
  if (c.files.length) {
    // Checked again here, before anything is uploaded.
    const big = c.files.find((f) => f.size > MAX_FILE_BYTES);
    if (big) { showChatError(c, `“${big.name}” is ${size(big.size)}; a file may be at most 20 MB.`); return; }
    if (c.files.length > MAX_FILES) { showChatError(c, `At most ${MAX_FILES} files go with one message.`); return; }
    c.sending = true;
    c.sendButton.disabled = true;
    c.sendButton.textContent = 'Uploading…';
    const form = new FormData();
    form.append('private', isPrivate ? '1' : '0');
    for (const file of c.files) form.append('file', file, file.name);
    const res = await request('POST', `/console/chat/${c.id}/files`, form);
    c.sending = false;
    c.sendButton.disabled = c.closing;
    renderPrivate(c);
    if (!res.ok) {
      showChatError(c, res.body.error || 'The files could not be uploaded.');
      return;
    }
    fileInfo = Array.isArray(res.body.files) ? res.body.files : [];
    fileIds = fileInfo.map((f) => f.id);
  }
  enqueue({ t: 'send', chat: c.id, text, private: isPrivate, files: fileIds }, fileInfo);
  c.input.value = '';
  c.files = [];
  renderFiles(c);
  c.lastTyping = 0;
  c.input.focus();
}

// ---------------------------------------------------------------- visitor details

function renderDetails(c) {
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

function formSaved(form) {
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

// ---------------------------------------------------------------- dialogs

const dialogs = {
  shortcuts: document.getElementById('shortcuts-dialog'),
  canned: document.getElementById('canned-dialog'),
  options: document.getElementById('options-dialog'),
  invite: document.getElementById('invite-dialog'),
  transfer: document.getElementById('transfer-dialog'),
  end: document.getElementById('end-dialog'),
  wrapup: document.getElementById('wrapup-dialog'),
};

for (const d of Object.values(dialogs)) {
  d.querySelectorAll('[data-close]').forEach((b) => b.addEventListener('click', () => d.close()));
  d.addEventListener('close', () => {
    const c = chats.get(Number(d.dataset.chat));
    if (c && currentChat() === c && !document.querySelector('dialog[open]')) c.input.focus();
  });
}

function open(d, c) {
  for (const other of document.querySelectorAll('dialog[open]')) if (other !== d) other.close();
  d.dataset.chat = c ? String(c.id) : '';
  if (!d.open) d.showModal();
}

function dialogChat(d) {
  return chats.get(Number(d.dataset.chat)) ?? null;
}

document.getElementById('chat-shortcuts-open').addEventListener('click', () => open(dialogs.shortcuts, null));

// Canned messages: the operator's queues' and the all-queue ones, favourites first.
const cannedQ = document.getElementById('canned-q');
const cannedList = document.getElementById('canned-list');
const cannedStatus = document.getElementById('canned-status');
let cannedGeneration = 0;
let cannedTimer = null;
let cannedItems = [];

function openCanned(c) {
  if (!c || c.closing) return;
  open(dialogs.canned, c);
  cannedQ.value = '';
  loadCanned();
  cannedQ.focus();
}

async function loadCanned() {
  const c = dialogChat(dialogs.canned);
  if (!c) return;
  const mine = ++cannedGeneration;
  cannedStatus.textContent = 'Loading…';
  const res = await request('GET', `/console/chat/canned?q=${encodeURIComponent(cannedQ.value.trim())}&chat=${c.id}`);
  if (mine !== cannedGeneration) return;
  if (!res.ok) { cannedStatus.textContent = res.body.error || 'The canned messages could not be loaded.'; return; }
  cannedItems = Array.isArray(res.body.canned) ? res.body.canned : [];
  // Favourites first, whatever order the server gave.
  cannedItems = [...cannedItems.filter((x) => x.favourite), ...cannedItems.filter((x) => !x.favourite)];
  cannedStatus.textContent = cannedItems.length ? `${cannedItems.length} found.` : 'No canned messages found.';
  cannedList.replaceChildren(...cannedItems.map((item) => {
    const star = button(item.favourite ? '★' : '☆', {
      class: `star${item.favourite ? ' on' : ''}`, 'aria-pressed': item.favourite ? 'true' : 'false',
      'aria-label': `Favourite: ${item.title}`, title: item.favourite ? 'Remove from favourites' : 'Add to favourites',
      onclick: () => toggleFavourite(item, star),
    });
    const choose = el('button', { type: 'button', class: 'canned-choose', onclick: () => chooseCanned(item) },
      el('span', { class: 'canned-title', text: item.title }),
      el('span', { class: 'canned-queue muted', text: item.queue ? ` · ${item.queue}` : ' · all queues' }),
      el('span', { class: 'canned-body', text: item.body }));
    return el('li', {}, star, choose);
  }));
}

async function toggleFavourite(item, star) {
  star.disabled = true;
  const res = await request('POST', `/console/chat/canned/${encodeURIComponent(item.id)}/favourite`, { on: !item.favourite });
  star.disabled = false;
  if (!res.ok) { cannedStatus.textContent = res.body.error || 'The favourite could not be changed.'; return; }
  await loadCanned();
  cannedList.querySelector(`.star[aria-label="${CSS.escape(`Favourite: ${item.title}`)}"]`)?.focus();
}

// The text goes into the input to be edited; it is sent only with Enter or Send.
function chooseCanned(item) {
  const c = dialogChat(dialogs.canned);
  dialogs.canned.close();
  if (!c) return;
  c.input.focus();
  if (!c.input.value.trim()) c.input.value = '';
  insertAtCursor(c.input, String(item.body ?? ''));
}

cannedQ.addEventListener('input', () => {
  clearTimeout(cannedTimer);
  cannedTimer = setTimeout(loadCanned, 200);
});
cannedQ.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    if (cannedItems[0]) chooseCanned(cannedItems[0]);
  } else if (e.key === 'ArrowDown') {
    e.preventDefault();
    cannedList.querySelector('.canned-choose')?.focus();
  }
});
cannedList.addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  const items = [...cannedList.querySelectorAll('.canned-choose')];
  const i = items.indexOf(document.activeElement);
  if (i < 0) return;
  e.preventDefault();
  if (e.key === 'ArrowUp' && i === 0) cannedQ.focus();
  else items[Math.max(0, Math.min(items.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))].focus();
});

// Option menus.
const optionsForm = document.getElementById('options-form');
const optionsChoices = document.getElementById('options-choices');
const optionsError = document.getElementById('options-error');

function addChoiceRow(value = '') {
  const n = optionsChoices.children.length + 1;
  const input = el('input', { name: 'choice', maxlength: String(MAX_CHOICE_CHARS), value, 'aria-label': `Choice ${n}` });
  const remove = button('✕', {
    class: 'secondary small', 'aria-label': `Remove choice ${n}`,
    onclick: () => {
      if (optionsChoices.children.length <= MIN_CHOICES) return;
      li.remove();
      renumberChoices();
    },
  });
  const li = el('li', { class: 'choice-row' }, input, remove);
  optionsChoices.append(li);
  return input;
}

function renumberChoices() {
  [...optionsChoices.children].forEach((li, i) => {
    li.querySelector('input').setAttribute('aria-label', `Choice ${i + 1}`);
    li.querySelector('button').setAttribute('aria-label', `Remove choice ${i + 1}`);
  });
}

function openOptions(c) {
  if (!c || c.ended || c.closing) return;
  optionsForm.reset();
  optionsChoices.replaceChildren();
  addChoiceRow();
  addChoiceRow();
  optionsError.hidden = true;
  open(dialogs.options, c);
  optionsForm.elements.prompt.focus();
}

document.getElementById('options-add').addEventListener('click', () => {
  if (optionsChoices.children.length >= MAX_CHOICES) {
    optionsError.textContent = `At most ${MAX_CHOICES} choices.`;
    optionsError.hidden = false;
    return;
  }
  addChoiceRow().focus();
});

optionsForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = dialogChat(dialogs.options);
  if (!c) return;
  const prompt = optionsForm.elements.prompt.value.trim();
  const choices = [...optionsChoices.querySelectorAll('input')].map((i) => i.value.trim()).filter(Boolean);
  let problem = '';
  if (!prompt) problem = 'Write the question.';
  else if (choices.length < MIN_CHOICES) problem = `Give at least ${MIN_CHOICES} choices.`;
  else if (choices.length > MAX_CHOICES) problem = `At most ${MAX_CHOICES} choices.`;
  else if (new Set(choices).size !== choices.length) problem = 'Each choice must be different.';
  else if (choices.some((x) => x.length > MAX_CHOICE_CHARS)) problem = `A choice is at most ${MAX_CHOICE_CHARS} characters.`;
  if (problem) {
    optionsError.textContent = problem;
    optionsError.hidden = false;
    return;
  }
  enqueue({ t: 'options', chat: c.id, prompt, choices });
  dialogs.options.close();
});

// A target form (invite, transfer): an operator or a queue.
function wireTarget(form) {
  const sync = () => {
    const target = form.elements.target.value;
    form.elements.operator.disabled = target !== 'operator';
    form.elements.queue.disabled = target !== 'queue';
  };
  for (const r of form.querySelectorAll('input[name=target]')) r.addEventListener('change', sync);
  // No colleague to choose from: a queue then.
  if (form.elements.operator.options.length === 0) {
    form.querySelector('input[name=target][value=queue]').checked = true;
  }
  sync();
  return sync;
}

function readTarget(form) {
  const target = form.elements.target.value;
  const select = target === 'operator' ? form.elements.operator : form.elements.queue;
  if (!select.value) return null;
  const label = select.options[select.selectedIndex]?.textContent || select.value;
  return target === 'operator'
    ? { key: 'operator', value: select.value, label }
    : { key: 'queue', value: select.value, label: `anyone in ${label}` };
}

// Invites.
const inviteForm = document.getElementById('invite-form');
const inviteSent = document.getElementById('invite-sent');
const inviteError = document.getElementById('invite-error');
const syncInvite = wireTarget(inviteForm);

function openInvite(c) {
  if (!c || c.ended || c.closing) return;
  inviteError.hidden = true;
  if (c.pendingInvite) {
    inviteForm.hidden = true;
    inviteSent.hidden = false;
    document.getElementById('invite-sent-text').textContent = `The invite to ${c.pendingInvite.label} is pending.`;
    open(dialogs.invite, c);
    document.getElementById('invite-stay').focus();
    return;
  }
  inviteForm.hidden = false;
  inviteSent.hidden = true;
  syncInvite();
  open(dialogs.invite, c);
  inviteForm.querySelector('input[name=target]:checked').focus();
}

inviteForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = dialogChat(dialogs.invite);
  if (!c) return;
  const target = readTarget(inviteForm);
  if (!target) {
    inviteError.textContent = 'Choose whom to invite.';
    inviteError.hidden = false;
    return;
  }
  const entry = enqueue({ t: 'invite', chat: c.id, [target.key]: target.value });
  c.pendingInvite = { label: target.label, client_id: entry.client_id };
  renderInvitePending(c);
  renderHead(c);
  inviteForm.hidden = true;
  inviteSent.hidden = false;
  document.getElementById('invite-sent-text').textContent = `The invite to ${target.label} is pending.`;
  document.getElementById('invite-stay').focus();
});

function inviteDialogError(c, message) {
  if (!dialogs.invite.open || dialogChat(dialogs.invite) !== c) return;
  inviteForm.hidden = false;
  inviteSent.hidden = true;
  inviteError.textContent = message;
  inviteError.hidden = false;
}

document.getElementById('invite-stay').addEventListener('click', () => dialogs.invite.close());
document.getElementById('invite-leave').addEventListener('click', () => {
  const c = dialogChat(dialogs.invite);
  dialogs.invite.close();
  if (!c) return;
  c.closing = true;
  renderHead(c);
  enqueue({ t: 'leave', chat: c.id });
});

function renderInvitePending(c) {
  const p = c.pane.querySelector('.chat-invite-pending');
  p.hidden = !c.pendingInvite;
  p.textContent = c.pendingInvite ? `Invite to ${c.pendingInvite.label} pending…` : '';
}

// Invites to other operators' chats.
function onInvite(inv) {
  if (inv.id == null || invites.has(String(inv.id))) return;
  const chatId = typeof inv.chat === 'object' && inv.chat ? Number(inv.chat.id) : Number(inv.chat);
  const view = typeof inv.chat === 'object' ? inv.chat : null;
  const from = inv.from_name || inv.from || 'An operator';
  const whom = inv.queue ? ` (anyone in ${inv.queue})` : '';
  const visitor = view ? visitorName(view) : (inv.visitor || inv.visitor_name || '');
  const text = `${from} invites you${whom} to a chat${visitor ? ` with ${visitor}` : ''}.`;
  const li = el('li', { class: 'invite' }, el('span', { text }), ' ',
    button('Accept', { onclick: () => answerInvite(inv, chatId, true) }), ' ',
    button('Decline', { class: 'secondary', onclick: () => answerInvite(inv, chatId, false) }));
  invites.set(String(inv.id), { invite: inv, li });
  invitesEl.querySelector('ul').append(li);
  invitesEl.hidden = false;
  if (document.hidden) document.title = `Invite to a chat · ${baseTitle}`;
}

function answerInvite(inv, chatId, accept) {
  if (accept && Number.isFinite(chatId)) {
    closed.delete(chatId);
    accepting.add(chatId);
  }
  enqueue({ t: 'invite_answer', invite: inv.id, accept });
  removeInvite(inv.id);
}

function removeInvite(id) {
  const item = invites.get(String(id));
  if (!item) return;
  item.li.remove();
  invites.delete(String(id));
  invitesEl.hidden = invites.size === 0;
}

// Transfers.
const transferForm = document.getElementById('transfer-form');
const transferError = document.getElementById('transfer-error');
const syncTransfer = wireTarget(transferForm);

function openTransfer(c) {
  if (!c || c.ended || c.closing) return;
  transferForm.reset();
  if (transferForm.elements.operator.options.length === 0) {
    transferForm.querySelector('input[name=target][value=queue]').checked = true;
  }
  syncTransfer();
  transferError.hidden = true;
  open(dialogs.transfer, c);
  transferForm.querySelector('input[name=target]:checked').focus();
}

transferForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = dialogChat(dialogs.transfer);
  if (!c) return;
  const target = readTarget(transferForm);
  if (!target) {
    transferError.textContent = 'Choose where to transfer the chat.';
    transferError.hidden = false;
    return;
  }
  dialogs.transfer.close();
  c.closing = true;
  renderHead(c);
  enqueue({ t: 'transfer', chat: c.id, [target.key]: target.value, note: transferForm.elements.note.value.trim() });
});

// Ending and wrap-up.
const endForm = document.getElementById('end-form');
function openEnd(c) {
  if (!c || c.closing) return;
  if (c.ended) { openWrapup(c); return; }
  document.getElementById('end-text').textContent =
    `End the chat with ${visitorName(c.view)}? The visitor is told that the chat has ended.`;
  open(dialogs.end, c);
  endForm.querySelector('button[type=submit]').focus();
}

endForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = dialogChat(dialogs.end);
  dialogs.end.close();
  if (!c) return;
  enqueue({ t: 'end', chat: c.id });
  c.ended = true;
  c.wantsWrapup = true;
  renderHead(c);
  openWrapup(c);
});

const wrapupForm = document.getElementById('wrapup-form');
function openWrapup(c) {
  if (!c || c.closing) return;
  c.wantsWrapup = false;
  wrapupForm.reset();
  const email = c.view && c.view.visitor && c.view.visitor.email;
  const box = wrapupForm.elements.transcript;
  box.disabled = !isRealText(email);
  box.checked = false;
  document.getElementById('wrapup-no-email').hidden = isRealText(email);
  document.getElementById('wrapup-text').textContent = c.endedBy === 'visitor'
    ? `The visitor (${visitorName(c.view)}) ended the chat.`
    : `The chat with ${visitorName(c.view)} has ended.`;
  open(dialogs.wrapup, c);
  wrapupForm.elements.category.focus();
}

wrapupForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = dialogChat(dialogs.wrapup);
  if (!c) return;
  const f = wrapupForm.elements;
  dialogs.wrapup.close();
  c.closing = true;
  renderHead(c);
  updateChrome();
  enqueue({
    t: 'wrapup', chat: c.id, category: f.category.value, note: f.note.value.trim(),
    transcript: !f.transcript.disabled && f.transcript.checked,
  });
});

// ---------------------------------------------------------------- keyboard

document.addEventListener('keydown', (e) => {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const dialogOpen = document.querySelector('dialog[open]');
  let handled = true;
  if (e.code === 'Slash' || e.key === '/' || e.code === 'NumpadDivide') {
    open(dialogs.shortcuts, null);
  } else if (dialogOpen) {
    handled = false;
  } else {
    const c = currentChat();
    switch (e.code) {
      case 'KeyC': if (c) c.input.focus(); else handled = false; break;
      case 'KeyX': if (c) openCanned(c); else handled = false; break;
      case 'KeyF': step(-1); break;
      case 'KeyJ': step(1); break;
      case 'KeyR': if (c) openTransfer(c); else handled = false; break;
      case 'KeyE': if (c) openEnd(c); else handled = false; break;
      case 'KeyI': if (c) openInvite(c); else handled = false; break;
      default: handled = false;
    }
  }
  if (handled) e.preventDefault();
});

// ---------------------------------------------------------------- leaving the page

window.addEventListener('beforeunload', (e) => {
  saveNow();
  const live = [...chats.values()].some((c) => !c.ended && !c.closing && c.view.state !== 'ended');
  if (live) {
    e.preventDefault();
    e.returnValue = '';
  }
});

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  const c = currentChat();
  if (c && c.unread) { c.unread = 0; renderTabLabel(c); }
  updateChrome();
});

// ---------------------------------------------------------------- start

setInterval(() => {
  tickOffers();
  tickReconnect();
  // Control frames neither acked nor refused: taken as done.
  const now = Date.now();
  if (socket.isOpen()) {
    for (const entry of outbox.all()) {
      if (MESSAGES.has(entry.frame.t) || !entry.sentAt || now - entry.sentAt < SETTLE_MS) continue;
      takeOutbox(entry.client_id);
      const c = chats.get(Number(entry.frame.chat));
      if (c && CLOSERS.has(entry.frame.t)) closeChat(c);
      if (c && entry.frame.t === 'field') {
        const form = c.fieldForms.get(entry.frame.name);
        if (form && form.dataset.saving) formSaved(form);
      }
    }
  }
}, 1000);

(function restore() {
  const saved = loadSaved();
  outboxList = Array.isArray(saved.outbox) ? saved.outbox.filter((e) => e && e.frame && e.client_id) : [];
  for (const id of saved.closed || []) closed.add(Number(id));
  const views = saved.views || {};
  for (const [id, view] of Object.entries(views)) {
    if (!view || closed.has(Number(id))) continue;
    const events = (saved.events && saved.events[id]) || [];
    createChat({ ...view, id: Number(id) }, events);
  }
  if (saved.current && order.includes(saved.current)) select(saved.current);
  else if (order[0]) select(order[0]);
  updateChrome();
  socket.connect();
}());
