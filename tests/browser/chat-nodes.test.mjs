// Web chat on two Hotline nodes sharing one PostgreSQL database (issue 7, H2/H5): the
// visitors use node A's and node B's demo pages, anna works on node A and bela on node B,
// each with room for one chat at a time.
//
//  1. two visitors start chats on node A: they are offered at once, one to each operator
//     (an operator never holds two, on either node); both accept; a third visitor, on
//     node B, waits with their place in the queue;
//  2. a visitor on node A writes to the operator on node B and back: every message arrives
//     once and in order, across the nodes (the other node's events come through the
//     store, not through memory);
//  3. the operators end their chats and wrap up: the freed room is used at once, the third
//     chat goes to one of them, and no chat was ever offered to both.
//
// Needs: BASE_A and BASE_B (the nodes), OPERATOR_USER/OPERATOR_PASSWORD (anna, on A),
// OTHER_USER/OTHER_PASSWORD (bela, on B), API_TOKEN (to set them online on their node);
// both have chat capacity 1 and are members of the demo site's queue. tests/run.sh
// (chat_two_nodes_postgres) sets it all up.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/run.sh sets it)`);
  return v;
};
const BASE_A = env('BASE_A');
const BASE_B = env('BASE_B');
const DEBUG = !!process.env.DEBUG_BROWSER;
const RUN = Date.now().toString(36);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(fn, what, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(100);
  }
}

let browser;

/** An operator logged in on `base` with the chat page open; every offer frame kept. */
async function operator(base, user, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const op = { base, user, page, context, offers: [] };
  page.on('dialog', (d) => d.accept().catch(() => {}));
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    let data;
    try { data = JSON.parse(String(f.payload)); } catch { return; }
    if (data.t === 'offer') op.offers.push(Number(data.chat?.id));
    if (DEBUG) console.error(`${user} <<`, String(f.payload).slice(0, 200));
  }));
  if (DEBUG) page.on('console', (m) => console.error(`${user} console:`, m.text()));
  await page.goto(`${base}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/`);
  const res = await fetch(`${base}/api/operators/${encodeURIComponent(user)}/state`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${env('API_TOKEN')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ state: 'online' }),
  });
  assert.ok(res.ok, `${user} could not be set online: ${res.status}`);
  await page.goto(`${base}/console/chat`);
  await page.locator('#chat-connection', { hasText: 'Connected.' }).waitFor({ timeout: 10_000 });
  return op;
}

/** A visitor on `base`'s demo page who starts a chat. */
async function visitor(base, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (DEBUG) page.on('console', (m) => console.error(`${name} console:`, m.text()));
  await page.goto(`${base}/chat/demo`);
  await page.getByRole('button', { name: /^Chat with us/ }).click();
  const frame = page.frameLocator('#hotline-chat-frame');
  const form = frame.getByRole('region', { name: 'Start a chat' });
  await form.getByLabel('Your name').fill(name);
  await form.getByLabel(/^How can we help/).fill(`Question from ${name}`);
  await form.getByRole('button', { name: 'Start the chat' }).click();
  await frame.locator('#messages li.msg-visitor', { hasText: `Question from ${name}` }).waitFor({ timeout: 10_000 });
  return { name, base, page, context, frame };
}

const offerTabs = (op) => op.page.locator('[role=tab].offer-tab');
const chatTabs = (op) => op.page.locator('[role=tab]:not(.offer-tab)');
const pane = (op, v) => op.page.locator('.chat-pane')
  .filter({ has: op.page.locator('.chat-title', { hasText: v.name }) });
const visitorLog = (v) => v.frame.locator('#messages');

/** Which visitor's chat `op` is offered now (null: none). */
async function offeredTo(op, visitors) {
  if ((await offerTabs(op).count()) === 0) return null;
  const text = await offerTabs(op).first().innerText();
  return visitors.find((v) => text.includes(v.name)) ?? null;
}

async function accept(op, v) {
  await offerTabs(op).first().click();
  await op.page.locator('.offer-pane').getByRole('button', { name: 'Accept' }).click();
  await pane(op, v).waitFor({ timeout: 10_000 });
}

async function endAndWrapUp(op, v) {
  await pane(op, v).getByRole('button', { name: 'End chat', exact: true }).click();
  await op.page.getByRole('dialog', { name: 'End the chat?' }).getByRole('button', { name: 'End the chat' }).click();
  const wrap = op.page.getByRole('dialog', { name: 'Wrap-up' });
  await wrap.waitFor({ timeout: 5_000 });
  await wrap.getByLabel('Category').selectOption({ index: 0 });
  await wrap.getByRole('button', { name: 'Save and close the chat' }).click();
  await chatTabs(op).filter({ hasText: v.name }).waitFor({ state: 'detached', timeout: 15_000 });
}

describe('web chat on two nodes sharing PostgreSQL', () => {
  let anna;
  let bela;
  const visitors = [];
  const taken = new Map(); // operator user -> visitor
  let waiting;

  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    anna = await operator(BASE_A, env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
    bela = await operator(BASE_B, env('OTHER_USER'), env('OTHER_PASSWORD'));
  });

  after(async () => {
    await browser?.close();
  });

  it('1. two chats offered at once, one to each node\'s operator; a third waits', async () => {
    visitors.push(await visitor(BASE_A, `Ada ${RUN}`));
    visitors.push(await visitor(BASE_A, `Ben ${RUN}`));

    // Each operator gets one offer; neither ever holds two.
    const offered = await eventually(async () => {
      const a = await offeredTo(anna, visitors);
      const b = await offeredTo(bela, visitors);
      return a && b ? [a, b] : null;
    }, 'an offer at each operator', 20_000);
    assert.notEqual(offered[0], offered[1], 'the same chat offered on both nodes');
    for (const op of [anna, bela]) assert.equal(await offerTabs(op).count(), 1, `${op.user} holds two offers`);

    await accept(anna, offered[0]);
    await accept(bela, offered[1]);
    taken.set(anna.user, offered[0]);
    taken.set(bela.user, offered[1]);
    for (const [op, v] of [[anna, offered[0]], [bela, offered[1]]]) {
      await pane(op, v).locator('.chat-log li', { hasText: `Question from ${v.name}` }).waitFor({ timeout: 10_000 });
    }

    // The third visitor, on node B, waits, first in the queue, and is offered to nobody.
    waiting = await visitor(BASE_B, `Cy ${RUN}`);
    visitors.push(waiting);
    await waiting.frame.locator('#queue-status', { hasText: /You are number 1 in the queue/ })
      .waitFor({ timeout: 10_000 });
    await sleep(1_500);
    for (const op of [anna, bela]) {
      assert.equal(await offerTabs(op).count(), 0, `${op.user} was offered a chat beyond their capacity`);
      assert.equal(await chatTabs(op).count(), 1);
    }
  });

  it('2. across the nodes: every message once and in order', async () => {
    // A visitor on node A talking to the operator on node B.
    const op = bela;
    const v = taken.get(bela.user);
    const input = v.frame.getByLabel('Message', { exact: true });
    const lines = [1, 2, 3, 4, 5].map((i) => `line ${i} from ${v.name}`);
    for (const line of lines) {
      await input.fill(line);
      await input.press('Enter');
    }
    const opLog = pane(op, v).locator('.chat-log li.from-visitor');
    await opLog.filter({ hasText: lines[4] }).waitFor({ timeout: 10_000 });
    await sleep(700);
    const seen = (await opLog.allInnerTexts()).filter((t) => t.includes('line '));
    assert.deepEqual(seen.map((t) => lines.find((l) => t.includes(l))), lines, `at the operator: ${seen.join(' | ')}`);

    const opInput = pane(op, v).getByLabel('Message', { exact: true });
    const answers = ['first answer', 'second answer', 'third answer'];
    for (const a of answers) {
      await opInput.fill(a);
      await opInput.press('Enter');
    }
    const got = visitorLog(v).locator('li.msg-operator');
    await got.filter({ hasText: answers[2] }).waitFor({ timeout: 10_000 });
    await sleep(700);
    const texts = (await got.allInnerTexts()).filter((t) => answers.some((a) => t.includes(a)));
    assert.deepEqual(texts.map((t) => answers.find((a) => t.includes(a))), answers, `at the visitor: ${texts.join(' | ')}`);
  });

  it('3. a wrap-up frees the room: the waiting chat goes to that operator', async () => {
    const since = { [anna.user]: anna.offers.length, [bela.user]: bela.offers.length };
    // anna (node A) finishes first: the waiting chat (a visitor on node B) must go to her,
    // as bela is still full.
    await endAndWrapUp(anna, taken.get(anna.user));
    await eventually(async () => (await offeredTo(anna, visitors)) === waiting, 'the waiting chat offered to anna', 15_000);
    assert.equal(await offerTabs(bela).count(), 0, 'offered to bela, who has no room');
    await accept(anna, waiting);
    await waiting.frame.locator('#messages li.msg-system', { hasText: /joined the chat/ }).waitFor({ timeout: 10_000 });
    await sleep(1_000);
    // The waiting chat was offered once, to anna only.
    assert.deepEqual(bela.offers.slice(since[bela.user]), []);
    assert.equal(new Set(anna.offers.slice(since[anna.user])).size, 1);

    await endAndWrapUp(bela, taken.get(bela.user));
    await endAndWrapUp(anna, waiting);
    // Over the whole run no chat was offered to both operators.
    const both = anna.offers.filter((id) => bela.offers.includes(id));
    assert.deepEqual(both, [], 'chats offered to both operators');
  });
});
