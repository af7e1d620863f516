// The operator's chat window: ending a chat and its wrap-up.

import { isRealText, visitorName } from '/assets/chat-operator-base.js';
import { dialogChat, dialogs, open } from '/assets/chat-operator-dialogs.js';
import { enqueue } from '/assets/chat-operator-link.js';
import { updateChrome } from '/assets/chat-operator-tabs.js';
import { renderHead } from '/assets/chat-operator-conversation.js';

// Ending and wrap-up.
const endForm = document.getElementById('end-form');
export function openEnd(c) {
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
export function openWrapup(c) {
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
