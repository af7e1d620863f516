import { renderText, formatTime, formatSize } from './chat-format.js';
import { request } from './request.js';
import { newClientId, newSeq, openLink, Outbox } from './chat-link.js';

// The visitor's side of web chat (PRODUCT H1–H5), the page inside the widget's iframe
// (it works on its own too): the pre-chat form, the queue, the conversation, the end.
//
// Nothing is lost or doubled across reloads and reconnects (H5):
// - the chat's token, the last event seq seen and the visible events are kept in
//   localStorage ("hotline-chat:SITE"), so a reload (the iframe reloads on every page of
//   the site) shows the conversation at once and the socket asks only for what came after;
// - everything the visitor sends carries a client id and stays in an outbox
//   ("hotline-chat:SITE:outbox") until the server acks it; after a reconnect the outbox is
//   sent again and the server stores each client id once;
// - events are drawn in seq order and one already seen is dropped.
// The socket, the client ids and the outbox are chat-link.js's, as on the operator's page.
// Text from anyone is drawn through renderText (chat-format.js), never as markup.

const MAX_FILES = 5;
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const MAX_TEXT = 4000;
const TYPING_MS = 3000;
const DRAFT_GAP_MS = 500; // at most two draft frames a second
const KEEP_EVENTS = 300; // kept for a reload; older ones scroll away
const OFFLINE_GRACE_MS = 1500;
// Close codes the server uses for "this token is no longer a chat": don't come back.
const GONE_CODES = new Set([4401, 4403, 4404, 4410]);
const STATES = new Set(['waiting', 'offered', 'active', 'ended']);
const DEFAULT_COLOUR = '#0b5cad';

const app = document.getElementById('chat-app');
const SITE = app.dataset.site || '';
const SITE_NAME = app.dataset.siteName || '';
// The site's origins, and Hotline's own pages (the server frames it for them too).
const ORIGINS = (app.dataset.origins || '').split(/\s+/).filter(Boolean).concat(location.origin);
const HMAC = app.dataset.hmac === '1';
const EMBEDDED = window.parent !== window;
const CHAT_KEY = `hotline-chat:${SITE}`;
const OUTBOX_KEY = `${CHAT_KEY}:outbox`;
const VISITOR_KEY = `${CHAT_KEY}:visitor`;
const PROFILE_KEY = `${CHAT_KEY}:profile`;

const $ = (id) => document.getElementById(id);
const ui = {
  subtitle: $('chat-subtitle'),
  endChat: $('end-chat'),
  minimise: $('minimise'),
  confirm: $('confirm-end'),
  confirmYes: $('confirm-end-yes'),
  confirmNo: $('confirm-end-no'),
  offline: $('offline'),
  announce: $('announce'),
  prechat: $('prechat'),
  prechatInner: $('prechat-inner'),
  greeting: $('greeting'),
  form: $('prechat-form'),
  name: $('pc-name'),
  nameVerified: $('pc-name-verified'),
  nameError: $('pc-name-error'),
  email: $('pc-email'),
  emailVerified: $('pc-email-verified'),
  emailError: $('pc-email-error'),
  queue: $('pc-queue'),
  firstMessage: $('pc-message'),
  prechatError: $('prechat-error'),
  start: $('prechat-submit'),
  chatView: $('chat-view'),
  queueStatus: $('queue-status'),
  log: $('log'),
  messages: $('messages'),
  pending: $('pending'),
  ended: $('ended'),
  endedAt: $('ended-at'),
  transcript: $('transcript-form'),
  transcriptEmail: $('tr-email'),
  transcriptSend: $('tr-send'),
  transcriptStatus: $('tr-status'),
  newChat: $('new-chat'),
  typing: $('typing'),
  composer: $('composer'),
  attached: $('attached'),
  composerError: $('composer-error'),
  composerStatus: $('composer-status'),
  message: $('message'),
  files: $('files'),
  send: $('send'),
};

// ---------------------------------------------------------------------------------------
// Storage: localStorage of the Hotline origin (partitioned per embedding site by the
// browser). Where it is refused, the page still works for as long as it is open.

const memory = new Map();
const store = {
  get(key) {
    if (memory.has(key)) return memory.get(key);
    try {
      const v = localStorage.getItem(key);
      return v === null ? null : JSON.parse(v);
    } catch (e) {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
      memory.delete(key);
      return true;
    } catch (e) {
      memory.set(key, value);
      return false;
    }
  },
  remove(key) {
    memory.delete(key);
    try {
      localStorage.removeItem(key);
    } catch (e) { /* nothing kept */ }
  },
};

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function visitorKey() {
  let k = store.get(VISITOR_KEY);
  if (typeof k !== 'string' || !/^[0-9a-f]{32}$/.test(k)) {
    k = randomHex(16);
    store.set(VISITOR_KEY, k);
  }
  return k;
}

// The chat in this browser: { token, seq, state, position, endedAt, ending, events[],
// pages[] (page views waiting for the socket), lastPage, email } or null.
let chat = null;
let saveTimer = null;

function saveChat() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (!chat) return;
  // Another tab of the same site may be further along in the same chat: keep its copy.
  const stored = store.get(CHAT_KEY);
  if (stored && stored.token === chat.token && stored.seq > chat.seq) return;
  if (!store.set(CHAT_KEY, chat) && chat.events.length > 50) {
    store.set(CHAT_KEY, { ...chat, events: chat.events.slice(-50) });
  }
}

// Events come in bursts after a reconnect: write once per burst. (What is written is
// always a seq with the events up to it, so a reload never skips anything.)
function saveSoon() {
  if (!saveTimer) saveTimer = setTimeout(saveChat, 100);
}

// The outbox: { token, frame, meta } items, read from storage each time (another tab of
// the site may have added or acked one).
const sent = new Outbox({ load: () => store.get(OUTBOX_KEY), store: (list) => store.set(OUTBOX_KEY, list) });

function outbox() {
  return chat ? sent.all().filter((x) => x.token === chat.token) : [];
}

function outboxRemove(clientId) {
  sent.take(clientId);
}

// ---------------------------------------------------------------------------------------
// The parent page (the widget): messages only from the site's allowed origins.

let parentOrigin = null;
let panelOpen = !EMBEDDED;
const UNREAD_KEY = `${CHAT_KEY}:unread`;
// Operator messages that came while the panel was closed (kept for this tab, so the
// badge survives the next page of the site).
let unread = (() => {
  try {
    return Number(sessionStorage.getItem(UNREAD_KEY)) || 0;
  } catch (e) {
    return 0;
  }
})();

function setUnread(n) {
  unread = n;
  try {
    sessionStorage.setItem(UNREAD_KEY, String(n));
  } catch (e) { /* kept in memory only */ }
  toParent({ type: 'hotline-unread', count: n });
}
let colour = DEFAULT_COLOUR;
let siteFields = null; // the site's window.hotlineChat, cleaned
let currentPage = null; // {url, title} of the page the widget is on
let helloDone = false;

function toParent(msg) {
  if (!EMBEDDED) return;
  if (parentOrigin) {
    window.parent.postMessage(msg, parentOrigin);
    return;
  }
  // Before the first hello the parent's origin is not known: a message addressed to an
  // origin that isn't the parent's is simply not delivered.
  for (const o of ORIGINS) {
    try {
      window.parent.postMessage(msg, o);
    } catch (e) { /* not an origin */ }
  }
}

function onParentMessage(e) {
  if (!EMBEDDED || e.source !== window.parent || !ORIGINS.includes(e.origin)) return;
  const m = e.data;
  if (!m || typeof m !== 'object') return;
  parentOrigin = e.origin;
  switch (m.type) {
    case 'hotline-hello':
      if (typeof m.open === 'boolean') setPanelOpen(m.open, false);
      if (!helloDone) {
        helloDone = true;
        takeFields(m.fields);
      }
      toParent({ type: 'hotline-colour', colour });
      toParent({ type: 'hotline-unread', count: unread });
      if (m.page && typeof m.page === 'object') pageView(m.page.url, m.page.title);
      sendResize();
      break;
    case 'hotline-page':
      pageView(m.url, m.title);
      break;
    case 'hotline-open':
      setPanelOpen(!!m.open, !!m.focus);
      break;
    default:
      break;
  }
}

function setPanelOpen(open, focus) {
  panelOpen = open;
  if (open) {
    if (unread) setUnread(0);
    sendResize();
    if (focus) focusStart();
  }
}

function focusStart() {
  if (!chat) {
    const first = [ui.name, ui.email].find((i) => !i.readOnly && !i.value) || ui.start;
    first.focus({ preventScroll: true });
  } else if (chat.state === 'ended') ui.endedAt.focus({ preventScroll: true });
  else ui.message.focus({ preventScroll: true });
}

// The panel's height: the form as tall as it is, a conversation tall.
function sendResize() {
  if (!EMBEDDED || !panelOpen) return;
  let height = 620;
  if (!chat) {
    const h = document.getElementById('chat-head').offsetHeight + ui.prechatInner.offsetHeight + 32;
    if (h < 100) return; // not laid out (the panel is hidden)
    height = Math.min(h, 620);
  }
  toParent({ type: 'hotline-resize', height });
}

function cleanFields(raw) {
  if (!raw || typeof raw !== 'object') return null;
  const out = {};
  let n = 0;
  for (const [k, v] of Object.entries(raw)) {
    if (n >= 30) break;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(k)) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue;
    out[k] = String(v).slice(0, 1000);
    n += 1;
  }
  return out;
}

// The site's fields fill the form; fields the site signed are locked.
function takeFields(raw) {
  siteFields = cleanFields(raw);
  if (!siteFields) return;
  const signed = HMAC && !!siteFields.signature;
  for (const [key, input, badge] of [['name', ui.name, ui.nameVerified], ['email', ui.email, ui.emailVerified]]) {
    const v = siteFields[key];
    if (!v) continue;
    if (signed) {
      input.value = v;
      lockInput(input, badge, true);
    } else if (!input.value) input.value = v;
  }
  if (!ui.transcriptEmail.value && siteFields.email) ui.transcriptEmail.value = siteFields.email;
}

function lockInput(input, badge, locked) {
  input.readOnly = locked;
  badge.hidden = !locked;
  const ids = new Set((input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
  if (locked) ids.add(badge.id);
  else ids.delete(badge.id);
  input.setAttribute('aria-describedby', [...ids].join(' '));
}

// A page of the site the visitor opened: to the operator while there is a chat.
function pageView(url, title) {
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return;
  const view = { url: url.slice(0, 2000), title: String(title || '').slice(0, 300) };
  currentPage = view;
  if (!chat || chat.state === 'ended' || chat.lastPage === view.url) return;
  chat.lastPage = view.url;
  if (!sendFrame({ t: 'page', url: view.url, title: view.title })) {
    chat.pages.push(view);
    if (chat.pages.length > 20) chat.pages.shift();
  }
  saveChat();
}

// ---------------------------------------------------------------------------------------
// Announcements for screen readers (new messages, the queue, the chat's state).

function announce(text) {
  const p = document.createElement('p');
  p.textContent = text;
  ui.announce.appendChild(p);
  while (ui.announce.childNodes.length > 5) ui.announce.firstChild.remove();
}

// ---------------------------------------------------------------------------------------
// Drawing the conversation.

const menus = new Map(); // options event seq → its buttons
const answers = new Map(); // options event seq → the choice made (sent or pending)
const pendingEls = new Map(); // client id → its bubble in #pending
const ackedSeqs = new Map(); // seq acked for a pending bubble → client id
const operators = []; // names of the operators in the chat, in joining order

function fileHref(id) {
  return `/chat/files/${encodeURIComponent(id)}?token=${encodeURIComponent(chat ? chat.token : '')}`;
}

function timeEl(at) {
  const t = document.createElement('time');
  if (Number.isFinite(at)) {
    t.dateTime = new Date(at).toISOString();
    t.textContent = formatTime(at);
  }
  return t;
}

function filesList(files) {
  const ul = document.createElement('ul');
  ul.className = 'msg-files';
  for (const f of files) {
    if (!f || typeof f !== 'object' || !f.id) continue;
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = fileHref(f.id);
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    const type = String(f.type || '');
    if (type.startsWith('image/') && type !== 'image/svg+xml') {
      const img = document.createElement('img');
      img.src = a.href;
      img.alt = ''; // the file's name follows in the same link
      img.loading = 'lazy';
      a.appendChild(img);
    }
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = String(f.name || 'file');
    a.appendChild(name);
    li.appendChild(a);
    if (Number.isFinite(f.size)) {
      const size = document.createElement('span');
      size.className = 'file-size';
      size.textContent = ` ${formatSize(f.size)}`;
      li.appendChild(size);
    }
    ul.appendChild(li);
  }
  return ul;
}

// A message bubble: `from` is 'visitor', 'operator' or 'system'.
function bubble({ from, name, text, files, at }) {
  const li = document.createElement('li');
  li.className = `msg msg-${from}`;
  const meta = document.createElement('p');
  meta.className = 'msg-meta';
  const who = document.createElement('span');
  who.className = 'msg-name';
  who.textContent = from === 'visitor' ? 'You' : (name || SITE_NAME);
  meta.append(who, ' ', timeEl(at));
  li.appendChild(meta);
  if (text) {
    const body = document.createElement('div');
    body.className = 'msg-text chat-text';
    body.appendChild(renderText(text));
    li.appendChild(body);
  }
  if (Array.isArray(files) && files.length) li.appendChild(filesList(files));
  return li;
}

function systemLine(text, at) {
  const li = document.createElement('li');
  li.className = 'msg msg-system';
  const p = document.createElement('p');
  p.className = 'chat-text';
  p.appendChild(renderText(text));
  if (Number.isFinite(at)) p.append(' ', timeEl(at));
  li.appendChild(p);
  return li;
}

function menuBubble(ev, data) {
  const prompt = typeof data.prompt === 'string' ? data.prompt : (ev.text || '');
  const choices = Array.isArray(data.choices) ? data.choices.filter((c) => typeof c === 'string') : [];
  const li = bubble({ from: 'operator', name: ev.name, text: prompt, at: ev.at });
  li.classList.add('msg-options');
  const group = document.createElement('div');
  group.className = 'choices';
  group.setAttribute('role', 'group');
  group.setAttribute('aria-label', prompt ? `Answers to: ${prompt}` : 'Answers');
  const buttons = choices.map((choice) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'choice';
    b.dataset.choice = choice;
    b.textContent = choice; // a button holds text only (no links inside a button)
    b.addEventListener('click', () => answer(ev.seq, choice));
    group.appendChild(b);
    return b;
  });
  li.appendChild(group);
  menus.set(ev.seq, buttons);
  if (answers.has(ev.seq)) lockMenu(ev.seq, answers.get(ev.seq));
  else if (chat && chat.state === 'ended') buttons.forEach((b) => { b.disabled = true; });
  return li;
}

function lockMenu(seq, choice) {
  answers.set(seq, choice);
  for (const b of menus.get(seq) || []) {
    b.disabled = true;
    if (b.dataset.choice === choice) {
      b.classList.add('chosen');
      b.setAttribute('aria-pressed', 'true');
    }
  }
}

function unlockMenu(seq) {
  answers.delete(seq);
  if (chat && chat.state === 'ended') return;
  for (const b of menus.get(seq) || []) {
    b.disabled = false;
    b.classList.remove('chosen');
    b.removeAttribute('aria-pressed');
  }
}

function endText(ev, data) {
  const at = formatTime(ev.at);
  const when = at ? ` at ${at}` : '';
  if (data.by === 'visitor') return `You ended the chat${when}.`;
  if (data.by === 'operator' && ev.name) return `${ev.name} ended the chat${when}.`;
  return `The chat ended${when}.`;
}

// One event into the list. Returns what to announce (for live events).
function drawEvent(ev) {
  const data = ev.data && typeof ev.data === 'object' ? ev.data : {};
  const from = ev.from === 'visitor' || ev.from === 'operator' ? ev.from : 'system';
  const name = typeof ev.name === 'string' && ev.name ? ev.name : '';
  let li = null;
  let say = null;
  switch (ev.kind) {
    case 'message':
    case 'attachment':
    case 'greeting': {
      const files = Array.isArray(data.files) ? data.files : [];
      const text = typeof ev.text === 'string' ? ev.text : '';
      if (!text && !files.length) break;
      if (ev.kind === 'greeting') li = bubble({ from: 'operator', name: name || SITE_NAME, text, at: ev.at });
      else if (from === 'system') li = systemLine(text, ev.at);
      else li = bubble({ from, name, text, files, at: ev.at });
      if (from !== 'visitor') {
        const fileNote = files.length ? ` (${files.length} file${files.length > 1 ? 's' : ''})` : '';
        say = `${name || SITE_NAME}: ${text.slice(0, 300)}${fileNote}`;
      }
      break;
    }
    case 'options':
      li = menuBubble(ev, data);
      say = `${name || SITE_NAME} asks you to choose: ${(data.prompt || ev.text || '').slice(0, 200)}`;
      break;
    case 'answer': {
      const choice = typeof data.choice === 'string' ? data.choice : (ev.text || '');
      li = bubble({ from: 'visitor', text: choice, at: ev.at });
      if (Number.isInteger(data.menu_seq)) lockMenu(data.menu_seq, choice);
      break;
    }
    case 'join':
      if (name && !operators.includes(name)) operators.push(name);
      say = `${name || 'An operator'} joined the chat.`;
      li = systemLine(say, ev.at);
      break;
    case 'leave': {
      const i = operators.indexOf(name);
      if (i >= 0) operators.splice(i, 1);
      say = `${name || 'An operator'} left the chat.`;
      li = systemLine(say, ev.at);
      break;
    }
    case 'end':
      li = systemLine(endText(ev, data), null);
      break;
    case 'transfer':
      say = 'You are being passed on to a colleague. Please wait a moment.';
      li = systemLine(say, ev.at);
      break;
    case 'invite':
      break;
    default:
      if (typeof ev.text === 'string' && ev.text) li = systemLine(ev.text, ev.at);
      break;
  }
  if (li) {
    li.dataset.seq = String(ev.seq);
    ui.messages.appendChild(li);
  }
  return say;
}

function drawPending(item) {
  const { frame, meta } = item;
  let li;
  if (frame.t === 'answer') {
    li = bubble({ from: 'visitor', text: frame.choice, at: meta && meta.at });
    lockMenu(frame.menu_seq, frame.choice);
  } else {
    li = bubble({ from: 'visitor', text: frame.text, files: meta && meta.files, at: meta && meta.at });
  }
  li.classList.add('msg-pending');
  const status = document.createElement('p');
  status.className = 'msg-status';
  status.textContent = 'Sending…';
  li.appendChild(status);
  pendingEls.set(frame.client_id, li);
  ui.pending.appendChild(li);
}

function pendingDone(clientId) {
  const li = pendingEls.get(clientId);
  if (li) li.remove();
  pendingEls.delete(clientId);
}

function pendingFailed(clientId, why) {
  const li = pendingEls.get(clientId);
  if (!li) return;
  li.classList.add('msg-failed');
  li.querySelector('.msg-status').textContent = `Not delivered: ${why}`;
}

function nearBottom() {
  return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 80;
}

function scrollToEnd() {
  ui.log.scrollTop = ui.log.scrollHeight;
}

function clearConversation() {
  ui.messages.replaceChildren();
  ui.pending.replaceChildren();
  menus.clear();
  answers.clear();
  pendingEls.clear();
  ackedSeqs.clear();
  operators.length = 0;
  hideTyping();
}

// ---------------------------------------------------------------------------------------
// The chat's state and what the page shows for it.

function stateText() {
  if (!chat) return '';
  switch (chat.state) {
    case 'waiting':
    case 'offered':
      return Number.isInteger(chat.position) && chat.position > 0
        ? `You are number ${chat.position} in the queue.`
        : 'Waiting for an operator to answer…';
    case 'active':
      return operators.length ? `You are chatting with ${operators.join(', ')}.` : 'You are chatting with us.';
    case 'ended':
      return ui.endedAt.textContent;
    default:
      return '';
  }
}

function showView() {
  const state = chat ? chat.state : null;
  ui.prechat.hidden = !!chat;
  ui.chatView.hidden = !chat;
  ui.endChat.hidden = !chat || state === 'ended' || chat.ending;
  ui.composer.hidden = !chat || state === 'ended';
  ui.ended.hidden = state !== 'ended';
  if (!chat || state === 'ended') ui.confirm.hidden = true;
  const waiting = state === 'waiting' || state === 'offered';
  ui.queueStatus.hidden = !waiting;
  if (waiting) ui.queueStatus.textContent = `${stateText()} You can already write your question below.`;
  if (state === 'ended') {
    const at = formatTime(chat.endedAt);
    ui.endedAt.textContent = at ? `The chat ended at ${at}.` : 'The chat has ended.';
    hideTyping();
    for (const buttons of menus.values()) buttons.forEach((b) => { b.disabled = true; });
    if (!ui.transcriptEmail.value) ui.transcriptEmail.value = chat.email || '';
  }
  ui.subtitle.textContent = !chat ? 'We are here to help'
    : waiting ? 'Waiting for an operator'
    : state === 'active' ? (operators.length ? `Chatting with ${operators.join(', ')}` : 'Connected')
    : 'Chat ended';
  if (!chat || state === 'ended') markOnline();
  sendResize();
}

function applyState(state, position) {
  if (!chat || !STATES.has(state)) return;
  if (chat.state === 'ended' && state !== 'ended') return; // an ended chat stays ended
  const pos = Number.isInteger(position) ? position : null;
  const changed = state !== chat.state || pos !== chat.position;
  const wasEnded = chat.state === 'ended';
  chat.state = state;
  chat.position = pos;
  if (state === 'ended' && !wasEnded) {
    chat.ending = false;
    if (!chat.endedAt) chat.endedAt = Date.now();
    // What wasn't stored before the end never will be.
    for (const item of outbox()) {
      pendingFailed(item.frame.client_id, 'the chat had ended');
      outboxRemove(item.frame.client_id);
    }
    const hadFocus = ui.composer.contains(document.activeElement) || ui.chatView.contains(document.activeElement);
    saveChat();
    showView();
    if (hadFocus) ui.endedAt.focus({ preventScroll: true });
    scrollToEnd();
    // The server closes the socket when it is done; it isn't opened again.
  } else {
    saveChat();
    showView();
  }
  if (changed) announce(stateText());
}

// A new event from the socket.
function acceptEvent(ev) {
  const seq = chat ? newSeq(ev.seq, chat.seq) : null;
  if (seq === null) return; // seen already
  const stick = nearBottom();
  chat.seq = seq;
  const kept = { seq, kind: ev.kind, from: ev.from, name: ev.name, text: ev.text, data: ev.data, at: ev.at };
  chat.events.push(kept);
  if (chat.events.length > KEEP_EVENTS) chat.events.splice(0, chat.events.length - KEEP_EVENTS);
  if (ev.from === 'visitor') {
    // Our own message came back stored: its "Sending…" copy goes.
    const cid = typeof ev.client_id === 'string' ? ev.client_id : ackedSeqs.get(ev.seq);
    if (cid) {
      pendingDone(cid);
      outboxRemove(cid);
    }
    ackedSeqs.delete(ev.seq);
  }
  const say = drawEvent(kept);
  if (ev.from === 'operator') {
    if (ev.kind === 'message' || ev.kind === 'attachment' || ev.kind === 'options') hideTyping(ev.name);
    if (!panelOpen && (ev.kind === 'message' || ev.kind === 'attachment' || ev.kind === 'options')) {
      setUnread(unread + 1);
    }
  }
  if (say) announce(say);
  if (ev.kind === 'end') {
    chat.endedAt = Number.isFinite(ev.at) ? ev.at : Date.now();
    applyState('ended');
  } else if (ev.kind === 'join' || ev.kind === 'leave') {
    showView();
  }
  saveSoon();
  if (stick || ev.from === 'visitor') scrollToEnd();
}

function onAck(m) {
  if (typeof m.client_id !== 'string') return;
  outboxRemove(m.client_id);
  if (!pendingEls.has(m.client_id)) return;
  if (!Number.isInteger(m.seq) || (chat && m.seq <= chat.seq)) {
    // The event is here already (or the server says no more).
    pendingDone(m.client_id);
    return;
  }
  // Stored; the event itself follows on the socket and replaces this copy.
  ackedSeqs.set(m.seq, m.client_id);
  const li = pendingEls.get(m.client_id);
  li.classList.remove('msg-failed');
  li.querySelector('.msg-status').textContent = 'Sent';
}

function onError(m) {
  const message = typeof m.message === 'string' && m.message ? m.message : 'Something went wrong.';
  if (typeof m.client_id === 'string') {
    // The server refused this send for good: don't send it again.
    const item = sent.take(m.client_id);
    pendingFailed(m.client_id, message);
    if (item && item.frame.t === 'answer') unlockMenu(item.frame.menu_seq);
    return;
  }
  showComposerError(message);
}

let typingTimer = null;
let typingName = '';

function showTyping(name) {
  if (!chat || chat.state === 'ended') return;
  typingName = typeof name === 'string' ? name : '';
  ui.typing.textContent = `${typingName || 'The operator'} is typing…`;
  ui.typing.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(hideTyping, TYPING_MS);
}

function hideTyping(name) {
  if (name !== undefined && typingName && name !== typingName) return;
  clearTimeout(typingTimer);
  ui.typing.hidden = true;
  ui.typing.textContent = '';
}

// ---------------------------------------------------------------------------------------
// The socket: /chat/ws?token=T&after=SEQ, reconnecting with backoff (0.5 s … 5 s).

let offlineTimer = null;

const link = openLink({
  url: () => `/chat/ws?token=${encodeURIComponent(chat.token)}&after=${chat.seq}`,
  backoff: { first: 500, max: 5000, jitter: 0.15 },
  resetOn: 'frame',
  onConnecting: () => markOfflineSoon(),
  onOpen: () => {
    markOnline();
    flush();
  },
  onFrame: (m) => {
    switch (m.t) {
      case 'event': acceptEvent(m); break;
      case 'state': applyState(m.state, m.position); break;
      case 'typing': showTyping(m.name); break;
      case 'ack': onAck(m); break;
      case 'error': onError(m); break;
      default: break;
    }
  },
  onClose: (e) => {
    if (GONE_CODES.has(e.code)) {
      forgetChat('Your earlier chat is no longer available. You can start a new one here.');
      return false;
    }
    if (!chat || chat.state === 'ended') return false;
    markOfflineSoon();
    return true;
  },
});

function sendFrame(frame) {
  return link.send(frame);
}

function connect() {
  if (!chat || chat.state === 'ended') return;
  link.connect();
}

function closeSocket() {
  link.close();
}

// After (re)connecting: whatever waited for the socket, in the order it was made.
function flush() {
  if (!chat || chat.state === 'ended') return;
  for (const item of outbox()) sendFrame(item.frame);
  if (chat.ending) sendFrame({ t: 'end' });
  if (chat.pages.length) {
    for (const p of chat.pages.splice(0)) sendFrame({ t: 'page', url: p.url, title: p.title });
    saveChat();
  }
  draftSent = '';
  if (ui.message.value) scheduleDraft();
}

function markOfflineSoon() {
  if (offlineTimer || !ui.offline.hidden) return;
  const wait = navigator.onLine === false ? 0 : OFFLINE_GRACE_MS;
  offlineTimer = setTimeout(() => {
    offlineTimer = null;
    if (!link.isOpen() && chat && chat.state !== 'ended') ui.offline.hidden = false;
  }, wait);
}

function markOnline() {
  clearTimeout(offlineTimer);
  offlineTimer = null;
  ui.offline.hidden = true;
}

// ---------------------------------------------------------------------------------------
// Sending.

let draftTimer = null;
let draftAt = 0;
let draftSent = '';

// The operator sees what the visitor is typing, at most twice a second; "" = stopped.
function scheduleDraft() {
  if (draftTimer) return;
  draftTimer = setTimeout(() => {
    draftTimer = null;
    const text = ui.message.value.slice(0, MAX_TEXT);
    if (text === draftSent || !chat || chat.state === 'ended') return;
    if (sendFrame({ t: 'draft', text })) {
      draftSent = text;
      draftAt = Date.now();
    }
  }, Math.max(0, draftAt + DRAFT_GAP_MS - Date.now()));
}

function queueFrame(frame, meta) {
  const item = sent.add({ token: chat.token, frame, meta: { ...meta, at: Date.now() } });
  drawPending(item);
  scrollToEnd();
  sendFrame(frame);
}

function answer(menuSeq, choice) {
  if (!chat || chat.state === 'ended' || answers.has(menuSeq)) return;
  queueFrame({ t: 'answer', client_id: newClientId(), menu_seq: menuSeq, choice }, {});
}

function showComposerError(text) {
  ui.composerError.textContent = text;
  ui.composerError.hidden = !text;
}

let attachedFiles = [];
let uploading = false;

function addFiles(list) {
  const problems = [];
  for (const f of list) {
    if (attachedFiles.length >= MAX_FILES) {
      problems.push(`“${f.name}” was not added: one message can carry at most ${MAX_FILES} files.`);
    } else if (f.size > MAX_FILE_BYTES) {
      problems.push(`“${f.name}” is ${formatSize(f.size)}; files can be at most 20 MB.`);
    } else if (f.size === 0) {
      problems.push(`“${f.name}” is empty.`);
    } else {
      attachedFiles.push(f);
    }
  }
  showComposerError(problems.join(' '));
  drawAttached();
}

function drawAttached() {
  ui.attached.replaceChildren();
  attachedFiles.forEach((f, i) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = f.name;
    const size = document.createElement('span');
    size.className = 'file-size';
    size.textContent = formatSize(f.size);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'remove-file';
    remove.setAttribute('aria-label', `Remove ${f.name}`);
    remove.textContent = '×';
    remove.addEventListener('click', () => {
      attachedFiles.splice(i, 1);
      drawAttached();
      showComposerError('');
      ui.message.focus();
    });
    li.append(name, ' ', size, ' ', remove);
    ui.attached.appendChild(li);
  });
  ui.attached.hidden = attachedFiles.length === 0;
}

// POST /chat/files?token=T, one "file" part per file → {files: [{id, name, type, size}]}.
async function upload(files) {
  const body = new FormData();
  for (const f of files) body.append('file', f, f.name);
  const res = await request('POST', `/chat/files?token=${encodeURIComponent(chat.token)}`, body, {
    onProgress: (loaded, total) => {
      ui.composerStatus.textContent = `Uploading… ${Math.floor((loaded / total) * 100)} %`;
    },
  });
  if (res.ok && Array.isArray(res.body.files)) return res.body.files;
  // The server's own words first (a file too large, the chat's quota, too many uploads).
  if (res.serverError) throw new Error(res.serverError);
  if (res.status === 0) throw new Error('The files could not be sent: no connection. Try again in a moment.');
  if (res.status === 413) throw new Error('The files are too large to send.');
  if (res.status === 429) throw new Error('Too many uploads right now. Please try again in a minute.');
  throw new Error(`The files could not be sent (${res.status}).`);
}

async function submitMessage() {
  if (!chat || chat.state === 'ended' || uploading) return;
  const text = ui.message.value.trim();
  if (!text && !attachedFiles.length) return;
  if (text.length > MAX_TEXT) {
    showComposerError(`The message is too long: at most ${MAX_TEXT} characters.`);
    return;
  }
  showComposerError('');
  let files = [];
  if (attachedFiles.length) {
    uploading = true;
    ui.send.disabled = true;
    ui.files.disabled = true;
    ui.composerStatus.textContent = 'Uploading…';
    try {
      files = await upload(attachedFiles);
    } catch (e) {
      showComposerError(e.message);
      return;
    } finally {
      uploading = false;
      ui.send.disabled = false;
      ui.files.disabled = false;
      ui.composerStatus.textContent = '';
    }
    if (!chat || chat.state === 'ended') return;
  }
  queueFrame(
    { t: 'send', client_id: newClientId(), text, files: files.map((f) => f.id) },
    { files },
  );
  ui.message.value = '';
  attachedFiles = [];
  drawAttached();
  grow();
  scheduleDraft(); // the input is empty now: tells the operator the draft is gone
}

function grow() {
  ui.message.style.height = 'auto';
  ui.message.style.height = `${Math.min(ui.message.scrollHeight, 160)}px`;
}

// ---------------------------------------------------------------------------------------
// Starting, ending, starting again.

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function fieldError(input, errorEl, text) {
  errorEl.textContent = text;
  errorEl.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

async function startChat() {
  const name = ui.name.value.trim();
  const email = ui.email.value.trim();
  const first = ui.firstMessage.value.trim();
  fieldError(ui.name, ui.nameError, name ? '' : 'Please write your name.');
  fieldError(ui.email, ui.emailError, !email || EMAIL.test(email) ? '' : 'This doesn\'t look like an e-mail address (like name@example.com).');
  ui.prechatError.hidden = true;
  const invalid = [ui.name, ui.email].find((i) => i.getAttribute('aria-invalid') === 'true');
  if (invalid) {
    invalid.focus();
    sendResize();
    return;
  }
  const fields = siteFields ? { ...siteFields } : null;
  let signature = null;
  if (fields) {
    signature = fields.signature || null;
    delete fields.signature;
  }
  ui.start.disabled = true;
  ui.start.textContent = 'Starting…';
  try {
    const res = await request('POST', '/chat/start', {
      site: SITE,
      // A signed-in customer's site names the visitor key it signed for.
      visitor_key: (fields && typeof fields.visitor_key === 'string' && fields.visitor_key) || visitorKey(),
      name,
      email,
      queue: ui.queue ? ui.queue.value : null,
      fields,
      signature,
      page_url: currentPage ? currentPage.url : null,
      page_title: currentPage ? currentPage.title : null,
    });
    // Not reached at all: the catch below says so.
    if (res.status === 0) throw new Error(res.error);
    const json = res.body;
    if (!res.ok || typeof json.token !== 'string') {
      const why = res.serverError || `The chat could not be started (${res.status}).`;
      // A signature the server refused: the visitor may still chat, just unverified.
      if (res.status === 400 && signature) {
        siteFields = fields;
        lockInput(ui.name, ui.nameVerified, false);
        lockInput(ui.email, ui.emailVerified, false);
      }
      const err = new Error(why);
      err.fromServer = true;
      throw err;
    }
    store.set(PROFILE_KEY, { name, email });
    store.remove(OUTBOX_KEY);
    const state = json.chat && STATES.has(json.chat.state) ? json.chat.state : 'waiting';
    chat = {
      token: json.token,
      seq: 0,
      state,
      position: null,
      endedAt: null,
      ending: false,
      events: [],
      pages: [],
      lastPage: currentPage ? currentPage.url : null, // went with /chat/start
      email,
    };
    clearConversation();
    saveChat();
    ui.firstMessage.value = '';
    showView();
    announce(stateText());
    if (first) queueFrame({ t: 'send', client_id: newClientId(), text: first.slice(0, MAX_TEXT), files: [] }, { files: [] });
    connect();
    ui.message.focus();
  } catch (e) {
    ui.prechatError.textContent = e && e.fromServer
      ? e.message
      : 'The chat could not be reached. Check your connection and try again.';
    ui.prechatError.hidden = false;
    sendResize();
  } finally {
    ui.start.disabled = false;
    ui.start.textContent = 'Start the chat';
  }
}

function endChat() {
  if (!chat || chat.state === 'ended') return;
  chat.ending = true;
  saveChat();
  ui.confirm.hidden = true;
  ui.endChat.hidden = true;
  ui.queueStatus.hidden = true;
  sendFrame({ t: 'end' }); // or after the reconnect (flush)
  announce('Ending the chat…');
  ui.message.focus();
}

// Back to the form: after "Start a new chat", or when the server no longer knows the chat.
function forgetChat(message) {
  closeSocket();
  chat = null;
  store.remove(CHAT_KEY);
  store.remove(OUTBOX_KEY);
  clearConversation();
  attachedFiles = [];
  drawAttached();
  showComposerError('');
  ui.message.value = '';
  ui.transcriptStatus.textContent = '';
  if (unread) setUnread(0);
  prefillProfile();
  ui.prechatError.textContent = message || '';
  ui.prechatError.hidden = !message;
  showView();
}

function prefillProfile() {
  const p = store.get(PROFILE_KEY);
  if (!p || typeof p !== 'object') return;
  if (!ui.name.value && typeof p.name === 'string') ui.name.value = p.name;
  if (!ui.email.value && typeof p.email === 'string') ui.email.value = p.email;
}

async function sendTranscript() {
  const email = ui.transcriptEmail.value.trim();
  if (!EMAIL.test(email)) {
    ui.transcriptEmail.setAttribute('aria-invalid', 'true');
    ui.transcriptStatus.textContent = 'Please write an e-mail address, like name@example.com.';
    ui.transcriptEmail.focus();
    return;
  }
  ui.transcriptEmail.removeAttribute('aria-invalid');
  ui.transcriptSend.disabled = true;
  ui.transcriptStatus.textContent = 'Sending…';
  const res = await request('POST', `/chat/transcript?token=${encodeURIComponent(chat.token)}`, { email });
  if (res.ok) {
    ui.transcriptStatus.textContent = `The transcript is on its way to ${email}.`;
  } else if (res.status === 0) {
    ui.transcriptStatus.textContent = 'The transcript could not be sent: no connection. Try again in a moment.';
  } else {
    ui.transcriptStatus.textContent = res.serverError || `The transcript could not be sent (${res.status}).`;
  }
  ui.transcriptSend.disabled = false;
}

// ---------------------------------------------------------------------------------------
// Starting up: the stored chat (drawn from storage, then the socket for what came after)
// or the form.

function loadChat(rec) {
  if (!rec || typeof rec !== 'object' || typeof rec.token !== 'string' || !rec.token) return null;
  return {
    token: rec.token,
    seq: Number.isInteger(rec.seq) ? rec.seq : 0,
    state: STATES.has(rec.state) ? rec.state : 'waiting',
    position: Number.isInteger(rec.position) ? rec.position : null,
    endedAt: Number.isFinite(rec.endedAt) ? rec.endedAt : null,
    ending: !!rec.ending,
    events: Array.isArray(rec.events) ? rec.events.filter((e) => e && Number.isInteger(e.seq)) : [],
    pages: Array.isArray(rec.pages) ? rec.pages : [],
    lastPage: typeof rec.lastPage === 'string' ? rec.lastPage : null,
    email: typeof rec.email === 'string' ? rec.email : '',
  };
}

function boot(rec) {
  closeSocket();
  clearConversation();
  chat = loadChat(rec);
  if (!chat) {
    prefillProfile();
    showView();
    return;
  }
  for (const ev of chat.events) drawEvent(ev);
  if (chat.state !== 'ended') for (const item of outbox()) drawPending(item);
  showView();
  scrollToEnd();
  connect();
}

function applyColour(c) {
  if (typeof c !== 'string' || !/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(c)) c = DEFAULT_COLOUR;
  colour = c;
  let h = c.slice(1);
  if (h.length === 3) h = h.replace(/./g, (x) => x + x);
  const lin = (i) => {
    const v = parseInt(h.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * lin(0) + 0.7152 * lin(2) + 0.0722 * lin(4);
  document.documentElement.style.setProperty('--brand', c);
  document.documentElement.style.setProperty('--brand-text', 1.05 / (l + 0.05) >= 4.5 ? '#fff' : '#111');
}

applyColour(app.dataset.colour);
document.body.classList.toggle('embedded', EMBEDDED);
ui.minimise.hidden = !EMBEDDED;
// The site's greeting may use the chat's formatting too.
ui.greeting.replaceChildren(renderText(ui.greeting.textContent.trim()));
ui.greeting.hidden = !ui.greeting.textContent;

window.addEventListener('message', onParentMessage);
window.addEventListener('storage', (e) => {
  // Another tab of the same site started, ended or forgot the chat: follow it.
  if (e.key !== CHAT_KEY) return;
  const rec = loadChat(store.get(CHAT_KEY));
  if (!rec) {
    if (chat) forgetChat('');
  } else if (!chat || rec.token !== chat.token) {
    boot(rec);
  }
});
window.addEventListener('online', () => {
  if (chat && chat.state !== 'ended') link.reconnectNow();
});
window.addEventListener('offline', () => markOfflineSoon());
window.addEventListener('pagehide', () => { if (saveTimer) saveChat(); });
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden' && saveTimer) saveChat();
});
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  if (!ui.confirm.hidden) {
    ui.confirm.hidden = true;
    ui.endChat.focus();
  } else if (EMBEDDED) toParent({ type: 'hotline-close' });
});

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!ui.start.disabled) startChat();
});
for (const [input, errorEl] of [[ui.name, ui.nameError], [ui.email, ui.emailError]]) {
  input.addEventListener('input', () => {
    if (input.getAttribute('aria-invalid')) fieldError(input, errorEl, '');
  });
}

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  submitMessage();
});
ui.message.addEventListener('keydown', (e) => {
  // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    submitMessage();
  }
});
ui.message.addEventListener('input', () => {
  grow();
  scheduleDraft();
});
ui.files.addEventListener('change', () => {
  addFiles(Array.from(ui.files.files || []));
  ui.files.value = ''; // the same file can be chosen again
});
ui.message.addEventListener('paste', (e) => {
  const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
  if (files.length) {
    e.preventDefault();
    addFiles(files);
  }
});
ui.chatView.addEventListener('dragover', (e) => {
  if (chat && chat.state !== 'ended' && e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files')) e.preventDefault();
});
ui.chatView.addEventListener('drop', (e) => {
  if (!chat || chat.state === 'ended' || !e.dataTransfer || !e.dataTransfer.files.length) return;
  e.preventDefault();
  addFiles(Array.from(e.dataTransfer.files));
});

ui.endChat.addEventListener('click', () => {
  ui.confirm.hidden = false;
  ui.confirmYes.focus();
});
ui.confirmYes.addEventListener('click', endChat);
ui.confirmNo.addEventListener('click', () => {
  ui.confirm.hidden = true;
  ui.endChat.focus();
});
ui.minimise.addEventListener('click', () => toParent({ type: 'hotline-close' }));
ui.transcript.addEventListener('submit', (e) => {
  e.preventDefault();
  if (chat && !ui.transcriptSend.disabled) sendTranscript();
});
ui.newChat.addEventListener('click', () => {
  forgetChat('');
  ui.name.focus();
});

boot(store.get(CHAT_KEY));
// The widget waits for this (or the iframe's load) before it says hello.
toParent({ type: 'hotline-colour', colour });
toParent({ type: 'hotline-ready' });
