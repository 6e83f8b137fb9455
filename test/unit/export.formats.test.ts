import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fs, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { RunSession } from '../../src/core/session/runSession';
import { rewindRun } from '../../src/core/session/rewind';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { ExportCancelled, exportDataset } from '../../src/core/export/exportDataset';
import { ExportError } from '../../src/core/export/output';
import { type ChatMessage, validateChat } from '../../src/core/export/chat';
import { APOLLO_VERSION } from '../../src/core/version';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, type TempWorkspace } from '../fixtures/workspace';
import { runStarted, step, writeRun } from '../fixtures/trajectories';
import { harborAtifErrors } from '../fixtures/atifValidator';
import { TOOL_DEFINITIONS } from '../../src/core/agent/tools';

const schema = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'schemas', 'openai-chat-finetune.schema.json'), 'utf8'));
const validateOpenAiLine = new Ajv2020().compile<any>(schema);

let ws: TempWorkspace;
let out: string;
let store: DatasetStore;
let runId: string;
const HINT = 'Do not run the tests yet; write c.txt first.';

/**
 * One real run, recorded by the engine against the scripted server: step 1 writes a.txt, step 2
 * runs a failing command, step 3 writes b.txt, step 4 finishes. Step 1 is labelled good by the
 * annotator. The run is rewound to before step 2 and, with the annotator's hint, goes on with
 * step 5 (writes c.txt) and step 6 (finish).
 */
before(async () => {
  ws = makeWorkspace({ 'README.md': '# demo\n' });
  out = mkdtempSync(path.join(os.tmpdir(), 'apollo-export-'));
  const datasetDir = defaultDatasetPath(ws.dir);
  const first = await startScriptedModelServer([
    { content: 'I will create a.txt.', toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } } },
    { toolCall: { name: 'run_command', arguments: { command: 'exit 3' } } },
    { toolCall: { name: 'write_file', arguments: { path: 'b.txt', content: 'b\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  const session = await RunSession.start({ workspace: ws.dir, datasetDir, task: 'Create the files', model: 'test-model', baseUrl: first.baseUrl, apiKey: 'k-0123456789', maxSteps: 10 });
  runId = session.runId;
  await session.done;
  await first.close();
  store = new DatasetStore(datasetDir);
  await store.appendEvent(runId, { type: 'label', time: new Date().toISOString(), step: 1, label: 'good', source: 'human', reason: 'right first move' });
  await rewindRun({ datasetDir, runId, toStep: 2 });
  await store.queueHintFile(runId, { hintId: 'h1', text: HINT, kind: 'correction', source: 'cli', time: new Date().toISOString() });
  const second = await startScriptedModelServer([
    { content: 'Writing c.txt as asked.', toolCall: { name: 'write_file', arguments: { path: 'c.txt', content: 'c\n' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done differently' } } },
  ]);
  const resumed = await RunSession.resume({ datasetDir, runId, apiKey: 'k-0123456789', baseUrl: second.baseUrl });
  await resumed.done;
  await second.close();
});

after(() => {
  ws.cleanup();
  rmSync(out, { recursive: true, force: true });
});

const readJsonl = (file: string): any[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
const assistantTurns = (messages: ChatMessage[]) => messages.filter((message): message is Extract<ChatMessage, { role: 'assistant' }> => message.role === 'assistant');

test('openai: one trajectory a line that validates against the published fine-tuning schema, with weights from the labels', async () => {
  const file = path.join(out, 'openai.jsonl');
  const summary = await exportDataset(store, { format: 'openai', out: file });
  assert.deepEqual(summary.skipped, []);
  assert.equal(summary.records, 1);
  const [line] = readJsonl(file);
  assert.ok(validateOpenAiLine(line), JSON.stringify(validateOpenAiLine.errors));
  assert.deepEqual(Object.keys(line).sort(), ['messages', 'tools']);
  assert.deepEqual(validateChat(line.messages), []);
  const roles = line.messages.map((message: ChatMessage) => message.role);
  // Main line: steps 1, 5, 6 with the hint delivered in step 5's request.
  assert.deepEqual(roles, ['system', 'user', 'assistant', 'tool', 'user', 'assistant', 'tool', 'assistant', 'tool']);
  assert.match(line.messages[4].content, new RegExp(`\\[Hint from the annotator \\(correction\\)\\]: ${HINT}`));
  const assistants = assistantTurns(line.messages);
  assert.equal(assistants[0].content, 'I will create a.txt.');
  assert.equal(typeof assistants[0].tool_calls![0].function.arguments, 'string');
  assert.deepEqual(JSON.parse(assistants[1].tool_calls![0].function.arguments), { path: 'c.txt', content: 'c\n' });
  assert.deepEqual(
    assistants.map((message) => message.weight),
    [1, 1, 1],
  );
  assert.equal(line.tools.length > 5, true);
});

test('openai: abandoned branches as their own trajectories; the failed command is masked; good-only and hint omission apply', async () => {
  const file = path.join(out, 'openai-all.jsonl');
  const summary = await exportDataset(store, { format: 'openai', out: file, branches: 'all' });
  assert.equal(summary.records, 2);
  assert.equal(summary.abandonedTrajectories, 1);
  const [, abandoned] = readJsonl(file);
  assert.ok(validateOpenAiLine(abandoned));
  const calls = assistantTurns(abandoned.messages).map((message) => message.tool_calls![0].function.name);
  assert.deepEqual(calls, ['write_file', 'run_command', 'write_file', 'finish']);
  // Step 2's command failed: the rule labels it bad, so it stays as context with weight 0.
  assert.deepEqual(
    assistantTurns(abandoned.messages).map((message) => message.weight),
    [1, 0, 1, 1],
  );

  const strict = path.join(out, 'openai-good-only.jsonl');
  await exportDataset(store, { format: 'openai', out: strict, policy: 'good-only', hints: false });
  const [line] = readJsonl(strict);
  assert.deepEqual(
    assistantTurns(line.messages).map((message) => message.weight),
    [1, 0, 0],
    'only step 1 is labelled good',
  );
  assert.doesNotMatch(JSON.stringify(line), /Hint from the annotator/);
});

test('minimum quality leaves out trajectories with too many bad steps', async () => {
  const file = path.join(out, 'openai-quality.jsonl');
  const summary = await exportDataset(store, { format: 'openai', out: file, branches: 'all', minQuality: 0.9 });
  assert.equal(summary.records, 1, 'the abandoned branch has one bad step in four');
  assert.equal(summary.belowQuality, 1);
});

test('hf: a folder with a dataset card naming its splits, and rows that all share one shape', async () => {
  const folder = path.join(out, 'hf');
  const summary = await exportDataset(store, { format: 'hf', out: folder, branches: 'all' });
  assert.equal(summary.records, 2);
  const card = readFileSync(path.join(folder, 'README.md'), 'utf8');
  assert.match(card, /^---\nconfigs:\n- config_name: default\n {2}data_files:\n {2}- split: train\n {4}path: data\/train\.jsonl\n {2}- split: abandoned\n {4}path: data\/abandoned\.jsonl\n/);
  assert.match(card, /\| bad \| 1 \| 14\.3% \|/, 'one of the seven exported steps is bad');
  assert.match(card, /Mask policy `not-bad`/);
  assert.match(card, /- `test-model`/);
  const rows = [...readJsonl(path.join(folder, 'data', 'train.jsonl')), ...readJsonl(path.join(folder, 'data', 'abandoned.jsonl'))];
  const messageKeys = new Set(rows.flatMap((row) => row.messages.map((message: object) => Object.keys(message).sort().join(','))));
  assert.deepEqual([...messageKeys], ['content,reasoning_content,role,tool_call_id,tool_calls,training,weight']);
  assert.equal(new Set(rows.map((row) => Object.keys(row).sort().join(','))).size, 1);
  assert.equal(typeof rows[0].tools, 'string');
  // axolotl's per-message flag says the same as the weight.
  for (const message of rows.flatMap((row) => row.messages)) assert.equal(message.training, message.role === 'assistant' ? message.weight === 1 : null);
  assert.deepEqual(
    rows[1].steps.map((entry: { step: number; mask: number; label: string | null }) => [entry.step, entry.mask, entry.label]),
    [
      [1, 1, 'good'],
      [2, 0, 'bad'],
      [3, 1, null],
      [4, 1, null],
    ],
  );
});

test("atif: one v1.7 file per trajectory, valid under Harbor's rules, with sequential step ids, and labels, mask and diff under extra.apollo", async () => {
  const folder = path.join(out, 'atif');
  await exportDataset(store, { format: 'atif', out: folder, branches: 'all' });
  const files = readdirSync(folder).sort();
  assert.deepEqual(files, [`${runId}--4.json`, `${runId}.json`]);
  for (const file of files) assert.deepEqual(harborAtifErrors(JSON.parse(readFileSync(path.join(folder, file), 'utf8'))), [], file);
  const document = JSON.parse(readFileSync(path.join(folder, `${runId}.json`), 'utf8'));
  assert.equal(document.schema_version, 'ATIF-v1.7');
  assert.equal(document.session_id, runId);
  assert.match(document.trajectory_id, new RegExp(`^${runId}@`));
  assert.deepEqual(document.agent, { name: 'apollo', version: APOLLO_VERSION, model_name: 'test-model', tool_definitions: TOOL_DEFINITIONS });
  assert.deepEqual(
    document.steps.map((entry: { step_id: number }) => entry.step_id),
    [1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual(
    document.steps.map((entry: { source: string }) => entry.source),
    ['system', 'user', 'agent', 'user', 'agent', 'agent'],
  );
  for (const entry of document.steps.filter((candidate: { source: string }) => candidate.source !== 'agent')) {
    assert.equal('tool_calls' in entry || 'metrics' in entry || 'model_name' in entry, false);
  }
  const first = document.steps[2];
  assert.deepEqual(first.tool_calls[0].arguments, { path: 'a.txt', content: 'a\n' }, 'arguments are an object in ATIF');
  assert.equal(first.observation.results[0].source_call_id, first.tool_calls[0].tool_call_id);
  assert.equal(first.extra.apollo.mask, 1);
  assert.equal(first.extra.apollo.labels[0].source, 'human');
  assert.match(first.extra.apollo.diff.patch, /\+\+\+ b\/a\.txt\n@@ -0,0 \+1 @@\n\+a/);
  assert.deepEqual(
    first.extra.apollo.diff.files.map((file: { path: string }) => file.path),
    ['a.txt'],
  );
  const abandoned = JSON.parse(readFileSync(path.join(folder, `${runId}--4.json`), 'utf8'));
  assert.equal(abandoned.session_id, runId, 'the run is the session of all its trajectories');
  assert.equal(abandoned.trajectory_id, `${runId}@main`);
  assert.notEqual(document.trajectory_id, abandoned.trajectory_id);
  assert.equal(abandoned.steps[3].extra.apollo.mask, 0);
  assert.equal(abandoned.steps[3].extra.apollo.labels[0].source, 'rule:command_failed');
});

test('sharegpt: turns alternate as LLaMA-Factory requires, with function_call JSON; no turn claims a mask', async () => {
  const file = path.join(out, 'sharegpt.jsonl');
  await exportDataset(store, { format: 'sharegpt', out: file, branches: 'all' });
  const records = readJsonl(file);
  assert.equal(records.length, 2);
  for (const record of records) {
    record.conversations.forEach((turn: { from: string }, index: number) => {
      assert.equal(['human', 'observation'].includes(turn.from), index % 2 === 0, `turn ${index} is ${turn.from}`);
    });
    assert.equal(record.conversations.length % 2, 0);
    assert.equal(typeof record.tools, 'string');
    assert.ok(JSON.parse(record.tools).every((tool: { name: string; parameters: { properties: object } }) => tool.name && tool.parameters.properties));
  }
  const main = records[0].conversations;
  assert.deepEqual(JSON.parse(main[1].value), { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } });
  assert.match(main[2].value, new RegExp(`Wrote[\\s\\S]*\\n\\n\\[Hint from the annotator \\(correction\\)\\]: ${HINT}`), 'the hint joins the observation before it');
  assert.equal(
    records.flatMap((record) => record.conversations).some((turn: object) => 'weight' in turn),
    false,
    'LLaMA-Factory reads no per-turn weight',
  );
});

test('pairs: the rewound step as rejected, the step after the correction as chosen, the shared context as prompt', async () => {
  const file = path.join(out, 'pairs.jsonl');
  const summary = await exportDataset(store, { format: 'pairs', out: file });
  assert.equal(summary.records, 1);
  const [pair] = readJsonl(file);
  assert.deepEqual(
    pair.prompt.map((message: ChatMessage) => message.role),
    ['system', 'user', 'assistant', 'tool'],
  );
  assert.equal(pair.rejected[0].tool_calls[0].function.name, 'run_command');
  assert.equal(pair.chosen[0].tool_calls[0].function.name, 'write_file');
  assert.equal(pair.chosen[0].content, 'Writing c.txt as asked.');
  assert.doesNotMatch(JSON.stringify(pair.prompt), /Hint from the annotator/, 'the correction is not part of the shared prompt');
  assert.equal(pair.metadata.correction, HINT);
  assert.deepEqual([pair.metadata.rejected_step, pair.metadata.chosen_step], [2, 5]);
  assert.deepEqual([pair.metadata.kind, pair.metadata.task_id, pair.metadata.run_id, pair.metadata.chosen_run, pair.metadata.rejected_run], ['rewind', null, runId, runId, runId]);
  assert.equal('weight' in pair.prompt[2], false);
});

test('secret shapes in the dataset never reach an export, and validation names what it finds', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-secret-'));
  try {
    const secretStore = new DatasetStore(dir);
    await writeRun(secretStore, 'run-secret', [runStarted('run-secret'), step(1, { tool: 'run_command', args: { command: 'printenv' } })]);
    // A line written by an older version, before redaction: straight into the file.
    const token = `ghp_${'a1B2'.repeat(9)}`;
    const leaked = step(2, { tool: 'run_command', args: { command: 'printenv' }, observation: `GITHUB_TOKEN=${token}\nAuthorization: Bearer abcdefgh12345678` });
    await fs.appendFile(path.join(secretStore.runDir('run-secret'), 'events.jsonl'), JSON.stringify(leaked) + '\n');
    // The run is refused whole, in every format, saying why.
    for (const format of ['openai', 'sharegpt', 'pairs'] as const) {
      const file = path.join(dir, `${format}.jsonl`);
      const summary = await exportDataset(secretStore, { format, out: file, allowEmpty: true });
      assert.doesNotMatch(readFileSync(file, 'utf8'), /ghp_a1B2|abcdefgh12345678/, format);
      assert.deepEqual(
        summary.skipped.map((skipped) => skipped.id),
        ['run-secret'],
        format,
      );
      assert.match(summary.skipped[0].problems[0], /refused: the run's record holds a secret shape \(bearer, github\)/, format);
    }
    await exportDataset(secretStore, { format: 'atif', out: path.join(dir, 'atif'), allowEmpty: true });
    assert.equal(existsSync(path.join(dir, 'atif', 'run-secret.json')), false);
    assert.deepEqual(validateChat([{ role: 'tool', tool_call_id: 'x', content: token }]), [
      'message 1 (tool): tool_call_id x answers no open tool call',
      'message 1 (tool): holds a secret shape (github)',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('validateChat catches unpaired tool results, missing results, weights off assistant messages and non-string arguments', () => {
  const messages = [
    { role: 'system', content: 's' },
    { role: 'user', content: 'u', weight: 1 },
    { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: { x: 1 } } }], weight: 2 },
    { role: 'tool', tool_call_id: 'b', content: 'r' },
    { role: 'user', content: 'next' },
  ] as unknown as ChatMessage[];
  assert.deepEqual(validateChat(messages), [
    'message 2 (user): "weight" is only allowed on assistant messages',
    'message 3 (assistant): "weight" must be 0 or 1',
    'message 3 (assistant): the arguments of f are not a JSON string',
    'message 4 (tool): tool_call_id b answers no open tool call',
    'message 5 (user): tool call(s) a have no tool result',
  ]);
});

test('refusals: unknown runs, a non-empty target folder, a missing parent folder, a file target for a folder format; nothing is written', async () => {
  await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(out, 'x.jsonl'), runs: ['no-such-run'] }), /No run no-such-run/);
  const busy = path.join(out, 'busy');
  await fs.mkdir(busy);
  await fs.writeFile(path.join(busy, 'keep.txt'), 'mine');
  await assert.rejects(exportDataset(store, { format: 'hf', out: busy }), (error: Error) => error instanceof ExportError && /is not empty/.test(error.message));
  assert.deepEqual(readdirSync(busy), ['keep.txt']);
  await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(out, 'missing', 'x.jsonl') }), /does not exist/);
  await assert.rejects(exportDataset(store, { format: 'openai', out }), /is a folder/);
  await assert.rejects(exportDataset(store, { format: 'openai', out: path.join(out, 'q.jsonl'), minQuality: 2 }), /between 0 and 1/);
  assert.equal(existsSync(path.join(out, 'q.jsonl')), false);
});

test('a cancelled export leaves neither the output nor a partial file behind', async () => {
  const controller = new AbortController();
  const file = path.join(out, 'cancelled.jsonl');
  const before = readdirSync(out).sort();
  await assert.rejects(exportDataset(store, { format: 'openai', out: file, signal: controller.signal, onProgress: () => controller.abort() }), (error: Error) => error instanceof ExportCancelled);
  assert.deepEqual(readdirSync(out).sort(), before);
});

test('a corrupt line is reported and skipped; the export goes on', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-corrupt-'));
  try {
    const corrupt = new DatasetStore(dir);
    await writeRun(corrupt, 'run-corrupt', [runStarted('run-corrupt'), step(1)]);
    await fs.appendFile(path.join(corrupt.runDir('run-corrupt'), 'events.jsonl'), '{"type":"step", broken\n');
    await writeRun(corrupt, 'run-ok', [runStarted('run-ok'), step(1), step(2)]);
    const summary = await exportDataset(corrupt, { format: 'openai', out: path.join(dir, 'out.jsonl') });
    assert.equal(summary.records, 2);
    assert.match(summary.warnings[0], /run-corrupt.*events\.jsonl line 3: not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the version exports record is the package version', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
  assert.equal(APOLLO_VERSION, pkg.version);
});
