// What both sides of a visual session share: the WebSocket to the daemon (reconnecting,
// asking for the chat messages it missed) and the chat list.

// A retried send carries the same id, so the server stores it once. (getRandomValues
// works on plain HTTP too, unlike randomUUID.)
function clientId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// `path`: the socket's path; `me`: 'operator' or 'customer'; `onEvent(ev)` gets every
// event but chat, which goes to the list; `onClose()` decides whether to reconnect
// (return true) or stop.
export function openLink({ path, me, chatList, chatForm, chatInput, onEvent, onClose }) {
  const seen = new Set();
  let lastSeq = 0;
  let ws = null;

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

  function send(msg) {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  function connect() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${proto}://${location.host}${path}`);
    ws.onopen = () => send({ type: 'hello', after: lastSeq });
    ws.onmessage = (e) => {
      const ev = JSON.parse(e.data);
      if (ev.type === 'chat') addChat(ev);
      else onEvent(ev);
    };
    // A dropped connection comes back and asks for what it missed.
    ws.onclose = async () => {
      if (await onClose()) setTimeout(connect, 1000);
    };
  }

  chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = chatInput.value.trim();
    if (!text) return;
    send({ type: 'chat', text, client_id: clientId() });
    chatInput.value = '';
  });

  connect();
  return { send };
}
