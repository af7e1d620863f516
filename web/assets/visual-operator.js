import { openLink } from './visual-link.js';
import { request } from './request.js';

// The operator's session page: invite status, the customer's live picture (WebRTC,
// receive only; the customer's browser makes the offer), chat, snapshots and files.
const root = document.getElementById('visual');
const id = root.dataset.session;
const iceServers = JSON.parse(root.dataset.ice || '[]');
const video = document.getElementById('remote-video');
const stateLine = document.getElementById('session-state');
const snapshotButton = document.getElementById('snapshot');
let pc = null;
let link = null;

function addFile(f) {
  const list = document.getElementById('files');
  if (list.querySelector(`[data-id="${f.id}"]`)) return;
  const li = document.createElement('li');
  li.dataset.id = f.id;
  li.dataset.kind = f.kind;
  const a = document.createElement('a');
  a.href = f.url;
  a.target = '_blank';
  const img = document.createElement('img');
  img.src = f.url;
  img.alt = f.kind === 'photo' ? 'Photo from the customer' : 'Snapshot';
  a.append(img);
  li.append(a, document.createTextNode(f.kind));
  list.append(li);
}

async function refreshStatus() {
  const res = await request('GET', `/visual/${id}/status`);
  if (!res.ok) return;
  const s = res.body;
  const invite = s.invites[0];
  document.getElementById('invite-status').textContent = invite
    ? `${invite.status} to ${invite.to}${invite.error ? ` (${invite.error})` : ''}`
    : 'not stored (see the log)';
  s.files.forEach(addFile);
  if (!s.open) ended();
}

function ended() {
  stateLine.textContent = 'This session has ended.';
  snapshotButton.disabled = true;
  pc?.close();
}

function send(msg) {
  link?.send(msg);
}

async function onSignal(data) {
  if (data.sdp && data.sdp.type === 'offer') {
    pc?.close();
    pc = new RTCPeerConnection({ iceServers });
    pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'signal', data: { candidate: e.candidate } }); };
    pc.ontrack = (e) => {
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
      snapshotButton.disabled = false;
      stateLine.textContent = 'Live: you see the customer\'s camera.';
    };
    await pc.setRemoteDescription(data.sdp);
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: 'signal', data: { sdp: pc.localDescription } });
  } else if (data.candidate && pc) {
    try { await pc.addIceCandidate(data.candidate); } catch (e) { console.warn('ICE candidate', e); }
  }
}

function connect() {
  if (root.dataset.open !== 'true') return;
  link = openLink({
    path: `/visual/${id}/ws`,
    me: 'operator',
    chatList: document.getElementById('chat'),
    chatForm: document.getElementById('chat-form'),
    chatInput: document.getElementById('chat-input'),
    onEvent: (ev) => {
      switch (ev.type) {
        case 'signal': onSignal(ev.data); break;
        case 'joined': stateLine.textContent = 'The customer has opened the link.'; break;
        case 'presence':
          if (!ev.customer && pc) stateLine.textContent = 'The customer\'s page is closed; waiting for them to come back…';
          break;
        case 'file': addFile(ev.file); break;
        case 'ended': root.dataset.open = 'false'; ended(); break;
        case 'error': alert(ev.message); break;
      }
    },
    onClose: () => root.dataset.open === 'true',
  });
}

snapshotButton.addEventListener('click', async () => {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.9));
  const res = await request('POST', `/visual/${id}/snapshots`, blob, { type: 'image/jpeg' });
  if (res.ok) addFile(res.body);
  else alert(res.error || 'The snapshot could not be stored.');
});

refreshStatus();
setInterval(refreshStatus, 2000);
connect();
