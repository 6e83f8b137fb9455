/**
 * Changes made outside the agent are context, never trained on: the model was not told of them,
 * so no chat format holds them (least of all as an assistant turn), and ATIF keeps them in the
 * step's `extra.apollo.external_changes`, apart from the agent's `diff`. A mixed step says so.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatasetEvent, ExternalChangeEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { EXPORT_FORMATS, exportDataset, FOLDER_FORMATS } from '../../src/core/export/exportDataset';
import { harborAtifErrors } from '../fixtures/atifValidator';
import { filePatch, rewind, runStarted, step, tick, writeRun } from '../fixtures/trajectories';

const THOUGHT_EDIT = 'edited-while-the-model-thought';
const BETWEEN_EDIT = 'edited-between-steps';
const RUN = 'run-external';

function external(stepNumber: number, phase: ExternalChangeEvent['phase'], file: string, line: string): ExternalChangeEvent {
  return { type: 'external_change', time: tick(), step: stepNumber, ...(phase ? { phase } : {}), grounding: { before: `x${stepNumber}`, after: `y${stepNumber}`, ...filePatch(file, [], [line]) } };
}

let dir: string;
let store: DatasetStore;

/**
 * Step 1 writes a.txt; the user edits notes.md while the model thinks about step 2, which runs a
 * command while the user saves b.txt in an editor (mixed); step 3 finishes. The run is rewound to
 * before step 2 and goes on with step 4 (the user had edited c.txt between steps) and step 5.
 */
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-export-external-'));
  store = new DatasetStore(path.join(dir, 'dataset'));
  const mixed = step(2, { tool: 'run_command', args: { command: 'make' }, observation: '[exit code 0]', ...filePatch('b.txt', [], ['saved in an editor']) });
  mixed.grounding.mixed = { files: ['b.txt'] };
  mixed.requestSnapshot = 'x2';
  const events: DatasetEvent[] = [
    runStarted(RUN),
    step(1, { tool: 'write_file', args: { path: 'a.txt', content: 'a' }, ...filePatch('a.txt', [], ['a']) }),
    external(2, 'during_request', 'notes.md', THOUGHT_EDIT),
    mixed,
    step(3, { tool: 'finish', args: { summary: 'done' } }),
    rewind(2, 'b1', 1),
    external(4, 'before_request', 'c.txt', BETWEEN_EDIT),
    step(4, { tool: 'write_file', args: { path: 'd.txt', content: 'd' }, branch: 'b1', parentStep: 1, ...filePatch('d.txt', [], ['d']) }),
    step(5, { tool: 'finish', args: { summary: 'done again' }, branch: 'b1', parentStep: 4 }),
  ];
  await writeRun(store, RUN, events);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Every file an export wrote, read as text. */
function outputText(out: string): string {
  if (!statSync(out).isDirectory()) return readFileSync(out, 'utf8');
  return readdirSync(out, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name), 'utf8'))
    .join('\n');
}

test('no chat format holds a change made outside the agent, in any turn: the model never saw it', async () => {
  for (const format of EXPORT_FORMATS.filter((candidate) => candidate !== 'atif')) {
    const out = path.join(dir, FOLDER_FORMATS.includes(format) ? `out-${format}` : `out-${format}.jsonl`);
    const summary = await exportDataset(store, { format, out, branches: 'all' });
    assert.ok(summary.records > 0, `${format} wrote something`);
    const text = outputText(out);
    assert.doesNotMatch(text, new RegExp(THOUGHT_EDIT), format);
    assert.doesNotMatch(text, new RegExp(BETWEEN_EDIT), format);
  }
});

test("atif: external changes sit in the step's extra.apollo.external_changes with their phase, never in its diff; a mixed diff names the saved files", async () => {
  const out = path.join(dir, 'out-atif');
  await exportDataset(store, { format: 'atif', out, branches: 'all' });
  const documents = readdirSync(out).map((file) => JSON.parse(readFileSync(path.join(out, file), 'utf8')));
  for (const document of documents) assert.deepEqual(harborAtifErrors(document), []);
  const agentSteps = documents.flatMap((document) => document.steps.filter((entry: { source: string }) => entry.source === 'agent'));
  const byStep = (number: number) => agentSteps.find((entry: { extra: { apollo: { step: number } } }) => entry.extra.apollo.step === number);

  const second = byStep(2).extra.apollo;
  assert.deepEqual(
    second.external_changes.map((change: { phase: string; files: { path: string }[] }) => [change.phase, change.files.map((file) => file.path)]),
    [['during_request', ['notes.md']]],
  );
  assert.match(second.external_changes[0].patch, new RegExp(THOUGHT_EDIT));
  assert.deepEqual(
    second.diff.files.map((file: { path: string }) => file.path),
    ['b.txt'],
  );
  assert.deepEqual(second.diff.mixed, { files: ['b.txt'] });
  const fourth = byStep(4).extra.apollo;
  assert.deepEqual(
    fourth.external_changes.map((change: { phase: string }) => change.phase),
    ['before_request'],
  );
  assert.equal(fourth.diff.mixed, undefined);
  assert.equal(byStep(1).extra.apollo.external_changes, undefined);
  // Nowhere but there: not in any message, observation or diff of the agent.
  for (const entry of agentSteps) {
    const { external_changes: _kept, ...rest } = entry.extra.apollo;
    const shown = JSON.stringify({ ...entry, extra: { apollo: rest } });
    assert.doesNotMatch(shown, new RegExp(`${THOUGHT_EDIT}|${BETWEEN_EDIT}`));
  }
});
