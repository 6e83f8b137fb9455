import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ShadowStore } from '../../src/core/grounding/shadowStore';
import { StoreProcesses, type TreeEntry } from '../../src/core/grounding/storeProcesses';
import { patchTree, type ObjectAccess, type PathState } from '../../src/core/grounding/treePatch';
import { treeObjectId, type TreeIdEntry } from '../../src/core/grounding/treeId';
import { storeFor } from '../fixtures/shadow';
import { GIT_IDENTITY, makeWorkspace, tempDir } from '../fixtures/workspace';

const env = () => ({ ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))), ...GIT_IDENTITY, GIT_CONFIG_NOSYSTEM: '1' });
const gitBytes = (cwd: string, args: string[], input?: Buffer): Buffer => execFileSync('git', args, { cwd, input, env: env(), maxBuffer: 1 << 26 });
const gitText = (cwd: string, args: string[], input?: Buffer): string => gitBytes(cwd, args, input).toString('utf8').trim();

/** A tree object's entries, names as bytes (gitformat-tree). */
function readTree(dir: string, id: string): TreeIdEntry[] {
  const body = gitBytes(dir, ['cat-file', 'tree', id]);
  const size = id.length / 2;
  const entries: TreeIdEntry[] = [];
  for (let at = 0; at < body.length;) {
    const space = body.indexOf(0x20, at);
    const nul = body.indexOf(0, space);
    entries.push({ mode: body.subarray(at, space).toString('latin1'), name: Buffer.from(body.subarray(space + 1, nul)), id: body.subarray(nul + 1, nul + 1 + size).toString('hex') });
    at = nul + 1 + size;
  }
  return entries;
}

/** Every tree below `id`, with its entries, by id. */
function treesBelow(dir: string, id: string, found = new Map<string, TreeIdEntry[]>()): Map<string, TreeIdEntry[]> {
  const entries = readTree(dir, id);
  found.set(id, entries);
  for (const entry of entries) if (entry.mode === '40000') treesBelow(dir, entry.id, found);
  return found;
}

/** `git mktree -z` of these entries, names as bytes: git's own id for them. */
function mktree(dir: string, entries: TreeIdEntry[]): string {
  const type = (mode: string) => (mode === '40000' ? 'tree' : mode === '160000' ? 'commit' : 'blob');
  const input = Buffer.concat(entries.map((entry) => Buffer.concat([Buffer.from(`${entry.mode} ${type(entry.mode)} ${entry.id}\t`), Buffer.from(entry.name), Buffer.from([0])])));
  return gitText(dir, ['mktree', '-z', '--missing'], input);
}

/** A work tree with nested folders, names git orders specially, a link, an executable, a gitlink and names that are not UTF-8. */
function populate(dir: string): Buffer[] {
  for (const [name, content] of Object.entries({
    'a.b': 'dot\n',
    'a-b': 'dash\n',
    a0: 'zero\n',
    'a/inner.txt': 'a folder named a sorts as "a/"\n',
    'a/deeper/x.txt': 'x\n',
    'a/deeper/y/z.txt': 'z\n',
    'b.c': 'next to the gitlink b\n',
    'run.sh': 'echo hi\n',
    'ü.txt': 'utf-8 name\n',
  })) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  chmodSync(path.join(dir, 'run.sh'), 0o755);
  symlinkSync('a/inner.txt', path.join(dir, 'link'));
  const odd = [Buffer.from([0x66, 0xff, 0x2e, 0x74]), Buffer.from('caf\xe9.txt', 'latin1'), Buffer.from([0x61, 0x80])];
  for (const name of odd) writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), name]), name);
  mkdirSync(Buffer.concat([Buffer.from(`${dir}/a/`), odd[1]]));
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/a/`), odd[1], Buffer.from('/in.txt')]), 'inside a folder whose name is not UTF-8\n');
  return odd;
}

for (const format of ['sha1', 'sha256'] as const) {
  test(`predicted tree ids equal git's (${format}): nested folders, "a" / "a.b" / "a/" ordering, links, executables, gitlinks, names that are not UTF-8`, () => {
    const repo = tempDir('apollo-treeid-');
    try {
      gitText(repo.dir, ['init', '-q', `--object-format=${format}`]);
      const odd = populate(repo.dir);
      gitText(repo.dir, ['add', '-A']);
      // A submodule's gitlink: a commit id in the tree, sorted as a file ("b" before "b.c").
      const commit = gitText(repo.dir, ['commit-tree', gitText(repo.dir, ['write-tree']), '-m', 'sub']);
      gitText(repo.dir, ['update-index', '--add', '--cacheinfo', `160000,${commit},b`]);
      const root = gitText(repo.dir, ['write-tree']);
      const trees = treesBelow(repo.dir, root);
      assert.ok(trees.size >= 5, 'nested folders');
      const top = trees.get(root)!;
      const names = top.map((entry) => Buffer.from(entry.name).toString('latin1'));
      assert.ok(names.indexOf('a-b') < names.indexOf('a.b') && names.indexOf('a.b') < names.indexOf('a') && names.indexOf('a') < names.indexOf('a0'), `git's order: ${names.join(' ')}`);
      assert.ok(names.indexOf('b') < names.indexOf('b.c'), 'a gitlink sorts as a file');
      assert.deepEqual(new Set(top.map((entry) => entry.mode)), new Set(['100644', '100755', '120000', '160000', '40000']));
      assert.ok(odd.every((name) => top.some((entry) => Buffer.from(entry.name).equals(name))));
      for (const [id, entries] of trees) {
        // In git's order, shuffled, and with names as text where they are UTF-8.
        const shuffled = [...entries].reverse();
        const asText = entries.map((entry) => {
          const bytes = Buffer.from(entry.name);
          return Buffer.from(bytes.toString('utf8')).equals(bytes) ? { ...entry, name: bytes.toString('utf8') } : entry;
        });
        assert.equal(treeObjectId(entries), id);
        assert.equal(treeObjectId(shuffled), id);
        assert.equal(treeObjectId(asText), id);
        assert.equal(mktree(repo.dir, shuffled), id, "mktree's own id for the same entries");
      }
      // "040000" is how some tools spell a folder's mode: the same tree.
      assert.equal(treeObjectId(top.map((entry) => (entry.mode === '40000' ? { ...entry, mode: '040000' } : entry))), root);
      const empty = gitText(repo.dir, ['mktree'], Buffer.alloc(0));
      assert.equal(treeObjectId([], format === 'sha256' ? 64 : 40), empty);
    } finally {
      repo.cleanup();
    }
  });
}

test('several trees go to the long-lived mktree in one request, later ones naming earlier ones', async () => {
  const repo = tempDir('apollo-treeid-');
  const processes = new StoreProcesses(path.join(repo.dir, '.git'), repo.dir, env());
  try {
    gitText(repo.dir, ['init', '-q']);
    const blob = gitText(repo.dir, ['hash-object', '-w', '--stdin'], Buffer.from('x\n'));
    const inner: TreeEntry[] = [
      { mode: '100644', id: blob, name: 'a.b' },
      { mode: '100755', id: blob, name: 'a' },
    ];
    const innerId = treeObjectId(inner);
    const outer: TreeEntry[] = [
      { mode: '40000', id: innerId, name: 'a' },
      { mode: '100644', id: blob, name: 'a.b' },
    ];
    const ids = await processes.writeTrees([inner, outer, [{ mode: '120000', id: blob, name: 'link' }]]);
    assert.deepEqual(ids.slice(0, 2), [innerId, treeObjectId(outer)]);
    assert.equal(gitText(repo.dir, ['ls-tree', '--name-only', ids[1]]), 'a.b\na', 'git sorted the folder "a" after "a.b"');
    assert.equal(gitText(repo.dir, ['cat-file', '-t', ids[2]]), 'tree');
    assert.deepEqual(await processes.writeTrees([]), []);
  } finally {
    processes.dispose();
    repo.cleanup();
  }
});

/** Object access for patchTree straight on git's long-lived processes, as the store builds it. */
function accessOn(processes: StoreProcesses, remembered: Map<string, TreeEntry[]>): ObjectAccess {
  return {
    listTree: async (id) => remembered.get(id) ?? (await processes.listTree(id))!,
    writeBlobs: (paths) => processes.hash(paths),
    writeTree: (entries) => processes.writeTree(entries),
    writeTrees: (trees) => processes.writeTrees(trees),
    ignored: async () => new Set<string>(),
    remember: (id, entries) => remembered.set(id, entries),
  };
}

test("when git answers other tree ids than the predicted ones, the trees are written again one level at a time and the result is git's", async () => {
  const ws = makeWorkspace({ 'pkg/mod/a.txt': 'a\n', 'pkg/mod/b.txt': 'b\n', 'pkg/c.txt': 'c\n', 'top.txt': 't\n' });
  const gitDir = path.join(ws.dir, '.git');
  const processes = new StoreProcesses(gitDir, ws.dir, env());
  try {
    const base = gitText(ws.dir, ['rev-parse', 'HEAD^{tree}']);
    writeFileSync(path.join(ws.dir, 'pkg/mod/a.txt'), 'a, edited\n');
    writeFileSync(path.join(ws.dir, 'pkg/mod/new.txt'), 'new\n');
    const changes = new Map<string, PathState>(['pkg/mod/a.txt', 'pkg/mod/new.txt'].map((file) => [file, { kind: 'file', stat: lstatSync(path.join(ws.dir, file)) }]));
    gitText(ws.dir, ['add', '-A']);
    const expected = gitText(ws.dir, ['write-tree']);

    const honest = await patchTree(base, changes, accessOn(processes, new Map()), 1 << 20, true);
    assert.deepEqual([honest?.tree, honest?.trees], [expected, 'batch']);

    // Git's answer tampered with: as if it had written other trees than the ones predicted.
    const remembered = new Map<string, TreeEntry[]>();
    const sent: number[] = [];
    const access = accessOn(processes, remembered);
    access.writeTrees = async (trees) => {
      sent.push(trees.length);
      const ids = await processes.writeTrees(trees);
      return ids.map((id, index) => (index === 0 ? `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}` : id));
    };
    let oneByOne = 0;
    const writeTree = access.writeTree;
    access.writeTree = (entries) => {
      oneByOne++;
      return writeTree(entries);
    };
    const fallback = await patchTree(base, changes, access, 1 << 20, true);
    assert.deepEqual([fallback?.tree, fallback?.trees], [expected, 'one by one']);
    assert.deepEqual(sent, [3], 'the three folders went in one request first');
    assert.equal(oneByOne, 3, 'then one at a time');
    assert.ok(
      [...remembered.keys()].every((id) => gitText(ws.dir, ['cat-file', '-t', id]) === 'tree'),
      'only ids git wrote are remembered',
    );
    assert.equal(remembered.size, 3);
  } finally {
    processes.dispose();
    ws.cleanup();
  }
});

test('a store whose batched tree writes come back with other ids snapshots exactly as one that writes them one at a time', async () => {
  const ws = makeWorkspace({ 'src/mod/a.ts': 'a\n', 'src/b.ts': 'b\n', 'README.md': '# r\n' });
  const honest = await storeFor(ws.dir);
  const tampered = await storeFor(ws.dir);
  const original = StoreProcesses.prototype.writeTrees;
  try {
    const tree = (shadow: ShadowStore, commit: string) => gitText(ws.dir, [`--git-dir=${shadow.storeDir}`, 'rev-parse', `${commit}^{tree}`]);
    let [beforeHonest, beforeTampered] = [await honest.shadow.snapshot(), await tampered.shadow.snapshot()];
    for (let step = 0; step < 4; step++) {
      writeFileSync(path.join(ws.dir, 'src/mod/a.ts'), `a ${step}\n`);
      if (step === 2) writeFileSync(path.join(ws.dir, 'src/mod/new.ts'), 'new\n');
      const afterHonest = await honest.shadow.snapshot();
      StoreProcesses.prototype.writeTrees = async function (this: StoreProcesses, trees: TreeEntry[][]) {
        return (await original.call(this, trees)).map((id) => `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`);
      };
      const afterTampered = await tampered.shadow.snapshot();
      StoreProcesses.prototype.writeTrees = original;
      assert.equal(tree(tampered.shadow, afterTampered), tree(honest.shadow, afterHonest), `step ${step}: the same tree`);
      const [groundHonest, groundTampered] = [await honest.shadow.ground(beforeHonest, afterHonest), await tampered.shadow.ground(beforeTampered, afterTampered)];
      assert.deepEqual(groundTampered.files, groundHonest.files);
      assert.equal(groundTampered.patch, groundHonest.patch);
      [beforeHonest, beforeTampered] = [afterHonest, afterTampered];
    }
    assert.deepEqual(tampered.shadow.treeWrites, { batch: 0, oneByOne: 4 });
    assert.deepEqual(honest.shadow.treeWrites, { batch: 4, oneByOne: 0 });
    await tampered.shadow.settled();
    assert.equal(gitText(ws.dir, [`--git-dir=${tampered.shadow.storeDir}`, 'fsck', '--strict', '--no-dangling', '--no-progress']), '');
  } finally {
    StoreProcesses.prototype.writeTrees = original;
    honest.shadow.close();
    tampered.shadow.close();
    honest.cleanup();
    tampered.cleanup();
    ws.cleanup();
  }
});
