import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { DatasetStore } from '../../src/core/dataset/store';
import { stepGrounding, type StepEvent } from '../../src/core/dataset/events';
import { exportDataset } from '../../src/core/export/exportDataset';
import { assistantMessage, validateChat } from '../../src/core/export/chat';
import { NO_TOOL_CALL_NUDGE } from '../../src/core/agent/prompt';
import { filePatch, runStarted, step, writeRun } from '../fixtures/trajectories';
import { harborAtifErrors } from '../fixtures/atifValidator';

const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schemas', 'openai-chat-finetune.schema.json'), 'utf8'));
const validateOpenAiLine = new Ajv2020().compile<any>(schema);

const RUN = 'run-reasoning';
const CUT_NOTE = 'Your reply was cut by the output limit while this call was being written; it was not run.';

/** Step 2 runs two calls: writes a.txt, then b.txt, each with its own diff. */
function twoCallStep(): StepEvent {
  const a = filePatch('a.txt', [], ['a']);
  const b = filePatch('b.txt', [], ['b']);
  const base = step(2, { tool: 'write_file', args: { path: 'a.txt', content: 'a\n' }, observation: 'Wrote a.txt', reasoning: 'Two files are missing; write both.', ...a });
  const second = { id: 'call_2b', name: 'write_file', arguments: JSON.stringify({ path: 'b.txt', content: 'b\n' }) };
  return {
    ...base,
    assistant: { ...base.assistant, toolCalls: [...base.assistant.toolCalls, second] },
    moreActions: [{ action: second, observation: 'Wrote b.txt', isError: false, grounding: { before: 'after2', after: 'after2b', ...b }, toolMs: 1 }],
  };
}

/** Step 3's reply was cut while its call was written: nothing ran, the model was told why. */
function truncatedStep(): StepEvent {
  const base = step(3, { tool: null, thought: 'Now the third file.', reasoning: 'c.txt is next.' });
  const cut = { id: 'call_3', name: 'write_file', arguments: '{"path": "c.t' };
  return { ...base, assistant: { ...base.assistant, toolCalls: [cut], truncated: true }, skippedToolCalls: [{ id: cut.id, content: CUT_NOTE }] };
}

let dir: string;
let store: DatasetStore;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-reasoning-'));
  store = new DatasetStore(dir);
  await writeRun(store, RUN, [
    runStarted(RUN, 'Create a.txt, b.txt and c.txt'),
    step(1, { reasoning: 'I should read the README before writing anything.' }),
    twoCallStep(),
    truncatedStep(),
    step(4, { tool: 'finish', args: { summary: 'done' }, thought: '' }),
  ]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (file: string): any[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

test('a step that ran several calls has one grounding covering them all, in call order', () => {
  const grounding = stepGrounding(twoCallStep());
  assert.deepEqual(
    grounding.files.map((file) => file.path),
    ['a.txt', 'b.txt'],
  );
  assert.equal(grounding.before, 'before2');
  assert.equal(grounding.after, 'after2b');
  assert.ok(grounding.patch.indexOf('+++ b/a.txt') < grounding.patch.indexOf('+++ b/b.txt'));
  const single = step(1);
  assert.equal(stepGrounding(single), single.grounding, 'a one-call step keeps its own');
  const again = twoCallStep();
  again.moreActions![0].grounding = { before: 'after2', after: 'x', ...filePatch('a.txt', ['a'], []) };
  const merged = stepGrounding(again);
  assert.deepEqual(merged.files, [{ path: 'a.txt', status: 'deleted', additions: 1, deletions: 1, binary: false }], 'a file two calls changed is listed once');
});

test('openai: reasoning has no field in the fine-tuning schema and stays out; every line stays valid', async () => {
  const file = path.join(dir, 'openai.jsonl');
  const summary = await exportDataset(store, { format: 'openai', out: file });
  assert.deepEqual(summary.skipped, []);
  const [line] = readJsonl(file);
  assert.ok(validateOpenAiLine(line), JSON.stringify(validateOpenAiLine.errors));
  assert.doesNotMatch(JSON.stringify(line), /reasoning|c\.txt is next/);
  const roles = line.messages.map((message: { role: string }) => message.role);
  // Step 2: two calls, two results; step 3: the cut call answered with why it was not run.
  assert.deepEqual(roles, ['system', 'user', 'assistant', 'tool', 'assistant', 'tool', 'tool', 'assistant', 'tool', 'assistant', 'tool']);
  assert.deepEqual(
    line.messages.slice(5, 7).map((message: { content: string }) => message.content),
    ['Wrote a.txt', 'Wrote b.txt'],
  );
  assert.equal(line.messages[8].content, CUT_NOTE);
  assert.equal(line.messages[8].tool_call_id, 'call_3');
});

test('hf: assistant messages carry reasoning_content (null when none), every message the same keys', async () => {
  const folder = path.join(dir, 'hf');
  await exportDataset(store, { format: 'hf', out: folder });
  const [row] = readJsonl(path.join(folder, 'data', 'train.jsonl'));
  assert.equal(new Set(row.messages.map((message: object) => Object.keys(message).sort().join(','))).size, 1);
  const assistants = row.messages.filter((message: { role: string }) => message.role === 'assistant');
  assert.deepEqual(
    assistants.map((message: { reasoning_content: string | null }) => message.reasoning_content),
    ['I should read the README before writing anything.', 'Two files are missing; write both.', 'c.txt is next.', null],
  );
  assert.ok(row.messages.filter((message: { role: string }) => message.role !== 'assistant').every((message: { reasoning_content: unknown }) => message.reasoning_content === null));
  // The turn's visible text stays apart from its reasoning.
  assert.equal(assistants[2].content, 'Now the third file.');
  assert.match(readFileSync(path.join(folder, 'README.md'), 'utf8'), /`reasoning_content`/);
});

test("atif: reasoning in the agent step's reasoning_content; one diff for all the calls of a step; a cut step has its calls and their reasons", async () => {
  const folder = path.join(dir, 'atif');
  const summary = await exportDataset(store, { format: 'atif', out: folder });
  assert.deepEqual(summary.skipped, [], 'the documents pass the validator');
  assert.deepEqual(readdirSync(folder), [`${RUN}.json`]);
  const document = JSON.parse(readFileSync(path.join(folder, `${RUN}.json`), 'utf8'));
  assert.deepEqual(harborAtifErrors(document), []);
  assert.deepEqual(
    document.steps.map((entry: { source: string }) => entry.source),
    ['system', 'user', 'agent', 'agent', 'agent', 'agent'],
    'no nudge after a step whose calls were answered',
  );
  const [first, second, third, fourth] = document.steps.slice(2);
  assert.equal(first.reasoning_content, 'I should read the README before writing anything.');
  assert.equal(second.reasoning_content, 'Two files are missing; write both.');
  assert.equal('reasoning_content' in fourth, false, 'absent when the model gave none');
  for (const entry of document.steps.filter((candidate: { source: string }) => candidate.source !== 'agent')) assert.equal('reasoning_content' in entry, false);

  assert.deepEqual(
    second.tool_calls.map((call: { tool_call_id: string }) => call.tool_call_id),
    ['call_2', 'call_2b'],
  );
  assert.deepEqual(second.observation.results, [
    { source_call_id: 'call_2', content: 'Wrote a.txt' },
    { source_call_id: 'call_2b', content: 'Wrote b.txt' },
  ]);
  assert.deepEqual(
    second.extra.apollo.diff.files.map((file: { path: string }) => file.path),
    ['a.txt', 'b.txt'],
  );
  assert.match(second.extra.apollo.diff.patch, /\+\+\+ b\/a\.txt[\s\S]*\+\+\+ b\/b\.txt/);

  assert.equal(third.message, 'Now the third file.');
  assert.deepEqual(third.tool_calls, [{ tool_call_id: 'call_3', function_name: 'write_file', arguments: { raw: '{"path": "c.t' } }]);
  assert.deepEqual(third.observation.results, [{ source_call_id: 'call_3', content: CUT_NOTE }]);
  assert.equal(third.extra.apollo.truncated, true);
  assert.deepEqual(third.extra.apollo.diff, { files: [], patch: '' });
});

test("sharegpt: no place for reasoning; a step's executed calls are one function_call list; a cut step is its text and what the model was told", async () => {
  const file = path.join(dir, 'sharegpt.jsonl');
  const summary = await exportDataset(store, { format: 'sharegpt', out: file });
  assert.deepEqual(summary.skipped, []);
  const [record] = readJsonl(file);
  assert.doesNotMatch(JSON.stringify(record), /README before writing|write both|c\.txt is next/);
  const turns = record.conversations;
  assert.deepEqual(
    turns.map((turn: { from: string }) => turn.from),
    ['human', 'function_call', 'observation', 'function_call', 'observation', 'gpt', 'human', 'function_call'],
  );
  assert.deepEqual(JSON.parse(turns[3].value), [
    { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } },
    { name: 'write_file', arguments: { path: 'b.txt', content: 'b\n' } },
  ]);
  assert.equal(turns[4].value, 'Wrote a.txt\n\nWrote b.txt');
  assert.equal(turns[5].value, 'Now the third file.');
  assert.equal(turns[6].value, CUT_NOTE);
  assert.notEqual(turns[6].value, NO_TOOL_CALL_NUDGE);
});

test("the chat form keeps a turn's reasoning and looks for secret shapes in it", () => {
  const message = assistantMessage(twoCallStep(), 1);
  assert.equal(message.role === 'assistant' && message.reasoning_content, 'Two files are missing; write both.');
  const leaked = { ...twoCallStep(), assistant: { ...twoCallStep().assistant, reasoning: `the key is ghp_${'a1B2'.repeat(9)}` } };
  const problems = validateChat([assistantMessage(leaked)], { completion: true });
  assert.match(problems.join('\n'), /secret shape \(github\)/, 'secret shapes are looked for in the reasoning too');
});
