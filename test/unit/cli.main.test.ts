import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import { DatasetStore } from '../../src/core/dataset/store';
import { defaultDatasetDir } from '../../src/core/paths';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

function io(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

test('apollo run prints the run id first, one line per step, and a hint from apollo hint is delivered', async () => {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } }, delayMs: 300 },
    { toolCall: { name: 'list_dir', arguments: {} } },
    { toolCall: { name: 'finish', arguments: { summary: 'all done' } } },
  ]);
  try {
    const runIo = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl });
    const running = main(['run', '--workspace', ws.dir, '--task', 'make a.txt', '--model', 'scripted', '--max-steps', '5'], runIo.io);
    for (let waited = 0; !runIo.out().includes('\n'); waited += 10) {
      assert.ok(waited < 20_000, `no run id printed; stderr: ${runIo.err()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const runId = runIo.out().split('\n')[0];
    const hintIo = io({}, ws.dir);
    assert.equal(await main(['hint', '--run', runId, '--kind', 'strategy', 'list', 'the', 'files'], hintIo.io), 0);
    assert.match(hintIo.out(), /^h-[0-9a-f]+\n$/);
    assert.equal(await running, 0);
    const lines = runIo.out().trim().split('\n');
    assert.match(lines[0], /^\d{8}-\d{6}-[0-9a-f]{8}$/);
    assert.ok(lines.includes('step 1 write_file a.txt  1 file(s) +1 -0'), lines.join('\n'));
    // Delivered at the next request: the first or the second, depending on when it came.
    assert.ok(
      lines.some((line) => /^hint h-[0-9a-f]+ delivered at step [12]$/.test(line)),
      lines.join('\n'),
    );
    assert.equal(lines[lines.length - 1], `run ${runId} finished after 3 step(s): all done`);
    assert.ok(server.requests.some((request) => request.messages.some((m: any) => m.content === '[Hint from the annotator (strategy)]: list the files')));

    const labelIo = io({}, ws.dir);
    assert.equal(await main(['label', '--run', runId, '--step', '1', '--label', 'good', '--reason', 'right file'], labelIo.io), 0);
    const { events } = await new DatasetStore(defaultDatasetDir(realpathSync(ws.dir))).readEvents(runId);
    assert.ok(events.some((event) => event.type === 'label' && event.step === 1 && event.label === 'good' && event.reason === 'right file'));
    const lateHint = io({}, ws.dir);
    assert.equal(await main(['hint', '--run', runId, 'too late'], lateHint.io), 1);
    assert.match(lateHint.err(), /has ended \(finished\)/);
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('usage errors exit 2 with a pointer to --help; configuration errors exit 1 with the fix', async () => {
  const ws = makeWorkspace();
  try {
    const cases: Array<[string[], number, RegExp]> = [
      [[], 2, /^$/],
      [['fly'], 2, /Unknown command "fly"[\s\S]*apollo --help/],
      [['run', '--task', 'x'], 2, /needs --workspace/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--max-steps', 'many'], 2, /--max-steps takes a whole number/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--bogus'], 2, /Unknown option '--bogus'/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--max-file-size-mb', '0'], 2, /--max-file-size-mb takes a size in megabytes/],
      [['run', '--workspace', ws.dir, '--task', ' ', '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1'], 1, /task is empty/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--model', 'm'], 1, /--base-url or OPENAI_BASE_URL/],
      [['hint', '--run', 'nope', 'text'], 1, /No run "nope"/],
      [['hint', '--run', 'nope'], 2, /needs the hint text/],
      [['hint', '--run', 'nope', '--kind', 'rumour', 'x'], 2, /--kind takes knowledge, strategy, correction/],
      [['label', '--run', 'nope', '--step', '0', '--label', 'good'], 2, /--step N/],
      [['label', '--run', 'nope', '--step', '1', '--label', 'great'], 2, /--label takes good, bad, neutral/],
    ];
    for (const [argv, code, message] of cases) {
      const run = io({ OPENAI_API_KEY: 'k-0123456789' }, ws.dir);
      assert.equal(await main(argv, run.io), code, argv.join(' '));
      assert.match(run.err(), message, argv.join(' '));
    }
    assert.equal(await main(['--help'], io().io), 0);
  } finally {
    ws.cleanup();
  }
});

const builtCli = path.resolve(__dirname, '../../../dist/cli.js');

test('the built apollo binary runs a task end to end', { skip: !existsSync(builtCli) && 'run npm run build first' }, async () => {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([{ toolCall: { name: 'run_command', arguments: { command: 'echo 42 > answer.txt' } } }]);
  try {
    const child = spawn(process.execPath, [builtCli, 'run', '--workspace', ws.dir, '--task', 'answer', '--base-url', server.baseUrl, '--model', 'm'], {
      env: { ...process.env, OPENAI_API_KEY: 'k-0123456789' },
    });
    let stdout = '';
    child.stdout.on('data', (data) => (stdout += data));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    const [runId, ...rest] = stdout.split('\n');
    assert.match(runId, /^\d{8}-\d{6}-[0-9a-f]{8}$/);
    assert.equal(
      rest.find((line) => line.startsWith('step ')),
      'step 1 run_command echo 42 > answer.txt  1 file(s) +1 -0',
    );
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('apollo stats reports runs, steps, tokens, timings and labels', async () => {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([{ toolCall: { name: 'list_dir', arguments: {} } }]);
  try {
    const runIo = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' });
    assert.equal(await main(['run', '--workspace', ws.dir, '--task', 'look around'], runIo.io), 0);
    const runId = runIo.out().split('\n')[0];
    assert.equal(await main(['label', '--run', runId, '--step', '1', '--label', 'bad'], io({}, ws.dir).io), 0);
    const json = io({}, ws.dir);
    assert.equal(await main(['stats', '--json'], json.io), 0);
    const stats = JSON.parse(json.out());
    assert.equal(stats.runs, 1);
    assert.equal(stats.steps, 2);
    assert.deepEqual(stats.effectiveLabels, { good: 0, bad: 1, neutral: 0, unlabelled: 1 });
    assert.deepEqual(stats.labelSources, { human: 1, judge: 0, rule: 0 });
    assert.equal(stats.maskedShare, 0.5);
    assert.equal(stats.annotatorActions, 1);
    assert.ok(stats.promptTokens > 0 && stats.storeBytes > 0);
    assert.equal(stats.perRun[0].id, runId);
    const text = io({}, ws.dir);
    assert.equal(await main(['stats'], text.io), 0);
    assert.match(text.out(), /^runs: 1 {3}steps: 2/);
  } finally {
    await server.close();
    ws.cleanup();
  }
});

test('apollo sample prints one run id per line as each run starts; the runs share a task', async () => {
  const ws = makeWorkspace();
  const runs = tempDir('apollo-runs-');
  const server = await startScriptedModelServer([], { fallback: { toolCall: { name: 'finish', arguments: { summary: 'done' } } } });
  try {
    const sampleIo = io({ OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl });
    const argv = ['sample', '--workspace', ws.dir, '--task', 'do it', '--n', '3', '--concurrency', '2', '--runs-dir', runs.dir, '--model', 'm', '--max-tokens', '100000', '--max-minutes', '30'];
    assert.equal(await main(argv, sampleIo.io), 0, sampleIo.err());
    const ids = sampleIo.out().trim().split('\n');
    assert.equal(ids.length, 3);
    for (const id of ids) assert.match(id, /^\d{8}-\d{6}-[0-9a-f]{8}$/);
    const store = new DatasetStore(defaultDatasetDir(realpathSync(ws.dir)));
    const manifests = await Promise.all(ids.map((id) => store.readManifest(id)));
    assert.equal(new Set(manifests.map((manifest) => manifest.taskId)).size, 1);
    assert.equal(new Set(manifests.map((manifest) => manifest.workspace)).size, 3);
    assert.match(sampleIo.err(), /3 of 3 run\(s\) ended cleanly/);
    const { events } = await store.readEvents(ids[0]);
    assert.deepEqual(events[0].type === 'run_started' && events[0].budget, { maxMinutes: 30, maxTokens: 100000 });
  } finally {
    await server.close();
    runs.cleanup();
    ws.cleanup();
  }
});

test('apollo sample and the budget options refuse bad values', async () => {
  const ws = makeWorkspace();
  try {
    const cases: Array<[string[], number, RegExp]> = [
      [['sample', '--workspace', ws.dir, '--task', 'x'], 2, /needs --n N/],
      [['sample', '--workspace', ws.dir, '--task', 'x', '--n', '0'], 2, /needs --n N, a whole number of runs of at least 1/],
      [['sample', '--workspace', ws.dir, '--task', 'x', '--n', '2', '--concurrency', '0'], 2, /--concurrency takes a whole number/],
      [['sample', '--task', 'x', '--n', '2'], 2, /needs --workspace/],
      [['sample', '--workspace', ws.dir, '--task', 'x', '--n', '2', '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1', '--runs-dir', path.join(ws.dir, 'runs')], 1, /inside the workspace/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--max-minutes', '0'], 2, /--max-minutes takes a number of minutes greater than 0/],
      [['run', '--workspace', ws.dir, '--task', 'x', '--max-tokens', 'lots'], 2, /--max-tokens takes a whole number/],
    ];
    for (const [argv, code, message] of cases) {
      const run = io({ OPENAI_API_KEY: 'k-0123456789' }, ws.dir);
      assert.equal(await main(argv, run.io), code, argv.join(' '));
      assert.match(run.err(), message, argv.join(' '));
    }
    assert.equal(existsSync(path.join(ws.dir, '.apollo')), false);
    const help = io();
    assert.equal(await main(['--help'], help.io), 0);
    assert.match(help.out(), /apollo sample --workspace DIR --task TEXT --n N/);
  } finally {
    ws.cleanup();
  }
});
