// The operator's chat window: inviting a colleague or a queue, answering invites to other
// chats, and transferring a chat.

import {
  accepting, baseTitle, button, closed, el, invites, invitesEl, visitorName,
} from '/assets/chat-operator-base.js';
import { dialogChat, dialogs, open } from '/assets/chat-operator-dialogs.js';
import { enqueue } from '/assets/chat-operator-link.js';
import { select } from '/assets/chat-operator-tabs.js';
import { renderHead } from '/assets/chat-operator-conversation.js';

// A target form (invite, transfer): an operator or a queue, found by name, each with how
// busy it is now (seed 004's transfer dialog).
function wireTarget(form) {
  const sync = () => {
    const target = form.elements.target.value;
    form.elements.operator.disabled = target !== 'operator';
    form.elements.queue.disabled = target !== 'queue';
  };
  for (const r of form.querySelectorAll('input[name=target]')) r.addEventListener('change', sync);
  for (const o of [...form.elements.operator.options, ...form.elements.queue.options]) {
    o.dataset.label = o.textContent;
  }
  form.elements.find.addEventListener('input', () => { filterTargets(form); sync(); });
  // No colleague to choose from: a queue then.
  if (form.elements.operator.options.length === 0) {
    form.querySelector('input[name=target][value=queue]').checked = true;
  }
  sync();
  return sync;
}

// Only the operators and queues whose name has what was typed; the choice moves to one
// that is left, and to the other list when this one has none.
function filterTargets(form) {
  const typed = form.elements.find.value.trim().toLowerCase();
  const shown = {};
  for (const key of ['operator', 'queue']) {
    const select = form.elements[key];
    const left = [];
    for (const o of select.options) {
      o.hidden = typed !== '' && !`${o.dataset.label} ${o.value}`.toLowerCase().includes(typed);
      if (!o.hidden) left.push(o);
    }
    if (select.selectedOptions[0]?.hidden && left.length) left[0].selected = true;
    shown[key] = left.length;
  }
  const target = form.elements.target.value;
  const other = target === 'operator' ? 'queue' : 'operator';
  if (!shown[target] && shown[other]) {
    form.querySelector(`input[name=target][value=${other}]`).checked = true;
  }
}

// Each queue's calls and chats waiting and members free, each colleague's state and
// conversations, as the queues see them now.
async function showFigures(form) {
  let targets;
  try {
    const res = await fetch('/console/chat/targets');
    if (!res.ok) return;
    targets = await res.json();
  } catch { return; }
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  for (const o of form.elements.queue.options) {
    const q = targets.queues?.find((x) => x.name === o.value);
    if (!q) continue;
    o.textContent = `${o.dataset.label} — ${plural(q.waiting_calls, 'call', 'calls')} and `
      + `${plural(q.waiting_chats, 'chat', 'chats')} waiting, ${q.online} free, ${q.busy} busy`;
  }
  for (const o of form.elements.operator.options) {
    const op = targets.operators?.find((x) => x.name === o.value);
    if (!op) continue;
    o.textContent = `${o.dataset.label} (${op.state}, ${plural(op.conversations, 'conversation', 'conversations')})`;
  }
}

function readTarget(form) {
  const target = form.elements.target.value;
  const select = target === 'operator' ? form.elements.operator : form.elements.queue;
  if (!select.value) return null;
  const label = select.options[select.selectedIndex]?.dataset.label || select.value;
  return target === 'operator'
    ? { key: 'operator', value: select.value, label }
    : { key: 'queue', value: select.value, label: `anyone in ${label}` };
}

// Invites.
const inviteForm = document.getElementById('invite-form');
const inviteSent = document.getElementById('invite-sent');
const inviteError = document.getElementById('invite-error');
const syncInvite = wireTarget(inviteForm);

export function openInvite(c) {
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
  inviteForm.elements.find.value = '';
  filterTargets(inviteForm);
  syncInvite();
  showFigures(inviteForm);
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

export function inviteDialogError(c, message) {
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

export function renderInvitePending(c) {
  const p = c.pane.querySelector('.chat-invite-pending');
  p.hidden = !c.pendingInvite;
  p.textContent = c.pendingInvite ? `Invite to ${c.pendingInvite.label} pending…` : '';
}

// Invites to other operators' chats.
export function onInvite(inv) {
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

export function removeInvite(id) {
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

export function openTransfer(c) {
  if (!c || c.ended || c.closing) return;
  transferForm.reset();
  if (transferForm.elements.operator.options.length === 0) {
    transferForm.querySelector('input[name=target][value=queue]').checked = true;
  }
  filterTargets(transferForm);
  syncTransfer();
  showFigures(transferForm);
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
