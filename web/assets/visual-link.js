// What both sides of a visual session share: the WebSocket to the daemon (chat-link.js:
// reconnecting, asking for the chat messages it missed) and the chat list.

import { newClientId, openLink as openSocket } from './chat-link.js';

// `path`: the socket's path; `me`: 'operator' or 'customer'; `onEvent(ev)` gets every
// event but chat, which goes to the list; `onClose()` decides whether to reconnect
// (return true) or stop.
export function openLink({ path, me, chatList, chatForm, chatInput, onEvent, onClose }) {
  const seen = new Set();
  let lastSeq = 0;

  function addChat(m) {
    if (seen.has(m.seq)) return;
    seen.add(m.seq);
    lastSeq = Math.max(lastSeq, m.seq);
    const li = document.createElement('li');
    li.className = m.from === me ? 'mine' : 'theirs';
    li.dataset.from = m.from;
    li.textContent = m.text; // never markup from anyone
    chatList.append(li);
    chatList.scrollTop = chatList.scrollHeight;
  }

  // A dropped connection comes back a second later and asks for what it missed.
  const socket = openSocket({
    url: () => path,
    hello: () => ({ type: 'hello', after: lastSeq }),
    backoff: { first: 1000, max: 1000, jitter: 0 },
    onFrame: (ev) => {
      if (ev.type === 'chat') addChat(ev);
      else onEvent(ev);
    },
    onClose: () => onClose(),
  });

  function send(msg) {
    socket.send(msg);
  }

  chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = chatInput.value.trim();
    if (!text) return;
    send({ type: 'chat', text, client_id: newClientId() });
    chatInput.value = '';
  });

  socket.connect();
  return { send };
}
