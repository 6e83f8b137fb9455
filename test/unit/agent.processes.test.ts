/**
 * The processes of the agent's commands: no secrets in their environment without the sandbox,
 * detached children (`setsid`, `nohup … &`, double forks) that neither hang run_command nor
 * outlive a command, a job or the run, caps on processes and memory, and Ctrl+C on the CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { folderOutsideTmp, makeWorkspace } from '../fixtures/workspace';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { type CommandSandboxOptions, ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';

const TEST_ROOT = folderOutsideTmp('.process-tests');
const HAS_PROC = existsSync('/proc/self/environ');

function runner(sandbox: Partial<CommandSandboxOptions> = {}) {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'run-'));
  const workspace = path.join(root, 'ws');
  const home = path.join(root, 'home');
  mkdirSync(workspace);
  mkdirSync(home);
  const tools = new ToolRunner({ workspace, guard: new WorkspaceGuard(workspace, []), sandbox: { mode: 'off', network: true, home, ...sandbox } });
  return {
    tools,
    workspace,
    cleanup: async () => {
      await tools.dispose();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const call = (name: string, args: object) => ({ id: 'c', name, arguments: JSON.stringify(args) });

/** A unique sleep whose process can be found again by its command line. */
function uniqueSleep(): string {
  return `${300000 + Math.floor(Math.random() * 600000)}`;
}

/** Processes whose command line holds `tag`. */
function alive(tag: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(tag)) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function sandboxOrSkip(t: { skip(message?: string): void }): Promise<boolean> {
  const sandbox = await detectSandbox();
  if (sandbox.kind === 'none') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return false;
  }
  return true;
}

test('without the sandbox, commands get no secret-looking variables nor agent sockets (printenv | base64, env)', async () => {
  const saved = { ...process.env };
  process.env.OPENAI_API_KEY = 'sk-proc-test-0123456789abcdefghij';
  process.env.MY_SERVICE_TOKEN = 'service-token-value-98765';
  process.env.SSH_AUTH_SOCK = '/tmp/agent.sock';
  process.env.APOLLO_PLAIN_SETTING = 'kept-value';
  const r = runner();
  try {
    const encoded = await r.tools.run(call('run_command', { command: 'printenv OPENAI_API_KEY | base64; echo "[$MY_SERVICE_TOKEN]"' }));
    assert.match(encoded.observation, /^\[\]\n/, encoded.observation);
    assert.equal(encoded.observation.includes(Buffer.from('sk-proc-test').toString('base64').slice(0, 12)), false);
    const env = await r.tools.run(call('run_command', { command: 'env' }));
    assert.equal(env.isError, false, env.observation);
    assert.match(env.observation, /APOLLO_PLAIN_SETTING=kept-value/, 'ordinary variables are kept');
    for (const secret of ['sk-proc-test', 'service-token-value', 'SSH_AUTH_SOCK', 'OPENAI_API_KEY']) assert.equal(env.observation.includes(secret), false, secret);
    // Jobs too.
    await r.tools.run(call('job_start', { name: 'env', command: 'env' }));
    let read = '';
    for (let i = 0; i < 100 && !/ended/.test(read); i++) {
      read += (await r.tools.run(call('job_read', { name: 'env' }))).observation;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(read, /APOLLO_PLAIN_SETTING=kept-value/);
    assert.equal(read.includes('sk-proc-test') || read.includes('service-token-value'), false);
    // The pass list lets a named one through.
    const passing = runner({ passEnv: ['MY_SERVICE_TOKEN'] });
    try {
      const passed = await passing.tools.run(call('run_command', { command: 'echo "[$MY_SERVICE_TOKEN]"' }));
      assert.match(passed.observation, /\[service-token-value-98765\]/);
    } finally {
      await passing.cleanup();
    }
  } finally {
    process.env = saved;
    await r.cleanup();
  }
});

test('without the sandbox, a setsid child holding the output does not hang run_command and ends with the command', { skip: !HAS_PROC && 'needs /proc' }, async () => {
  const r = runner();
  try {
    const tag = uniqueSleep();
    const started = Date.now();
    const result = await r.tools.run(call('run_command', { command: `setsid sleep ${tag} & echo launched`, timeout_seconds: 60 }));
    assert.ok(Date.now() - started < 5000, `run_command waited ${Date.now() - started} ms`);
    assert.match(result.observation, /launched/);
    await until('the setsid child to end', () => alive(tag).length === 0);

    // Past the time limit: nohup … & and a double fork end too, and the command returns on time.
    const tag2 = uniqueSleep();
    const tag3 = uniqueSleep();
    const limited = Date.now();
    const timedOut = await r.tools.run(call('run_command', { command: `nohup sleep ${tag2} >/dev/null 2>&1 & (setsid sh -c 'sleep ${tag3}' &) ; sleep 100`, timeout_seconds: 1 }));
    assert.ok(Date.now() - limited < 5000, `run_command waited ${Date.now() - limited} ms`);
    assert.match(timedOut.observation, /Timed out after 1 s/);
    await until('the detached children to end', () => alive(tag2).length === 0 && alive(tag3).length === 0);
  } finally {
    await r.cleanup();
  }
});

test("without the sandbox, a job's setsid children end when the job is stopped, and those of every job when the run ends", { skip: !HAS_PROC && 'needs /proc' }, async () => {
  const r = runner();
  const tagA = uniqueSleep();
  const tagB = uniqueSleep();
  try {
    await r.tools.run(call('job_start', { name: 'a', command: `setsid sleep ${tagA} & sleep 600` }));
    await r.tools.run(call('job_start', { name: 'b', command: `(setsid sleep ${tagB} >/dev/null 2>&1 &); sleep 600` }));
    await until('the children to start', () => alive(tagA).length > 0 && alive(tagB).length > 0);
    const killed = await r.tools.run(call('job_kill', { name: 'a' }));
    assert.match(killed.observation, /ended/, killed.observation);
    await until("job a's setsid child to end", () => alive(tagA).length === 0);
    assert.ok(alive(tagB).length > 0, 'the other job goes on');
    await r.tools.dispose();
    await until('every child to end with the run', () => alive(tagB).length === 0);
  } finally {
    await r.cleanup();
  }
});

test("in the sandbox, a setsid child neither hangs run_command nor outlives it, and a job's ends with the run", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const r = runner({ mode: 'auto' });
  try {
    const tag = uniqueSleep();
    const started = Date.now();
    const result = await r.tools.run(call('run_command', { command: `setsid sleep ${tag} & echo launched`, timeout_seconds: 60 }));
    assert.ok(Date.now() - started < 5000, `run_command waited ${Date.now() - started} ms`);
    assert.match(result.observation, /launched/);
    await until('the setsid child to end', () => alive(tag).length === 0);
    const tag2 = uniqueSleep();
    await r.tools.run(call('job_start', { name: 'daemon', command: `setsid sleep ${tag2} & sleep 600` }));
    await until("the job's child to start", () => alive(tag2).length > 0);
    await r.tools.dispose();
    await until("the job's child to end with the run", () => alive(tag2).length === 0);
  } finally {
    await r.cleanup();
  }
});

test('a fork loop and a memory hog are stopped at their caps with a clear observation, and the run goes on', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const r = runner({ mode: 'auto', network: false, maxProcesses: 64, maxMemoryBytes: 300 * 1024 * 1024 });
  try {
    const tag = uniqueSleep();
    const forks = await r.tools.run(call('run_command', { command: `while :; do sleep ${tag} & done`, timeout_seconds: 60 }));
    assert.equal(forks.isError, true);
    assert.match(forks.observation, /Stopped by Apollo: it had \d+ processes, over the cap of 64 processes per command/, forks.observation);
    await until('every forked process to end', () => alive(tag).length === 0);

    const hog = await r.tools.run(
      call('run_command', { command: `${process.execPath} -e "const b = Buffer.alloc(600 * 1024 * 1024, 1); setTimeout(() => console.log(b.length), 60000)"`, timeout_seconds: 60 }),
    );
    assert.equal(hog.isError, true);
    assert.match(hog.observation, /Stopped by Apollo: its processes used .* of memory, over the cap of 300 MiB per command/, hog.observation);

    const after = await r.tools.run(call('run_command', { command: 'echo still here' }));
    assert.match(after.observation, /still here\n\[exit code 0\]/);

    // A job over a cap is stopped too, and says why.
    await r.tools.run(call('job_start', { name: 'forker', command: `while :; do sleep ${tag} & done` }));
    let read = '';
    for (let i = 0; i < 200 && !/ended/.test(read); i++) {
      read += (await r.tools.run(call('job_read', { name: 'forker' }))).observation;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(read, /Stopped by Apollo: it had \d+ processes, over the cap of 64/);
    await until("the job's processes to end", () => alive(tag).length === 0);
  } finally {
    await r.cleanup();
  }
});

const builtCli = path.resolve(__dirname, '../../../dist/cli.js');

for (const mode of ['auto', 'off']) {
  test(
    `Ctrl+C on the CLI ends the run within seconds while a command with a setsid child runs (--sandbox ${mode}): run.json closed, the child gone`,
    { skip: (!existsSync(builtCli) && 'run npm run build first') || (!HAS_PROC && 'needs /proc') },
    async () => {
      const tag = uniqueSleep();
      const server = await startScriptedModelServer([{ toolCall: { name: 'run_command', arguments: { command: `setsid sleep ${tag} & sleep 600`, timeout_seconds: 900 } } }]);
      const ws = makeWorkspace({ 'README.md': '# demo\n' });
      const dataset = path.join(ws.dir, '.apollo', 'dataset');
      try {
        const child = spawn(
          process.execPath,
          [builtCli, 'run', '--workspace', ws.dir, '--dataset', dataset, '--task', 'Do the task', '--base-url', server.baseUrl, '--model', 'scripted-model', '--max-steps', '5', '--sandbox', mode],
          {
            env: { ...process.env, OPENAI_API_KEY: 'test-key-0123456789' },
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (data) => (stdout += data));
        child.stderr.on('data', (data) => (stderr += data));
        let exited = false;
        child.on('exit', () => (exited = true));
        await until("the command's setsid child to run", () => alive(tag).length > 0, 30_000);
        const interrupted = Date.now();
        child.kill('SIGINT');
        await until('the CLI to exit', () => exited, 15_000);
        assert.ok(Date.now() - interrupted < 10_000, `took ${Date.now() - interrupted} ms`);
        const runId = stdout.split('\n')[0];
        const manifest = JSON.parse(readFileSync(path.join(dataset, 'runs', runId, 'run.json'), 'utf8'));
        assert.equal(manifest.status, 'stopped', stderr);
        await until('the setsid child to end', () => alive(tag).length === 0);
      } finally {
        await server.close();
        ws.cleanup();
      }
    },
  );
}
