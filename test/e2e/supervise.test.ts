/**
 * End to end, like an annotator supervising a run: real VS Code (code-server) in Chromium, the
 * Intervention panel driven by its accessible names — Pause, Resume, Stop, the step detail,
 * the attention bar, the rewind preview, the runs list — and screenshots in the dark, light and
 * high-contrast themes (switched through the color theme picker), saved to test-results/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel } from '../fixtures/panelSession';

const INJECTED = '<script>window.__apolloInjected = true</script><img src=x onerror="window.__apolloInjected = true">';

test('an annotator pauses, resumes and stops a run, reads a step, follows the attention flag and rewinds, in three themes', { timeout: 300_000 }, async () => {
  const failing = (code: number) => ({ toolCall: { name: 'run_command', arguments: { command: `echo failing; exit ${code}` } }, delayMs: 300 });
  const model = await startScriptedModelServer(
    [
      { content: `I will write the notes. ${INJECTED}`, toolCall: { name: 'write_file', arguments: { path: 'notes/plan.md', content: '# plan\n' } }, delayMs: 500 },
      failing(1),
      failing(2),
      failing(3),
      { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 2500 },
      { toolCall: { name: 'list_dir', arguments: { path: 'notes' } }, delayMs: 2500 },
      { toolCall: { name: 'read_file', arguments: { path: 'notes/plan.md' } }, delayMs: 4000 },
    ],
    { fallback: { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 4000 } },
  );
  const session = await openPanel({
    viewport: { width: 1280, height: 900 },
    settings: { 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model', 'apollo.attention.notify': false },
  });
  const { page, panel, workspace, resultsDir } = session;
  try {
    const status = panel.getByRole('status').first();
    const timeline = panel.getByRole('list', { name: 'Timeline' });

    await panel.getByRole('textbox', { name: 'Task' }).fill('Write the plan, then check the build.');
    await panel.getByRole('button', { name: 'Start run' }).click();

    // Three failures in a row: the attention bar offers the flagged step.
    await panel.getByRole('button', { name: 'Next flagged step' }).waitFor({ timeout: 60_000 });
    await panel.getByText(/1 step needs attention/).waitFor({ timeout: 30_000 });
    await panel.getByRole('button', { name: 'Next flagged step' }).click();
    const flagged = timeline.getByRole('listitem', { name: /^Step 4\b/ });
    await flagged.waitFor({ timeout: 10_000 });

    // Pause takes effect after the step in flight; Resume goes on; Stop ends the run.
    await panel.getByRole('button', { name: 'Pause' }).click();
    await status.getByText(/^paused · /).waitFor({ timeout: 30_000 });
    await panel.getByRole('button', { name: 'Resume' }).click();
    await status.getByText(/^running · /).waitFor({ timeout: 30_000 });
    await panel.getByRole('button', { name: 'Stop' }).click();
    await status.getByText(/^stopped · /).waitFor({ timeout: 30_000 });

    // The step's detail shows the model's text as text: nothing it holds runs.
    await timeline.getByRole('listitem').first().locator('.step-head').click();
    const detail = panel.getByRole('region', { name: 'Step detail' });
    await detail.getByText(INJECTED, { exact: false }).first().waitFor({ timeout: 10_000 });
    const frame = page.frames().find((candidate: { name(): string; url(): string }) => candidate.name() === 'active-frame' || candidate.url().includes('fake.html'));
    if (frame) assert.equal(await frame.evaluate(() => (globalThis as { __apolloInjected?: boolean }).__apolloInjected ?? false), false);
    assert.equal(await detail.locator('img').count(), 0, 'no element was made from the model text');
    await page.screenshot({ path: path.join(resultsDir, 'supervise-detail.png') });
    await detail.getByRole('button', { name: 'Close' }).click();

    // Open diff shows what the step changed in VS Code's diff editor.
    await timeline.getByRole('listitem').first().getByRole('button', { name: 'Open diff' }).click();
    await page.locator('.tabs-container .tab', { hasText: 'plan.md (step 1)' }).first().waitFor({ timeout: 30_000 });

    // Rewind to here asks first, saying what will change on disk.
    await timeline.getByRole('listitem').first().getByRole('button', { name: 'Rewind to here' }).click();
    const preview = panel.getByRole('region', { name: 'Rewind preview' });
    await preview.getByText('notes/plan.md').first().waitFor({ timeout: 30_000 });
    assert.equal(existsSync(path.join(workspace, 'notes', 'plan.md')), true, 'the preview changes nothing');
    await preview.getByRole('button', { name: 'Confirm rewind' }).click();
    await panel
      .getByText(/Rewound to before step 1/)
      .first()
      .waitFor({ timeout: 30_000 });
    assert.equal(existsSync(path.join(workspace, 'notes', 'plan.md')), false);
    await timeline.getByText('abandoned').first().waitFor({ timeout: 10_000 });

    // The runs list names the run.
    await panel.getByText('Runs', { exact: true }).first().click();
    const runs = panel.getByRole('list', { name: 'Runs' });
    await runs
      .getByText(/Write the plan/)
      .first()
      .waitFor({ timeout: 10_000 });
    // Opened from the list, the rewound run waits to go on from the rewind: Resume, not Pause or Stop.
    await runs.getByRole('button', { name: 'Open' }).first().click();
    await status.getByText(/^paused · 5 steps/).waitFor({ timeout: 10_000 });
    assert.equal(await panel.getByRole('button', { name: 'Resume', exact: true }).first().isDisabled(), false);
    assert.equal(await panel.getByRole('button', { name: 'Stop', exact: true }).isDisabled(), true);

    for (const [theme, file] of [
      ['Dark Modern', 'supervise-dark.png'],
      ['Light Modern', 'supervise-light.png'],
      ['Dark High Contrast', 'supervise-high-contrast.png'],
    ] as const) {
      // Through the color theme picker, as a person would; each step waits for what it needs.
      const quickInput = page.locator('.quick-input-widget');
      // Ctrl+K Ctrl+T: "Preferences: Color Theme".
      await page.keyboard.press('Control+K');
      await page.keyboard.press('Control+T');
      await quickInput.waitFor({ state: 'visible', timeout: 15_000 });
      // The picker replaces the command list with the installed themes.
      await page.waitForTimeout(1500);
      await page.keyboard.type(theme);
      await quickInput.locator('.monaco-list-row', { hasText: theme }).first().waitFor({ timeout: 15_000 });
      await page.waitForTimeout(300);
      await page.keyboard.press('Enter');
      const kind = theme.includes('High Contrast') ? 'hc-black' : theme.includes('Light') ? 'vs' : 'vs-dark';
      await page.locator(`.monaco-workbench.${kind}`).waitFor({ timeout: 30_000 });
      await page.waitForTimeout(1000);
      await page.screenshot({ path: path.join(resultsDir, file) });
    }

    const runsDir = session.runsDir();
    const [runId] = readdirSync(runsDir);
    const events = readFileSync(path.join(runsDir, runId, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as DatasetEvent);
    const states = events.filter((event) => event.type === 'run_state').map((event) => event.type === 'run_state' && event.state);
    assert.deepEqual(states.slice(0, 2), ['paused', 'resumed']);
    assert.ok(events.some((event) => event.type === 'run_ended' && event.status === 'stopped'));
    assert.ok(events.some((event) => event.type === 'rewind' && event.toStep === 1));
  } finally {
    await session.close();
    await model.close();
  }
});
