/**
 * The file operations on paths the agent names (workspaceFs.ts), on their own: symlinks inside
 * followed, symlinks outside refused, `..`, hard links, pipes and devices, modes, the dataset
 * folder by identity, descriptors closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fdRelativeAvailable, PathRefusedError, WorkspaceFs } from '../../src/core/agent/workspaceFs';
import { tempDir } from '../fixtures/workspace';

interface Fixture {
  workspace: string;
  outside: string;
  dataset: string;
  files: WorkspaceFs;
  cleanup(): void;
}

async function fixture(options: { fdRelative?: boolean } = {}): Promise<Fixture> {
  const root = tempDir('apollo-wsfs-');
  const workspace = path.join(root.dir, 'ws');
  const outside = path.join(root.dir, 'outside');
  const dataset = path.join(workspace, '.apollo', 'dataset');
  await fs.mkdir(path.join(workspace, 'src'), { recursive: true });
  await fs.mkdir(dataset, { recursive: true });
  await fs.mkdir(path.join(workspace, '.git'));
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'OUTSIDE-MARKER\n');
  await fs.writeFile(path.join(dataset, 'events.jsonl'), 'DATASET-MARKER\n');
  await fs.writeFile(path.join(workspace, 'src', 'a.txt'), 'a\n');
  return { workspace, outside, dataset, files: new WorkspaceFs(workspace, [dataset], options), cleanup: root.cleanup };
}

const read = async (files: WorkspaceFs, userPath: string) => (await files.readFile(userPath)).toString('utf8');

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

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

test('the fd-relative walk is what runs on this platform', (t) => {
  if (process.platform !== 'linux') return t.skip('fd-relative paths exist on Linux only');
  assert.equal(fdRelativeAvailable(), true);
  assert.equal(new WorkspaceFs('.', []).fdRelative, true);
});

for (const mode of [{ fdRelative: true }, { fdRelative: false }]) {
  const label = mode.fdRelative ? 'fd-relative' : 'fallback';

  test(`${label}: symlinks inside the workspace are followed, for reads and writes`, async () => {
    const f = await fixture(mode);
    try {
      await fs.symlink('src', path.join(f.workspace, 'dir-link'));
      await fs.symlink(path.join(f.workspace, 'src'), path.join(f.workspace, 'abs-link'));
      await fs.symlink('../src/a.txt', path.join(f.workspace, 'src', 'file-link-rel'));
      await fs.mkdir(path.join(f.workspace, 'deep'));
      await fs.symlink('../dir-link/a.txt', path.join(f.workspace, 'deep', 'chain'));
      await fs.symlink('src/new.txt', path.join(f.workspace, 'dangling-inside'));
      assert.equal(await read(f.files, 'dir-link/a.txt'), 'a\n');
      assert.equal(await read(f.files, 'abs-link/a.txt'), 'a\n');
      assert.equal(await read(f.files, 'src/file-link-rel'), 'a\n');
      assert.equal(await read(f.files, 'deep/chain'), 'a\n');
      await f.files.writeFile('dir-link/b.txt', 'b\n');
      assert.equal(await fs.readFile(path.join(f.workspace, 'src', 'b.txt'), 'utf8'), 'b\n');
      await f.files.writeFile('deep/chain', 'changed\n');
      assert.equal(await fs.readFile(path.join(f.workspace, 'src', 'a.txt'), 'utf8'), 'changed\n');
      assert.equal((await fs.lstat(path.join(f.workspace, 'deep', 'chain'))).isSymbolicLink(), true, 'the link stays a link');
      await f.files.writeFile('dangling-inside', 'created\n');
      assert.equal(await fs.readFile(path.join(f.workspace, 'src', 'new.txt'), 'utf8'), 'created\n');
      assert.deepEqual(await f.files.listDir('dir-link').then((listed) => listed.entries.map((entry) => entry.name)), ['a.txt', 'b.txt', 'file-link-rel', 'new.txt']);
      // An absolute path inside the workspace works like a relative one.
      assert.equal(await read(f.files, path.join(f.workspace, 'src', 'b.txt')), 'b\n');
    } finally {
      f.cleanup();
    }
  });

  test(`${label}: symlinks that lead outside, dangling or not, and loops are refused; nothing outside is touched`, async () => {
    const f = await fixture(mode);
    try {
      await fs.symlink(f.outside, path.join(f.workspace, 'out-abs'));
      await fs.symlink('../outside', path.join(f.workspace, 'out-rel'));
      await fs.symlink(path.join(f.outside, 'secret'), path.join(f.workspace, 'secret-link'));
      await fs.symlink(path.join(f.outside, 'missing'), path.join(f.workspace, 'dangling-out'));
      await fs.symlink(path.join(f.outside, 'newdir'), path.join(f.workspace, 'dangling-dir'));
      await fs.symlink('../../ws/../outside/x', path.join(f.workspace, 'src', 'dotdot'));
      await fs.symlink('out-rel', path.join(f.workspace, 'chain-out'));
      await fs.symlink('loop-b', path.join(f.workspace, 'loop-a'));
      await fs.symlink('loop-a', path.join(f.workspace, 'loop-b'));
      for (const bad of ['out-abs/secret', 'out-rel/secret', 'secret-link', 'chain-out/secret', 'src/dotdot']) {
        await assert.rejects(f.files.readFile(bad), /outside the workspace/, bad);
      }
      for (const bad of ['out-abs/x', 'out-rel/new/deep.txt', 'secret-link', 'dangling-out', 'dangling-dir/x.txt', 'src/dotdot', 'chain-out/x']) {
        await assert.rejects(f.files.writeFile(bad, 'changed\n'), /outside the workspace/, bad);
      }
      await assert.rejects(f.files.listDir('out-abs'), /outside the workspace/);
      await assert.rejects(f.files.locate('out-rel'), /outside the workspace/);
      await assert.rejects(f.files.readFile('loop-a'), /too many levels of symbolic links/);
      await assert.rejects(f.files.writeFile('loop-a/x', ''), /too many levels of symbolic links/);
      assert.deepEqual(await fs.readdir(f.outside), ['secret']);
      assert.equal(await fs.readFile(path.join(f.outside, 'secret'), 'utf8'), 'OUTSIDE-MARKER\n');
    } finally {
      f.cleanup();
    }
  });

  test(`${label}: ".." that leaves the workspace and absolute paths outside it are refused; names beginning with ".." are plain names`, async () => {
    const f = await fixture(mode);
    try {
      for (const bad of ['..', '../outside/secret', 'src/../../outside/secret', f.outside, path.join(f.outside, 'secret'), '/etc/passwd']) {
        await assert.rejects(f.files.readFile(bad), (caught: Error) => caught instanceof PathRefusedError && /outside the workspace/.test(caught.message), bad);
      }
      await assert.rejects(f.files.writeFile('../escaped.txt', 'x'), /outside the workspace/);
      assert.equal(existsSync(path.join(path.dirname(f.workspace), 'escaped.txt')), false);
      assert.equal(await read(f.files, 'src/../src/a.txt'), 'a\n');
      await f.files.writeFile('..notes', 'notes\n');
      await f.files.writeFile('..dir/...x', 'dots\n');
      assert.equal(await read(f.files, '..notes'), 'notes\n');
      assert.equal(await read(f.files, path.join(f.workspace, '..dir', '...x')), 'dots\n');
      assert.deepEqual((await f.files.listDir('..dir')).entries, [{ name: '...x', directory: false }]);
      assert.equal(await f.files.locate('..dir'), '..dir');
      await assert.rejects(f.files.readFile(''), /empty/);
      await assert.rejects(f.files.readFile('a\0b'), /NUL/);
    } finally {
      f.cleanup();
    }
  });

  test(`${label}: a hard-linked file can be read but not written`, async () => {
    const f = await fixture(mode);
    try {
      await fs.link(path.join(f.outside, 'secret'), path.join(f.workspace, 'hard.txt'));
      assert.equal(await read(f.files, 'hard.txt'), 'OUTSIDE-MARKER\n');
      await assert.rejects(f.files.writeFile('hard.txt', 'changed\n'), /has 2 hard links/);
      await assert.rejects(f.files.readFile('hard.txt', 'write'), /has 2 hard links/, 'edit_file reads for writing');
      assert.equal(await fs.readFile(path.join(f.outside, 'secret'), 'utf8'), 'OUTSIDE-MARKER\n');
    } finally {
      f.cleanup();
    }
  });

  test(`${label}: a FIFO, a socket and a device are refused at once with a clear error, never waited on`, async () => {
    const f = await fixture(mode);
    const server = net.createServer();
    try {
      execFileSync('mkfifo', [path.join(f.workspace, 'pipe')]);
      await new Promise<void>((resolve) => server.listen(path.join(f.workspace, 'sock'), resolve));
      const devices = ['pipe', 'sock'];
      const made = spawnSync('mknod', [path.join(f.workspace, 'null'), 'c', '1', '3']);
      if (made.status === 0) devices.push('null');
      const kinds: Record<string, RegExp> = { pipe: /named pipe \(FIFO\)/, sock: /a socket/, null: /a character device/ };
      for (const name of devices) {
        await within(
          assert.rejects(
            f.files.readFile(name),
            (caught: Error) => caught instanceof PathRefusedError && kinds[name].test(caught.message) && /not a regular file; nothing was read/.test(caught.message),
          ),
          5000,
          `reading ${name}`,
        );
        await within(
          assert.rejects(f.files.writeFile(name, 'x'), (caught: Error) => kinds[name].test(caught.message) && /nothing was written/.test(caught.message)),
          5000,
          `writing ${name}`,
        );
        await within(assert.rejects(f.files.readFile(name, 'write'), kinds[name]), 5000, `editing ${name}`);
      }
      if (mode.fdRelative) await within(assert.rejects(f.files.locate('pipe'), /named pipe/), 5000, 'locating the pipe');
      const notFolder = (caught: NodeJS.ErrnoException) => caught.code === 'ENOTDIR';
      await within(assert.rejects(f.files.readFile('pipe/x'), notFolder), 5000, 'a path through the pipe');
      // The fallback's mkdir -p says EEXIST.
      await within(
        assert.rejects(f.files.writeFile('pipe/x', 'x'), (caught: NodeJS.ErrnoException) => notFolder(caught) || (!mode.fdRelative && caught.code === 'EEXIST')),
        5000,
        'a write through the pipe',
      );
      assert.equal((await fs.lstat(path.join(f.workspace, 'pipe'))).isFIFO(), true, 'the pipe is left as it was');
      assert.equal(await read(f.files, 'src/a.txt'), 'a\n', 'and the next read works');
    } finally {
      server.close();
      f.cleanup();
    }
  });

  test(`${label}: the dataset folder is refused, by name and by identity (through a symlink, after a rename); .git is read-only`, async () => {
    const f = await fixture(mode);
    try {
      await assert.rejects(f.files.readFile('.apollo/dataset/events.jsonl'), /dataset folder, which the agent may not read/);
      await assert.rejects(f.files.writeFile('.apollo/dataset/new.jsonl', 'x'), /dataset folder, which the agent may not write/);
      await assert.rejects(f.files.writeFile(path.join(f.dataset, 'x'), 'x'), /dataset folder/);
      await fs.symlink('.apollo/dataset', path.join(f.workspace, 'to-dataset'));
      await assert.rejects(f.files.readFile('to-dataset/events.jsonl'), /dataset folder/);
      await assert.rejects(f.files.listDir('to-dataset'), /dataset folder/);
      await assert.rejects(f.files.writeFile('.git/config', 'x'), /\.git folder/);
      await fs.writeFile(path.join(f.workspace, '.git', 'HEAD'), 'ref: refs/heads/main\n');
      assert.equal(await read(f.files, '.git/HEAD'), 'ref: refs/heads/main\n');
      assert.deepEqual(
        (await f.files.listDir('.')).entries.map((entry) => entry.name),
        ['src', 'to-dataset'],
      );
      if (mode.fdRelative) {
        // Renamed after the start: the name no longer says it, the identity still does.
        await fs.rename(path.join(f.workspace, '.apollo'), path.join(f.workspace, 'renamed'));
        await assert.rejects(f.files.readFile('renamed/dataset/events.jsonl'), /dataset folder/);
        await assert.rejects(f.files.writeFile('renamed/dataset/new.jsonl', 'x'), /dataset folder/);
        await assert.rejects(f.files.listDir('renamed/dataset'), /dataset folder/);
        await assert.rejects(f.files.locate('renamed/dataset'), /dataset folder/);
        assert.deepEqual((await f.files.listDir('renamed')).entries, [], 'a listing leaves it out');
        await fs.rename(path.join(f.workspace, '.git'), path.join(f.workspace, 'git-renamed'));
        await assert.rejects(f.files.writeFile('git-renamed/config', 'x'), /\.git folder/);
        assert.deepEqual(await fs.readdir(path.join(f.workspace, 'renamed', 'dataset')), ['events.jsonl']);
      }
    } finally {
      f.cleanup();
    }
  });

  test(`${label}: writes make missing folders, keep the mode of the file they replace, and leave no temporary file`, async () => {
    const f = await fixture(mode);
    try {
      await f.files.writeFile('a/b/c/d/e/file.txt', 'deep\n');
      assert.equal(await read(f.files, 'a/b/c/d/e/file.txt'), 'deep\n');
      const script = path.join(f.workspace, 'src', 'run.sh');
      await fs.writeFile(script, '#!/bin/sh\n');
      await fs.chmod(script, 0o751);
      await f.files.writeFile('src/run.sh', '#!/bin/sh\necho hi\n');
      assert.equal((await fs.stat(script)).mode & 0o7777, 0o751);
      assert.equal(await fs.readFile(script, 'utf8'), '#!/bin/sh\necho hi\n');
      const created = (await fs.stat(path.join(f.workspace, 'a/b/c/d/e/file.txt'))).mode & 0o777;
      assert.equal(created, 0o666 & ~process.umask());
      await assert.rejects(f.files.writeFile('src', 'x'), (caught: NodeJS.ErrnoException) => caught.code === 'EISDIR');
      await assert.rejects(f.files.readFile('src'), (caught: NodeJS.ErrnoException) => caught.code === 'EISDIR');
      await assert.rejects(f.files.writeFile('src/a.txt/x', 'x'), (caught: NodeJS.ErrnoException) => caught.code === 'ENOTDIR' || caught.code === 'EEXIST');
      await assert.rejects(f.files.readFile('missing/file'), (caught: NodeJS.ErrnoException) => caught.code === 'ENOENT');
      const leftovers = (await fs.readdir(path.join(f.workspace, 'src'))).filter((name) => name.startsWith('.apollo-write-'));
      assert.deepEqual(leftovers, []);
    } finally {
      f.cleanup();
    }
  });
}

test('a write does not replace a file its mode makes read-only to the process (as an open for writing would not)', async (t) => {
  if (!fdRelativeAvailable()) return t.skip('the fallback opens the file itself');
  const f = await fixture();
  const getuid = process.getuid;
  try {
    const file = path.join(f.workspace, 'src', 'a.txt');
    await fs.chmod(file, 0o444);
    // As another user than the file's owner (root itself may write anything).
    const owner = (await fs.stat(file)).uid;
    process.getuid = () => owner + 1000;
    await assert.rejects(f.files.writeFile('src/a.txt', 'changed\n'), (caught: NodeJS.ErrnoException) => caught.code === 'EACCES');
    await fs.chmod(file, 0o666);
    await f.files.writeFile('src/a.txt', 'changed\n');
    assert.equal(await fs.readFile(file, 'utf8'), 'changed\n');
  } finally {
    process.getuid = getuid;
    f.cleanup();
  }
});

test('a workspace inside a forbidden folder has every path refused', async () => {
  const f = await fixture();
  try {
    const inside = new WorkspaceFs(path.join(f.dataset), [path.dirname(f.dataset)]);
    await assert.rejects(inside.readFile('events.jsonl'), /dataset folder/);
    await assert.rejects(inside.listDir('.'), /dataset folder/);
    await assert.rejects(inside.writeFile('x', 'x'), /dataset folder/);
  } finally {
    f.cleanup();
  }
});

test('every descriptor is closed, after successes and refusals alike', async (t) => {
  if (!fdRelativeAvailable()) return t.skip('counts descriptors through /proc/self/fd');
  const f = await fixture();
  try {
    await fs.symlink(f.outside, path.join(f.workspace, 'out'));
    execFileSync('mkfifo', [path.join(f.workspace, 'pipe')]);
    await f.files.readFile('src/a.txt'); // warm up whatever Node opens once
    const before = openDescriptors();
    for (let i = 0; i < 20; i++) {
      await f.files.writeFile(`x/y/z${i}.txt`, 'z');
      await f.files.readFile(`x/y/z${i}.txt`);
      await f.files.listDir('x/y');
      await f.files.locate('x');
      await f.files.readFile('out/secret').catch(() => undefined);
      await f.files.writeFile('out/x', 'x').catch(() => undefined);
      await f.files.readFile('pipe').catch(() => undefined);
      await f.files.writeFile('pipe', 'x').catch(() => undefined);
      await f.files.readFile('.apollo/dataset/events.jsonl').catch(() => undefined);
      await f.files.readFile('missing/deep/file').catch(() => undefined);
      await f.files.writeFile('src', 'x').catch(() => undefined);
    }
    assert.equal(openDescriptors(), before);
  } finally {
    f.cleanup();
  }
});
