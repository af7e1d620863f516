// The operator's chat window: its socket (chat-link.js) with the `hello` that resumes each
// chat after its last seq, the outbox sent until acked, and the frames from the server.

import { newClientId, openLink, Outbox } from '/assets/chat-link.js';
import {
  accepting, chats, CLOSERS, connectionEl, CONTROL_TRIES, MESSAGES, offers, outbox, save,
  saveNow, showGlobalError,
} from '/assets/chat-operator-base.js';
import { onOffer, removeOffer } from '/assets/chat-operator-offers.js';
import {
  closeChat, onChatView, onDraft, onEvent, onTyping, pendingFailed, pendingSent, renderHead,
  showChatError, showPending,
} from '/assets/chat-operator-conversation.js';
import { formSaved } from '/assets/chat-operator-details.js';
import {
  inviteDialogError, onInvite, removeInvite, renderInvitePending,
} from '/assets/chat-operator-transfer.js';

// ---------------------------------------------------------------- the socket

function setConnection(text) {
  const waiting = outbox.all().filter((e) => MESSAGES.has(e.frame.t)).length;
  connectionEl.textContent = waiting ? `${text} ${waiting} message${waiting === 1 ? '' : 's'} waiting to be sent.` : text;
  connectionEl.classList.toggle('bad', !socket.isOpen());
}

export const socket = openLink({
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

export function tickReconnect() {
  const at = socket.retryAt();
  if (socket.isOpen() || !at) return;
  const secs = Math.max(0, Math.ceil((at - Date.now()) / 1000));
  setConnection(secs > 0
    ? `The connection was lost; trying again in ${secs} s. (If this lasts, reload the page: you may have been logged out.)`
    : 'Connecting…');
}

export function rawSend(frame) {
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
export function enqueue(frame, fileInfo = null) {
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

export function takeOutbox(clientId) {
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
