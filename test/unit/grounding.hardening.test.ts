import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent } from '../../src/core/dataset/events';
import { newRunId } from '../../src/core/dataset/ids';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { ShadowStore, shadowStoreDir } from '../../src/core/grounding/shadowStore';
import { adoptRun } from '../../src/core/session/adopt';
import { rewindRun } from '../../src/core/session/rewind';
import { cloneUserRepository, indexCopy, materializeSnapshot } from '../../src/core/session/workingCopy';
import { RunSession } from '../../src/core/session/runSession';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { runStarted, step, tick, writeRun } from '../fixtures/trajectories';
import { GIT_IDENTITY, git, makeWorkspace, tempDir } from '../fixtures/workspace';

const HOOKS = ['post-index-change', 'post-checkout', 'reference-transaction', 'pre-commit', 'post-commit', 'pre-auto-gc', 'post-rewrite', 'fsmonitor-watchman'];

/**
 * Config that would make git run `program` at every turn: fsmonitor, hooks, a filter driver and a
 * diff driver (with textconv) that `.gitattributes` applies to every file, an external diff, a
 * pager, an ssh command and a credential helper.
 */
function hostileConfig(program: string, hooksDir: string): string {
  return [
    '[core]',
    `\tfsmonitor = ${program}`,
    `\thooksPath = ${hooksDir}`,
    `\tpager = ${program}`,
    `\tsshCommand = ${program}`,
    '[filter "evil"]',
    `\tclean = ${program} clean`,
    `\tsmudge = ${program} smudge`,
    '\trequired = true',
    '[diff "evil"]',
    `\ttextconv = ${program} textconv`,
    `\tcommand = ${program} diff`,
    '[diff]',
    `\texternal = ${program} external`,
    '[credential]',
    `\thelper = !${program} credential`,
    '',
  ].join('\n');
}

/** A program that notes it ran in `marker` (outside every workspace) and passes its input through. */
function armed() {
  const outside = tempDir('apollo-outside-');
  const marker = path.join(outside.dir, 'marker');
  const program = path.join(outside.dir, 'evil.sh');
  writeFileSync(program, `#!/bin/sh\necho "$0 $*" >> '${marker}'\ncat\n`);
  chmodSync(program, 0o755);
  const hooksDir = path.join(outside.dir, 'hooks');
  mkdirSync(hooksDir);
  for (const hook of HOOKS) {
    writeFileSync(path.join(hooksDir, hook), `#!/bin/sh\necho "hook ${hook}" >> '${marker}'\n`);
    chmodSync(path.join(hooksDir, hook), 0o755);
  }
  const home = path.join(outside.dir, 'home');
  mkdirSync(home);
  writeFileSync(path.join(home, '.gitconfig'), hostileConfig(program, hooksDir) + `[core]\n\tattributesFile = ${path.join(home, 'attributes')}\n`);
  writeFileSync(path.join(home, 'attributes'), '* filter=evil diff=evil\n');
  return { outside, marker, program, hooksDir, home };
}

/** A hostile repository's config and hooks (the workspace's own `.git`, or a store). */
function arm(gitDir: string, program: string, hooksDir: string): void {
  writeFileSync(path.join(gitDir, 'config'), readFileSync(path.join(gitDir, 'config'), 'utf8') + hostileConfig(program, hooksDir));
  mkdirSync(path.join(gitDir, 'hooks'), { recursive: true });
  for (const hook of HOOKS) cpSync(path.join(hooksDir, hook), path.join(gitDir, 'hooks', hook));
}

test('no hook, fsmonitor, filter, textconv or other configured program runs in snapshots, diffs, search, rewind or adopt, whatever the workspace, the store or the user config says', async () => {
  const evil = armed();
  const savedHome = process.env.HOME;
  const savedXdg = process.env.XDG_CONFIG_HOME;
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'a.txt': '0\n', '.gitattributes': '* filter=evil diff=evil\n' });
  const copyFolder = tempDir('apollo-copy-');
  try {
    arm(path.join(ws.dir, '.git'), evil.program, evil.hooksDir);
    process.env.HOME = evil.home;
    delete process.env.XDG_CONFIG_HOME;
    // Armed: plain git in the workspace runs the program (so the checks below can fail).
    execFileSync('git', ['status', '--porcelain'], { cwd: ws.dir, env: { ...process.env, ...GIT_IDENTITY }, stdio: 'ignore' });
    assert.ok(existsSync(evil.marker), 'plain git status runs the configured programs');
    rmSync(evil.marker);

    // The store exists before the run, armed like the workspace.
    const datasetDir = defaultDatasetPath(ws.dir);
    const storeDir = shadowStoreDir(datasetDir, ws.dir);
    await new ShadowStore({ workspace: ws.dir, storeDir }).init();
    arm(storeDir, evil.program, evil.hooksDir);

    const server = await startScriptedModelServer([
      { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: '1\n' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'echo 2 > a.txt && mkdir -p sub && echo b > sub/b.txt && ln -s a.txt link' } } },
      { toolCall: { name: 'search', arguments: { pattern: 'b' } } },
      { toolCall: { name: 'write_file', arguments: { path: 'c.txt', content: 'c\n' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ]);
    let runId: string;
    try {
      const session = await RunSession.start({ workspace: ws.dir, datasetDir, task: 'Edit files', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 10 });
      runId = session.runId;
      assert.equal((await session.done).status, 'finished');
    } finally {
      await server.close();
    }
    const { events } = await new DatasetStore(datasetDir).readEvents(runId);
    const written = events.filter((event) => event.type === 'step' && event.grounding?.files.length);
    assert.ok(written.length >= 3, 'the steps were grounded');
    assert.equal(existsSync(evil.marker), false, `nothing ran during the run: ${existsSync(evil.marker) ? readFileSync(evil.marker, 'utf8') : ''}`);

    await rewindRun({ datasetDir, runId, toStep: 2 });
    assert.equal(readFileSync(path.join(ws.dir, 'a.txt'), 'utf8'), '1\n');
    assert.equal(existsSync(evil.marker), false, 'nothing ran during the rewind');

    // Adopt: a run in a copy of the workspace brings its change back.
    const origin = realpathSync(ws.dir);
    const copy = realpathSync(copyFolder.dir);
    const originShadow = new ShadowStore({ workspace: origin, storeDir: shadowStoreDir(datasetDir, origin) });
    await originShadow.init();
    const base = await originShadow.snapshot();
    await originShadow.settled();
    cpSync(origin, copy, { recursive: true, verbatimSymlinks: true, filter: (source) => !['.git', '.apollo'].includes(path.basename(source)) });
    const adoptedRun = newRunId();
    const runShadow = new ShadowStore({ workspace: copy, storeDir: shadowStoreDir(datasetDir, copy), runId: adoptedRun });
    await runShadow.init();
    arm(runShadow.storeDir, evil.program, evil.hooksDir);
    const before = await runShadow.snapshot();
    writeFileSync(path.join(copy, 'a.txt'), 'adopted\n');
    const final = await runShadow.snapshot();
    await runShadow.settled();
    const store = new DatasetStore(datasetDir);
    const first = step(1, { tool: 'run_command', args: { command: 'edit' } });
    const recorded: DatasetEvent[] = [
      { ...runStarted(adoptedRun, 'Improve'), workspace: copy, taskId: 'task-1', origin: { workspace: origin, snapshot: base } },
      { ...first, grounding: { ...first.grounding, before, after: final } },
      { type: 'run_ended', time: tick(), status: 'finished', steps: 1 },
    ];
    await writeRun(store, adoptedRun, recorded);
    const result = await adoptRun(datasetDir, adoptedRun);
    assert.deepEqual(
      result.written.map((file) => file.path),
      ['a.txt'],
    );
    assert.equal(readFileSync(path.join(origin, 'a.txt'), 'utf8'), 'adopted\n');
    assert.equal(existsSync(evil.marker), false, `nothing ran during adopt: ${existsSync(evil.marker) ? readFileSync(evil.marker, 'utf8') : ''}`);
    // The user's repository is as it was: its hooks and config were not run, nor changed.
    assert.match(git(ws.dir, 'config', '--get', 'core.fsmonitor'), /evil\.sh/);
  } finally {
    process.env.HOME = savedHome;
    if (savedXdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = savedXdg;
    ws.cleanup();
    copyFolder.cleanup();
    evil.outside.cleanup();
  }
});

test('working copies for sampling run no configured program either: the clone, its index, and files written from a snapshot', async () => {
  const evil = armed();
  const savedHome = process.env.HOME;
  const ws = makeWorkspace({ 'README.md': '# demo\n', 'a.txt': '0\n', '.gitattributes': '* filter=evil diff=evil\n' });
  const copies = tempDir('apollo-copies-');
  const data = tempDir('apollo-data-');
  try {
    arm(path.join(ws.dir, '.git'), evil.program, evil.hooksDir);
    writeFileSync(path.join(ws.dir, 'a.txt'), '1, uncommitted\n');
    process.env.HOME = evil.home;
    const storeDir = shadowStoreDir(data.dir, ws.dir);
    const shadow = new ShadowStore({ workspace: ws.dir, storeDir });
    await shadow.init();
    arm(storeDir, evil.program, evil.hooksDir);
    const snapshot = await shadow.snapshot();
    await shadow.settled();

    const cloned = path.join(copies.dir, 'cloned');
    assert.equal(await cloneUserRepository(ws.dir, cloned), true);
    arm(path.join(cloned, '.git'), evil.program, evil.hooksDir);
    await materializeSnapshot(storeDir, snapshot, cloned);
    await indexCopy(cloned, ws.dir);
    assert.equal(readFileSync(path.join(cloned, 'a.txt'), 'utf8'), '1, uncommitted\n');
    const plain = path.join(copies.dir, 'plain');
    await materializeSnapshot(storeDir, snapshot, plain);
    assert.equal(readFileSync(path.join(plain, 'README.md'), 'utf8'), '# demo\n');
    assert.equal(existsSync(evil.marker), false, `nothing ran: ${existsSync(evil.marker) ? readFileSync(evil.marker, 'utf8') : ''}`);
    // Armed: plain git in the copy runs the programs (so the check above can fail).
    execFileSync('git', ['status', '--porcelain'], { cwd: cloned, env: { ...process.env, ...GIT_IDENTITY }, stdio: 'ignore' });
    assert.ok(existsSync(evil.marker));
  } finally {
    process.env.HOME = savedHome;
    ws.cleanup();
    copies.cleanup();
    data.cleanup();
    evil.outside.cleanup();
  }
});
