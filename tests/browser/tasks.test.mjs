// The tasks widget (PRODUCT C4) in two operators' browsers: anna adds a task for a queue
// with two parameters and bela sees it; an overdue task is marked and listed first;
// reschedule moves it, Done takes it off the open list; both click Call on one task at once.
//
// The console daemon of tests/run.sh has no trunk, so no call can start there: the claim
// is taken and given back at once, and each page says why. The test then checks what can be
// seen without a trunk: every page shows either "could not start" or "X is already calling
// this customer", and the task's history never has two claims without a release between
// them (claims are exclusive). With a trunk and a registered phone, exactly one page must
// say the call started and the other who is calling. The race with a held claim is also
// tested over HTTP (web/src/console/tasks.rs) and in the store on both databases
// (daemon/core/tests/tasks.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BASE, env, chromiumForTests, logInNewPage } from './lib.mjs';

// Tasks stay in the daemon's store: names unique to this run keep reruns apart.
const RUN = Date.now().toString(36);

const getBrowser = chromiumForTests();

async function logIn(user, password) {
  const page = await logInNewPage(getBrowser(), user, password);
  await page.getByRole('heading', { name: 'Tasks' }).waitFor();
  return page;
}

// An operator's phone (SIPp on the port it registered from) that declines one call: a
// call this test starts ends at once, so the operator is not kept busy by it.
function decliningPhone(user, port) {
  const child = spawn('sipp', ['-sf', join(env('SIPP_DIR'), 'operator_rejects.xml'), '-s', user,
    '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-nostdin', '-timeout', '20s'],
  { stdio: 'ignore' });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { done, stop: () => child.kill() };
}

const row = (page, title) => page.locator(`#task-list tr[data-title="${title}"]`);
const message = (page) => page.locator('#task-message');
const alert = (page) => page.locator('#task-error');

// The add form's due field, once the list has told the page the console's time.
async function defaultDue(page) {
  const due = page.locator('#task-add input[name="due"]');
  await page.waitForFunction(() => document.querySelector('#task-add input[name="due"]').value !== '');
  return due.inputValue();
}

// A datetime-local value `days` from `value`, on the same wall clock.
function shiftDays(value, days) {
  return new Date(Date.parse(`${value}:00Z`) + days * 86_400_000).toISOString().slice(0, 16);
}

async function addTask(page, { title, number = '', due, assignee, params = [] }) {
  const form = page.locator('#task-add');
  await form.getByLabel('Title').fill(title);
  await form.getByLabel('Customer number').fill(number);
  if (due) await form.getByLabel('Due').fill(due);
  if (assignee) await form.getByLabel('Assignee').selectOption({ label: assignee });
  for (const [i, [key, value]] of params.entries()) {
    await form.getByRole('button', { name: 'Add parameter' }).click();
    await form.getByLabel(`Parameter ${i + 1} name`).fill(key);
    await form.getByLabel(`Parameter ${i + 1} value`).fill(value);
  }
  await form.getByRole('button', { name: 'Add task' }).click();
  await message(page).filter({ hasText: `Task added: ${title}.` }).waitFor({ timeout: 5_000 });
  await row(page, title).waitFor({ timeout: 5_000 });
}

test('a task for a queue with two parameters: its author and a colleague see it', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  const title = `Call back about the contract ${RUN}`;
  await addTask(anna, {
    title,
    number: '+36 30 555 0101',
    assignee: 'queue support',
    params: [['contract', 'HU-2024-118'], ['plan', 'gold']],
  });
  const cells = row(anna, title).locator('td');
  assert.equal(await cells.nth(1).innerText(), '+36305550101');
  assert.equal(await cells.nth(3).innerText(), 'queue support');
  assert.match(await cells.nth(4).innerText(), /contract\s+HU-2024-118\s+plan\s+gold/);
  assert.doesNotMatch(await cells.nth(2).innerText(), /overdue/);
  // The form is empty again for the next task.
  assert.equal(await anna.locator('#task-add').getByLabel('Title').inputValue(), '');
  assert.equal(await anna.locator('#task-add .task-param').count(), 0);

  // bela sees the queue's task within a refresh, without reloading.
  await row(bela, title).waitFor({ timeout: 10_000 });
  assert.match(await row(bela, title).innerText(), /HU-2024-118/);

  // A bad number is refused with the server's message, and nothing is added.
  const form = anna.locator('#task-add');
  await form.getByLabel('Title').fill(`Bad number ${RUN}`);
  await form.getByLabel('Customer number').fill('call me');
  await form.getByRole('button', { name: 'Add task' }).click();
  await alert(anna).filter({ hasText: 'is not a phone number' }).waitFor({ timeout: 5_000 });
  assert.equal(await row(anna, `Bad number ${RUN}`).count(), 0);

  // A queue anna is not a member of (sales: bela only): its task is not on her list. The
  // support task added after it shows her list has been read again since.
  const sales = `Sales lead ${RUN}`;
  const later = `Support follow-up ${RUN}`;
  await addTask(bela, { title: sales, number: '+36305550109', assignee: 'queue sales' });
  await addTask(bela, { title: later, number: '+36305550110', assignee: 'queue support' });
  await row(anna, later).waitFor({ timeout: 10_000 });
  assert.equal(await row(anna, sales).count(), 0, 'anna sees a task of a queue she is not in');
});

test('an overdue task stands out; reschedule moves it, Done takes it off the list', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const due = await defaultDue(anna);
  const late = `Promised callback ${RUN}`;
  await addTask(anna, { title: late, number: '+36205550102', due: shiftDays(due, -1), assignee: 'Me' });
  const r = row(anna, late);
  // Marked by a class and by the word, not by colour alone, and listed first.
  assert.equal(await r.evaluate((tr) => tr.classList.contains('overdue')), true);
  assert.match(await r.locator('td').nth(2).innerText(), /overdue/i);
  // Overdue tasks lead the list: none due later comes before it.
  const order = await anna.$$eval('#task-list tbody tr', (trs) => trs.map((tr) => [tr.dataset.title, tr.classList.contains('overdue')]));
  const at = order.findIndex(([t]) => t === late);
  assert.ok(order.slice(0, at).every(([, overdue]) => overdue), JSON.stringify(order));
  assert.equal(await r.locator('td').nth(3).innerText(), 'me');

  // Reschedule to two days ahead: no longer overdue.
  await r.getByRole('button', { name: /^Reschedule / }).click();
  const panel = anna.locator('#task-reschedule');
  await panel.getByLabel('New due time').fill(shiftDays(due, 2));
  await panel.getByLabel(/Note/).fill('customer asked for Thursday');
  await panel.getByRole('button', { name: 'Save the new time' }).click();
  await message(anna).filter({ hasText: `Rescheduled: ${late}` }).waitFor({ timeout: 5_000 });
  await anna.waitForFunction((title) => {
    const tr = document.querySelector(`#task-list tr[data-title="${title}"]`);
    return tr && !tr.classList.contains('overdue');
  }, late, { timeout: 5_000 });
  assert.doesNotMatch(await r.locator('td').nth(2).innerText(), /overdue/i);
  assert.match(await r.locator('td').nth(5).innerText(), /customer asked for Thursday/);

  // The history shows both changes.
  await r.getByRole('button', { name: /^History / }).click();
  const history = anna.locator('#task-history ol');
  await history.locator('li').nth(1).waitFor({ timeout: 5_000 });
  assert.match(await history.innerText(), /created by anna[\s\S]*rescheduled by anna.*customer asked for Thursday/);

  // Done: off the open list; still there with the done ones.
  await r.getByRole('button', { name: /^Done: / }).click();
  await message(anna).filter({ hasText: `Done: ${late}.` }).waitFor({ timeout: 5_000 });
  await r.waitFor({ state: 'detached', timeout: 5_000 });
  await anna.getByLabel('Show done tasks too').check();
  await r.waitFor({ timeout: 5_000 });
  assert.equal(await r.getAttribute('data-state'), 'done');
  assert.equal(await r.getByRole('button', { name: /^Call / }).count(), 0);
});

test('two operators click Call on one task together: one claim at a time', async () => {
  const anna = await logIn(env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logIn(env('OTHER_USER'), env('OTHER_PASSWORD'));
  const title = `Call the customer back ${RUN}`;
  // Anyone's: bela sees it too (anna's own tasks are hers alone).
  await addTask(anna, { title, number: '+36301110103', assignee: 'Anyone' });
  await row(bela, title).waitFor({ timeout: 10_000 });
  const id = await row(anna, title).getAttribute('data-id');

  // Earlier messages ("Task added") out of the way, then both click.
  for (const p of [anna, bela]) {
    await p.evaluate(() => { for (const m of document.querySelectorAll('#task-message, #task-error')) m.textContent = ''; });
  }
  const phones = { anna: decliningPhone('1001', 15081), bela: decliningPhone('1002', 15082) };
  await Promise.all([anna, bela].map((p) => row(p, title).getByRole('button', { name: /^Call / }).click()));
  const said = async (page) => {
    const shown = page.locator('#task-message:not(:empty), #task-error:not(:empty)');
    await shown.first().waitFor({ timeout: 5_000 });
    return shown.first().innerText();
  };
  const answers = [await said(anna), await said(bela)];
  const started = answers.filter((a) => /Your phone rings first/.test(a));
  const conflict = answers.filter((a) => /^(anna|bela|Another operator) is already calling this customer\.$/.test(a));
  const notStarted = answers.filter((a) => /^The call could not start: /.test(a));
  assert.equal(started.length + conflict.length + notStarted.length, 2, `${answers}`);

  // The claims as the task's history has them (fetched as the page would).
  const events = async () => anna.evaluate(async (task) => {
    const res = await fetch(`/console/tasks/${task}/events`);
    return (await res.json()).events;
  }, id);
  if (started.length > 0) {
    // Calls can start here: exactly one did, the other operator was told who calls.
    assert.equal(started.length, 1, `${answers}`);
    assert.equal(conflict.length, 1, `${answers}`);
    const winner = answers.indexOf(started[0]) === 0 ? 'anna' : 'bela';
    assert.equal(conflict[0], `${winner} is already calling this customer.`);
    const claims = (await events()).filter((e) => e.kind === 'claimed');
    assert.deepEqual(claims.map((e) => e.operator), [winner]);
    // The winner's phone declines: the call ends, and nobody stays busy with it.
    assert.equal(await phones[winner].done, 0, `${winner}'s phone got no call`);
    phones[winner === 'anna' ? 'bela' : 'anna'].stop();
    return;
  }
  phones.anna.stop();
  phones.bela.stop();
  // No call can start (no trunk): the winner of each claim gave it back at once.
  assert.ok(notStarted.length >= 1, `${answers}`);
  // More clicks, as fast as they come, from both operators.
  const burst = (page) => page.evaluate(async (task) => {
    const csrf = document.querySelector('#tasks').dataset.csrf;
    const one = async () => {
      const res = await fetch(`/console/tasks/${task}/call`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
      return { status: res.status, error: (await res.json()).error };
    };
    return Promise.all([one(), one(), one(), one(), one()]);
  }, id);
  const replies = (await Promise.all([burst(anna), burst(bela)])).flat();
  for (const r of replies) {
    // A claim held by another operator (unnamed when it lost to several short claims in a
    // row), or by oneself a moment ago (a double click).
    const ok = (r.status === 502 && /^The call could not start: /.test(r.error))
      || (r.status === 409 && /^(anna|bela|Another operator|You) (is|are) already calling this customer\.$/.test(r.error));
    assert.ok(ok, JSON.stringify(r));
  }
  // Claims are exclusive: each one is given back before the next is taken.
  const history = await events();
  const calls = history.filter((e) => e.kind === 'claimed' || e.kind === 'released');
  for (const [i, e] of calls.entries()) {
    assert.equal(e.kind, i % 2 === 0 ? 'claimed' : 'released', JSON.stringify(calls));
    if (i % 2 === 1) assert.equal(e.operator, calls[i - 1].operator, JSON.stringify(calls));
  }
  const claims = calls.filter((e) => e.kind === 'claimed').length;
  const refusedStarts = replies.filter((r) => r.status === 502).length + notStarted.length;
  assert.equal(claims, refusedStarts, 'one claim per call that was tried');
  // The task is free again, and nobody is shown as calling it.
  await anna.reload();
  await row(anna, title).waitFor({ timeout: 5_000 });
  assert.doesNotMatch(await row(anna, title).innerText(), /is calling/);

  // Without the CSRF token nothing is claimed at all.
  const forged = await bela.context().request.post(`${BASE}/console/tasks/${id}/call`);
  assert.equal(forged.status(), 403);
  assert.equal((await events()).length, history.length);
});
