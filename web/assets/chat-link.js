// The socket protocol the live pages share (the operator's chat window, the visitor's
// chat, both sides of a visual session): a WebSocket that comes back by itself with
// backoff and says where it left off, client ids for what is sent, and an outbox that keeps
// every frame until the server acks (or refuses) it, so nothing is lost or doubled across
// reconnects and reloads. What each page sends and shows stays in the page.
//
// The server's side of the bargain: a frame carrying a client id is stored once however
// often it comes; its answer is { t: 'ack', client_id, seq } or { t: 'error', client_id,
// message }; events carry their conversation's seq, and a reconnecting page names the last
// seq it saw (in its `hello` frame or in the socket's URL) to get only what came after.

// A client id for one frame (getRandomValues works on plain HTTP too, unlike randomUUID).
export function newClientId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// The seq of an event not seen yet (after `last`), or null for one seen already or without
// a seq.
export function newSeq(seq, last) {
  const n = typeof seq === 'string' && seq.trim() !== '' ? Number(seq) : seq;
  return Number.isInteger(n) && n > last ? n : null;
}

// A WebSocket to `url()` (a path, with its query) that reconnects by itself.
//   hello()      the first frame on every connection (where to resume), or null
//   onFrame(f)   each JSON object from the server
//   onOpen()     after the hello: send what waited (the outbox)
//   onConnecting()  a connection is being tried
//   onClose(ev)  the socket closed: return (or resolve to) false to stay closed
//   onRetry(at)  the next try is due at `at` (ms since the epoch)
//   backoff      { first, max, jitter } in ms (jitter: ± that share of the delay, so
//                pages don't all come back at once); every failed try doubles the delay,
//                never beyond max
//   resetOn      'open': the delay starts again from `first` once connected; 'frame': once
//                the server sent something, or the connection lasted 3 s (a server that
//                accepts and drops at once is not hammered)
// Returns { send(frame) → sent?, connect(), close(), reconnectNow(), isOpen(), retryAt() }.
export function openLink({
  url, hello = () => null, onFrame, onOpen = () => {}, onConnecting = () => {},
  onClose = () => true, onRetry = () => {}, backoff = {}, resetOn = 'open',
}) {
  const first = backoff.first ?? 500;
  const max = backoff.max ?? 5000;
  const jitter = backoff.jitter ?? 0.25;
  let delay = first;
  let ws = null;
  let open = false;
  let openedAt = 0;
  let timer = null;
  let retryAt = 0;
  let stopped = true;

  function send(frame) {
    if (!open || !ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  function connect() {
    stopped = false;
    clearTimeout(timer);
    timer = null;
    retryAt = 0;
    if (ws) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}${url()}`);
    } catch {
      schedule();
      return;
    }
    ws = socket;
    open = false;
    onConnecting();
    socket.addEventListener('open', () => {
      if (ws !== socket) return;
      open = true;
      openedAt = Date.now();
      const h = hello();
      if (h) send(h);
      if (resetOn === 'open') delay = first;
      onOpen();
    });
    socket.addEventListener('message', (e) => {
      if (ws !== socket) return;
      if (resetOn === 'frame') delay = first;
      let f;
      try { f = JSON.parse(e.data); } catch { return; }
      if (f && typeof f === 'object') onFrame(f);
    });
    socket.addEventListener('close', async (e) => {
      if (ws !== socket) return;
      ws = null;
      open = false;
      if (resetOn === 'frame' && openedAt && Date.now() - openedAt > 3000) delay = first;
      openedAt = 0;
      if (stopped) return;
      if (await onClose(e)) schedule();
    });
    socket.addEventListener('error', () => { /* the close event follows */ });
  }

  function schedule() {
    if (stopped || timer) return;
    const wait = Math.round(Math.min(max, delay * (1 - jitter + Math.random() * 2 * jitter)));
    delay = Math.min(delay * 2, max);
    retryAt = Date.now() + wait;
    timer = setTimeout(connect, wait);
    onRetry(retryAt);
  }

  // No more reconnecting until connect() is called again.
  function close() {
    stopped = true;
    clearTimeout(timer);
    timer = null;
    retryAt = 0;
    const s = ws;
    ws = null;
    open = false;
    if (s) {
      try { s.close(1000); } catch { /* closed already */ }
    }
  }

  // The network is back: try at once, from the first delay.
  function reconnectNow() {
    delay = first;
    if (!ws) connect();
  }

  return {
    send, connect, close, reconnectNow,
    isOpen: () => open,
    retryAt: () => retryAt,
  };
}

// The frames sent and not yet acked, kept where the page says (`load()`/`store(list)`:
// sessionStorage for the operator's tab, localStorage for the visitor, shared by the
// site's tabs). An entry is { frame, …the page's own } with frame.client_id set.
export class Outbox {
  constructor({ load, store }) {
    this.load = load;
    this.store = store;
  }

  all() {
    const list = this.load();
    return Array.isArray(list) ? list.filter((e) => e && e.frame && e.frame.client_id) : [];
  }

  // Gives the frame a client id when it has none; returns the entry.
  add(entry) {
    if (!entry.frame.client_id) entry.frame.client_id = newClientId();
    const list = this.all();
    list.push(entry);
    this.store(list);
    return entry;
  }

  find(clientId) {
    return this.all().find((e) => e.frame.client_id === clientId) ?? null;
  }

  // The entry acked or refused: out of the outbox; null when it was not there.
  take(clientId) {
    if (!clientId) return null;
    const list = this.all();
    const i = list.findIndex((e) => e.frame.client_id === clientId);
    if (i < 0) return null;
    const [entry] = list.splice(i, 1);
    this.store(list);
    return entry;
  }

  // Keeps only the entries `keep(entry)` says yes to.
  retain(keep) {
    const list = this.all();
    const rest = list.filter(keep);
    if (rest.length !== list.length) this.store(rest);
  }

  // Sends an entry on `link`; counts the tries and the time of the last one on the entry.
  static transmit(link, entry) {
    if (!link.send(entry.frame)) return false;
    entry.tries = (entry.tries || 0) + 1;
    entry.sentAt = Date.now();
    return true;
  }
}
