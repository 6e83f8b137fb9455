import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WorkspaceWatcher } from '../../src/core/grounding/watcher';
import { git, makeWorkspace } from '../fixtures/workspace';

/** Lets the kernel's events reach the watcher before the next take(). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

async function watching(options: ConstructorParameters<typeof WorkspaceWatcher>[1] = {}) {
  const ws = makeWorkspace({ 'a.txt': 'a\n', 'src/b.txt': 'b\n', 'node_modules/x/i.js': 'x\n' });
  const watcher = new WorkspaceWatcher(ws.dir, options);
  await watcher.start();
  return {
    ws,
    watcher,
    close() {
      watcher.dispose();
      ws.cleanup();
    },
  };
}

test('the first take asks for a full pass, later ones name what changed', async () => {
  const { ws, watcher, close } = await watching();
  try {
    assert.equal(await watcher.take(), undefined);
    await fs.writeFile(path.join(ws.dir, 'src/b.txt'), 'b2\n');
    await fs.mkdir(path.join(ws.dir, 'src/new'));
    await settle();
    await fs.writeFile(path.join(ws.dir, 'src/new/c.txt'), 'c\n');
    await settle();
    assert.deepEqual((await watcher.take())?.sort(), ['src/b.txt', 'src/new', 'src/new/c.txt']);
    assert.deepEqual(await watcher.take(), []);
    await fs.writeFile(path.join(ws.dir, '.git', 'scratch'), 'x');
    await settle();
    assert.deepEqual(await watcher.take(), [], 'changes inside .git are not content');
  } finally {
    close();
  }
});

test('skipped folders are not watched', async () => {
  const { ws, watcher, close } = await watching({ skip: (dir, name) => !dir && name === 'node_modules' });
  try {
    await watcher.take();
    await fs.writeFile(path.join(ws.dir, 'node_modules/x/i.js'), 'y\n');
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a2\n');
    await settle();
    assert.deepEqual(await watcher.take(), ['a.txt']);
  } finally {
    close();
  }
});

test('a flood of changes, a new repository and the periodic check each ask for a full pass', async () => {
  const { ws, watcher, close } = await watching({ maxPaths: 5, fullPassEvery: 3 });
  try {
    await watcher.take();
    for (let i = 0; i < 10; i++) await fs.writeFile(path.join(ws.dir, `flood${i}.txt`), String(i));
    await settle();
    assert.equal(await watcher.take(), undefined, 'past maxPaths');
    assert.deepEqual(await watcher.take(), []);
    git(path.join(ws.dir, 'src'), 'init', '-q');
    await settle();
    assert.equal(await watcher.take(), undefined, 'a folder became a repository');
    assert.deepEqual(await watcher.take(), []);
    assert.deepEqual(await watcher.take(), []);
    assert.deepEqual(await watcher.take(), []);
    assert.equal(await watcher.take(), undefined, 'every fullPassEvery takes');
  } finally {
    close();
  }
});

test('after dispose every take asks for a full pass', async () => {
  const { ws, watcher, close } = await watching();
  try {
    await watcher.take();
    watcher.dispose();
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a3\n');
    assert.equal(watcher.active, false);
    assert.equal(await watcher.take(), undefined);
  } finally {
    close();
  }
});
