// The operator's chat window: the dialogs (opening one closes any other; closing gives
// the focus back to the chat's input).

import { chats } from '/assets/chat-operator-base.js';
import { currentChat } from '/assets/chat-operator-tabs.js';

// ---------------------------------------------------------------- dialogs

export const dialogs = {
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

export function open(d, c) {
  for (const other of document.querySelectorAll('dialog[open]')) if (other !== d) other.close();
  d.dataset.chat = c ? String(c.id) : '';
  if (!d.open) d.showModal();
}

export function dialogChat(d) {
  return chats.get(Number(d.dataset.chat)) ?? null;
}

document.getElementById('chat-shortcuts-open').addEventListener('click', () => open(dialogs.shortcuts, null));
