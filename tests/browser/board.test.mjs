// The supervisors' live board (PRODUCT S1): the admin (a supervisor too) watches the
// floor while a SIPp caller queues for support and anna's SIP phone (SIPp, 1001 on
// 15081) answers: the board shows the call with its caller and operator and anna busy,
// live, without a reload; the wallboard shows the queues in large type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BASE, env, chromiumForTests, logInNewPage, operatorPhone, setStatus, sipp as sippIn,
} from './lib.mjs';

const getBrowser = chromiumForTests();
const work = mkdtempSync(join(tmpdir(), 'hotline-board-'));
const sipp = (...args) => sippIn(work, ...args);

test('the live board shows the call, its operator and the queues as they change', async () => {
  const admin = await logInNewPage(getBrowser(), env('ADMIN_USER'), env('ADMIN_PASSWORD'));
  const anna = await logInNewPage(getBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logInNewPage(getBrowser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await setStatus(anna, 'online');

  await admin.getByRole('link', { name: 'Live board' }).click();
  await admin.getByText(/^Live ·/).waitFor({ timeout: 5_000 });
  const queues = admin.locator('#board-queues');
  await queues.getByRole('cell', { name: 'support', exact: true }).waitFor({ timeout: 5_000 });
  const calls = admin.locator('#board-calls');
  await calls.getByText('No calls.').waitFor({ timeout: 5_000 });

  const annasPhone = operatorPhone(work, '1001', 15081, 16030, 1500);
  const caller = sipp('caller_talks.xml.in', ['-s', '500', env('SIP_ADDR'), '-i', '127.0.0.1',
    '-p', '15175', '-mi', '127.0.0.1', '-mp', '16190', '-m', '1', '-d', '8000']);
  // Ringing, then talking with anna: the row follows the call.
  const row = calls.locator('tr', { hasText: '+36209990000' });
  await row.filter({ hasText: 'ringing anna' }).waitFor({ timeout: 10_000 });
  await row.filter({ hasText: 'talking' }).waitFor({ timeout: 10_000 });
  assert.match(await row.innerText(), /support/);
  const annaRow = admin.locator('#board-operators tr', { hasText: 'anna' });
  assert.match(await annaRow.innerText(), /busy/);
  assert.match(await annaRow.innerText(), /talking with \+36209990000/);

  // The caller hangs up: the call leaves the board.
  const [c, a] = await Promise.all([caller, annasPhone]);
  assert.equal(c.code, 0, c.output);
  assert.equal(a.code, 0, a.output);
  await calls.getByText('No calls.').waitFor({ timeout: 5_000 });

  // The wallboard: the queues, no operator or call tables.
  await admin.goto(`${BASE}/supervisor/wallboard`);
  await admin.locator('#board-queues').getByRole('cell', { name: 'support', exact: true })
    .waitFor({ timeout: 5_000 });
  assert.equal(await admin.locator('#board-calls').count(), 0);
  // Today's service level from the call records: support's calls so far.
  await admin.locator('#board-queues tr', { hasText: 'support' }).getByText(/^\d+ %$/)
    .waitFor({ timeout: 5_000 });
  // Operators may not watch the floor.
  const refused = await anna.context().request.get(`${BASE}/supervisor`);
  assert.equal(refused.status(), 403);
  for (const p of [admin, anna, bela]) await p.context().close();
});

test('an operator ends a call from the call panel; both phones get BYE', async () => {
  const anna = await logInNewPage(getBrowser(), env('OPERATOR_USER'), env('OPERATOR_PASSWORD'));
  const bela = await logInNewPage(getBrowser(), env('OTHER_USER'), env('OTHER_PASSWORD'));
  await setStatus(bela, 'pause');
  await setStatus(anna, 'online');
  const annasPhone = operatorPhone(work, '1001', 15081, 16030, 300);
  // A caller who never hangs up by themselves.
  const caller = sipp('daemon_hangs_up.xml', ['-s', '500', env('SIP_ADDR'), '-i', '127.0.0.1',
    '-p', '15175', '-mi', '127.0.0.1', '-mp', '16190', '-m', '1']);
  const panel = anna.locator('#my-call');
  await panel.getByRole('button', { name: 'End call' }).click({ timeout: 15_000 });
  await panel.getByText('No call.').waitFor({ timeout: 5_000 });
  const [c, a] = await Promise.all([caller, annasPhone]);
  assert.equal(c.code, 0, c.output);
  assert.equal(a.code, 0, a.output);
  // Wrap-up: "Ready for the next call" ends it, or says it is already over (1 s here).
  await panel.getByRole('button', { name: 'Ready for the next call' }).click();
  await panel.getByText(/You are ready for the next call\.|You are not in wrap-up\./)
    .waitFor({ timeout: 5_000 });
  await anna.context().close();
  await bela.context().close();
});

// Today's calls in the reports (the calls of the checks before this one and the one
// above): the chart of the day, support's row with a service level, anna's row with the
// calls she answered, and the CSV behind the operators' table.
test('the reports show today\'s calls in a chart and per queue and operator', async () => {
  const admin = await logInNewPage(getBrowser(), env('ADMIN_USER'), env('ADMIN_PASSWORD'));
  await admin.getByRole('link', { name: 'Reports' }).click();
  await admin.locator('figure.report-chart svg').waitFor({ timeout: 5_000 });
  assert.ok(await admin.locator('figure.report-chart svg rect.bar.offered').count() >= 24,
    'a bar per hour of the day');
  const support = admin.locator('#reports-queues-h + p + table tr', { hasText: 'Customer support' });
  assert.match(await support.innerText(), /\d+(\.\d)? %/, 'support has a service level');
  const anna = admin.locator('table.report tr', { has: admin.getByRole('rowheader', { name: 'anna', exact: true }) });
  const answered = Number((await anna.locator('td').nth(1).innerText()).trim());
  assert.ok(answered >= 1, `anna answered calls today (${answered})`);
  const csvLink = admin.getByRole('link', { name: 'Download CSV' }).last();
  const csv = await admin.context().request.get(new URL(await csvLink.getAttribute('href'),
    admin.url()).toString());
  assert.equal(csv.status(), 200);
  assert.match(await csv.text(), /\nanna,/);
  await admin.context().close();
});
