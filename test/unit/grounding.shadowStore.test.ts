import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fingerprint, storeFor } from '../fixtures/shadow';
import { makeWorkspace } from '../fixtures/workspace';

test('grounds creations, modifications, deletions, renames and binary files', async () => {
  const ws = makeWorkspace({ 'a.txt': 'one\ntwo\n', 'old-name.txt': 'same content here\n'.repeat(20), 'gone.txt': 'bye\n' });
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'one\nTWO\nthree\n');
    await fs.writeFile(path.join(ws.dir, 'new.txt'), 'fresh\n');
    await fs.rm(path.join(ws.dir, 'gone.txt'));
    await fs.rename(path.join(ws.dir, 'old-name.txt'), path.join(ws.dir, 'new-name.txt'));
    await fs.writeFile(path.join(ws.dir, 'image.bin'), Buffer.from([0, 1, 2, 3, 255, 0, 7]));
    const after = await shadow.snapshot();
    const grounding = await shadow.ground(before, after);
    const byPath = Object.fromEntries(grounding.files.map((file) => [file.path, file]));
    assert.deepEqual({ status: byPath['a.txt'].status, additions: byPath['a.txt'].additions, deletions: byPath['a.txt'].deletions }, { status: 'modified', additions: 2, deletions: 1 });
    assert.equal(byPath['new.txt'].status, 'added');
    assert.equal(byPath['gone.txt'].status, 'deleted');
    assert.equal(byPath['new-name.txt'].status, 'renamed');
    assert.equal(byPath['new-name.txt'].oldPath, 'old-name.txt');
    assert.equal(byPath['image.bin'].binary, true);
    assert.match(grounding.patch, /^\+TWO$/m);
    assert.match(grounding.patch, /Binary files/);
    assert.deepEqual(await shadow.readFile(after, 'image.bin'), Buffer.from([0, 1, 2, 3, 255, 0, 7]));
    assert.equal((await shadow.readFile(before, 'a.txt'))?.toString(), 'one\ntwo\n');
    assert.equal(await shadow.readFile(before, 'new.txt'), undefined);
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('an unchanged tree gives the same snapshot and an empty diff', async () => {
  const ws = makeWorkspace();
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const first = await shadow.snapshot();
    const second = await shadow.snapshot();
    assert.equal(first, second);
    assert.deepEqual(await shadow.ground(first, second), { before: first, after: second, files: [], patch: '' });
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('the dataset folder and .gitignored files never enter a snapshot', async () => {
  const ws = makeWorkspace({ '.gitignore': 'build/\n', 'src.txt': 'x\n' });
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    await fs.mkdir(path.join(ws.dir, '.apollo', 'dataset'), { recursive: true });
    await fs.writeFile(path.join(ws.dir, '.apollo', 'dataset', 'events.jsonl'), '{}\n');
    await fs.mkdir(path.join(ws.dir, 'build'));
    await fs.writeFile(path.join(ws.dir, 'build', 'out.js'), 'compiled\n');
    await fs.writeFile(path.join(ws.dir, 'src.txt'), 'y\n');
    const grounding = await shadow.ground(before, await shadow.snapshot());
    assert.deepEqual(
      grounding.files.map((file) => file.path),
      ['src.txt'],
    );
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('works in a folder that is not a git repository', async () => {
  const ws = makeWorkspace({ 'plain.txt': 'a\n' }, { git: false });
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    await fs.appendFile(path.join(ws.dir, 'plain.txt'), 'b\n');
    const grounding = await shadow.ground(before, await shadow.snapshot());
    assert.deepEqual(
      grounding.files.map((file) => [file.path, file.additions]),
      [['plain.txt', 1]],
    );
    await assert.rejects(fs.access(path.join(ws.dir, '.git')));
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test("the user's repository is byte-identical after snapshots", async () => {
  const ws = makeWorkspace({ 'a.txt': '1\n' });
  await fs.writeFile(path.join(ws.dir, 'a.txt'), '2\n'); // an uncommitted change of the user's
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const gitDir = path.join(ws.dir, '.git');
    const fingerprintBefore = fingerprint(gitDir);
    const first = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'agent\n');
    await shadow.ground(first, await shadow.snapshot());
    assert.equal(fingerprint(gitDir), fingerprintBefore);
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('a long patch is cut and marked', async () => {
  const ws = makeWorkspace();
  const { shadow, cleanup } = await storeFor(ws.dir);
  try {
    const before = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'big.txt'), 'line\n'.repeat(5000));
    const grounding = await shadow.ground(before, await shadow.snapshot(), { maxPatchBytes: 1000 });
    assert.equal(grounding.patchTruncated, true);
    assert.ok(grounding.patch.length <= 1000);
    assert.equal(grounding.files[0].additions, 5000);
  } finally {
    cleanup();
    ws.cleanup();
  }
});
