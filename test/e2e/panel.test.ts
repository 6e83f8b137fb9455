/**
 * End to end, like a person: real VS Code (code-server) in Chromium, the Intervention panel
 * driven by its accessible names, a scripted model server on 127.0.0.1, the dataset checked on
 * disk afterwards. Saves a screenshot to test-results/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel, ROOT } from '../fixtures/panelSession';

const FIXED_CONVERT = `"""Temperature conversions."""


def celsius_to_fahrenheit(celsius: float) -> float:
    return celsius * 9 / 5 + 32


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    return (fahrenheit - 32) * 5 / 9
`;

const REASONING = 'The failing test is about temperatures, so the formulas in convert.py come first.';

function readRunEvents(runs: string): DatasetEvent[] {
  const [runId] = readdirSync(runs);
  return readFileSync(path.join(runs, runId, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DatasetEvent);
}

test('the Intervention panel runs a task, takes a hint mid-run, labels a step and shows its reasoning', { timeout: 240_000 }, async () => {
  const model = await startScriptedModelServer([
    { content: 'Let me look at the code first.', reasoning: REASONING, toolCall: { name: 'read_file', arguments: { path: 'convert.py' } }, delayMs: 1500 },
    { toolCall: { name: 'run_command', arguments: { command: 'python3 -m unittest discover -s tests 2>&1 | tail -3' } }, delayMs: 3000 },
    { content: 'The hint says operator precedence; parenthesize.', toolCall: { name: 'write_file', arguments: { path: 'convert.py', content: FIXED_CONVERT } }, delayMs: 1500 },
    { toolCall: { name: 'run_command', arguments: { command: 'python3 -m unittest discover -s tests 2>&1 | tail -3' } }, delayMs: 1500 },
    { toolCall: { name: 'finish', arguments: { summary: 'Fixed fahrenheit_to_celsius; tests pass.' } }, delayMs: 1000 },
  ]);
  const session = await openPanel({
    viewport: { width: 1280, height: 860 },
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model' },
  });
  const { page, panel, workspace, resultsDir } = session;
  try {
    await panel.getByRole('textbox', { name: 'Task' }).fill('Make the tests pass without changing the tests.');
    await panel.getByRole('button', { name: 'Start run' }).click();

    const timeline = panel.getByRole('list', { name: 'Timeline' });
    await timeline.getByRole('listitem').first().waitFor({ timeout: 30_000 });

    // Step 1 is on screen and the agent is thinking about step 2: send a hint without pausing it.
    await panel.getByRole('textbox', { name: 'Hint' }).fill('The bug is in the order of operations.');
    await panel.getByRole('button', { name: 'Send hint' }).click();
    await panel.getByText(/Hint delivered at step \d+/).waitFor({ timeout: 30_000 });
    const midRun = path.join(resultsDir, 'panel-mid-run.png');
    await page.screenshot({ path: midRun });
    if (process.env.APOLLO_UPDATE_SCREENSHOT === '1') copyFileSync(midRun, path.join(ROOT, 'media', 'screenshot-panel.png'));

    await timeline.getByRole('listitem').nth(4).waitFor({ timeout: 60_000 });
    await panel.getByText(/^finished · 5 steps/).waitFor({ timeout: 30_000 });
    await timeline.getByRole('listitem').nth(1).getByRole('button', { name: 'Mark bad' }).click();
    // The label is recorded at the click; a reason can follow.
    await panel.getByRole('textbox', { name: 'Reason for step 2' }).fill('It piped the tests into tail and lost the exit code.');
    await panel.getByRole('textbox', { name: 'Reason for step 2' }).press('Enter');
    await timeline.getByRole('listitem').nth(2).getByRole('button', { name: 'Mark good' }).click();
    // Both the click and the reason are recorded, the latter as the same verdict with its why; the badge shows the latest.
    await panel.getByTitle('It piped the tests into tail and lost the exit code.').waitFor({ timeout: 10_000 });
    assert.equal(await panel.getByText('bad · human').count(), 1);
    await panel.getByText('good · human').waitFor({ timeout: 10_000 });
    assert.equal(await timeline.getByRole('button', { name: 'Rewind to here' }).count(), 5, 'every step offers a rewind');

    await page.screenshot({ path: path.join(resultsDir, 'panel-finished.png') });

    // Step 1's detail: the model's reasoning is there, collapsed until the annotator opens it.
    await timeline.getByRole('listitem').first().locator('.step-head').click();
    const stepDetail = panel.getByRole('region', { name: 'Step detail' });
    const reasoning = stepDetail.getByRole('group', { name: 'Reasoning' });
    await reasoning.waitFor({ timeout: 10_000 });
    assert.equal(await reasoning.getAttribute('open'), null, 'collapsed by default');
    assert.equal(await stepDetail.getByText(REASONING).isVisible(), false);
    await reasoning.getByText('Reasoning', { exact: true }).click();
    await stepDetail.getByText(REASONING).waitFor({ state: 'visible', timeout: 5_000 });
    await stepDetail.getByText('Let me look at the code first.').waitFor();
    await page.screenshot({ path: path.join(resultsDir, 'panel-reasoning.png') });

    // The dataset on disk holds the whole story.
    const events = readRunEvents(session.runsDir());
    const delivered = events.find((event) => event.type === 'hint_delivered');
    assert.ok(delivered, 'a hint_delivered event');
    const hintText = '[Hint from the annotator (knowledge)]: The bug is in the order of operations.';
    const carrying = model.requests.findIndex((request) => request.messages.some((message: { content: unknown }) => message.content === hintText));
    assert.equal(carrying + 1, delivered.step, 'the hint was in the request of the step it was delivered at');
    const labels = events.filter((event) => event.type === 'label');
    assert.deepEqual(
      labels.map((event) => [event.step, event.label, event.source, event.reason ?? null]),
      [
        [2, 'bad', 'human', null],
        [2, 'bad', 'human', 'It piped the tests into tail and lost the exit code.'],
        [3, 'good', 'human', null],
      ],
    );
    const first = events.find((event) => event.type === 'step' && event.step === 1);
    assert.ok(first?.type === 'step');
    assert.equal(first.assistant.reasoning, REASONING, 'the reasoning is recorded apart from the visible text');
    assert.equal(first.assistant.content, 'Let me look at the code first.');
    const write = events.find((event) => event.type === 'step' && event.action?.name === 'write_file');
    assert.ok(write?.type === 'step' && write.grounding.files.some((file) => file.path === 'convert.py'));
    assert.equal(readFileSync(path.join(workspace, 'convert.py'), 'utf8'), FIXED_CONVERT);
  } finally {
    await session.close();
    await model.close();
  }
});
