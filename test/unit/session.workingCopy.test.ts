import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { ShadowStore } from '../../src/core/grounding/shadowStore';
import { ConfigError } from '../../src/core/session/runSession';
import { checkRunsDir, type OriginSnapshot, prepareWorkingCopy, removeWorkingCopies, snapshotOrigin, workingCopyDir } from '../../src/core/session/workingCopy';
import { fingerprint } from '../fixtures/shadow';
import { git, makeWorkspace, tempDir } from '../fixtures/workspace';

/** A git workspace with an uncommitted change, an untracked file, and files snapshots leave out. */
function userWorkspace() {
  const ws = makeWorkspace({
    'a.txt': 'committed\n',
    '.gitignore': 'build/\n',
    'bin/run.sh': '#!/bin/sh\necho run\n',
    'vendor/lib.js': 'tracked but excluded\n',
  });
  chmodSync(path.join(ws.dir, 'bin', 'run.sh'), 0o755);
  git(ws.dir, 'add', 'bin/run.sh');
  git(ws.dir, 'commit', '-q', '-m', 'exec bit');
  return ws;
}

async function withOrigin(ws: { dir: string }, body: (context: { origin: OriginSnapshot; runsDir: string; dataset: string }) => Promise<void>, grounding?: { exclude?: string[] }): Promise<void> {
  const data = tempDir('apollo-data-');
  const runs = tempDir('apollo-runs-');
  try {
    const origin = await snapshotOrigin({ workspace: ws.dir, datasetDir: data.dir, taskId: '20260101-000000-0000abcd', grounding });
    await body({ origin, runsDir: runs.dir, dataset: data.dir });
  } finally {
    data.cleanup();
    runs.cleanup();
  }
}

const list = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(dir, path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)))
    .filter((file) => !file.startsWith(`.git${path.sep}`))
    .sort();

test("working copies hold the workspace as it is, with a .git of their own, and the user's repository is untouched", async () => {
  const ws = userWorkspace();
  try {
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'changed, not committed\n');
    await fs.writeFile(path.join(ws.dir, 'notes.txt'), 'untracked\n');
    await fs.mkdir(path.join(ws.dir, 'build'));
    await fs.writeFile(path.join(ws.dir, 'build', 'out.js'), 'ignored\n');
    await fs.mkdir(path.join(ws.dir, 'node_modules', 'dep'), { recursive: true });
    await fs.writeFile(path.join(ws.dir, 'node_modules', 'dep', 'index.js'), 'dependency\n');
    const gitBefore = fingerprint(path.join(ws.dir, '.git'));
    const filesBefore = fingerprint(ws.dir, (relative) => relative === '.git' || relative === '.apollo');

    await withOrigin(
      ws,
      async ({ origin, runsDir }) => {
        const first = await prepareWorkingCopy(origin, workingCopyDir(runsDir, origin.taskId, 0));
        const second = await prepareWorkingCopy(origin, workingCopyDir(runsDir, origin.taskId, 1), first.dir);
        assert.notEqual(first.dir, second.dir);
        for (const copy of [first, second]) {
          assert.equal(copy.git, true);
          assert.deepEqual(list(copy.dir), ['.gitignore', 'a.txt', 'bin/run.sh', 'notes.txt', 'vendor/lib.js']);
          assert.equal(await fs.readFile(path.join(copy.dir, 'a.txt'), 'utf8'), 'changed, not committed\n');
          assert.ok((await fs.stat(path.join(copy.dir, 'bin', 'run.sh'))).mode & 0o100, 'the exec bit is kept');
          // The agent sees the user's uncommitted work as changes, on the user's branch and commit.
          assert.equal(git(copy.dir, 'status', '--porcelain'), ' M a.txt\n?? notes.txt\n');
          assert.equal(git(copy.dir, 'rev-parse', 'HEAD'), git(ws.dir, 'rev-parse', 'HEAD'));
          assert.equal(git(copy.dir, 'symbolic-ref', 'HEAD').trim(), 'refs/heads/main');
          assert.equal(git(copy.dir, 'remote').trim(), '', "no remote leads back to the user's repository");
          assert.equal(
            git(copy.dir, 'worktree', 'list', '--porcelain')
              .split('\n')
              .filter((line) => line.startsWith('worktree ')).length,
            1,
          );
        }
        // Files are copies, never hard links: a write in one copy stays there.
        assert.equal((await fs.stat(path.join(second.dir, 'a.txt'))).nlink, 1);
        await fs.writeFile(path.join(first.dir, 'a.txt'), 'the agent of copy 0\n');
        assert.equal(await fs.readFile(path.join(second.dir, 'a.txt'), 'utf8'), 'changed, not committed\n');
      },
      { exclude: ['vendor/'] },
    );
    assert.equal(fingerprint(path.join(ws.dir, '.git')), gitBefore);
    assert.equal(
      fingerprint(ws.dir, (relative) => relative === '.git' || relative === '.apollo'),
      filesBefore,
    );
    assert.equal(
      git(ws.dir, 'worktree', 'list', '--porcelain')
        .split('\n')
        .filter((line) => line.startsWith('worktree ')).length,
      1,
    );
  } finally {
    ws.cleanup();
  }
});

test('a repository without commits and a plain folder give copies without .git', async () => {
  const unborn = makeWorkspace({ 'a.txt': 'a\n' }, { git: false });
  git(unborn.dir, 'init', '-q');
  const plain = makeWorkspace({ 'b.txt': 'b\n' }, { git: false });
  try {
    for (const [ws, file] of [
      [unborn, 'a.txt'],
      [plain, 'b.txt'],
    ] as const) {
      await withOrigin(ws, async ({ origin, runsDir }) => {
        const copy = await prepareWorkingCopy(origin, workingCopyDir(runsDir, origin.taskId, 0));
        assert.equal(copy.git, false);
        assert.deepEqual(list(copy.dir), [file]);
        assert.equal(existsSync(path.join(copy.dir, '.git')), false);
      });
    }
  } finally {
    unborn.cleanup();
    plain.cleanup();
  }
});

test("a copy's own store borrows the base snapshot: its first snapshot is the same tree and writes no blob or tree", async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'src/b.txt': 'b\n'.repeat(100) });
  try {
    await withOrigin(ws, async ({ origin, runsDir }) => {
      const copy = await prepareWorkingCopy(origin, workingCopyDir(runsDir, origin.taskId, 0));
      const alternates = await fs.readFile(path.join(copy.storeDir, 'objects', 'info', 'alternates'), 'utf8');
      assert.ok(!path.isAbsolute(alternates.trim()), 'relative, so the dataset folder can move');
      const shadow = new ShadowStore({ workspace: copy.dir, storeDir: copy.storeDir, runId: 'copy-run' });
      await shadow.init();
      const first = await shadow.snapshot();
      await shadow.settled();
      assert.equal(await shadow.treeOf(first), git(ws.dir, `--git-dir=${origin.storeDir}`, 'rev-parse', `${origin.snapshot}^{tree}`).trim());
      const objects = readdirSync(path.join(copy.storeDir, 'objects'))
        .filter((name) => /^[0-9a-f]{2}$/.test(name))
        .flatMap((folder) => readdirSync(path.join(copy.storeDir, 'objects', folder)).map((name) => folder + name));
      assert.deepEqual(
        objects.map((id) => git(ws.dir, `--git-dir=${copy.storeDir}`, 'cat-file', '-t', id).trim()),
        ['commit'],
      );
    });
  } finally {
    ws.cleanup();
  }
});

test('runs folders inside the workspace or the dataset are refused; removing copies stays inside the runs folder', async () => {
  const ws = makeWorkspace();
  const outside = tempDir('apollo-outside-');
  try {
    const dataset = path.join(outside.dir, 'dataset');
    await assert.rejects(checkRunsDir(path.join(ws.dir, 'runs'), ws.dir, dataset), (error: Error) => error instanceof ConfigError && /inside the workspace/.test(error.message));
    await assert.rejects(checkRunsDir(path.join(dataset, 'runs'), ws.dir, dataset), (error: Error) => error instanceof ConfigError && /inside the dataset folder/.test(error.message));
    await checkRunsDir(path.join(outside.dir, 'runs'), ws.dir, dataset);

    await withOrigin(ws, async ({ origin, runsDir }) => {
      await prepareWorkingCopy(origin, workingCopyDir(runsDir, origin.taskId, 0));
      await assert.rejects(removeWorkingCopies(runsDir, '../escape'), /not a task id/);
      // A task folder that is a symlink out of the runs folder is refused, and what it leads to stays.
      await fs.symlink(outside.dir, path.join(runsDir, '20260101-000000-00000bad'));
      await assert.rejects(removeWorkingCopies(runsDir, '20260101-000000-00000bad'), /not a folder inside the runs folder/);
      assert.ok(existsSync(path.join(outside.dir)));
      assert.equal(await removeWorkingCopies(runsDir, origin.taskId), true);
      assert.equal(existsSync(path.join(runsDir, origin.taskId)), false);
      assert.equal(await removeWorkingCopies(runsDir, origin.taskId), false);
      assert.ok(existsSync(path.join(ws.dir, 'README.md')));
    });
  } finally {
    outside.cleanup();
    ws.cleanup();
  }
});
