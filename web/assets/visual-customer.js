import { openLink } from './visual-link.js';
import { request } from './request.js';

// The customer's page on a phone: consent, the camera to the operator over WebRTC (this
// browser makes the offer), switching cameras, photos and chat.
const root = document.getElementById('customer');
const iceServers = JSON.parse(root.dataset.ice || '[]');
const token = location.pathname.split('/').pop();
let facing = 'environment';
let stream = null;
let pc = null;
let link = null;
let over = false;

function send(msg) {
  link?.send(msg);
}

async function camera() {
  // The rear camera first; a phone without one (or a laptop) gives whatever it has.
  try {
    return await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing } }, audio: false });
  } catch (e) {
    return navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  }
}

async function offer() {
  pc?.close();
  pc = new RTCPeerConnection({ iceServers });
  pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'signal', data: { candidate: e.candidate } }); };
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  await pc.setLocalDescription(await pc.createOffer());
  send({ type: 'signal', data: { sdp: pc.localDescription } });
}

async function onSignal(data) {
  if (!pc) return;
  if (data.sdp && data.sdp.type === 'answer') await pc.setRemoteDescription(data.sdp);
  else if (data.candidate) {
    try { await pc.addIceCandidate(data.candidate); } catch (e) { console.warn('ICE candidate', e); }
  }
}

function end() {
  over = true;
  pc?.close();
  stream?.getTracks().forEach((t) => t.stop());
  for (const idName of ['consent', 'live', 'chat-card']) document.getElementById(idName).hidden = true;
  document.getElementById('ended').hidden = false;
}

function connect() {
  link = openLink({
    path: `/v/${token}/ws`,
    me: 'customer',
    chatList: document.getElementById('chat'),
    chatForm: document.getElementById('chat-form'),
    chatInput: document.getElementById('chat-input'),
    onEvent: (ev) => {
      switch (ev.type) {
        case 'signal': onSignal(ev.data); break;
        // The operator's page is there (again): show it the picture.
        case 'presence': if (ev.operator && stream) offer(); break;
        case 'ended': end(); break;
        case 'error': document.getElementById('photo-status').textContent = ev.message; break;
      }
    },
    // A link that is no longer valid refuses the socket: ask the page itself.
    onClose: async () => {
      if (over) return false;
      // (Status 0: the network is down: try again.)
      if ((await request('HEAD', location.href)).status === 404) { end(); return false; }
      return true;
    },
  });
}

document.getElementById('agree').addEventListener('change', (e) => {
  document.getElementById('start').disabled = !e.target.checked;
});

document.getElementById('start').addEventListener('click', async () => {
  try {
    stream = await camera();
  } catch (e) {
    document.getElementById('photo-status').textContent = `The camera could not be started: ${e.message}`;
    document.getElementById('live').hidden = false;
    return;
  }
  document.getElementById('local-video').srcObject = stream;
  document.getElementById('consent').hidden = true;
  document.getElementById('live').hidden = false;
  document.getElementById('chat-card').hidden = false;
  connect();
});

document.getElementById('switch').addEventListener('click', async () => {
  facing = facing === 'environment' ? 'user' : 'environment';
  const next = await camera();
  const track = next.getVideoTracks()[0];
  const sender = pc?.getSenders().find((s) => s.track?.kind === 'video');
  if (sender) await sender.replaceTrack(track);
  stream.getTracks().forEach((t) => t.stop());
  stream = next;
  document.getElementById('local-video').srcObject = stream;
});

document.getElementById('photo').addEventListener('change', async (e) => {
  const file = e.target.files[0];
  const status = document.getElementById('photo-status');
  if (!file) return;
  if (file.size > 20 * 1024 * 1024) { status.textContent = 'The picture is larger than 20 MB.'; return; }
  status.textContent = 'Sending the photo…';
  const res = await request('POST', `/v/${token}/photos`, file);
  status.textContent = res.ok ? 'Photo sent.' : (res.error || 'The photo could not be sent.');
  e.target.value = '';
});

