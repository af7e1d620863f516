// The operator's chat window: the composer (formatting, emoji, private whispers,
// attachments, typing notices) and its option menus.

import { request } from '/assets/request.js';
import {
  button, el, EMOJI, MAX_CHOICE_CHARS, MAX_CHOICES, MAX_FILE_BYTES, MAX_FILES, MAX_TEXT,
  MIN_CHOICES, size, TYPING_EVERY_MS,
} from '/assets/chat-operator-base.js';
import { dialogChat, dialogs, open } from '/assets/chat-operator-dialogs.js';
import { enqueue, rawSend } from '/assets/chat-operator-link.js';
import { renderHead, showChatError } from '/assets/chat-operator-conversation.js';
import { openCanned } from '/assets/chat-operator-canned.js';
import { openInvite, openTransfer } from '/assets/chat-operator-transfer.js';
import { openEnd, openWrapup } from '/assets/chat-operator-wrapup.js';

// ---------------------------------------------------------------- the composer

export function wireChat(c) {
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

export function renderPrivate(c) {
  c.privateButton.setAttribute('aria-pressed', c.private ? 'true' : 'false');
  c.composer.classList.toggle('is-private', c.private);
  c.sendButton.textContent = c.private ? 'Send privately' : 'Send';
}

function toggleEmoji(c, open) {
  c.emojiPanel.hidden = !open;
  c.emojiButton.setAttribute('aria-expanded', open ? 'true' : 'false');
  if (open) c.emojiPanel.querySelector('button')?.focus();
}

export function insertAtCursor(input, text, selectFrom = null, selectTo = null) {
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
