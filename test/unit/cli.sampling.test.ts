import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { type CliIo, describeContextWindow, describeStep, describeTrouble, main, REASONING_SHOWN } from '../../src/cli/main';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { defaultDatasetDir } from '../../src/core/paths';
import { seedFor } from '../../src/core/session/sample';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

function io(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

const KEY = 'k-0123456789';

async function runStarted(store: DatasetStore, runId: string) {
  const { events } = await store.readEvents(runId);
  const started = events.find((event) => event.type === 'run_started');
  assert.ok(started && started.type === 'run_started');
  return started;
}

test('apollo run: the sampling flags reach every model request and run_started.sampling', async () => {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([{ toolCall: { name: 'list_dir', arguments: {} } }]);
  try {
    writeFileSync(path.join(ws.dir, 'extra.json'), '{"chat_template_kwargs": {"enable_thinking": false}, "top_k": 20}');
    const runIo = io({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' }, ws.dir);
    const argv = [
      'run',
      '--workspace',
      '.',
      '--task',
      'look',
      '--temperature',
      '0.6',
      '--top-p',
      '0.95',
      '--seed',
      '11',
      '--max-output-tokens',
      '512',
      '--request-extra',
      '@extra.json',
      '--keep-reasoning',
      'never',
    ];
    assert.equal(await main(argv, runIo.io), 0, runIo.err());
    assert.equal(server.requests.length, 2);
    for (const { body } of server.requests) {
      assert.equal(body.temperature, 0.6);
      assert.equal(body.top_p, 0.95);
      assert.equal(body.seed, 11);
      assert.equal(body.max_tokens, 512);
      assert.deepEqual(body.chat_template_kwargs, { enable_thinking: false });
      assert.equal(body.top_k, 20);
      assert.equal(body.model, 'm');
    }
    const runId = runIo.out().split('\n')[0];
    const started = await runStarted(new DatasetStore(defaultDatasetDir(realpathSync(ws.dir))), runId);
    assert.deepEqual(started.sampling, { temperature: 0.6, topP: 0.95, seed: 11, maxOutputTokens: 512, extra: { chat_template_kwargs: { enable_thinking: false }, top_k: 20 } });
    assert.equal(started.reasoningInContext, 'never');
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('apollo run --resume keeps the recorded sampling and takes the flags given as overrides', async () => {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([], { fallback: { toolCall: { name: 'list_dir', arguments: {} } } });
  try {
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' };
    const first = io(env, ws.dir);
    assert.equal(await main(['run', '--workspace', '.', '--task', 'look', '--max-steps', '2', '--temperature', '0.2', '--seed', '5', '--request-extra', '{"top_k": 4}'], first.io), 0, first.err());
    const runId = first.out().split('\n')[0];
    // A run that ended goes on from a rewind.
    assert.equal(await main(['rewind', '--run', runId, '--to-step', '2'], io({}, ws.dir).io), 0);
    const served = server.requests.length;
    const resumed = io(env, ws.dir);
    assert.equal(await main(['run', '--resume', runId, '--max-steps', '3', '--temperature', '0.9'], resumed.io), 0, resumed.err());
    const later = server.requests.slice(served);
    assert.ok(later.length >= 1);
    for (const { body } of later) {
      assert.equal(body.temperature, 0.9);
      assert.equal(body.seed, 5);
      assert.equal(body.top_k, 4);
    }
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('bad sampling flags are refused before anything is written', async () => {
  const ws = makeWorkspace();
  const runs = tempDir('apollo-runs-');
  try {
    writeFileSync(path.join(ws.dir, 'broken.json'), '{"top_k": 20,,}');
    const base = ['run', '--workspace', ws.dir, '--task', 'x', '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1'];
    const cases: Array<[string[], RegExp]> = [
      [[...base, '--temperature', 'warm'], /--temperature takes a number from 0 to 2.*"warm"/],
      [[...base, '--temperature', ''], /--temperature takes a number/],
      [[...base, '--temperature', '3'], /temperature must be a number from 0 to 2 \(got 3\)/],
      [[...base, '--top-p', '0x1'], /--top-p takes a number above 0/],
      [[...base, '--top-p', '0'], /top_p must be a number above 0/],
      [[...base, '--seed', '1.5'], /--seed takes a whole number/],
      [[...base, '--seed=-1'], /--seed takes a whole number/],
      [[...base, '--max-output-tokens', '0'], /output limit must be a whole number of tokens, at least 1/],
      [[...base, '--max-output-tokens', 'many'], /--max-output-tokens takes a whole number/],
      [[...base, '--request-extra', '{"top_k": }'], /--request-extra is not valid JSON/],
      [[...base, '--request-extra', '[1]'], /--request-extra must be a JSON object/],
      [[...base, '--request-extra', '{"model": "other"}'], /cannot set model/],
      [[...base, '--request-extra', '@broken.json'], /--request-extra @broken\.json \(.*broken\.json\) is not valid JSON/],
      [[...base, '--request-extra', '@missing.json'], /--request-extra @missing\.json .*cannot read the file/],
      [[...base, '--keep-reasoning', 'sometimes'], /--keep-reasoning takes auto, always, never/],
      [['sample', '--workspace', ws.dir, '--task', 'x', '--n', '2', '--runs-dir', runs.dir, '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1', '--same-seed'], /--same-seed goes with --seed/],
      [['sample', '--workspace', ws.dir, '--task', 'x', '--n', '2', '--runs-dir', runs.dir, '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1', '--seed', 'x'], /--seed takes a whole number/],
    ];
    for (const [argv, message] of cases) {
      const run = io({ OPENAI_API_KEY: KEY }, ws.dir);
      assert.equal(await main(argv, run.io), 2, argv.join(' '));
      assert.match(run.err(), message, argv.join(' '));
      assert.equal(run.out(), '', argv.join(' '));
    }
    assert.equal(existsSync(path.join(ws.dir, '.apollo')), false);
    const help = io();
    assert.equal(await main(['run', '--help'], help.io), 0);
    for (const flag of ['--temperature', '--top-p', '--seed', '--max-output-tokens', '--request-extra', '--keep-reasoning', '--verbose', '--same-seed']) assert.ok(help.out().includes(flag), flag);
  } finally {
    runs.cleanup();
    ws.cleanup();
  }
});

test('seedFor: seed + index unless the same seed is asked for; no seed stays no seed', () => {
  assert.deepEqual(seedFor(0, { seed: 7, temperature: 1 }), { seed: 7, temperature: 1 });
  assert.deepEqual(seedFor(2, { seed: 7, temperature: 1 }), { seed: 9, temperature: 1 });
  assert.deepEqual(seedFor(2, { seed: 7 }, true), { seed: 7 });
  assert.deepEqual(seedFor(3, { temperature: 0.5 }), { temperature: 0.5 });
  assert.equal(seedFor(1, undefined), undefined);
  const sampling = { seed: 1 };
  seedFor(4, sampling);
  assert.deepEqual(sampling, { seed: 1 }, 'the options given are not changed');
});

for (const [sameSeed, expected] of [
  [false, [7, 8, 9]],
  [true, [7, 7, 7]],
] as const) {
  test(`apollo sample --seed 7 --n 3${sameSeed ? ' --same-seed' : ''} records seeds ${expected.join(', ')}`, async () => {
    const ws = makeWorkspace();
    const runs = tempDir('apollo-runs-');
    const server = await startScriptedModelServer([], { fallback: { toolCall: { name: 'finish', arguments: { summary: 'done' } } } });
    try {
      const sampleIo = io({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl });
      const argv = ['sample', '--workspace', ws.dir, '--task', 'do it', '--n', '3', '--runs-dir', runs.dir, '--model', 'm', '--seed', '7', '--temperature', '1', ...(sameSeed ? ['--same-seed'] : [])];
      assert.equal(await main(argv, sampleIo.io), 0, sampleIo.err());
      const ids = sampleIo.out().trim().split('\n');
      assert.equal(ids.length, 3);
      const store = new DatasetStore(defaultDatasetDir(realpathSync(ws.dir)));
      const seeds = await Promise.all(
        ids.map(async (id) => {
          const started = await runStarted(store, id);
          const manifest = await store.readManifest(id);
          // The run at index i (working copy i + 1) gets seed 7 + i.
          return { index: Number(path.basename(manifest.workspace)) - 1, seed: started.sampling?.seed, temperature: started.sampling?.temperature };
        }),
      );
      seeds.sort((a, b) => a.index - b.index);
      assert.deepEqual(
        seeds.map((entry) => entry.seed),
        [...expected],
      );
      assert.deepEqual(
        seeds.map((entry) => entry.temperature),
        [1, 1, 1],
      );
      assert.deepEqual(server.requests.map((request) => request.body.seed).sort(), [...expected].sort());
    } finally {
      await server.close();
      runs.cleanup();
      ws.cleanup();
    }
  });
}

test("apollo run --verbose prints each step's reasoning under its line; without it nothing changes", async () => {
  const ws = makeWorkspace();
  const script = () => [{ toolCall: { name: 'list_dir', arguments: {} }, reasoning: 'First I should see\nwhat files there are.' }, { toolCall: { name: 'finish', arguments: { summary: 'seen' } } }];
  const server = await startScriptedModelServer([...script(), ...script()]);
  try {
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' };
    const verbose = io(env, ws.dir);
    assert.equal(await main(['run', '--workspace', '.', '--task', 'look', '--verbose'], verbose.io), 0, verbose.err());
    const lines = verbose.out().split('\n');
    const at = lines.indexOf('step 1 list_dir');
    assert.ok(at > 0, verbose.out());
    assert.deepEqual(lines.slice(at + 1, at + 4), ['    reasoning:', '      First I should see', '      what files there are.']);
    assert.equal(lines[at + 4], 'step 2 finish seen');
    const { events } = await new DatasetStore(defaultDatasetDir(realpathSync(ws.dir))).readEvents(lines[0]);
    const step = events.find((event) => event.type === 'step');
    assert.equal(step?.type === 'step' && step.assistant.reasoning, 'First I should see\nwhat files there are.');

    const quiet = io(env, ws.dir);
    assert.equal(await main(['run', '--workspace', '.', '--task', 'look'], quiet.io), 0, quiet.err());
    const quietLines = quiet
      .out()
      .trim()
      .split('\n')
      .filter((line) => !line.startsWith('context window'));
    assert.deepEqual(quietLines.slice(1, 3), ['step 1 list_dir', 'step 2 finish seen']);
    assert.ok(!quiet.out().includes('reasoning'));
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('describeStep --verbose: long reasoning is cut with a marker, further actions get a line each', () => {
  const grounding = { files: [{ path: 'b.txt', status: 'added' as const, additions: 2, deletions: 0, binary: false }], patch: '' } as any;
  const event = {
    type: 'step',
    step: 4,
    assistant: { content: null, toolCalls: [], reasoning: 'x'.repeat(REASONING_SHOWN + 50) },
    action: { id: 'c1', name: 'read_file', arguments: '{"path":"a.txt"}' },
    observation: '',
    isError: false,
    grounding: { files: [], patch: '' },
    moreActions: [
      { action: { id: 'c2', name: 'write_file', arguments: '{"path":"b.txt","content":"1\\n2\\n"}' }, observation: 'ok', isError: false, grounding, toolMs: 1 },
      { action: { id: 'c3', name: 'run_command', arguments: '{"command":"false"}' }, observation: 'exit 1', isError: true, grounding: { files: [], patch: '' }, toolMs: 1 },
    ],
  } as unknown as Extract<DatasetEvent, { type: 'step' }>;
  assert.equal(describeStep(event), 'step 4 read_file a.txt');
  const lines = describeStep(event, true).split('\n');
  assert.equal(lines[0], 'step 4 read_file a.txt');
  assert.equal(lines[1], '    reasoning:');
  assert.equal(lines[2], `      ${'x'.repeat(REASONING_SHOWN)} […]`);
  assert.equal(lines[3], '    + write_file b.txt  1 file(s) +2 -0');
  assert.equal(lines[4], '    + run_command false  [error]');
});

test('context window, undelivered hints and notices are said in one line each', () => {
  const time = new Date().toISOString();
  assert.equal(
    describeContextWindow({ type: 'context_window', time, windowTokens: 32768, budgetTokens: 26214, source: 'server', detail: 'vLLM: max_model_len 32768' }),
    'context window 32768 tokens (vLLM: max_model_len 32768); prompt budget 26214',
  );
  assert.equal(describeContextWindow({ type: 'context_window', time, budgetTokens: 8000, source: 'default' }), 'context window not known (a cautious default); prompt budget 8000');
  const said = io();
  describeTrouble({ type: 'hint_undelivered', time, hintId: 'h-1a2b', reason: 'the run finished first' }, 'r', said.io);
  describeTrouble({ type: 'notice', time, step: 3, message: 'the server reports no token usage; counting characters' }, 'r', said.io);
  describeTrouble({ type: 'notice', time, message: 'plain' }, 'r', said.io, 'r ');
  assert.equal(said.out(), '');
  assert.equal(said.err(), 'hint h-1a2b not delivered: the run finished first\nnote: step 3: the server reports no token usage; counting characters\nr note: plain\n');
});
