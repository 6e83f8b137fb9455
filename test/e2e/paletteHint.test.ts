/**
 * End to end: a hint sent from the command palette in one input box, as an annotator would —
 * once with its kind and urgency typed as prefixes, once chosen through the box's Options…
 * button — reaches the run with that kind and urgency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { openPanel } from '../fixtures/panelSession';

async function hintEvents(datasetPath: string): Promise<DatasetEvent[]> {
  const runsDir = path.join(datasetPath, 'runs');
  const [runId] = readdirSync(runsDir);
  if (!runId) return [];
  return readFileSync(path.join(runsDir, runId, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DatasetEvent)
    .filter((event) => event.type === 'hint_queued');
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** F1, the command's title, Enter: the hint's input box is up. */
async function openInjectHint(page: Page) {
  const quickInput = page.locator('.quick-input-widget');
  await page.keyboard.press('F1');
  await quickInput.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.type('Apollo: Inject Hint');
  await quickInput.locator('.monaco-list-row', { hasText: 'Apollo: Inject Hint' }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  // The placeholder explains the prefixes.
  await quickInput.locator('input[placeholder*="for its kind (knowledge by default)"]').waitFor({ timeout: 15_000 });
  return quickInput;
}

test('a hint from the command palette goes in one step, kind and urgency typed or chosen', { timeout: 240_000 }, async () => {
  const model = await startScriptedModelServer([], { fallback: { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 1500 } });
  const datasetPath = mkdtempSync(path.join(os.tmpdir(), 'apollo-e2e-dataset-'));
  const session = await openPanel({
    viewport: { width: 1280, height: 900 },
    settings: { 'apollo.baseUrl': model.baseUrl, 'apollo.model': 'scripted-model', 'apollo.attention.notify': false, 'apollo.datasetPath': datasetPath, 'apollo.maxSteps': 200 },
  });
  const { page, panel, resultsDir } = session;
  try {
    await panel.getByRole('textbox', { name: 'Task' }).fill('List the files, again and again.');
    await panel.getByRole('button', { name: 'Start run' }).click();
    await panel
      .getByRole('status')
      .first()
      .getByText(/^running · /)
      .waitFor({ timeout: 60_000 });

    // Typed prefixes: a strategy hint that interrupts now.
    let quickInput = await openInjectHint(page);
    await page.keyboard.type('strategy: ! look at the notes folder first');
    await quickInput.getByText(/A strategy hint .*delivered now/).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(resultsDir, 'palette-hint-prefix.png') });
    await page.keyboard.press('Enter');
    await until('the first hint', async () => (await hintEvents(datasetPath)).length === 1 || undefined);

    // Options…: a correction for the next step, the text kept while choosing.
    quickInput = await openInjectHint(page);
    await page.keyboard.type('you listed the same folder twice');
    await quickInput.getByRole('button', { name: /^Options/ }).click();
    await quickInput.locator('.monaco-list-row', { hasText: 'correction' }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.type('correction');
    await page.keyboard.press('Enter');
    await quickInput.getByText(/A correction hint .*at the next step/).waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');

    const hints = await until('both hints', async () => {
      const found = await hintEvents(datasetPath);
      return found.length === 2 ? found : undefined;
    });
    const summary = hints.map((event) => event.type === 'hint_queued' && { text: event.text, kind: event.kind, urgency: event.urgency, source: event.source });
    assert.deepEqual(summary, [
      { text: 'look at the notes folder first', kind: 'strategy', urgency: 'now', source: 'human' },
      { text: 'you listed the same folder twice', kind: 'correction', urgency: 'next', source: 'human' },
    ]);
    await panel.getByRole('button', { name: 'Stop' }).click();
    await panel
      .getByRole('status')
      .first()
      .getByText(/^stopped · /)
      .waitFor({ timeout: 30_000 });
  } finally {
    await session.close();
    await model.close();
  }
});
