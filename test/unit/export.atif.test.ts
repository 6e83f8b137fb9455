import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatasetEvent, SummaryEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { atifTrajectory, ATIF_VERSION, AtifReadError, readAtif, validateAtif } from '../../src/core/export/atif';
import { exportDataset, resolveExportOptions } from '../../src/core/export/exportDataset';
import { buildRunTree, trajectoriesOf } from '../../src/core/export/trajectory';
import { DEFAULT_MASK_POLICY } from '../../src/core/supervision/labels';
import { TOOL_DEFINITIONS } from '../../src/core/agent/tools';
import { APOLLO_VERSION } from '../../src/core/version';
import { harborAtifErrors } from '../fixtures/atifValidator';
import { label, runStarted, step, tick, writeRun } from '../fixtures/trajectories';

let dir: string;

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'apollo-atif-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** A document that passes: the smallest one Harbor accepts, as a base for the broken ones. */
function valid(): Record<string, any> {
  return {
    schema_version: 'ATIF-v1.7',
    trajectory_id: 't-1',
    agent: { name: 'a', version: '1' },
    steps: [
      { step_id: 1, source: 'user', message: 'hi', timestamp: '2026-01-01T00:00:00.000Z' },
      {
        step_id: 2,
        source: 'agent',
        message: '',
        tool_calls: [{ tool_call_id: 'c1', function_name: 'read_file', arguments: {} }],
        observation: { results: [{ source_call_id: 'c1', content: 'text' }] },
        metrics: { prompt_tokens: 10, completion_tokens: 2 },
        llm_call_count: 1,
        is_copied_context: false,
      },
    ],
  };
}

test("the validator passes a valid document and the RFC's own kinds of content", () => {
  assert.deepEqual(harborAtifErrors(valid()), []);
  const multimodal = valid();
  multimodal.steps[0].message = [
    { type: 'text', text: 'look' },
    { type: 'image', source: { media_type: 'image/png', path: 'images/a.png' } },
  ];
  multimodal.subagent_trajectories = [{ ...valid(), trajectory_id: 'child' }];
  multimodal.steps[1].observation.results.push({ content: 'delegated', subagent_trajectory_ref: [{ trajectory_id: 'child' }] });
  multimodal.steps.push({ step_id: 3, source: 'system', message: 'compacted', extra: { context_management: { type: 'compaction', boundary: 'replace' } } });
  assert.deepEqual(harborAtifErrors(multimodal), []);
});

test('the validator rejects what Harbor rejects, one broken rule at a time', () => {
  const cases: [string, (document: Record<string, any>) => void, RegExp][] = [
    ['an unknown version', (d) => (d.schema_version = 'ATIF-v2.0'), /schema_version: unknown version/],
    ['a field ATIF does not have', (d) => (d.steps[1].labels = []), /steps\[1\]\.labels: unexpected field/],
    ['a root field ATIF does not have', (d) => (d.apollo = {}), /trajectory\.apollo: unexpected field/],
    ['no agent', (d) => delete d.agent, /agent: required field is missing/],
    ['an agent with no version', (d) => delete d.agent.version, /agent\.version: required field is missing/],
    ['tool definitions that are not objects', (d) => (d.agent.tool_definitions = ['read_file']), /tool_definitions: expected list of objects/],
    ['no steps', (d) => (d.steps = []), /at least 1 item/],
    ['step ids that skip', (d) => (d.steps[1].step_id = 3), /steps\[1\]\.step_id: expected 2/],
    ['a step id of 0', (d) => (d.steps[0].step_id = 0), /must be >= 1/],
    ['a step id as a string', (d) => (d.steps[0].step_id = '1'), /step_id: expected integer/],
    ['an unknown source', (d) => (d.steps[0].source = 'tool'), /source: expected 'system', 'user' or 'agent'/],
    ['a step without message', (d) => delete d.steps[1].message, /message: required field is missing/],
    ['a timestamp that is not ISO 8601', (d) => (d.steps[0].timestamp = 'yesterday'), /Invalid ISO 8601/],
    ['a day that does not exist', (d) => (d.steps[0].timestamp = '2026-02-30T00:00:00Z'), /Invalid ISO 8601/],
    ['reasoning on a user step', (d) => (d.steps[0].reasoning_content = 'x'), /'reasoning_content' is only applicable when source is 'agent'/],
    ['a model name on a user step', (d) => (d.steps[0].model_name = 'm'), /'model_name' is only applicable/],
    ['tool calls on a system step', (d) => ((d.steps[0].source = 'system'), (d.steps[0].tool_calls = [])), /'tool_calls' is only applicable/],
    ['metrics on a deterministic agent step', (d) => (d.steps[1].llm_call_count = 0), /'metrics' must be absent when llm_call_count is 0/],
    ['a negative llm_call_count', (d) => (d.steps[1].llm_call_count = -1), /llm_call_count: expected integer >= 0/],
    ['is_copied_context as a string', (d) => (d.steps[1].is_copied_context = 'yes'), /is_copied_context: expected boolean/],
    ['arguments as a JSON string', (d) => (d.steps[1].tool_calls[0].arguments = '{}'), /arguments: expected object/],
    ['a tool call with no name', (d) => delete d.steps[1].tool_calls[0].function_name, /function_name: required field is missing/],
    ["a result for another step's call", (d) => (d.steps[1].observation.results[0].source_call_id = 'c9'), /source_call_id 'c9' which is not found in step 2/],
    ['two calls with one id', (d) => d.steps[1].tool_calls.push({ ...d.steps[1].tool_calls[0] }), /duplicate tool_call_id 'c1'/],
    ['an observation with no results', (d) => (d.steps[1].observation = {}), /observation\.results: required field is missing/],
    ['token counts as floats', (d) => (d.steps[1].metrics.prompt_tokens = 1.5), /prompt_tokens: expected integer/],
    ['final metrics ATIF does not have', (d) => (d.final_metrics = { reward: 1 }), /final_metrics\.reward: unexpected field/],
    ['a negative step total', (d) => (d.final_metrics = { total_steps: -1 }), /total_steps: expected integer >= 0/],
    ['a text part without text', (d) => (d.steps[0].message = [{ type: 'text' }]), /'text' field is required/],
    ['an embedded subagent with no trajectory_id', (d) => (d.subagent_trajectories = [{ ...valid(), trajectory_id: undefined }]), /trajectory_id is required for embedded subagents/],
    ['two embedded subagents with one id', (d) => (d.subagent_trajectories = [valid(), valid()]), /is not unique within subagent_trajectories/],
    ['a subagent reference by session id alone', (d) => d.steps[1].observation.results.push({ subagent_trajectory_ref: [{ session_id: 's' }] }), /needs trajectory_id or trajectory_path/],
    ['a reference to no embedded subagent', (d) => d.steps[1].observation.results.push({ subagent_trajectory_ref: [{ trajectory_id: 'ghost' }] }), /'ghost' .* not present in subagent_trajectories/],
  ];
  for (const [name, breakIt, expected] of cases) {
    const document = valid();
    breakIt(document);
    const errors = harborAtifErrors(JSON.parse(JSON.stringify(document)));
    assert.ok(
      errors.some((error) => expected.test(error)),
      `${name}: expected ${expected}, got ${JSON.stringify(errors)}`,
    );
  }
  assert.deepEqual(harborAtifErrors([]), ['trajectory: Trajectory must be a JSON object/dict']);
});

const OPTIONS = resolveExportOptions({ format: 'atif', out: 'unused', policy: DEFAULT_MASK_POLICY });

/**
 * Seven steps; before step 4 the context was compacted, keeping steps 2 and 3 after the summary;
 * before step 6 again, keeping step 5. A hint reached step 3.
 */
function compactedRun(): DatasetEvent[] {
  const summary = (at: number, keptFromStep: number, text: string): SummaryEvent => ({
    type: 'summary',
    time: tick(),
    step: at,
    keptFromStep,
    text,
    tokensBefore: 9000,
    tokensAfter: 3000,
    usage: { promptTokens: 9000, completionTokens: 300 },
  });
  return [
    runStarted('run-long', 'Port the parser'),
    step(1),
    step(2, { tool: 'write_file', args: { path: 'a.txt', content: 'a\n' } }),
    { type: 'hint_queued', time: tick(), hintId: 'h1', kind: 'strategy', text: 'Test the parser first.', source: 'cli' },
    { type: 'hint_delivered', time: tick(), hintId: 'h1', step: 3 },
    step(3, { tool: 'run_command', args: { command: 'npm test' }, isError: true }),
    label(3, 'bad'),
    summary(4, 2, 'State: a.txt written; the tests fail.'),
    step(4),
    step(5, { tool: null }),
    summary(6, 5, 'State: the tests fail in the lexer.'),
    step(6),
    step(7, { tool: 'finish', args: { summary: 'done' } }),
    { type: 'run_ended', time: tick(), status: 'finished', steps: 7 },
  ] as DatasetEvent[];
}

/** The run's trajectory, with the compactions on its path, as the export reads it. */
function compactedTrajectory(events = compactedRun()) {
  const [trajectory] = trajectoriesOf(buildRunTree(events)!, { branches: 'main', policy: DEFAULT_MASK_POLICY });
  assert.equal(trajectory.summaries?.length, 2, 'the trajectory carries the compactions on its path');
  return trajectory;
}

test('atif v1.7: trajectory_id from the run and its branch, session_id the run, tool definitions from run_started', () => {
  const document = atifTrajectory(compactedTrajectory(), OPTIONS);
  assert.equal(document.schema_version, ATIF_VERSION);
  assert.equal(ATIF_VERSION, 'ATIF-v1.7');
  assert.equal(document.session_id, 'run-long');
  assert.equal(document.trajectory_id, 'run-long@main');
  assert.equal(document.agent.name, 'apollo');
  assert.equal(document.agent.version, APOLLO_VERSION);
  assert.deepEqual(document.agent.tool_definitions, TOOL_DEFINITIONS);
  assert.deepEqual(harborAtifErrors(JSON.parse(JSON.stringify(document))), []);
  assert.deepEqual(validateAtif(document, JSON.stringify(document)), []);
});

test('atif v1.7: a compaction is a replace boundary, then the context the model went on with, repeats marked is_copied_context', () => {
  const document = JSON.parse(JSON.stringify(atifTrajectory(compactedTrajectory(), OPTIONS)));
  const shape = document.steps.map((entry: any) => {
    const kind = entry.extra?.context_management ? 'boundary' : entry.source;
    const which = entry.extra?.apollo?.step ?? '';
    return `${kind}${which}${entry.is_copied_context ? '*' : ''}`;
  });
  assert.deepEqual(shape, [
    'system',
    'user',
    'agent1',
    'agent2',
    'user',
    'agent3',
    // Before step 4: the boundary, system prompt and task again, the summary, steps 2 and 3 (with step 3's hint) again.
    'boundary4',
    'system*',
    'user*',
    'user4',
    'agent2*',
    'user*',
    'agent3*',
    'agent4',
    'agent5',
    'user',
    // Before step 6: the second summary replaces the first; step 5 and its nudge are kept.
    'boundary6',
    'system*',
    'user*',
    'user6',
    'agent5*',
    'user*',
    'agent6',
    'agent7',
  ]);
  const boundary = document.steps[6];
  assert.deepEqual(boundary.extra.context_management, { type: 'compaction', boundary: 'replace' });
  assert.equal(boundary.extra.apollo.kept_from_step, 2);
  assert.deepEqual(boundary.extra.apollo.usage, { prompt_tokens: 9000, completion_tokens: 300 });
  assert.equal(document.steps[9].message, 'State: a.txt written; the tests fail.');
  assert.equal(document.steps[9].is_copied_context, undefined, 'the summary is new in the context, not a copy');
  // A copy keeps its content, points at the original and is never trained on; the original keeps its mask.
  const original = document.steps[5];
  const copy = document.steps[12];
  assert.equal(copy.extra.apollo.copy_of, original.step_id);
  assert.deepEqual(copy.tool_calls, original.tool_calls);
  assert.deepEqual(copy.observation, original.observation);
  assert.deepEqual(copy.extra.apollo.labels, original.extra.apollo.labels);
  assert.equal(copy.extra.apollo.mask, 0);
  assert.equal(document.steps[3].extra.apollo.mask, 1);
  assert.equal(document.steps[10].extra.apollo.mask, 0, 'a copy of a trained step is context here');
  assert.equal('metrics' in copy || 'llm_call_count' in copy, false, 'a copy is no new inference');
  // The steps after the last boundary are exactly the context of step 7's request.
  assert.equal(document.steps[11].message, document.steps[4].message, 'the copied hint is the hint');
  // Totals count each inference once.
  assert.equal(document.final_metrics.total_prompt_tokens, 100 * (1 + 2 + 3 + 4 + 5 + 6 + 7));
  assert.equal(document.final_metrics.total_steps, document.steps.length);
  assert.equal(document.extra.apollo.compactions, 2);
  for (const entry of document.steps.filter((candidate: any) => candidate.source === 'agent' && !candidate.is_copied_context)) assert.equal(entry.llm_call_count, 1);
  assert.deepEqual(harborAtifErrors(document), []);
});

test("atif export of a recorded run with compactions: the boundaries and copies are in the file, and it passes Harbor's rules", async () => {
  const store = new DatasetStore(path.join(dir, 'compacted'));
  const events = compactedRun();
  await writeRun(store, 'run-long', events);
  const folder = path.join(dir, 'compacted-atif');
  const summary = await exportDataset(store, { format: 'atif', out: folder });
  assert.deepEqual(summary.skipped, []);
  const document = JSON.parse(readFileSync(path.join(folder, 'run-long.json'), 'utf8'));
  assert.deepEqual(harborAtifErrors(document), []);
  assert.deepEqual(document, JSON.parse(JSON.stringify(atifTrajectory(compactedTrajectory(events), OPTIONS))), 'the export writes what the trajectory gives');
  assert.equal(document.steps.filter((entry: any) => entry.extra?.context_management?.boundary === 'replace').length, 2);
  assert.equal(document.steps.filter((entry: any) => entry.is_copied_context === true).length, 9);
});

test("atif: the verifier's rewards go in final_metrics.extra; none, no extra", () => {
  const rewarded = atifTrajectory({ ...compactedTrajectory(), rewards: { reward: 1, tests_passed: 12 } }, OPTIONS);
  assert.deepEqual(rewarded.final_metrics.extra, { rewards: { reward: 1, tests_passed: 12 } });
  assert.deepEqual(harborAtifErrors(JSON.parse(JSON.stringify(rewarded))), []);
  assert.equal('extra' in atifTrajectory(compactedTrajectory(), OPTIONS).final_metrics, false);
});

test("atif export: every file passes Harbor's rules; abandoned branches share the session and have their own trajectory_id", async () => {
  const store = new DatasetStore(path.join(dir, 'dataset'));
  await writeRun(store, 'run-r', [
    runStarted('run-r'),
    step(1),
    step(2, { tool: 'run_command', args: { command: 'exit 1' }, isError: true }),
    { type: 'rewind', time: tick(), toStep: 2, branch: 'b1', parentStep: 1, snapshot: 'before2', files: [] },
    step(3, { branch: 'b1', parentStep: 1 }),
    step(4, { tool: 'finish', args: { summary: 'done' }, branch: 'b1' }),
    { type: 'run_ended', time: tick(), status: 'finished', steps: 4 },
  ] as DatasetEvent[]);
  const folder = path.join(dir, 'atif');
  const summary = await exportDataset(store, { format: 'atif', out: folder, branches: 'all' });
  assert.deepEqual(summary.skipped, []);
  const documents = readdirSync(folder)
    .sort()
    .map((file) => JSON.parse(readFileSync(path.join(folder, file), 'utf8')));
  assert.equal(documents.length, 2);
  for (const document of documents) assert.deepEqual(harborAtifErrors(document), []);
  assert.deepEqual(
    documents.map((document) => document.session_id),
    ['run-r', 'run-r'],
  );
  assert.deepEqual(documents.map((document) => document.trajectory_id).sort(), ['run-r@b1', 'run-r@main']);
});

test('readAtif reads v1.7 files and the v1.4 files Apollo wrote before, to the same steps', () => {
  const current = JSON.parse(JSON.stringify(atifTrajectory(compactedTrajectory(), OPTIONS)));
  const read = readAtif(current);
  assert.equal(read.version, 'ATIF-v1.7');
  assert.equal(read.trajectoryId, 'run-long@main');
  assert.equal(read.runId, 'run-long');
  assert.equal(read.copiedSteps, 9);
  assert.deepEqual(
    read.steps.filter((entry) => entry.source === 'agent').map((entry) => entry.apollo?.step),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.deepEqual(
    read.steps.filter((entry) => entry.contextManagement).map((entry) => entry.apollo?.step),
    [4, 6],
  );
  assert.equal(read.toolDefinitions.length, TOOL_DEFINITIONS.length);

  // A v1.4 file as Apollo wrote it: session_id was the only id, no tool definitions, no copies.
  const old = {
    schema_version: 'ATIF-v1.4',
    session_id: 'run-old--3',
    agent: { name: 'apollo', version: '0.1.0', model_name: 'test-model' },
    steps: [
      { step_id: 1, timestamp: '2026-01-01T00:00:00.000Z', source: 'system', message: 'You are careful.' },
      { step_id: 2, timestamp: '2026-01-01T00:00:00.000Z', source: 'user', message: 'Fix it' },
      {
        step_id: 3,
        timestamp: '2026-01-01T00:00:01.000Z',
        source: 'agent',
        model_name: 'test-model',
        message: 'Reading.',
        reasoning_content: 'Look first.',
        tool_calls: [{ tool_call_id: 'call_1', function_name: 'read_file', arguments: { path: 'README.md' } }],
        observation: { results: [{ source_call_id: 'call_1', content: '# demo' }] },
        metrics: { prompt_tokens: 100, completion_tokens: 10 },
        extra: { apollo: { step: 1, labels: [], effective_label: null, mask: 1, is_error: false, diff: { files: [], patch: '' } } },
      },
    ],
    final_metrics: { total_prompt_tokens: 100, total_completion_tokens: 10, total_steps: 3 },
    extra: { apollo: { run_id: 'run-old', task_id: null, abandoned: true, mask_policy: 'bad', status: null } },
  };
  assert.deepEqual(harborAtifErrors(old), []);
  const before = readAtif(old);
  assert.equal(before.version, 'ATIF-v1.4');
  assert.equal(before.trajectoryId, 'run-old--3');
  assert.equal(before.runId, 'run-old');
  assert.equal(before.copiedSteps, 0);
  assert.deepEqual(before.steps[2], {
    id: 3,
    source: 'agent',
    message: 'Reading.',
    reasoning: 'Look first.',
    toolCalls: [{ id: 'call_1', name: 'read_file', arguments: { path: 'README.md' } }],
    results: [{ callId: 'call_1', content: '# demo' }],
    apollo: old.steps[2].extra!.apollo,
  });
  assert.throws(
    () => readAtif({ ...old, schema_version: 'ATIF-v9' }),
    (error: unknown) => error instanceof AtifReadError && /schema_version/.test(error.message),
  );
  assert.throws(() => readAtif({ ...old, session_id: undefined }), /neither trajectory_id nor session_id/);
});
