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
//
// The parts, one module each (no build step: the browser loads them as ES modules):
// -base (shared state, saving), -link (socket, outbox, frames), -tabs, -offers,
// -conversation (chats and their events), -composer (and option menus), -details,
// -dialogs, -canned, -transfer (invites and transfers), -wrapup (ending, wrap-up).

import {
  chats, closed, CLOSERS, loadSaved, MESSAGES, order, outbox, saveNow, SETTLE_MS,
} from '/assets/chat-operator-base.js';
import { dialogs, open } from '/assets/chat-operator-dialogs.js';
import { socket, takeOutbox, tickReconnect } from '/assets/chat-operator-link.js';
import { currentChat, select, step, updateChrome } from '/assets/chat-operator-tabs.js';
import { tickOffers } from '/assets/chat-operator-offers.js';
import { closeChat, createChat, renderTabLabel } from '/assets/chat-operator-conversation.js';
import { formSaved } from '/assets/chat-operator-details.js';
import { openCanned } from '/assets/chat-operator-canned.js';
import { openInvite, openTransfer } from '/assets/chat-operator-transfer.js';
import { openEnd } from '/assets/chat-operator-wrapup.js';
import '/assets/chat-operator-composer.js';

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
  outbox.store(Array.isArray(saved.outbox) ? saved.outbox.filter((e) => e && e.frame && e.client_id) : []);
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
