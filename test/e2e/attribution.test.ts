/**
 * End to end, like a person: while a command of the agent runs, the annotator edits README.md in
 * the editor and saves it; while the model thinks about the next step, a file changes on disk.
 * The panel shows the first step as mixed and the change outside the agent as its own line, both
 * in words a screen reader reads. Saves a screenshot to test-results/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { ReplyGate, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel } from '../fixtures/panelSession';

const WAITING_COMMAND = 'touch started.flag; for i in $(seq 1200); do [ -e go.flag ] && break; sleep 0.05; done; rm -f started.flag go.flag; echo done';

async function until(what: string, probe: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("the panel says which changes were not the agent's: a save in the editor during an action, an edit while the model thinks", { timeout: 240_000 }, async () => {
  const thinking = new ReplyGate();
  const model = await startScriptedModelServer([
    { toolCall: { name: 'run_command', arguments: { command: WAITING_COMMAND } } },
    { toolCall: { name: 'write_file', arguments: { path: 'agent.txt', content: 'agent\n' } }, gate: thinking },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  const session = await openPanel({
    viewport: { width: 1280, height: 860 },
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model' },
  });
  const { page, panel, workspace, resultsDir } = session;
  try {
    await panel.getByRole('textbox', { name: 'Task' }).fill('Run the build.');
    await panel.getByRole('button', { name: 'Start run' }).click();
    await until('the command to start', () => existsSync(path.join(workspace, 'started.flag')));

    // The annotator opens README.md from Quick Open, adds a line and saves, while the command runs.
    await page.keyboard.press('F1');
    // Without the command palette's ">", Quick Open looks for files.
    const quickInput = page.locator('.quick-input-box input');
    await quickInput.waitFor({ timeout: 20_000 });
    await quickInput.fill('README.md');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'README.md' }).first().click({ timeout: 20_000 });
    const editor = page.locator('.part.editor .monaco-editor .view-lines').first();
    await editor.waitFor({ timeout: 20_000 });
    await editor.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\nA note the annotator saved.\n');
    await page.keyboard.press('Control+S');
    await until('the save to reach the disk', () => readFileSync(path.join(workspace, 'README.md'), 'utf8').includes('A note the annotator saved.'), 20_000);
    await fs.writeFile(path.join(workspace, 'go.flag'), '');

    // The model thinks about step 2 until the file has changed on disk.
    await until('the second request', () => thinking.reached);
    await fs.writeFile(path.join(workspace, 'edited-outside.txt'), 'not the agent\n');
    thinking.open();

    const timeline = panel.getByRole('list', { name: 'Timeline' });
    await panel.getByText(/^finished · 3 steps/).waitFor({ timeout: 60_000 });
    const runs = session.runsDir();
    const [runId] = readdirSync(runs);
    const events = readFileSync(path.join(runs, runId, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as DatasetEvent);
    const steps = events.filter((event): event is StepEvent => event.type === 'step');
    assert.deepEqual(steps[0].grounding.mixed, { files: ['README.md'] });
    assert.deepEqual(
      steps[1].grounding.files.map((file) => file.path),
      ['agent.txt'],
    );
    await page.screenshot({ path: path.join(resultsDir, 'attribution.png') });
    const labels = await timeline.getByRole('listitem').evaluateAll((items) => items.map((item) => item.getAttribute('aria-label')));
    assert.match(String(labels[0]), /^Step 1: run_command .*, mixed: you saved README\.md during this action$/, JSON.stringify(labels));
    await panel.getByText('Mixed: you saved README.md during this action', { exact: true }).waitFor({ timeout: 10_000 });
    await panel.getByText('Changed outside the agent: edited-outside.txt', { exact: true }).waitFor({ timeout: 10_000 });
  } catch (error) {
    await page.screenshot({ path: path.join(resultsDir, 'attribution-failed.png') });
    throw error;
  } finally {
    await session.close();
    await model.close();
  }
});
