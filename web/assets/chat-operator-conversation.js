// The operator's chat window: a chat's pane and header, the conversation's events (live
// and from storage), the operator's messages until the server has them, and the
// visitor's live draft and colleagues' typing.

import { renderText } from '/assets/chat-format.js';
import { newSeq } from '/assets/chat-link.js';
import {
  accepting, chats, closed, CLOSERS, current, early, el, EVENTS_KEPT, isRealText, me,
  MESSAGES, offers, OTHER_TYPING_MS, outbox, participantName, queueLabel, save, saveNow,
  size, tabKey, timeEl, visitorName,
} from '/assets/chat-operator-base.js';
import {
  addTab, currentChat, removeTab, select, updateChrome,
} from '/assets/chat-operator-tabs.js';
import { removeOffer, renderOffer } from '/assets/chat-operator-offers.js';
import { renderDetails } from '/assets/chat-operator-details.js';
import { renderPrivate, wireChat } from '/assets/chat-operator-composer.js';
import { renderInvitePending } from '/assets/chat-operator-transfer.js';
import { openWrapup } from '/assets/chat-operator-wrapup.js';

// ---------------------------------------------------------------- chats

const chatTemplate = document.getElementById('chat-template');

export function onChatView(view) {
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
    const wasCurrent = wasOffer && current.key === wasOffer;
    c = createChat(view, [], wasOffer);
    if (fromAccept || wasCurrent || !current.key) select(tabKey('chat', id), { focus: fromAccept });
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

export function createChat(view, events, instead = null) {
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

export function closeChat(c) {
  closed.add(c.id);
  removeTab(tabKey('chat', c.id));
  chats.delete(c.id);
  for (const d of document.querySelectorAll('dialog[open]')) {
    if (Number(d.dataset.chat) === c.id) d.close();
  }
  updateChrome();
  saveNow();
}

export function renderTabLabel(c) {
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

export function renderHead(c) {
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

export function showChatError(c, text) {
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

export function onEvent(f) {
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

export function scrollToEnd(c, really) {
  if (really) c.log.scrollTop = c.log.scrollHeight;
}

function privateMark() {
  return el('span', { class: 'private-mark', title: 'Private: only operators see it' },
    el('span', { 'aria-hidden': 'true', text: '👁' }), ' private');
}

export function lockMark() {
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
export function eventItem(f, c) {
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

export function markAnswer(list, menuSeq, choice) {
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
export function showPending(c, entry) {
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

export function pendingSent(c, entry, seq) {
  const li = c.pendingList.querySelector(`[data-client-id="${CSS.escape(entry.client_id)}"]`);
  if (!li) return;
  if (seq != null && Number(seq) <= c.lastSeq) { li.remove(); return; }
  if (seq != null) li.dataset.seq = String(seq);
  const state = li.querySelector('.pending-state');
  if (state) state.textContent = 'sent';
}

// Refused: the text goes back into the input so nothing typed is lost.
export function pendingFailed(c, entry) {
  c.pendingList.querySelector(`[data-client-id="${CSS.escape(entry.client_id)}"]`)?.remove();
  if (entry.frame.t === 'send' && isRealText(entry.frame.text)) {
    c.input.value = c.input.value ? `${entry.frame.text}\n${c.input.value}` : entry.frame.text;
  }
}

// ---------------------------------------------------------------- drafts and typing

export function onDraft(f) {
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

export function onTyping(f) {
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
