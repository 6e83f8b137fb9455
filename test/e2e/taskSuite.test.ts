/**
 * End to end, like a team checking a model on a small suite: real VS Code (code-server) in
 * Chromium. "Apollo: Run Task Suite…" from the command palette, a folder of two tasks in Harbor's
 * layout picked in the folder dialog, one run each; the scripted model solves one task and not the
 * other, and the live runs list shows each run's task with the reward its verifier gave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel, ROOT } from '../fixtures/panelSession';

const TASKS = path.join(ROOT, 'test', 'fixtures', 'tasks');

test('a two-task suite run from the palette lists each run with its task and reward', { timeout: 300_000 }, async () => {
  const temp = mkdtempSync(path.join(os.tmpdir(), 'apollo-e2e-suite-'));
  const suiteDir = path.join(temp, 'suite');
  for (const name of ['hello-file', 'sum-metrics']) cpSync(path.join(TASKS, name), path.join(suiteDir, name), { recursive: true });
  const runsPath = path.join(temp, 'runs');
  // hello-file is solved; sum-metrics gets a sum.py that prints the wrong number.
  const reply = (request: RecordedRequest): ScriptedReply => {
    if (request.messages.some((message) => message.role === 'tool')) return { toolCall: { name: 'finish', arguments: { summary: 'done' } }, delayMs: 300 };
    const instruction = String(request.messages[1]?.content ?? '');
    if (instruction.includes('hello.txt')) return { toolCall: { name: 'write_file', arguments: { path: 'hello.txt', content: 'Hello, world!\n' } }, delayMs: 300 };
    return { toolCall: { name: 'write_file', arguments: { path: 'sum.py', content: 'print(0)\n' } }, delayMs: 300 };
  };
  const model = await startScriptedModelServer([], { fallback: reply });
  const session = await openPanel({
    viewport: { width: 1280, height: 900 },
    settings: { 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model', 'apollo.attention.notify': false, 'apollo.runsPath': runsPath, 'apollo.sample.count': 1 },
  });
  const { page, panel, resultsDir } = session;
  try {
    const quickInput = page.locator('.quick-input-widget');
    await page.keyboard.press('F1');
    await quickInput.waitFor({ state: 'visible', timeout: 15_000 });
    await page.keyboard.type('Apollo: Run Task Suite');
    await quickInput.locator('.monaco-list-row', { hasText: 'Apollo: Run Task Suite' }).first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Enter');

    // The folder dialog (VS Code's own, in the browser): type the suite's path and accept it.
    const pathBox = quickInput.locator('input.input');
    await quickInput
      .getByText(/a task .* or a folder of tasks/)
      .first()
      .waitFor({ timeout: 30_000 });
    await pathBox.fill(suiteDir);
    const countPrompt = quickInput.getByText(/How many runs of each of the 2 tasks/);
    for (let attempt = 0; attempt < 5 && !(await countPrompt.isVisible()); attempt++) {
      await page.keyboard.press('Enter');
      await countPrompt.waitFor({ timeout: 3_000 }).catch(() => undefined);
    }
    await countPrompt.waitFor({ timeout: 10_000 });
    // apollo.sample.count (1) is proposed.
    assert.equal(await pathBox.inputValue(), '1');
    await page.keyboard.press('Enter');

    const live = panel.getByRole('list', { name: 'Live runs' });
    await live.getByRole('listitem').nth(1).waitFor({ timeout: 60_000 });
    await live.getByRole('listitem').filter({ hasText: 'hello-file · reward 1' }).waitFor({ timeout: 120_000 });
    await live.getByRole('listitem').filter({ hasText: 'apollo-tests/sum-metrics · reward 0' }).waitFor({ timeout: 120_000 });
    assert.equal(await live.getByRole('listitem').count(), 2);
    // The dataset's runs list names each run by its task, with the verdict its manifest keeps.
    await panel.getByText(/^Runs/).first().click();
    const recorded = panel.getByRole('list', { name: 'Runs', exact: true });
    await recorded.getByRole('listitem').filter({ hasText: 'hello-file · reward 1' }).waitFor({ timeout: 30_000 });
    await recorded.getByRole('listitem').filter({ hasText: 'apollo-tests/sum-metrics · reward 0' }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(resultsDir, 'task-suite-rewards.png') });

    // Every run was given its task's instruction, in a workspace of its own.
    const instructions = model.requests.map((request) => String(request.messages[1]?.content ?? ''));
    assert.ok(instructions.some((text) => text.startsWith('Create a file named `hello.txt`')));
    assert.ok(instructions.some((text) => text.startsWith('Write `sum.py`')));
  } finally {
    await session.close();
    await model.close();
    rmSync(temp, { recursive: true, force: true });
  }
});
