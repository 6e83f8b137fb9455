/**
 * Git metadata the agent writes never runs code on the host, against the real bubblewrap sandbox.
 *
 * Each attack plants a program (core.fsmonitor, a post-index-change or pre-commit hook) that
 * would create a marker outside the workspace; after the command, git runs on the host as VS
 * Code's git extension or a shell prompt would (`git status`, `git add -A`, in the workspace and
 * in the nested repository), and the marker must not appear. Each attack is first made on the host
 * in a control folder, where the same git runs must create the marker: the plant works, so its
 * absence in the workspace means something.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { folderOutsideTmp } from '../fixtures/workspace';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { isSafeConfigKey, sanitiseGitDir, scanGitMetadata } from '../../src/core/agent/gitMetadataGuard';
import { ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { WorkspaceWatcher } from '../../src/core/grounding/watcher';
import { RunSession } from '../../src/core/session/runSession';
import { defaultDatasetPath } from '../../src/core/dataset/store';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';

const TEST_ROOT = folderOutsideTmp('.gitmeta-tests');

interface Fixture {
  root: string;
  workspace: string;
  marker: string;
  notices: string[];
  tools: ToolRunner;
  cleanup(): Promise<void>;
}

function fixture(setup: (workspace: string) => void = () => undefined): Fixture {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'run-'));
  const home = path.join(root, 'home');
  const workspace = path.join(root, 'ws');
  mkdirSync(home, { recursive: true });
  mkdirSync(workspace);
  setup(workspace);
  const notices: string[] = [];
  const tools = new ToolRunner({
    workspace,
    guard: new WorkspaceGuard(workspace, []),
    sandbox: { mode: 'auto', network: false, home },
    onNotice: (message) => notices.push(message),
  });
  return {
    root,
    workspace,
    marker: path.join(root, 'MARKER'),
    notices,
    tools,
    cleanup: async () => {
      await tools.dispose();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function sandboxOrSkip(t: { skip(message?: string): void }): Promise<boolean> {
  const sandbox = await detectSandbox();
  if (sandbox.kind === 'none') {
    t.skip(`no bubblewrap sandbox here: ${sandbox.reason}`);
    return false;
  }
  return true;
}

async function run(tools: ToolRunner, command: string) {
  return tools.run({ id: 'c1', name: 'run_command', arguments: JSON.stringify({ command, timeout_seconds: 60 }) });
}

/** Shell text that plants fsmonitor and hooks writing `marker` into the repository at `dir` (its gitdir `gitDir`). */
function plant(dir: string, gitDir: string, marker: string): string {
  const hook = `#!/bin/sh\\ntouch ${marker}\\n`;
  return [
    `git -C ${dir} config core.fsmonitor 'touch ${marker}; false #'`,
    `mkdir -p ${gitDir}/hooks`,
    ...['post-index-change', 'pre-commit', 'post-checkout'].map((name) => `printf '${hook}' > ${gitDir}/hooks/${name} && chmod +x ${gitDir}/hooks/${name}`),
    `echo content > ${dir}/file.txt`,
  ].join(' && ');
}

/** Git as the editor or a shell prompt runs it, on the host. */
function hostGit(dirs: string[]): void {
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const args of [['status'], ['add', '-A'], ['status']]) spawnSync('git', args, { cwd: dir, stdio: 'ignore', timeout: 20_000 });
  }
}

/** The same attack on the host, unguarded: the marker must appear (the test can fail). */
function control(attack: (dir: string, marker: string) => string, gitDirs: (dir: string) => string[]): void {
  mkdirSync(TEST_ROOT, { recursive: true });
  const dir = mkdtempSync(path.join(TEST_ROOT, 'control-'));
  try {
    const marker = path.join(dir, 'CONTROL-MARKER');
    const ws = path.join(dir, 'ws');
    mkdirSync(ws);
    execFileSync('/bin/bash', ['-c', attack(ws, marker)], { cwd: ws, stdio: 'ignore' });
    hostGit(gitDirs(ws));
    assert.ok(existsSync(marker), 'the control attack must run its program on the host, or the test proves nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const gitInitSub = (ws: string, marker: string) => `git init -q sub && ${plant('sub', 'sub/.git', marker)}`;
const gitFileBare = (ws: string, marker: string) =>
  `git init -q --bare .bare && printf 'gitdir: ./.bare\\n' > .git && git config --file .bare/config core.bare false && ${plant('.', '.bare', marker)}`;
const gitInitRoot = (ws: string, marker: string) => `git init -q . && ${plant('.', '.git', marker)}`;

test('a nested git init with core.fsmonitor and hooks is neutralised before run_command returns; host git runs nothing', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  control(gitInitSub, (ws) => [path.join(ws, 'sub')]);
  const f = fixture((ws) => execFileSync('git', ['init', '-q', ws]));
  try {
    const result = await run(f.tools, gitInitSub(f.workspace, f.marker));
    assert.match(result.observation, /\[exit code 0\]/, result.observation);
    assert.match(result.observation, /sub\/\.git\) was neutralised.*core\.fsmonitor.*hooks moved aside.*post-index-change/s);
    assert.equal(f.notices.length, 1);
    hostGit([f.workspace, path.join(f.workspace, 'sub')]);
    assert.equal(existsSync(f.marker), false, 'a planted program ran on the host');
    assert.equal(readFileSync(path.join(f.workspace, 'sub', '.git', 'hooks', 'pre-commit.disabled-by-apollo'), 'utf8').includes('touch'), true, 'the hook is kept aside, not lost');
    // From the next command on, the new repository is read-only.
    const again = await run(f.tools, `git -C sub config core.fsmonitor 'touch ${f.marker} #'; printf x > sub/.git/hooks/pre-commit`);
    assert.match(again.observation, /Read-only file system|could not lock config file/);
    hostGit([path.join(f.workspace, 'sub')]);
    assert.equal(existsSync(f.marker), false);
  } finally {
    await f.cleanup();
  }
});

test('a .git file pointing to ./.bare with fsmonitor and hooks is neutralised; host git runs nothing', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  control(gitFileBare, (ws) => [ws]);
  const f = fixture();
  try {
    const result = await run(f.tools, gitFileBare(f.workspace, f.marker));
    assert.match(result.observation, /\[exit code 0\]/, result.observation);
    assert.match(result.observation, /\(\.bare\) was neutralised.*core\.fsmonitor/s);
    hostGit([f.workspace]);
    assert.equal(existsSync(f.marker), false, 'a planted program ran on the host');
    // The .git file and the gitdir are read-only from now on: neither can be pointed elsewhere.
    const again = await run(f.tools, "printf 'gitdir: ./other\\n' > .git; echo x > .bare/config");
    assert.match(again.observation, /Read-only file system/);
    assert.equal(readFileSync(path.join(f.workspace, '.git'), 'utf8'), 'gitdir: ./.bare\n');
  } finally {
    await f.cleanup();
  }
});

test('git init at the root of a non-git workspace is neutralised; host git runs nothing', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  control(gitInitRoot, (ws) => [ws]);
  const f = fixture();
  try {
    const result = await run(f.tools, gitInitRoot(f.workspace, f.marker));
    assert.match(result.observation, /\(\.git\) was neutralised|\(\.\) was neutralised/, result.observation);
    hostGit([f.workspace]);
    assert.equal(existsSync(f.marker), false, 'a planted program ran on the host');
    // What git needs to open the repository stays: it is still a repository, without the programs.
    const listed = execFileSync('git', ['config', '--file', path.join(f.workspace, '.git', 'config'), '--list'], { encoding: 'utf8' });
    assert.match(listed, /core\.repositoryformatversion=0/);
    assert.doesNotMatch(listed, /fsmonitor/);
  } finally {
    await f.cleanup();
  }
});

test('a job that plants a nested repository is neutralised when its output is read and when it ends', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  try {
    const started = await f.tools.run({ id: 'j', name: 'job_start', arguments: JSON.stringify({ name: 'planter', command: `${gitInitSub(f.workspace, f.marker)}; echo planted && sleep 30` }) });
    assert.equal(started.isError, false, started.observation);
    let read = '';
    for (let i = 0; i < 200 && !/planted/.test(read); i++) {
      read += (await f.tools.run({ id: 'r', name: 'job_read', arguments: JSON.stringify({ name: 'planter' }) })).observation;
      if (!/planted/.test(read)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(read, /planted/);
    // (The guard may have struck while the job was still planting, before its last step: it goes on either way.)
    // Neutralised by the live pass (watcher-free here: the job's start and its reads) at the latest on this read.
    const config = readFileSync(path.join(f.workspace, 'sub', '.git', 'config'), 'utf8');
    assert.doesNotMatch(config, /fsmonitor/);
    hostGit([path.join(f.workspace, 'sub')]);
    assert.equal(existsSync(f.marker), false, 'a planted program ran on the host');
  } finally {
    await f.cleanup();
  }
});

test('while a job still runs, what it plants in a new repository is neutralised live, within a fraction of a second', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  const watcher = new WorkspaceWatcher(f.workspace, { nativeRecursive: false });
  await watcher.start();
  watcher.onGitMetadataChange(() => f.tools.gitMetadataChanged());
  try {
    const config = path.join(f.workspace, 'sub', '.git', 'config');
    const command = `git init -q sub && sleep 1 && git -C sub config core.fsmonitor 'touch ${f.marker} #' && echo planted && sleep 30`;
    await f.tools.run({ id: 'j', name: 'job_start', arguments: JSON.stringify({ name: 'live', command }) });
    // Planted one second after the init; never read through job_read: only the live pass sees it.
    const deadline = Date.now() + 10_000;
    let planted = false;
    let plantedAt = 0;
    while (Date.now() < deadline) {
      const text = existsSync(config) ? readFileSync(config, 'utf8') : '';
      if (/fsmonitor/.test(text) && !planted) {
        planted = true;
        plantedAt = Date.now();
      }
      if (planted && !/fsmonitor/.test(text)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(
      f.notices.some((n) => /core\.fsmonitor/.test(n)),
      f.notices.join('\n'),
    );
    assert.doesNotMatch(readFileSync(config, 'utf8'), /fsmonitor/);
    if (planted) assert.ok(Date.now() - plantedAt < 1000, `neutralised ${Date.now() - plantedAt} ms after the write`);
    hostGit([path.join(f.workspace, 'sub')]);
    assert.equal(existsSync(f.marker), false);
  } finally {
    watcher.dispose();
    await f.cleanup();
  }
});

test("a .git file pointing to a repository in the sandbox's private /tmp (its host path read from mountinfo) is neutralised too", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  const f = fixture();
  try {
    const attack = [
      'host=$(awk \'$5 == "/tmp" { print $4 }\' /proc/self/mountinfo | head -1)',
      'git init -q /tmp/evil',
      `git -C /tmp/evil config core.fsmonitor 'touch ${f.marker} #'`,
      `printf '#!/bin/sh\\ntouch ${f.marker}\\n' > /tmp/evil/.git/hooks/post-index-change && chmod +x /tmp/evil/.git/hooks/post-index-change`,
      'printf "gitdir: $host/evil/.git\\n" > .git',
      'echo content > file.txt',
      'cat .git',
    ].join(' && ');
    const result = await run(f.tools, attack);
    const gitdir = /gitdir: (\/.+\/evil\/\.git)/.exec(result.observation)?.[1] ?? '';
    assert.ok(existsSync(path.join(gitdir, 'config')), `the .git file leads to the planted repository on the host: ${result.observation}`);
    assert.match(result.observation, /was neutralised.*core\.fsmonitor.*post-index-change/s);
    hostGit([f.workspace]);
    assert.equal(existsSync(f.marker), false, 'a planted program ran on the host');
  } finally {
    await f.cleanup();
  }
});

test('a pre-existing nested repository and .git file are read-only to commands and never rewritten', async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  let userConfig = '';
  const f = fixture((ws) => {
    execFileSync('git', ['init', '-q', ws]);
    execFileSync('git', ['init', '-q', path.join(ws, 'vendor', 'lib')]);
    // The user's own settings, which the guard must leave as they are.
    execFileSync('git', ['-C', path.join(ws, 'vendor', 'lib'), 'config', 'alias.st', 'status']);
    execFileSync('git', ['init', '-q', '--bare', path.join(ws, 'mirror.git')]);
    mkdirSync(path.join(ws, 'wt'));
    writeFileSync(path.join(ws, 'wt', '.git'), 'gitdir: ../mirror.git\n');
    userConfig = readFileSync(path.join(ws, 'vendor', 'lib', '.git', 'config'), 'utf8');
  });
  try {
    const attack = [
      `git -C vendor/lib config core.fsmonitor 'touch ${f.marker} #'`,
      `printf '#!/bin/sh\\ntouch ${f.marker}\\n' > vendor/lib/.git/hooks/post-index-change`,
      `git config --file mirror.git/config core.hooksPath /tmp`,
      `printf 'gitdir: /tmp/evil\\n' > wt/.git`,
      `echo x > .git/config`,
    ]
      .map((command) => `(${command}) 2>&1`)
      .join('; ');
    const result = await run(f.tools, attack);
    assert.equal((result.observation.match(/Read-only file system|could not lock config file|Permission denied/g) ?? []).length >= 5, true, result.observation);
    assert.equal(readFileSync(path.join(f.workspace, 'vendor', 'lib', '.git', 'config'), 'utf8'), userConfig);
    assert.equal(readFileSync(path.join(f.workspace, 'wt', '.git'), 'utf8'), 'gitdir: ../mirror.git\n');
    assert.deepEqual(f.notices, []);
    hostGit([f.workspace, path.join(f.workspace, 'vendor', 'lib')]);
    assert.equal(existsSync(f.marker), false);
  } finally {
    await f.cleanup();
  }
});

test('the scan finds .git folders and files, their gitdirs and bare repositories, and stops at its bound', () => {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'scan-'));
  try {
    execFileSync('git', ['init', '-q', root]);
    execFileSync('git', ['init', '-q', path.join(root, 'a', 'b', 'nested')]);
    execFileSync('git', ['init', '-q', '--bare', path.join(root, 'store', 'x.git')]);
    mkdirSync(path.join(root, 'linked'));
    writeFileSync(path.join(root, 'linked', '.git'), 'gitdir: ../store/x.git\n');
    const found = scanGitMetadata(root)
      .locations.map((l) => path.relative(root, l.path))
      .sort();
    assert.deepEqual(found, ['.git', 'a/b/nested/.git', 'linked/.git', 'store/x.git'].sort());
    const cache = new Map();
    assert.equal(scanGitMetadata(root, { cache }).locations.length, 4);
    // A new repository changes its parent's mtime: the cached refresh sees it.
    execFileSync('git', ['init', '-q', path.join(root, 'a', 'later')]);
    assert.ok(scanGitMetadata(root, { cache }).locations.some((l) => l.path === path.join(root, 'a', 'later', '.git')));
    // Apollo's own folders (dataset, shadow store) are not the agent's: not scanned.
    assert.equal(
      scanGitMetadata(root, { excluded: [path.join(root, 'store')] }).locations.some((l) => l.path.startsWith(path.join(root, 'store'))),
      false,
    );
    const bounded = scanGitMetadata(root, { maxDirs: 2 });
    assert.equal(bounded.truncated, true);
    assert.ok(bounded.locations.length < 4);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('sanitising keeps only allow-listed config keys (remotes and branches survive) and moves hooks aside', () => {
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'sanitise-'));
  try {
    execFileSync('git', ['init', '-q', root]);
    const gitDir = path.join(root, '.git');
    const set = (...args: string[]) => execFileSync('git', ['config', '--file', path.join(gitDir, 'config'), ...args]);
    set('remote.origin.url', 'https://example.com/a "quoted" repo.git');
    set('branch.main.remote', 'origin');
    set('include.path', '/elsewhere/config');
    set('includeIf.gitdir:/x/.path', '/elsewhere');
    set('diff.evil.textconv', 'sh -c x');
    set('filter.lfs.smudge', 'x');
    set('alias.x', '!sh');
    set('credential.helper', 'x');
    set('core.sshCommand', 'x');
    set('core.hooksPath', '/tmp');
    set('hook.linter.command', 'x');
    writeFileSync(path.join(gitDir, 'hooks', 'pre-commit'), '#!/bin/sh\n');
    const done = sanitiseGitDir(gitDir);
    assert.equal(done.length, 2, done.join('\n'));
    const listed = execFileSync('git', ['config', '--file', path.join(gitDir, 'config'), '--list'], { encoding: 'utf8' });
    assert.match(listed, /remote\.origin\.url=https:\/\/example\.com\/a "quoted" repo\.git/);
    assert.match(listed, /branch\.main\.remote=origin/);
    assert.doesNotMatch(listed, /include|textconv|filter|alias|credential|sshcommand|hookspath|hook\./i);
    assert.equal(existsSync(path.join(gitDir, 'hooks', 'pre-commit')), false);
    assert.equal(existsSync(path.join(gitDir, 'hooks', 'pre-commit.disabled-by-apollo')), true);
    assert.deepEqual(sanitiseGitDir(gitDir), [], 'a second pass has nothing to do');
    for (const key of [
      'core.fsmonitor',
      'core.pager',
      'core.editor',
      'core.askpass',
      'gpg.program',
      'gpg.ssh.program',
      'sequence.editor',
      'uploadpack.packobjectshook',
      'merge.x.driver',
      'diff.external',
      'remote.origin.uploadpack',
    ]) {
      assert.equal(isSafeConfigKey(key), false, key);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("in a run, a neutralised repository is recorded as a notice and said in the step's observation", async (t) => {
  if (!(await sandboxOrSkip(t))) return;
  mkdirSync(TEST_ROOT, { recursive: true });
  const root = mkdtempSync(path.join(TEST_ROOT, 'session-'));
  const workspace = path.join(root, 'ws');
  mkdirSync(workspace);
  writeFileSync(path.join(workspace, 'README.md'), '# demo\n');
  const marker = path.join(root, 'MARKER');
  const server = await startScriptedModelServer([
    { toolCall: { name: 'run_command', arguments: { command: gitInitSub(workspace, marker) } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  try {
    const session = await RunSession.start({ workspace, datasetDir: defaultDatasetPath(workspace), task: 't', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', log: () => undefined });
    const ended = await session.done;
    assert.equal(ended.status, 'finished');
    const events = await session.events();
    const notices = events.filter((event) => event.type === 'notice').map((event) => (event as { message: string }).message);
    assert.ok(
      notices.some((message) => /sub\/\.git\) was neutralised.*core\.fsmonitor/s.test(message)),
      notices.join('\n'),
    );
    const step = events.find((event) => event.type === 'step') as { observation: string } | undefined;
    assert.match(step?.observation ?? '', /was neutralised/);
    hostGit([workspace, path.join(workspace, 'sub')]);
    assert.equal(existsSync(marker), false);
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
