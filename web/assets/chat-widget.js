// Hotline web chat: the one script a company puts on its site (PRODUCT H1).
//
//   <script src="https://HOTLINE/chat/widget.js?site=KEY" async></script>
//   optional, before it: <script>window.hotlineChat = {name, email, customer_id, signature};</script>
//
// It adds a chat button and, behind it, an iframe of HOTLINE/chat/visitor?site=KEY, which
// does the chatting. This script only talks to that iframe by postMessage, always naming
// the Hotline origin: it passes the visitor's page (address and title, again after each
// in-page navigation) and the site's `window.hotlineChat` fields; it takes from the iframe
// only its own messages (the panel's colour, height, close, unread count).
//
// It must not disturb the page around it: one global (window.HotlineChatWidget), every
// element and CSS rule under the ids hotline-chat*, and storage under "hotline-chat:KEY".
(() => {
  'use strict';
  if (window.HotlineChatWidget) return; // the snippet was pasted twice

  const script = document.currentScript
    || Array.from(document.getElementsByTagName('script')).reverse()
      .find((s) => /\/chat\/widget\.js(\?|$)/.test(s.src || ''));
  if (!script || !script.src) return;
  let src;
  try {
    src = new URL(script.src, location.href);
  } catch (e) {
    return;
  }
  const ORIGIN = src.origin;
  const SITE = src.searchParams.get('site') || '';
  if (!SITE) {
    console.warn('Hotline chat: the widget script needs ?site=KEY in its address');
    return;
  }
  const STORE_KEY = `hotline-chat:${SITE}`;
  const DEFAULT_COLOUR = '#0b5cad';
  const LABEL = 'Chat with us';

  // This tab's state, so the panel is open again on the next page of the site.
  const session = (() => {
    try {
      return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {};
    } catch (e) {
      return {};
    }
  })();
  function saveSession() {
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
    } catch (e) { /* storage off: the panel just starts closed on the next page */ }
  }

  let root = null;
  let button = null;
  let badge = null;
  let frame = null;
  let open = false;
  let lastUrl = location.href;

  const CSS = `
#hotline-chat{all:initial;position:fixed;right:16px;bottom:16px;z-index:2147483000;display:flex;flex-direction:column-reverse;align-items:flex-end;gap:12px;pointer-events:none;font:15px/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
#hotline-chat>*{pointer-events:auto}
#hotline-chat-button{all:initial;box-sizing:border-box;display:inline-flex;align-items:center;gap:8px;min-height:48px;padding:12px 18px;border-radius:999px;background:var(--hotline-chat-colour,${DEFAULT_COLOUR});color:var(--hotline-chat-text,#fff);font:600 15px/1.2 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.25);position:relative}
#hotline-chat-button>span:not(#hotline-chat-badge){all:unset}
#hotline-chat-button:hover{filter:brightness(1.08)}
#hotline-chat-button:focus-visible{outline:3px solid #8db3ff;outline-offset:2px}
#hotline-chat-button svg{all:unset;display:block;width:22px;height:22px;fill:currentColor;flex:none}
#hotline-chat-badge{all:initial;position:absolute;top:-6px;right:-6px;min-width:22px;height:22px;padding:0 6px;box-sizing:border-box;border-radius:11px;background:#c62828;color:#fff;font:700 12px/22px system-ui,sans-serif;text-align:center}
#hotline-chat-badge[hidden]{display:none}
#hotline-chat-frame{all:initial;display:none;border:0;margin:0;padding:0;width:380px;max-width:calc(100vw - 32px);height:600px;max-height:calc(100vh - 96px);border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.28);background:#fff;color-scheme:normal}
#hotline-chat.hotline-chat-open #hotline-chat-frame{display:block}
@media (max-width:480px){
#hotline-chat.hotline-chat-open{top:0;left:0;right:0;bottom:0;gap:0}
#hotline-chat.hotline-chat-open #hotline-chat-frame{width:100%;max-width:none;height:100% !important;max-height:none;border-radius:0;box-shadow:none}
#hotline-chat.hotline-chat-open #hotline-chat-button{display:none}
}
@media print{#hotline-chat{display:none}}`;

  const ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm2 5v2h12V8H6zm0 4v2h8v-2H6z';
  const ICON_CLOSE = 'M6.4 7.8 7.8 6.4 12 10.6l4.2-4.2 1.4 1.4-4.2 4.2 4.2 4.2-1.4 1.4-4.2-4.2-4.2 4.2-1.4-1.4 4.2-4.2z';

  function icon(path) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    svg.appendChild(p);
    return svg;
  }

  // White or near-black text, whichever reads better on `hex`.
  function textOn(hex) {
    let h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, (c) => c + c);
    const lin = (i) => {
      const v = parseInt(h.slice(i, i + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    const l = 0.2126 * lin(0) + 0.7152 * lin(2) + 0.0722 * lin(4);
    return 1.05 / (l + 0.05) >= 4.5 ? '#fff' : '#111';
  }

  function setColour(c) {
    if (typeof c !== 'string' || !/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(c)) return;
    root.style.setProperty('--hotline-chat-colour', c);
    root.style.setProperty('--hotline-chat-text', textOn(c));
    if (session.colour !== c) {
      session.colour = c;
      saveSession();
    }
  }

  function setUnread(n) {
    const count = Number.isInteger(n) && n > 0 && !open ? Math.min(n, 99) : 0;
    badge.textContent = count ? String(count) : '';
    badge.hidden = !count;
    button.setAttribute('aria-label', count ? `${LABEL}, ${count} unread` : LABEL);
  }

  function post(msg) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(msg, ORIGIN);
  }

  // The site's fields, as plain values only (a function or a DOM node can't be posted).
  function fields() {
    const f = window.hotlineChat;
    if (!f || typeof f !== 'object') return null;
    const out = {};
    try {
      for (const k of Object.keys(f)) {
        const v = f[k];
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
      }
    } catch (e) {
      return null;
    }
    return out;
  }

  function hello() {
    post({
      type: 'hotline-hello',
      page: { url: location.href, title: document.title },
      fields: fields(),
      open,
    });
  }

  function load() {
    if (frame) return;
    frame = document.createElement('iframe');
    frame.id = 'hotline-chat-frame';
    frame.title = 'Chat window';
    frame.src = `${ORIGIN}/chat/visitor?site=${encodeURIComponent(SITE)}`;
    frame.addEventListener('load', hello);
    root.appendChild(frame);
    session.loaded = true;
    saveSession();
  }

  function setOpen(next, byUser) {
    open = next;
    if (open) load();
    root.classList.toggle('hotline-chat-open', open);
    button.setAttribute('aria-expanded', String(open));
    button.replaceChild(icon(open ? ICON_CLOSE : ICON_CHAT), button.firstChild);
    if (open) setUnread(0);
    session.open = open;
    saveSession();
    post({ type: 'hotline-open', open, focus: open && !!byUser });
    if (byUser) {
      if (open) frame.focus();
      else button.focus();
    }
  }

  // An in-page navigation (a single-page site): tell the iframe once the new page has
  // had a moment to set its title.
  function navigated() {
    setTimeout(() => {
      if (location.href === lastUrl) return;
      lastUrl = location.href;
      post({ type: 'hotline-page', url: location.href, title: document.title });
    }, 150);
  }

  function onMessage(e) {
    if (e.origin !== ORIGIN || !frame || e.source !== frame.contentWindow) return;
    const m = e.data;
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'hotline-ready':
        hello();
        break;
      case 'hotline-resize':
        if (Number.isFinite(m.height)) {
          frame.style.height = `${Math.round(Math.min(Math.max(m.height, 240), 760))}px`;
        }
        break;
      case 'hotline-close':
        if (open) setOpen(false, true);
        break;
      case 'hotline-colour':
        setColour(m.colour);
        break;
      case 'hotline-unread':
        setUnread(m.count);
        break;
      default:
        break;
    }
  }

  function start() {
    const style = document.createElement('style');
    style.id = 'hotline-chat-style';
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);

    root = document.createElement('div');
    root.id = 'hotline-chat';
    button = document.createElement('button');
    button.id = 'hotline-chat-button';
    button.type = 'button';
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-controls', 'hotline-chat-frame');
    button.setAttribute('aria-label', LABEL);
    button.appendChild(icon(ICON_CHAT));
    const label = document.createElement('span');
    label.textContent = LABEL;
    button.appendChild(label);
    badge = document.createElement('span');
    badge.id = 'hotline-chat-badge';
    badge.setAttribute('aria-hidden', 'true');
    badge.hidden = true;
    button.appendChild(badge);
    button.addEventListener('click', () => setOpen(!open, true));
    root.appendChild(button);
    document.body.appendChild(root);
    setColour(session.colour || DEFAULT_COLOUR);

    window.addEventListener('message', onMessage);
    const push = history.pushState;
    history.pushState = function pushState(...args) {
      const r = push.apply(this, args);
      navigated();
      return r;
    };
    window.addEventListener('popstate', navigated);
    window.addEventListener('hashchange', navigated);

    if (session.open) setOpen(true, false);
    // A visitor who chatted in this tab: the iframe comes along (hidden) to every page so
    // the operator sees where they are. Everyone else: after the page itself has loaded,
    // so the button gets the site's colour without slowing the page down.
    else if (session.loaded || document.readyState === 'complete') load();
    else window.addEventListener('load', () => setTimeout(() => { if (!frame) load(); }, 500), { once: true });
  }

  window.HotlineChatWidget = Object.freeze({
    site: SITE,
    open: () => { if (root && !open) setOpen(true, false); },
    close: () => { if (root && open) setOpen(false, false); },
    toggle: () => { if (root) setOpen(!open, false); },
  });

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true });
})();
