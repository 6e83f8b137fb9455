import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ShadowStore } from '../../src/core/grounding/shadowStore';
import { WorkspaceWatcher } from '../../src/core/grounding/watcher';
import { fingerprint, storeFor } from '../fixtures/shadow';
import { git, makeWorkspace } from '../fixtures/workspace';

const byPath = (files: { path: string }[]) => Object.fromEntries(files.map((file) => [file.path, file]));

test('symlinks and mode changes are grounded', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'run.sh': 'echo hi\n' });
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    await fs.symlink('a.txt', path.join(ws.dir, 'link'));
    await fs.chmod(path.join(ws.dir, 'run.sh'), 0o755);
    const middle = await shadow.snapshot();
    const first = await shadow.ground(before, middle);
    assert.deepEqual(Object.keys(byPath(first.files)).sort(), ['link', 'run.sh']);
    assert.match(first.patch, /new file mode 120000/);
    assert.match(first.patch, /old mode 100644\nnew mode 100755/);
    assert.equal((await shadow.readFile(middle, 'link'))?.toString(), 'a.txt');

    await fs.rm(path.join(ws.dir, 'link'));
    await fs.symlink('run.sh', path.join(ws.dir, 'link'));
    const second = await shadow.ground(middle, await shadow.snapshot());
    assert.deepEqual(
      second.files.map((file) => [file.path, file.status]),
      [['link', 'modified']],
    );
    assert.match(second.patch, /^-a\.txt$/m);
    assert.match(second.patch, /^\+run\.sh$/m);
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('file names with tabs, newlines, quotes and non-ASCII letters are grounded as they are', async () => {
  const ws = makeWorkspace({ 'plain.txt': 'p\n' });
  const { shadow, cleanup } = await storeFor(ws.dir);
  const names = ['tab\there.txt', 'new\nline.txt', 'quote"d.txt', 'café/ünï.txt'];
  try {
    const before = await shadow.snapshot();
    await fs.mkdir(path.join(ws.dir, 'café'));
    for (const name of names) await fs.writeFile(path.join(ws.dir, name), 'one\ntwo\n');
    const grounding = await shadow.ground(before, await shadow.snapshot());
    assert.deepEqual(grounding.files.map((file) => [file.path, file.status, file.additions]).sort(), names.map((name) => [name, 'added', 2]).sort());
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('a nested git repository is recorded as content and nothing of it is touched', async () => {
  const ws = makeWorkspace({ 'top.txt': 'top\n' });
  const nested = path.join(ws.dir, 'lib');
  await fs.mkdir(nested);
  await fs.writeFile(path.join(nested, 'x.txt'), 'x1\n');
  git(nested, 'init', '-q', '-b', 'main');
  git(nested, 'add', '-A');
  git(nested, 'commit', '-q', '-m', 'nested');
  const outer = fingerprint(path.join(ws.dir, '.git'));
  const inner = fingerprint(path.join(nested, '.git'));
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    assert.equal((await shadow.readFile(before, 'lib/x.txt'))?.toString(), 'x1\n');
    await fs.writeFile(path.join(nested, 'x.txt'), 'x2\n');
    await fs.writeFile(path.join(nested, 'y.txt'), 'y\n');
    const after = await shadow.snapshot();
    const grounding = await shadow.ground(before, after);
    assert.deepEqual(grounding.files.map((file) => [file.path, file.status]).sort(), [
      ['lib/x.txt', 'modified'],
      ['lib/y.txt', 'added'],
    ]);
    assert.doesNotMatch(grounding.patch, /Subproject commit/);
    assert.equal(await shadow.readFile(after, 'lib/.git/HEAD'), undefined);
    assert.equal(fingerprint(path.join(ws.dir, '.git')), outer);
    assert.equal(fingerprint(path.join(nested, '.git')), inner);
    assert.equal(git(nested, 'status', '--porcelain'), ' M x.txt\n?? y.txt\n');
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('files in a submodule are recorded as content; the repository and its modules stay byte-identical', async () => {
  const upstream = makeWorkspace({ 'dep.txt': 'v1\n' });
  const ws = makeWorkspace({ 'main.txt': 'main\n' });
  git(ws.dir, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', upstream.dir, 'vendor/dep');
  git(ws.dir, 'commit', '-q', '-m', 'add submodule');
  const outer = fingerprint(path.join(ws.dir, '.git'));
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    assert.equal((await shadow.readFile(before, 'vendor/dep/dep.txt'))?.toString(), 'v1\n');
    await fs.writeFile(path.join(ws.dir, 'vendor/dep/dep.txt'), 'v2\n');
    const grounding = await shadow.ground(before, await shadow.snapshot());
    assert.deepEqual(
      grounding.files.map((file) => [file.path, file.status]),
      [['vendor/dep/dep.txt', 'modified']],
    );
    assert.match(grounding.patch, /^\+v2$/m);
    assert.equal(fingerprint(path.join(ws.dir, '.git')), outer);
  } finally {
    cleanup();
    ws.cleanup();
    upstream.cleanup();
  }
});

test('a repository with no commits yet is snapshotted and left as it was', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' }, { git: false });
  git(ws.dir, 'init', '-q', '-b', 'main');
  const before = fingerprint(path.join(ws.dir, '.git'));
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const first = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'b\n');
    const grounding = await shadow.ground(first, await shadow.snapshot());
    assert.deepEqual(
      grounding.files.map((file) => file.path),
      ['b.txt'],
    );
    assert.equal(fingerprint(path.join(ws.dir, '.git')), before);
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('files over the size limit are left out and come in once they shrink', async () => {
  const ws = makeWorkspace({ 'small.txt': 's\n' });
  const { shadow, cleanup } = await storeFor(ws.dir, { maxFileBytes: 1000 });
  try {
    const before = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'weights.bin'), Buffer.alloc(5000, 1));
    await fs.writeFile(path.join(ws.dir, 'small.txt'), 'x'.repeat(2000));
    const middle = await shadow.snapshot();
    const grew = await shadow.ground(before, middle);
    // A tracked file that grows past the limit is left out from then on, which reads as deleted.
    assert.deepEqual(
      grew.files.map((file) => [file.path, file.status]),
      [['small.txt', 'deleted']],
    );
    assert.deepEqual([...shadow.oversized].sort(), ['small.txt', 'weights.bin']);
    await fs.writeFile(path.join(ws.dir, 'weights.bin'), Buffer.alloc(10, 0));
    const shrank = await shadow.ground(middle, await shadow.snapshot());
    assert.deepEqual(
      shrank.files.map((file) => [file.path, file.status, file.binary]),
      [['weights.bin', 'added', true]],
    );
    assert.deepEqual([...shadow.oversized], ['small.txt']);
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('dependency folders are left out by default and the list can be replaced', async () => {
  const ws = makeWorkspace({ 'index.js': '1\n' });
  const defaults = await storeFor(ws.dir);
  const custom = await storeFor(ws.dir, { excludePatterns: ['*.log'] });
  try {
    const [beforeDefault, beforeCustom] = [await defaults.shadow.snapshot(), await custom.shadow.snapshot()];
    await fs.mkdir(path.join(ws.dir, 'node_modules/pkg'), { recursive: true });
    await fs.writeFile(path.join(ws.dir, 'node_modules/pkg/index.js'), 'module\n');
    await fs.mkdir(path.join(ws.dir, '__pycache__'));
    await fs.writeFile(path.join(ws.dir, '__pycache__/m.pyc'), 'bytecode');
    await fs.writeFile(path.join(ws.dir, 'debug.log'), 'log\n');
    await fs.writeFile(path.join(ws.dir, 'index.js'), '2\n');
    const withDefaults = await defaults.shadow.ground(beforeDefault, await defaults.shadow.snapshot());
    assert.deepEqual(withDefaults.files.map((file) => file.path).sort(), ['debug.log', 'index.js']);
    const withCustom = await custom.shadow.ground(beforeCustom, await custom.shadow.snapshot());
    assert.deepEqual(withCustom.files.map((file) => file.path).sort(), ['__pycache__/m.pyc', 'index.js', 'node_modules/pkg/index.js']);
  } finally {
    defaults.cleanup();
    custom.cleanup();
    ws.cleanup();
  }
});

/** The tree a snapshot commit records, read from the store once its objects are stored. */
async function treeOf(shadow: ShadowStore, commit: string): Promise<string> {
  await shadow.settled();
  return git(shadow.workspace, `--git-dir=${shadow.storeDir}`, 'rev-parse', `${commit}^{tree}`).trim();
}

for (const nativeRecursive of [false, true]) {
  test(`snapshots fed by the watcher equal full passes, step by step (${nativeRecursive ? 'one recursive watch' : 'a watch per folder'})`, async () => {
    const ws = makeWorkspace({ '.gitignore': 'ignored/\n', 'a.txt': 'a\n', 'src/b.txt': 'b\n', 'src/deep/c.txt': 'c\n', 'gone/d.txt': 'd\n' });
    const watcher = new WorkspaceWatcher(ws.dir, { nativeRecursive, skip: (dir, name) => !dir && name === '.apollo' });
    await watcher.start();
    const fed = await storeFor(ws.dir, { changes: watcher, maxFileBytes: 4000 });
    // The reference goes through the index every time.
    const full = await storeFor(ws.dir, { maxFileBytes: 4000, patch: false });
    const scopes: (string[] | undefined)[] = [];
    const take = watcher.take.bind(watcher);
    watcher.take = async () => {
      const scope = await take();
      scopes.push(scope);
      return scope;
    };
    const steps: [string, () => Promise<unknown>][] = [
      ['modify', () => fs.writeFile(path.join(ws.dir, 'a.txt'), 'a2\n')],
      ['create in a new deep folder', () => fs.mkdir(path.join(ws.dir, 'new/one/two'), { recursive: true }).then(() => fs.writeFile(path.join(ws.dir, 'new/one/two/e.txt'), 'e\n'))],
      ['write in the folder made last step', () => fs.writeFile(path.join(ws.dir, 'new/one/two/f.txt'), 'f\n')],
      ['remove a folder', () => fs.rm(path.join(ws.dir, 'gone'), { recursive: true })],
      ['rename a folder', () => fs.rename(path.join(ws.dir, 'src'), path.join(ws.dir, 'lib'))],
      ['write in the renamed folder', () => fs.writeFile(path.join(ws.dir, 'lib/deep/c.txt'), 'c2\n')],
      [
        'ignored and dataset files',
        () =>
          fs
            .mkdir(path.join(ws.dir, 'ignored'))
            .then(() => fs.writeFile(path.join(ws.dir, 'ignored/x'), 'x'))
            .then(() => fs.mkdir(path.join(ws.dir, '.apollo')))
            .then(() => fs.writeFile(path.join(ws.dir, '.apollo/y'), 'y')),
      ],
      ['symlink and chmod', () => fs.symlink('a.txt', path.join(ws.dir, 'link')).then(() => fs.chmod(path.join(ws.dir, 'a.txt'), 0o755))],
      ['grow past the size limit', () => fs.writeFile(path.join(ws.dir, 'a.txt'), 'a'.repeat(5000))],
      ['shrink back', () => fs.writeFile(path.join(ws.dir, 'a.txt'), 'a3\n')],
      ['create and delete between snapshots', () => fs.writeFile(path.join(ws.dir, 'brief.txt'), '!').then(() => fs.rm(path.join(ws.dir, 'brief.txt')))],
      [
        'a folder becomes a repository',
        async () => {
          git(path.join(ws.dir, 'new'), 'init', '-q');
          await fs.writeFile(path.join(ws.dir, 'new/g.txt'), 'g\n');
        },
      ],
      ['write inside the nested repository', () => fs.writeFile(path.join(ws.dir, 'new/one/two/e.txt'), 'e2\n')],
      ['remove the nested repository', () => fs.rm(path.join(ws.dir, 'new'), { recursive: true })],
    ];
    try {
      assert.equal(await treeOf(fed.shadow, await fed.shadow.snapshot()), await treeOf(full.shadow, await full.shadow.snapshot()));
      for (const [name, step] of steps) {
        await step();
        const [fedTree, fullTree] = [await treeOf(fed.shadow, await fed.shadow.snapshot()), await treeOf(full.shadow, await full.shadow.snapshot())];
        const listing = (shadow: ShadowStore, tree: string) => git(shadow.workspace, `--git-dir=${shadow.storeDir}`, 'ls-tree', '-r', tree);
        assert.equal(fedTree, fullTree, `after "${name}": ${listing(fed.shadow, fedTree)} vs ${listing(full.shadow, fullTree)}`);
      }
      // Most steps were scoped by the watcher, not full passes in disguise.
      const scoped = scopes.filter((scope) => scope !== undefined);
      assert.ok(scoped.length >= steps.length - 3, `only ${scoped.length} of ${steps.length} snapshots were scoped`);
      assert.ok(scopes.some((scope) => scope?.includes('a.txt')));
      // Plain file edits were patched into the last tree without the index.
      assert.ok(fed.shadow.passes.patched >= 5, `patched ${JSON.stringify(fed.shadow.passes)}`);
    } finally {
      watcher.dispose();
      fed.cleanup();
      full.cleanup();
      ws.cleanup();
    }
  });
}

test('patched trees equal full passes for names git sorts specially, emptied folders, modes, size and ignores', async () => {
  const ws = makeWorkspace({ '.gitignore': '*.log\n', 'a/x.txt': 'x\n', 'a-b': '1\n', 'a.txt': '2\n', 'lonely/only.txt': 'o\n', 'tool.sh': 'echo\n' });
  let next: string[] | undefined;
  const fed = await storeFor(ws.dir, { changes: { take: async () => next }, maxFileBytes: 100 });
  const full = await storeFor(ws.dir, { maxFileBytes: 100, patch: false });
  // Full passes that patch what git status names.
  const statusFed = await storeFor(ws.dir, { maxFileBytes: 100 });
  const steps: [string, string[], () => Promise<unknown>][] = [
    [
      'files around a folder of the same stem',
      ['a/y.txt', 'a-b', 'a.txt'],
      async () => {
        await fs.writeFile(path.join(ws.dir, 'a/y.txt'), 'y\n');
        await fs.writeFile(path.join(ws.dir, 'a-b'), '1b\n');
        await fs.writeFile(path.join(ws.dir, 'a.txt'), '2b\n');
      },
    ],
    ['the last file of a folder goes', ['lonely/only.txt'], () => fs.rm(path.join(ws.dir, 'lonely/only.txt'))],
    ['executable', ['tool.sh'], () => fs.chmod(path.join(ws.dir, 'tool.sh'), 0o755)],
    [
      'too large, and an ignored new file',
      ['a.txt', 'debug.log'],
      async () => {
        await fs.writeFile(path.join(ws.dir, 'a.txt'), 'z'.repeat(500));
        await fs.writeFile(path.join(ws.dir, 'debug.log'), 'log\n');
      },
    ],
    ['small again', ['a.txt'], () => fs.writeFile(path.join(ws.dir, 'a.txt'), 'small\n')],
  ];
  try {
    await Promise.all([fed.shadow.snapshot(), full.shadow.snapshot(), statusFed.shadow.snapshot()]);
    for (const [name, changed, step] of steps) {
      await step();
      next = changed;
      const reference = await treeOf(full.shadow, await full.shadow.snapshot());
      assert.equal(await treeOf(fed.shadow, await fed.shadow.snapshot()), reference, `after "${name}"`);
      assert.equal(await treeOf(statusFed.shadow, await statusFed.shadow.snapshot()), reference, `after "${name}", from git status`);
    }
    assert.equal(fed.shadow.passes.patched, steps.length);
    assert.deepEqual([...fed.shadow.oversized], []);
  } finally {
    fed.cleanup();
    full.cleanup();
    statusFed.cleanup();
    ws.cleanup();
  }
});

test('names beginning with ".." are inside the workspace: snapshotted, grounded, restored', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  let next: string[] | undefined;
  const full = await storeFor(ws.dir);
  const fed = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    const [fullBefore, fedBefore] = [await full.shadow.snapshot(), await fed.shadow.snapshot()];
    await fs.writeFile(path.join(ws.dir, '..notes'), 'notes\n');
    await fs.mkdir(path.join(ws.dir, '..d'));
    await fs.writeFile(path.join(ws.dir, '..d', '..x'), 'x\n');
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a2\n');
    next = ['..notes', '..d', '..d/..x', 'a.txt'];
    const fullAfter = await full.shadow.snapshot();
    const fedAfter = await fed.shadow.snapshot();
    for (const [shadow, before, after] of [
      [full.shadow, fullBefore, fullAfter],
      [fed.shadow, fedBefore, fedAfter],
    ] as [ShadowStore, string, string][]) {
      const grounding = await shadow.ground(before, after);
      assert.deepEqual(grounding.files.map((file) => [file.path, file.status]).sort(), [
        ['..d/..x', 'added'],
        ['..notes', 'added'],
        ['a.txt', 'modified'],
      ]);
      assert.match(grounding.patch, /^\+\+\+ b\/\.\.notes$/m);
    }
    // Only the file edit this time: the patched path.
    await fs.writeFile(path.join(ws.dir, '..notes'), 'notes 2\n');
    next = ['..notes'];
    const edited = await fed.shadow.snapshot();
    assert.deepEqual(
      (await fed.shadow.ground(fedAfter, edited)).files.map((file) => [file.path, file.status]),
      [['..notes', 'modified']],
    );
    // Back to before, then forward again: the ".." names are removed and written like any.
    await fed.shadow.restore(edited, fedBefore);
    await assert.rejects(fs.access(path.join(ws.dir, '..notes')));
    await assert.rejects(fs.access(path.join(ws.dir, '..d')));
    await fed.shadow.restore(fedBefore, edited);
    assert.equal(await fs.readFile(path.join(ws.dir, '..notes'), 'utf8'), 'notes 2\n');
    assert.equal(await fs.readFile(path.join(ws.dir, '..d', '..x'), 'utf8'), 'x\n');
  } finally {
    full.cleanup();
    fed.cleanup();
    ws.cleanup();
  }
});

test('a path created and deleted within one action leaves no trace, whether the watcher names it or not', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'dir/b.txt': 'b\n' });
  let next: string[] | undefined;
  const full = await storeFor(ws.dir);
  const fed = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    const [fullBefore, fedBefore] = [await full.shadow.snapshot(), await fed.shadow.snapshot()];
    // Made and removed: a file, a file in a new folder, a file in an existing one; one real edit.
    await fs.writeFile(path.join(ws.dir, 'tmp.txt'), 'tmp\n');
    await fs.mkdir(path.join(ws.dir, 'scratch/deep'), { recursive: true });
    await fs.writeFile(path.join(ws.dir, 'scratch/deep/t.txt'), 't\n');
    await fs.writeFile(path.join(ws.dir, 'dir/t.txt'), 't\n');
    await fs.rm(path.join(ws.dir, 'tmp.txt'));
    await fs.rm(path.join(ws.dir, 'scratch'), { recursive: true });
    await fs.rm(path.join(ws.dir, 'dir/t.txt'));
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a2\n');
    next = ['tmp.txt', 'scratch', 'scratch/deep', 'scratch/deep/t.txt', 'dir/t.txt', 'a.txt'];
    for (const [shadow, before] of [
      [full.shadow, fullBefore],
      [fed.shadow, fedBefore],
    ] as [ShadowStore, string][]) {
      const grounding = await shadow.ground(before, await shadow.snapshot());
      assert.deepEqual(
        grounding.files.map((file) => [file.path, file.status]),
        [['a.txt', 'modified']],
      );
    }
  } finally {
    full.cleanup();
    fed.cleanup();
    ws.cleanup();
  }
});

test('fast churn: a job creating and deleting files in a loop while steps snapshot, and no step fails', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const watcher = new WorkspaceWatcher(ws.dir);
  const full = await storeFor(ws.dir);
  const fed = await storeFor(ws.dir, { changes: watcher });
  await watcher.start();
  let stop = false;
  let made = 0;
  // The job: files and folders appear and vanish as fast as the file system allows.
  const job = (async () => {
    for (let i = 0; !stop; i++) {
      const dir = path.join(ws.dir, `churn${i % 3}`);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `f${i}.txt`), `${i}\n`);
      await fs.writeFile(path.join(ws.dir, `top${i % 5}.txt`), `${i}\n`);
      if (i % 2) await fs.rm(dir, { recursive: true, force: true });
      await fs.rm(path.join(ws.dir, `top${(i + 2) % 5}.txt`), { force: true });
      made++;
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  try {
    let [fullLast, fedLast] = [await full.shadow.snapshot(), await fed.shadow.snapshot()];
    for (let step = 0; step < 25 || made < 200; step++) {
      const [fullNext, fedNext] = [await full.shadow.snapshot(), await fed.shadow.snapshot()];
      await full.shadow.ground(fullLast, fullNext);
      await fed.shadow.ground(fedLast, fedNext);
      [fullLast, fedLast] = [fullNext, fedNext];
      if (step > 400) break;
    }
    stop = true;
    await job;
    // Once it is quiet, both stores hold the workspace as it is.
    const settledFull = await full.shadow.snapshot();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const settledFed = await fed.shadow.snapshot();
    assert.equal(await fed.shadow.treeOf(settledFed), await full.shadow.treeOf(settledFull));
    assert.ok(made >= 200, `the job ran (${made} rounds)`);
  } finally {
    stop = true;
    await job.catch(() => undefined);
    watcher.dispose();
    full.cleanup();
    fed.cleanup();
    ws.cleanup();
  }
});

test("names that are not UTF-8 are recorded (git's quoted form and their bytes), and a restore removes and writes them under their own bytes", async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'dir/keep.txt': 'k\n' });
  const raw = Buffer.from('caf\xe9.txt', 'latin1');
  const top = Buffer.concat([Buffer.from(`${ws.dir}/`), raw]);
  const inside = Buffer.concat([Buffer.from(`${ws.dir}/dir/`), raw]);
  let next: string[] | undefined;
  const full = await storeFor(ws.dir);
  const fed = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    const [fullBefore, fedBefore] = [await full.shadow.snapshot(), await fed.shadow.snapshot()];
    await fs.writeFile(top, 'one\n');
    await fs.writeFile(inside, 'two\n');
    // What a watcher reports for such a name: the bytes lost to U+FFFD.
    next = ['caf\uFFFD.txt', 'dir/caf\uFFFD.txt'];
    const expected = [
      ['"caf\\351.txt"', raw.toString('base64'), 'added'],
      ['"dir/caf\\351.txt"', Buffer.concat([Buffer.from('dir/'), raw]).toString('base64'), 'added'],
    ];
    const fedAfter = await fed.shadow.snapshot();
    for (const [shadow, before, after] of [
      [full.shadow, fullBefore, await full.shadow.snapshot()],
      [fed.shadow, fedBefore, fedAfter],
    ] as [ShadowStore, string, string][]) {
      const grounding = await shadow.ground(before, after);
      assert.deepEqual(
        grounding.files.map((file) => [file.path, file.pathBase64, file.status]),
        expected,
      );
      assert.match(grounding.patch, /^\+\+\+ "b\/caf\\351\.txt"$/m, 'the patch names it as git does');
    }
    await fs.writeFile(top, 'one, edited\n');
    next = ['caf\uFFFD.txt'];
    const edited = await fed.shadow.snapshot();
    assert.deepEqual(
      (await fed.shadow.ground(fedAfter, edited)).files.map((file) => [file.path, file.status]),
      [['"caf\\351.txt"', 'modified']],
    );
    // Rewound: the files go (their bytes are their names); forward again: written back as they were.
    const restored = await fed.shadow.restore(edited, fedBefore);
    assert.deepEqual(
      restored.map((file) => file.pathBase64),
      expected.map(([, base64]) => base64),
    );
    await assert.rejects(fs.access(top));
    await assert.rejects(fs.access(inside));
    assert.equal(await fs.readFile(path.join(ws.dir, 'dir/keep.txt'), 'utf8'), 'k\n');
    await fed.shadow.restore(fedBefore, edited);
    assert.equal(await fs.readFile(top, 'utf8'), 'one, edited\n');
    assert.equal(await fs.readFile(inside, 'utf8'), 'two\n');
  } finally {
    full.cleanup();
    fed.cleanup();
    ws.cleanup();
  }
});
