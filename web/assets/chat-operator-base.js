// The operator's chat window (chat-operator.js), what its parts share: the page's
// settings and elements, small helpers, the chats, offers and invites this tab holds, the
// outbox, and saving them in sessionStorage for a reload.

import { formatTime } from '/assets/chat-format.js';
import { Outbox } from '/assets/chat-link.js';

const root = document.getElementById('chat-console');
export const me = { name: root.dataset.user || '', display: root.dataset.userDisplay || '' };
export const capacity = Number(root.dataset.capacity) || 0;

export const MAX_FILES = 5;
export const MAX_FILE_BYTES = 20 * 1024 * 1024;
export const MAX_TEXT = 4000;
export const MAX_CHOICES = 10;
export const MIN_CHOICES = 2;
export const MAX_CHOICE_CHARS = 100;
export const TYPING_EVERY_MS = 2000;
export const OTHER_TYPING_MS = 3000;
const STORE_KEY = 'hotline.chat.console.v1';
export const EVENTS_KEPT = 500;
// Frames that take the operator out of the chat: the tab closes once the server acks them.
export const CLOSERS = new Set(['wrapup', 'leave', 'transfer']);
// Frames that are conversation: shown as "sending…" and retried until acked, however long.
export const MESSAGES = new Set(['send', 'options']);
// Any other frame is retried on this many connections at most.
export const CONTROL_TRIES = 3;
// A control frame (anything but a message) the server neither acked nor refused in this
// long, sent on an open socket, is taken as done (a closing one then closes its tab).
export const SETTLE_MS = 6000;
export const FIELDS = [['name', 'Name'], ['email', 'E-mail'], ['phone', 'Phone'], ['customer_id', 'Customer ID']];
export const EMOJI = ['🙂', '😀', '😉', '😊', '😅', '🙁', '😮', '👍', '👎', '👋', '🙏', '👌',
  '✅', '❌', '❗', '❓', '⭐', '❤️', '🎉', '☕', '📞', '📧', '📄', '⏳'];

export const tabsEl = document.getElementById('chat-tabs');
export const panesEl = document.getElementById('chat-panes');
export const emptyEl = document.getElementById('chat-empty');
export const connectionEl = document.getElementById('chat-connection');
export const loadEl = document.getElementById('chat-load');
const globalError = document.getElementById('chat-global-error');
export const invitesEl = document.getElementById('chat-invites');
export const baseTitle = document.title;

// ---------------------------------------------------------------- small helpers

export function el(tag, props = {}, ...children) {
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

export function button(text, props = {}) {
  return el('button', { type: 'button', ...props }, text);
}

export function time(ms) {
  if (ms == null || ms === '') return '';
  try { return formatTime(Number(ms)); } catch { return ''; }
}

export function dateTime(ms) {
  if (ms == null || ms === '') return '';
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

export function timeEl(ms) {
  const text = time(ms);
  if (!text) return '';
  const d = new Date(Number(ms));
  return el('time', { datetime: Number.isNaN(d.getTime()) ? null : d.toISOString(), title: dateTime(ms) }, text);
}

export function size(bytes) {
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

export function link(url, text) {
  const href = safeUrl(url);
  if (!href) return el('span', { text: text || url || '' });
  return el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text || url);
}

export function isRealText(v) { return v != null && String(v).trim() !== ''; }

export function participantName(p) {
  if (p == null) return '';
  if (typeof p === 'string') return p;
  return p.display_name || p.name || p.user || '';
}

export function visitorName(view) {
  return (view && view.visitor && view.visitor.name) || 'Visitor';
}

export function queueLabel(q) { return q ? String(q) : '—'; }

export function verifiedList(view) {
  const v = view && view.visitor && view.visitor.verified;
  return Array.isArray(v) ? v.map(String) : [];
}

export function fieldLabel(name) {
  const f = FIELDS.find(([n]) => n === name);
  return f ? f[1] : String(name).replace(/_/g, ' ');
}

let globalErrorTimer = null;
export function showGlobalError(text) {
  globalError.textContent = text;
  globalError.hidden = !text;
  clearTimeout(globalErrorTimer);
  if (text) globalErrorTimer = setTimeout(() => { globalError.hidden = true; }, 20000);
}

// ---------------------------------------------------------------- state

/** chat id → chat: { id, view, lastSeq, events[], pane, tab, …ui } */
export const chats = new Map();
/** chat id → offer: { id, view, expiresAt, pane, tab, expiredAt } */
export const offers = new Map();
/** invite id → { invite, li } */
export const invites = new Map();
/** Events that came before their chat's `chat` frame. */
export const early = new Map();
/** Chats this tab closed (wrapped up, left, transferred): their `chat` frames are ignored
 * unless the operator accepts an offer or invite to them again. */
export const closed = new Set();
/** Chats the operator just accepted (offer or invite): their tab is selected on arrival. */
export const accepting = new Set();
/** [{ client_id, frame, tries, sentAt, fileInfo }], saved with the chats (saveNow). */
let outboxList = [];
export const outbox = new Outbox({ load: () => outboxList, store: (list) => { outboxList = list; save(); } });
/** Tab order: keys 'chat:12' / 'offer:12'. */
export const order = [];
/** The selected tab's key (the tabs module sets it). */
export const current = { key: null };

export const tabKey = (kind, id) => `${kind}:${id}`;

// ---------------------------------------------------------------- persistence

export function loadSaved() {
  try { return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {}; } catch { return {}; }
}

let saveTimer = null;
export function save() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveNow, 150);
}

export function saveNow() {
  clearTimeout(saveTimer);
  const data = { resume: {}, views: {}, events: {}, outbox: outboxList, closed: [...closed].slice(-200), current: current.key };
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
