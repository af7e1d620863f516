// A visual session end to end in real browsers: the operator invites by SMS (the test's
// gateway, tests/browser/sinks.py, receives it), the customer opens the link with
// Chromium's fake camera, the operator sees the picture, they chat, the customer sends a
// photo, the operator takes a snapshot and ends the session; the table lists it. An
// e-mail invite goes through a real SMTP server (aiosmtpd) and its link works. And the
// refusals: bad number, second session, no credits, another operator's session, the
// link after the end, a form without CSRF.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/run.sh sets it)`);
  return v;
};
// A 2×2 PNG: what a customer's gallery might hold, as far as the server can tell.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      // The customer's phone: a fake camera (a moving test pattern), permission granted.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      // Both browsers are on this machine: plain host candidates, not mDNS names.
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
});

after(async () => {
  await browser?.close();
});

/// Waits until the test's SMS gateway or SMTP server got a message for `to`; its link.
async function received(kind, to) {
  for (let i = 0; i < 100; i++) {
    const all = await (await fetch(`${env('SINK_URL')}/messages`)).json();
    const m = kind === 'sms'
      ? all.sms.find((x) => x.to === to)
      : all.mail.find((x) => x.to.includes(to));
    if (m) {
      const text = kind === 'sms' ? m.text : `${m.subject}\n${m.body}`;
      const link = text.match(/https?:\/\/\S+\/v\/[A-Za-z0-9_-]+/)?.[0];
      assert.ok(link, `a link in the ${kind}: ${text}`);
      return { link, message: m };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${kind} to ${to} arrived`);
}

async function logIn(context, user, password) {
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${BASE}/`);
  return page;
}

async function adminForm(page, heading, fill) {
  const form = page.locator('section', { has: page.getByRole('heading', { name: heading }) });
  await fill(form);
  await form.getByRole('button').click();
  await page.waitForLoadState();
}

/// Fills the invite form on the home page and submits it.
async function invite(page, { license, caseNumber, phone, email }) {
  await page.goto(`${BASE}/`);
  const form = page.locator('#invite-form');
  if (email) {
    await form.getByLabel('E-mail', { exact: true }).check();
    await form.getByLabel("Customer's e-mail address").fill(email);
  } else {
    await form.getByLabel('SMS').check();
    await form.getByLabel("Customer's mobile number").fill(phone);
  }
  const option = form.locator('select[name=license] option', { hasText: new RegExp(`^${license} \\(`) });
  await form.getByLabel('License').selectOption(await option.getAttribute('value'));
  await form.getByLabel('Case number', { exact: true }).fill(caseNumber);
  await form.getByRole('button', { name: /Create session/ }).click();
  await page.waitForLoadState();
}

test('a visual session from invite to end', async () => {
  // The admin sets up two licenses for anna: one with 2 credits, one empty.
  const adminContext = await browser.newContext();
  const admin = await logIn(adminContext, env('ADMIN_USER'), env('ADMIN_PASSWORD'));
  await admin.goto(`${BASE}/admin/licenses`);
  for (const [name, credits] of [['Gold', '2'], ['Empty', '0']]) {
    await adminForm(admin, 'Add a license', async (f) => {
      await f.getByLabel('Name').fill(name);
      await f.getByLabel('Opening credits').fill(credits);
    });
    await adminForm(admin, 'Let a user use a license', async (f) => {
      await f.getByLabel('License').selectOption({ label: name });
      await f.getByLabel('User').selectOption({ label: env('OPERATOR_USER') });
    });
  }
  assert.equal(await admin.locator('tr[data-license="Gold"] td').nth(1).innerText(), '2');

  const opContext = await browser.newContext();
  const op = await logIn(opContext, env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));

  // A number that is not a Hungarian mobile is refused, showing the accepted forms.
  await invite(op, { license: 'Gold', caseNumber: 'CLAIM-77', phone: '+44 20 7946 0958' });
  const refusal = await op.locator('#invite-form').locator('..').getByRole('alert').innerText();
  assert.match(refusal, /\+36 30 616 7347/);
  assert.equal(await op.locator('#invite-form').getByLabel('Case number', { exact: true }).inputValue(), 'CLAIM-77',
    'the form keeps what was typed');

  // No credits: refused, nothing sent.
  await invite(op, { license: 'Empty', caseNumber: 'CLAIM-0', phone: '06 30 616 7347' });
  assert.match(await op.locator('section[aria-labelledby="invite-h"]').getByRole('alert').innerText(), /no credits left/);

  // The real invite.
  await invite(op, { license: 'Gold', caseNumber: 'CLAIM-77', phone: '06 30 616 7347' });
  await op.waitForURL(/\/visual\/\d+$/);
  const sessionUrl = op.url();
  await op.getByRole('heading', { name: 'Case CLAIM-77' }).waitFor();
  // The gateway got the SMS; the waiting screen says it was sent.
  const { link, message: sms } = await received('sms', '+36306167347');
  assert.match(sms.text, /CLAIM-77/);
  await op.waitForFunction(() => /sent to \+36306167347/.test(document.querySelector('#invite-status').textContent));
  assert.match(await op.locator('#session-state').innerText(), /Waiting for the customer/);

  // One active session: a second one is refused, with the way back to the first.
  await invite(op, { license: 'Gold', caseNumber: 'CLAIM-78', phone: '06 20 7737884' });
  assert.match(await op.locator('section[aria-labelledby="invite-h"]').getByRole('alert').innerText(), /already have an active session/);
  await op.getByRole('link', { name: 'Back to the active session' }).waitFor();
  // The credit was charged once, for the session that exists.
  await admin.goto(`${BASE}/admin/licenses`);
  assert.equal(await admin.locator('tr[data-license="Gold"] td').nth(1).innerText(), '1');

  // The admin's outbox page lists it as sent.
  await admin.goto(`${BASE}/admin/outbox`);
  const body = await admin.locator('#outbox tbody tr').first().innerText();
  assert.match(body, /\+36306167347[\s\S]*sent/);

  // The customer on a phone-sized screen.
  const phoneContext = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const customer = await phoneContext.newPage();
  if (process.env.DEBUG_BROWSER) {
    customer.on('console', (m) => console.error('customer:', m.text()));
    op.on('console', (m) => console.error('operator:', m.text()));
    customer.on('pageerror', (e) => console.error('customer error:', e));
    for (const [who, p] of [['customer', customer], ['operator', op]]) {
      p.on('websocket', (ws) => {
        ws.on('framesent', (f) => console.error(who, '>>', String(f.payload).slice(0, 120)));
        ws.on('framereceived', (f) => console.error(who, '<<', String(f.payload).slice(0, 120)));
        ws.on('close', () => console.error(who, 'ws closed'));
      });
    }
    op.on('pageerror', (e) => console.error('operator error:', e));
  }
  await customer.goto(link);
  await customer.getByRole('heading', { name: 'Video help' }).waitFor();
  assert.equal(await customer.getByRole('button', { name: 'Start the camera' }).isDisabled(), true,
    'no camera before consent');
  await customer.getByLabel('I agree').check();
  await customer.getByRole('button', { name: 'Start the camera' }).click();

  // The operator sees the customer's picture: frames with content, not a black box.
  await op.goto(sessionUrl);
  await op.waitForFunction(() => {
    const v = document.querySelector('#remote-video');
    return v.videoWidth > 0 && !v.paused && v.currentTime > 0.2;
  }, null, { timeout: 20_000 });
  const spread = await op.evaluate(() => {
    const v = document.querySelector('#remote-video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    let min = 255; let max = 0;
    for (let i = 0; i < px.length; i += 4 * 97) {
      const y = (px[i] + px[i + 1] + px[i + 2]) / 3;
      min = Math.min(min, y); max = Math.max(max, y);
    }
    return max - min;
  });
  assert.ok(spread > 40, `the picture has content (brightness spread ${spread})`);
  assert.match(await op.locator('#session-state').innerText(), /Live/);
  // With the session's page open, anna is with the customer: busy to the queues (Q1).
  assert.equal(await annaVisualSessions(1), 1, 'the open session page counts');

  // Chat both ways; what a user types is shown as text, never as markup.
  await op.getByLabel('Message').fill('Hello, please show me the damage.');
  await op.getByRole('button', { name: 'Send', exact: true }).click();
  await customer.locator('#chat li', { hasText: 'Hello, please show me the damage.' }).waitFor();
  await customer.getByLabel('Message').fill('<b>Here</b> it is');
  await customer.getByRole('button', { name: 'Send', exact: true }).click();
  await op.locator('#chat li[data-from="customer"]', { hasText: '<b>Here</b> it is' }).waitFor();
  assert.equal(await op.locator('#chat b').count(), 0);

  // A photo from the customer's gallery, then a snapshot by the operator.
  await customer.locator('#photo').setInputFiles({ name: 'damage.png', mimeType: 'image/png', buffer: PNG });
  await customer.getByText('Photo sent.').waitFor();
  await op.locator('#files li[data-kind="photo"] img').waitFor();
  await op.getByRole('button', { name: 'Take snapshot' }).click();
  await op.locator('#files li[data-kind="snapshot"] img').waitFor();
  const snapshotUrl = await op.locator('#files li[data-kind="snapshot"] a').getAttribute('href');
  const snap = await opContext.request.get(`${BASE}${snapshotUrl}`);
  assert.equal(snap.status(), 200);
  assert.equal(snap.headers()['content-type'], 'image/jpeg');

  // Another operator may not see this session, nor its files.
  const otherContext = await browser.newContext();
  const other = await logIn(otherContext, env('OTHER_USER'), env('OTHER_PASSWORD'));
  assert.equal((await other.goto(sessionUrl)).status(), 403);
  assert.equal((await otherContext.request.get(`${BASE}${snapshotUrl}`)).status(), 403);
  await otherContext.close();

  // A state change without the CSRF token is refused: the session stays open.
  const forged = await opContext.request.post(`${sessionUrl}/end`, { form: {} });
  assert.equal(forged.status(), 403);

  // The operator ends the session; the customer's page says so.
  await op.getByRole('button', { name: 'End session' }).click();
  await op.waitForURL(`${BASE}/`);
  assert.equal(await annaVisualSessions(0), 0, 'the page is closed: anna takes calls again');
  await customer.getByRole('heading', { name: 'The session has ended' }).waitFor({ timeout: 10_000 });

  // The table lists it, newest first, with the customer and the license.
  const row = op.locator('#recent-sessions tbody tr').first();
  assert.match(await row.innerText(), /CLAIM-77[\s\S]*\+36306167347[\s\S]*Gold/);
  const today = new Date().toLocaleDateString('sv-SE', { timeZone: 'Europe/Budapest' });
  await op.getByLabel('Day').fill('2020-01-01');
  await op.getByRole('button', { name: 'Filter' }).click();
  assert.match(await op.locator('#recent-sessions tbody').innerText(), /No sessions/);
  await op.getByLabel('Day').fill(today);
  await op.getByRole('button', { name: 'Filter' }).click();
  assert.match(await op.locator('#recent-sessions tbody').innerText(), /CLAIM-77/);

  // The ended link shows one clear page that reveals nothing.
  const dead = await phoneContext.newPage();
  const res = await dead.goto(link);
  assert.equal(res.status(), 404);
  assert.match(await dead.getByRole('alert').innerText(), /ended, the link has expired/);
  const unknown = await dead.goto(`${BASE}/v/not-a-real-token`);
  assert.equal(unknown.status(), 404);

  // An e-mail invite goes through the SMTP server; its link opens the customer's page.
  await invite(op, { license: 'Gold', caseNumber: 'MAIL-1', email: 'customer@example.org' });
  await op.waitForURL(/\/visual\/\d+$/);
  const mail = await received('mail', 'customer@example.org');
  assert.match(mail.message.subject, /MAIL-1/);
  await op.waitForFunction(() => /sent to customer@example.org/.test(document.querySelector('#invite-status').textContent));
  const mailPage = await phoneContext.newPage();
  await mailPage.goto(mail.link);
  await mailPage.getByRole('heading', { name: 'Video help' }).waitFor();
  assert.match(await mailPage.locator('body').innerText(), /MAIL-1/);
  await op.getByRole('button', { name: 'End session' }).click();
  await op.waitForURL(`${BASE}/`);

  await phoneContext.close();
  await opContext.close();
  await adminContext.close();
});

/// anna's `visual_sessions` in the API's operator list, once it is `want` (or after 5 s).
async function annaVisualSessions(want) {
  let last;
  for (let i = 0; i < 50; i += 1) {
    const res = await fetch(`${BASE}/api/operators`, { headers: { Authorization: `Bearer ${env('API_TOKEN')}` } });
    const anna = (await res.json()).find((o) => o.name === 'anna');
    last = anna?.visual_sessions;
    if (last === want) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}
