/**
 * Records the dataset the trainer tier exports: real `apollo` CLI runs against the scripted model
 * server, covering what the trainers' code must cope with. `node recordDataset.js DATASET_DIR`
 * prints one JSON line describing the runs (ids and what each one exercises).
 *
 * - `tools`: tool calls with text and without (content ""), reasoning on some turns, a hint,
 *   a step labelled good and one labelled bad (so masks differ).
 * - `long`: a small context budget, so the context is summarized several times (several rows).
 * - `thinking`: reasoning on every turn, the last one included (Qwen3 renders it in <think>).
 * - `sampled`: two runs of one task, one better than the other (preference pairs across runs).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import { type RecordedRequest, type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

const API_KEY = 'k-0123456789';

function io(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const call = io(env);
  const code = await main(argv, call.io);
  if (code !== 0) throw new Error(`apollo ${argv.join(' ')} exited ${code}: ${call.err()}`);
  return call.out();
}

/** Replies to summary requests (they carry no tools) with a state snapshot, else per `step`. */
function scripted(step: (n: number) => ScriptedReply): (request: RecordedRequest) => ScriptedReply {
  let steps = 0;
  let summaries = 0;
  return (request) => {
    if (!request.body.tools) return { content: `## Task state\nState snapshot number ${++summaries}: notes.txt holds the lines written so far.` };
    return step(++steps);
  };
}

async function recordRun(dataset: string, name: string, step: (n: number) => ScriptedReply, extra: string[], during?: (runId: string) => Promise<void>): Promise<string> {
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'src/app.py': 'def add(a, b):\n    return a - b\n' });
  const server = await startScriptedModelServer([], { fallback: scripted(step), keepRequests: false });
  try {
    const run = io({ OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: server.baseUrl });
    const argv = ['run', '--workspace', ws.dir, '--dataset', dataset, '--model', 'scripted', '--sandbox', 'off', '--max-steps', '40', ...extra];
    const running = main(argv, run.io);
    if (during) {
      for (let waited = 0; !run.out().includes('\n'); waited += 10) {
        if (waited > 20_000) throw new Error(`${name}: no run id printed; ${run.err()}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await during(run.out().split('\n')[0]);
    }
    const code = await running;
    if (code !== 0) throw new Error(`${name}: apollo run exited ${code}: ${run.err()}`);
    return run.out().split('\n')[0];
  } finally {
    await server.close();
    ws.cleanup();
  }
}

async function main_(): Promise<void> {
  const dataset = process.argv[2];
  if (!dataset) throw new Error('usage: recordDataset DATASET_DIR');
  const finish = (summary: string, extra: Partial<{ content: string; reasoning: string }> = {}): ScriptedReply => ({ toolCall: { name: 'finish', arguments: { summary } }, ...extra });

  const tools = await recordRun(
    dataset,
    'tools',
    (n) =>
      [
        { toolCall: { name: 'read_file', arguments: { path: 'src/app.py' } }, content: 'Let me look at the code first.', reasoning: 'The bug is probably in add().', delayMs: 400 },
        { toolCall: { name: 'list_dir', arguments: {} }, content: '' },
        { toolCall: { name: 'write_file', arguments: { path: 'src/app.py', content: 'def add(a, b):\n    return a + b\n' } }, content: 'Fixing the operator: "a - b" becomes "a + b".' },
        {
          toolCall: { name: 'run_command', arguments: { command: 'python3 -c "import sys; sys.path.insert(0, \'src\'); import app; print(app.add(2, 3))"' } },
          reasoning: 'Check the fix with a quick call.',
        },
        finish('add() now adds.', { content: 'Done: add() returns a + b.' }),
      ][n - 1] ?? finish('done'),
    ['--task', 'Fix add() in src/app.py so that it adds.'],
    async (runId) => {
      await cli(['hint', '--run', runId, '--dataset', dataset, '--kind', 'knowledge', 'The function lives in src/app.py.']);
    },
  );
  await cli(['label', '--run', tools, '--dataset', dataset, '--step', '1', '--label', 'good', '--reason', 'reads before editing']);
  await cli(['label', '--run', tools, '--dataset', dataset, '--step', '2', '--label', 'bad', '--reason', 'needless listing']);

  const long = await recordRun(
    dataset,
    'long',
    (n) =>
      n > 14
        ? finish('wrote fourteen lines', { reasoning: 'Every line is written.' })
        : {
            toolCall: { name: 'run_command', arguments: { command: `printf 'line %s %0300d\\n' ${n} 0 >> notes.txt; tail -c 400 notes.txt` } },
            content: n % 2 ? `Appending line ${n}.` : '',
            ...(n % 3 === 0 ? { reasoning: `Line ${n} next.` } : {}),
          },
    ['--task', 'Append fourteen numbered lines to notes.txt, one command each.', '--context-budget', '1500'],
  );
  await cli(['label', '--run', long, '--dataset', dataset, '--step', '3', '--label', 'bad']);
  await cli(['label', '--run', long, '--dataset', dataset, '--step', '9', '--label', 'bad']);

  const thinking = await recordRun(
    dataset,
    'thinking',
    (n) =>
      [
        { toolCall: { name: 'read_file', arguments: { path: 'README.md' } }, content: '', reasoning: 'Read the README to learn the project.' },
        finish('The README is a title only.', { content: 'The README holds only a title.', reasoning: 'Nothing else to read: report it.' }),
      ][n - 1] ?? finish('done'),
    ['--task', 'What does README.md say?'],
  );

  // Two sampled runs of one task: the first finishes at once, the second fails a command first.
  const ws = makeWorkspace();
  const runsDir = mkdtempSync(path.join(os.tmpdir(), 'apollo-runs-'));
  let sampled: string[];
  let request = 0;
  const server = await startScriptedModelServer([], {
    keepRequests: false,
    fallback: scripted(() => {
      request++;
      if (request === 1) return { toolCall: { name: 'run_command', arguments: { command: 'cat README.md' } }, content: 'Reading it.' };
      if (request === 2) return finish('It is a demo.');
      if (request === 3) return { toolCall: { name: 'run_command', arguments: { command: 'cat MISSING.md' } } };
      return finish('Could not tell.');
    }),
  });
  try {
    const out = await cli(
      ['sample', '--workspace', ws.dir, '--dataset', dataset, '--task', 'Say what the project is.', '--n', '2', '--concurrency', '1', '--runs-dir', runsDir, '--model', 'scripted', '--sandbox', 'off'],
      { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: server.baseUrl },
    );
    sampled = out.trim().split('\n');
    await cli(['label', '--run', sampled[1], '--dataset', dataset, '--step', '1', '--label', 'bad']);
  } finally {
    await server.close();
    ws.cleanup();
    rmSync(runsDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify({ tools, long, thinking, sampled }) + '\n');
}

main_().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
