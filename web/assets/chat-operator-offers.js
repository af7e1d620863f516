// The operator's chat window: chats offered to the operator, with a countdown, to accept
// or reject.

import {
  accepting, baseTitle, chats, closed, current, early, el, fieldLabel, isRealText, link,
  offers, queueLabel, tabKey, verifiedList, visitorName,
} from '/assets/chat-operator-base.js';
import { enqueue } from '/assets/chat-operator-link.js';
import { addTab, removeTab, select, updateChrome } from '/assets/chat-operator-tabs.js';
import { lockMark } from '/assets/chat-operator-conversation.js';

// ---------------------------------------------------------------- offers

const offerTemplate = document.getElementById('offer-template');

export function onOffer(f) {
  const view = f.chat;
  if (!view || view.id == null) return;
  const id = Number(view.id);
  if (chats.has(id)) return;
  // The server's clock, when it says what it is, corrects the countdown for our clock.
  const skew = Number.isFinite(Number(f.now)) && f.now ? Date.now() - Number(f.now) : 0;
  const expiresAt = Number(f.expires_at) + skew;
  let o = offers.get(id);
  if (!o) {
    const pane = offerTemplate.content.firstElementChild.cloneNode(true);
    o = { id, view, expiresAt, pane, expiredAt: 0 };
    o.acceptButton = pane.querySelector('.offer-accept');
    o.rejectButton = pane.querySelector('.offer-reject');
    o.countdown = pane.querySelector('.offer-countdown');
    o.message = pane.querySelector('.offer-message');
    o.acceptButton.addEventListener('click', () => acceptOffer(o));
    o.rejectButton.addEventListener('click', () => rejectOffer(o));
    o.label = el('span', { class: 'tab-label' });
    o.tab = addTab(tabKey('offer', id), pane, o.label);
    o.tab.classList.add('offer-tab');
    offers.set(id, o);
    if (!current.key) select(tabKey('offer', id));
    if (document.hidden) document.title = `New chat offer · ${baseTitle}`;
  }
  o.view = view;
  o.expiresAt = expiresAt;
  renderOffer(o);
  tickOffers();
}

export function renderOffer(o) {
  const v = o.view;
  const name = visitorName(v);
  o.label.replaceChildren(el('span', { class: 'offer-mark', text: 'Offer' }), ' ', name, ' ',
    el('span', { class: 'tab-countdown', 'aria-hidden': 'true' }));
  o.pane.querySelector('.offer-title').textContent = `Chat offered: ${name}`;
  o.pane.querySelector('.offer-queue').textContent = queueLabel(v.queue);
  o.pane.querySelector('.offer-topic').textContent = v.topic || '—';
  const verified = verifiedList(v);
  const vd = o.pane.querySelector('.offer-verified');
  vd.replaceChildren(...(verified.length ? verified.map((name) => {
    const value = v.visitor && v.visitor[name];
    return el('span', { class: 'verified-item' }, lockMark(), ' ', fieldLabel(name),
      isRealText(value) ? `: ${value}` : '');
  }) : [document.createTextNode('nothing verified')]));
  const page = v.params && v.params.page_url;
  o.pane.querySelector('.offer-page').replaceChildren(page ? link(page) : document.createTextNode('—'));
}

function acceptOffer(o) {
  o.acceptButton.disabled = true;
  o.rejectButton.disabled = true;
  o.acceptButton.textContent = 'Accepting…';
  closed.delete(o.id);
  accepting.add(o.id);
  enqueue({ t: 'accept', chat: o.id });
}

function rejectOffer(o) {
  enqueue({ t: 'reject', chat: o.id });
  removeOffer(o.id);
}

export function removeOffer(id) {
  const o = offers.get(id);
  if (!o) return;
  removeTab(tabKey('offer', id));
  offers.delete(id);
  if (!chats.has(id)) early.delete(id);
  updateChrome();
}

export function tickOffers() {
  const now = Date.now();
  for (const o of [...offers.values()]) {
    const left = Math.ceil((o.expiresAt - now) / 1000);
    const tabCount = o.label.querySelector('.tab-countdown');
    if (left > 0) {
      o.countdown.textContent = `Accept within ${left} s.`;
      if (tabCount) tabCount.textContent = `${left} s`;
    } else {
      o.countdown.textContent = 'The offer has expired.';
      if (tabCount) tabCount.textContent = 'expired';
      if (!accepting.has(o.id)) o.acceptButton.disabled = true;
      if (!o.expiredAt) o.expiredAt = now;
      // The server says offer_gone; if it did not, the offer goes anyway.
      if (now - o.expiredAt > (accepting.has(o.id) ? 15000 : 5000)) {
        accepting.delete(o.id);
        removeOffer(o.id);
      }
    }
  }
}
