/**
 * The file tools against the agent's own background jobs, with the real bubblewrap sandbox
 * (skipped, saying why, where there is none): a job that swaps a folder for a symlink to the host
 * in a tight loop while the model reads and writes through that folder, and a named pipe in the
 * workspace. Nothing may be read or written outside, and nothing may block the run.
 *
 * The test folders live outside /tmp (see agent.escapes.test.ts): inside the sandbox /tmp is
 * private.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { folderOutsideTmp } from '../fixtures/workspace';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { type ToolResult, ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';

const TEST_ROOT = folderOutsideTmp('.file-race-tests');
const MARKER = 'OUTSIDE-SECRET-3f9a1c';

function call(name: string, args: unknown) {
  return { id: 'c1', name, arguments: JSON.stringify(args) };
}

async function sandboxOrSkip(t: { skip(message?: string): void }): Promise<boolean> {
  const sandbox = await detectSandbox();
  if (sandbox.kind === 'none') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return false;
  }
  return true;
}

function fixture() {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'run-'));
  const workspace = path.join(root, 'ws');
  const outside = path.join(root, 'outside');
  const home = path.join(root, 'home');
  const dataset = path.join(root, 'dataset');
  mkdirSync(home);
  mkdirSync(dataset);
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret'), `${MARKER}\n`);
  mkdirSync(path.join(workspace, 'd'), { recursive: true });
  writeFileSync(path.join(workspace, 'd', 'secret'), 'inside\n');
  execFileSync('git', ['init', '-q', workspace]);
  const tools = new ToolRunner({ workspace, guard: new WorkspaceGuard(workspace, [dataset]), sandbox: { mode: 'auto', network: false, home } });
  return { root, workspace, outside, tools };
}

/** Resolves with the promise's outcome, or rejects when it has not settled by the deadline. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(what: string, condition: () => boolean, ms: number, poll: () => Promise<void>, detail?: () => string): Promise<void> {
  const end = Date.now() + ms;
  for (await poll(); !condition(); await poll()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Swaps `d` between the real folder and a symlink to the outside folder, as fast as it can, with
 * no process started per swap. Copes with a `d` made meanwhile by write_file (a missing parent).
 */
const SWAPPER = `
use strict;
use File::Path qw(rmtree);
my $out = shift;
$| = 1;
print "swapping\\n";
while (1) {
  rmtree("dd") if -e "dd";
  rename("d", "dd");
  if (-d "dd" && !-e "dd/secret") {
    if (open(my $fh, ">", "dd/secret")) { print $fh "inside\\n"; close $fh; }
  }
  symlink($out, "d");
  unlink("d") if -l "d";
  rename("dd", "d") or rmtree("dd");
}
`;

const CLEAR_REFUSAL = /outside the workspace|No such file or folder|That path is not a folder|too many levels of symbolic links|That path is a folder/;

test('race: a job swapping a folder for a symlink to the host cannot lead write_file or read_file outside', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  let disposed = false;
  try {
    writeFileSync(path.join(f.workspace, 'swap.pl'), SWAPPER);
    const started = await f.tools.run(call('job_start', { name: 'swapper', command: `perl swap.pl ${f.outside}` }));
    assert.match(started.observation, /started/, started.observation);
    let output = '';
    await until(
      'the job to start swapping',
      () => /swapping/.test(output),
      20_000,
      async () => {
        output += (await f.tools.run(call('job_read', { name: 'swapper' }))).observation;
      },
      () => output.slice(0, 1500),
    );

    const results: { tool: string; result: ToolResult }[] = [];
    const metTheSymlink = () => results.some(({ result }) => /outside the workspace/.test(result.observation));
    // 60 rounds at least, and on until a call has met the symlink (a loaded machine swaps less often), within 1,000.
    for (let i = 0; i < 60 || (!metTheSymlink() && i < 1000); i++) {
      results.push({ tool: 'write_file', result: await f.tools.run(call('write_file', { path: 'd/x', content: `written ${i}\n` })) });
      results.push({ tool: 'read_file', result: await f.tools.run(call('read_file', { path: 'd/secret' })) });
    }
    const job = await f.tools.run(call('job_read', { name: 'swapper' }));
    assert.match(job.observation, /running/, 'the swapper ran all along');

    for (const { tool, result } of results) {
      assert.ok(!result.observation.includes(MARKER), `${tool} showed the outside file: ${result.observation}`);
      if (!result.isError) {
        if (tool === 'write_file') assert.match(result.observation, /^Wrote \d+ bytes to d\/x\.$/);
        else assert.equal(result.observation, 'inside\n');
      } else {
        assert.match(result.observation, CLEAR_REFUSAL, `${tool}: ${result.observation}`);
      }
    }
    const refusedOutside = results.filter(({ result }) => /outside the workspace/.test(result.observation)).length;
    const worked = results.filter(({ result }) => !result.isError).length;
    t.diagnostic(`${worked} of ${results.length} calls worked inside, ${refusedOutside} were refused as leading outside`);
    assert.ok(refusedOutside > 0, 'the race was live: some calls met the symlink');

    const status = await within(f.tools.run(call('job_kill', { name: 'swapper' })), 10_000, 'job_kill');
    assert.match(status.observation, /ended/);
    await within(f.tools.dispose(), 10_000, 'dispose');
    disposed = true;
    assert.deepEqual(readdirSync(f.outside), ['secret'], 'nothing was written outside');
    assert.equal(readFileSync(path.join(f.outside, 'secret'), 'utf8'), `${MARKER}\n`);
  } finally {
    if (!disposed) await f.tools.dispose();
    rmSync(f.root, { recursive: true, force: true });
  }
});

test('race: search during the same swap never shows a line of the outside file', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  try {
    writeFileSync(path.join(f.workspace, 'swap.pl'), SWAPPER);
    assert.match((await f.tools.run(call('job_start', { name: 'swapper', command: `perl swap.pl ${f.outside}` }))).observation, /started/);
    let output = '';
    await until(
      'the job to start swapping',
      () => /swapping/.test(output),
      20_000,
      async () => {
        output += (await f.tools.run(call('job_read', { name: 'swapper' }))).observation;
      },
      () => output.slice(0, 1500),
    );
    let found = 0;
    for (let i = 0; i < 80; i++) {
      const result = await within(f.tools.run(call('search', { pattern: 'OUTSIDE-SECRET|^inside$', path: i % 2 ? 'd' : '.' })), 30_000, 'search');
      assert.ok(!result.observation.includes(MARKER), `search showed the outside file: ${result.observation}`);
      for (const line of result.observation.split('\n')) {
        assert.ok(/^dd?\/secret:1:inside$/.test(line) || /^No match for/.test(line) || CLEAR_REFUSAL.test(line) || /^search failed/.test(line), line);
      }
      if (/secret:1:inside/.test(result.observation)) found++;
    }
    t.diagnostic(`${found} of 80 searches found the inside file`);
    await within(f.tools.dispose(), 10_000, 'dispose');
    assert.deepEqual(readdirSync(f.outside), ['secret']);
  } finally {
    await f.tools.dispose();
    rmSync(f.root, { recursive: true, force: true });
  }
});

test('a named pipe in the workspace: read_file, write_file and edit_file refuse it at once, and the run goes on', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  try {
    const made = await f.tools.run(call('run_command', { command: 'mkfifo pipe && echo made' }));
    assert.match(made.observation, /made/, made.observation);
    const read = await within(f.tools.run(call('read_file', { path: 'pipe' })), 5000, 'read_file on a FIFO');
    assert.equal(read.isError, true);
    assert.match(read.observation, /"pipe" is a named pipe \(FIFO\), not a regular file; nothing was read/);
    const write = await within(f.tools.run(call('write_file', { path: 'pipe', content: 'x' })), 5000, 'write_file on a FIFO');
    assert.equal(write.isError, true);
    assert.match(write.observation, /named pipe \(FIFO\), not a regular file; nothing was written/);
    const edit = await within(f.tools.run(call('edit_file', { path: 'pipe', old_text: 'a', new_text: 'b' })), 5000, 'edit_file on a FIFO');
    assert.match(edit.observation, /named pipe/);
    const search = await within(f.tools.run(call('search', { pattern: 'inside' })), 10_000, 'search beside a FIFO');
    assert.equal(search.observation, 'd/secret:1:inside');
    assert.equal(lstatSync(path.join(f.workspace, 'pipe')).isFIFO(), true, 'the pipe is left as it was');

    assert.equal((await f.tools.run(call('read_file', { path: 'd/secret' }))).observation, 'inside\n');
    assert.equal((await f.tools.run(call('write_file', { path: 'd/y', content: 'y\n' }))).isError, false);
    assert.match((await f.tools.run(call('run_command', { command: 'cat d/y' }))).observation, /^y\n\[exit code 0\]/);
    assert.equal(existsSync(path.join(f.outside, 'y')), false);
  } finally {
    await within(f.tools.dispose(), 10_000, 'dispose');
    rmSync(f.root, { recursive: true, force: true });
  }
});
