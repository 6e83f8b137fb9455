/**
 * End to end, like an annotator keeping three agents on track: real VS Code (code-server) in
 * Chromium. Three runs of one task are sampled from the panel, the run asking a question comes
 * to the top of the live runs list, `j` opens it, a hint goes to it alone, and another run's
 * result is adopted after the multi-diff preview.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel } from '../fixtures/panelSession';

const HINT = 'Use SQLite, it is already installed.';

/** The working copy a request came from: the system prompt names the workspace root. */
const copyOf = (request: RecordedRequest) => /The workspace root is (\S+?);/.exec(request.messages[0].content)?.[1] ?? '';

test('an annotator samples three runs, goes to the one that needs them, hints it alone and adopts another', { timeout: 300_000 }, async () => {
  const turns = new Map<string, number>();
  // Copy 2 asks a question, then works slowly; the others write a file of their own and finish.
  const reply = (request: RecordedRequest): ScriptedReply => {
    const copy = copyOf(request);
    const turn = (turns.get(copy) ?? 0) + 1;
    turns.set(copy, turn);
    const name = path.basename(copy);
    if (name === '2') {
      if (turn === 1) return { content: 'Which database should I use?', delayMs: 300 };
      if (turn < 5) return { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 2500 };
      return { toolCall: { name: 'finish', arguments: { summary: 'done' } } };
    }
    if (turn === 1) return { toolCall: { name: 'write_file', arguments: { path: `from-run-${name}.txt`, content: `written by run ${name}\n` } }, delayMs: 1500 };
    return { toolCall: { name: 'finish', arguments: { summary: 'done' } }, delayMs: 1500 };
  };
  const model = await startScriptedModelServer([], { fallback: reply });
  const runsPath = mkdtempSync(path.join(os.tmpdir(), 'apollo-e2e-runs-'));
  const session = await openPanel({
    viewport: { width: 1280, height: 900 },
    settings: { 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model', 'apollo.attention.notify': false, 'apollo.runsPath': runsPath },
  });
  const { page, panel, workspace, resultsDir } = session;
  try {
    await panel.getByRole('textbox', { name: 'Task' }).fill('Write a file of your own.');
    await panel.getByRole('button', { name: 'Sample runs' }).click();
    // VS Code asks how many, proposing apollo.sample.count (3).
    const quickInput = page.locator('.quick-input-widget');
    await quickInput.getByText(/How many runs of this task/).waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');

    const live = panel.getByRole('list', { name: 'Live runs' });
    await live.getByRole('listitem').nth(2).waitFor({ timeout: 60_000 });
    // The run asking a question comes to the top.
    await live
      .getByRole('listitem')
      .first()
      .getByText(/the agent asks: Which database/)
      .waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(resultsDir, 'sample-live-runs.png') });

    // `j` opens the run that needs the annotator most.
    await panel
      .getByText(/^Live runs/)
      .first()
      .click();
    await page.keyboard.press('j');
    await live.getByRole('listitem').filter({ hasText: 'Run 2 of 3' }).getByText('open', { exact: true }).waitFor({ timeout: 30_000 });
    await panel.getByRole('textbox', { name: 'Hint' }).fill(HINT);
    await panel.getByRole('button', { name: 'Send hint' }).click();
    await panel
      .getByText(/reached step \d+/)
      .first()
      .waitFor({ timeout: 60_000 });

    // Every run ends; the two that wrote a file can be adopted.
    await live
      .getByRole('button', { name: /^Adopt run/ })
      .nth(1)
      .waitFor({ timeout: 90_000 });
    await live.getByRole('button', { name: 'Adopt run 1' }).click();
    const preview = panel.getByRole('region', { name: 'Adopt preview' });
    await preview.getByText('from-run-1.txt').first().waitFor({ timeout: 30_000 });
    // VS Code's multi-diff editor shows the change before anything is written.
    await page.locator('.tabs-container .tab', { hasText: 'Adopt run' }).first().waitFor({ timeout: 30_000 });
    assert.equal(existsSync(path.join(workspace, 'from-run-1.txt')), false, 'the preview writes nothing');
    await page.screenshot({ path: path.join(resultsDir, 'sample-adopt-preview.png') });
    await preview.getByRole('button', { name: 'Confirm adopt' }).click();
    await panel
      .getByText(/Adopted run/)
      .first()
      .waitFor({ timeout: 30_000 });
    assert.equal(readFileSync(path.join(workspace, 'from-run-1.txt'), 'utf8'), 'written by run 1\n');
    assert.equal(existsSync(path.join(workspace, 'from-run-3.txt')), false, 'only the adopted run reached the workspace');

    // The hint reached the run it was sent to, and no other.
    const withHint = model.requests.filter((request) => JSON.stringify(request.messages).includes(HINT));
    assert.ok(withHint.length > 0);
    assert.deepEqual([...new Set(withHint.map((request) => path.basename(copyOf(request))))], ['2']);
  } finally {
    await session.close();
    await model.close();
    rmSync(runsPath, { recursive: true, force: true });
  }
});
