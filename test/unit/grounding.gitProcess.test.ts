import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { endsWith, GitProcess, GitProcessError, lines } from '../../src/core/grounding/gitProcess';
import { gitEnvironment } from '../../src/core/grounding/gitEnvironment';
import { git, makeWorkspace } from '../fixtures/workspace';

const alive = (pid: number | undefined) => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('requests to a long-lived git process are answered in order, each framed by its own rule', async () => {
  const ws = makeWorkspace({ 'a.txt': 'alpha\n', 'b.txt': 'beta\n' });
  const hash = new GitProcess({ args: ['hash-object', '--stdin-paths'], cwd: ws.dir, env: gitEnvironment() });
  const diff = new GitProcess({ args: ['diff-tree', '--stdin', '-r', '--name-only'], cwd: ws.dir, env: gitEnvironment() });
  try {
    // Sent at once: one at a time on the pipe, answers in order.
    const [a, both] = await Promise.all([hash.request('a.txt\n', lines(1)), hash.request('b.txt\na.txt\n', lines(2))]);
    assert.equal(a.toString().trim(), git(ws.dir, 'hash-object', 'a.txt').trim());
    assert.deepEqual(both.toString().trim().split('\n'), [git(ws.dir, 'hash-object', 'b.txt').trim(), a.toString().trim()]);
    assert.equal(hash.starts, 1);
    assert.equal(hash.requests, 2);

    // An answer of unknown length ends with a line git echoes back.
    git(ws.dir, 'rm', '-q', 'b.txt');
    git(ws.dir, 'commit', '-q', '-m', 'second');
    const pair = `${git(ws.dir, 'rev-parse', 'HEAD~1^{tree}').trim()} ${git(ws.dir, 'rev-parse', 'HEAD^{tree}').trim()}\n`;
    const answer = await diff.request(`${pair}END-OF-ANSWER\n`, endsWith('END-OF-ANSWER\n'));
    assert.equal(answer.toString(), `${pair}b.txt\nEND-OF-ANSWER\n`);
  } finally {
    hash.dispose();
    diff.dispose();
    ws.cleanup();
  }
});

test("a git process that dies fails its request with git's error and the next request starts a new one", async () => {
  const ws = makeWorkspace({ 'a.txt': 'alpha\n' });
  const hash = new GitProcess({ args: ['hash-object', '--stdin-paths'], cwd: ws.dir, env: gitEnvironment() });
  try {
    await hash.request('a.txt\n', lines(1));
    const first = hash.pid;
    await assert.rejects(hash.request('missing.txt\n', lines(1)), (error: unknown) => {
      assert.ok(error instanceof GitProcessError);
      assert.match(error.message, /missing\.txt/);
      return true;
    });
    await until(() => !alive(first), 'the dead process to be gone');
    assert.equal((await hash.request('a.txt\n', lines(1))).toString().trim(), git(ws.dir, 'hash-object', 'a.txt').trim());
    assert.equal(hash.starts, 2);
    // Killed from outside while idle: the next request starts another.
    process.kill(hash.pid!, 'SIGKILL');
    await until(() => hash.pid === undefined, 'the killed process to be noticed');
    await hash.request('a.txt\n', lines(1));
    assert.equal(hash.starts, 3);
  } finally {
    hash.dispose();
    ws.cleanup();
  }
});

test('a git process that cannot start, one disposed, and one left idle: each says what happened, none is left running', async () => {
  const ws = makeWorkspace({ 'a.txt': 'alpha\n' });
  const missing = new GitProcess({ args: ['version'], cwd: ws.dir, env: gitEnvironment(), command: path.join(ws.dir, 'no-such-git') });
  await assert.rejects(missing.request('\n', lines(1)), /could not start/);

  const idle = new GitProcess({ args: ['hash-object', '--stdin-paths'], cwd: ws.dir, env: gitEnvironment(), idleMs: 50 });
  const disposed = new GitProcess({ args: ['hash-object', '--stdin-paths'], cwd: ws.dir, env: gitEnvironment() });
  try {
    await idle.request('a.txt\n', lines(1));
    const first = idle.pid;
    await until(() => !alive(first), 'the idle process to end');
    await idle.request('a.txt\n', lines(1));
    assert.equal(idle.starts, 2);

    await disposed.request('a.txt\n', lines(1));
    const pid = disposed.pid;
    disposed.dispose();
    await until(() => !alive(pid), 'the disposed process to end');
    await assert.rejects(disposed.request('a.txt\n', lines(1)), /stopped/);
    assert.equal(disposed.starts, 1);
  } finally {
    idle.dispose();
    disposed.dispose();
    ws.cleanup();
  }
});
