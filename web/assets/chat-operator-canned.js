// The operator's chat window: canned messages to pick, search and mark as favourites.

import { request } from '/assets/request.js';
import { button, el } from '/assets/chat-operator-base.js';
import { dialogChat, dialogs, open } from '/assets/chat-operator-dialogs.js';
import { insertAtCursor } from '/assets/chat-operator-composer.js';

// Canned messages: the operator's queues' and the all-queue ones, favourites first.
const cannedQ = document.getElementById('canned-q');
const cannedList = document.getElementById('canned-list');
const cannedStatus = document.getElementById('canned-status');
let cannedGeneration = 0;
let cannedTimer = null;
let cannedItems = [];

export function openCanned(c) {
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
