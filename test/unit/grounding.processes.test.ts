import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { parseChanges, ShadowStore } from '../../src/core/grounding/shadowStore';
import type { Grounding } from '../../src/core/dataset/events';
import { StoreProcesses } from '../../src/core/grounding/storeProcesses';
import { storeFor } from '../fixtures/shadow';
import { makeWorkspace, tempDir } from '../fixtures/workspace';
import { random, VOCABULARY } from '../fixtures/random';

/** Git run on a shadow store as the store itself runs it: no index, no system config or attributes. */
function storeGit(shadow: ShadowStore, args: string[], input?: string | Buffer): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_')));
  return execFileSync('git', args, {
    cwd: shadow.workspace,
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...env, GIT_DIR: shadow.storeDir, GIT_INDEX_FILE: path.join(shadow.storeDir, 'apollo-index', 'none'), GIT_CONFIG_NOSYSTEM: '1', GIT_ATTR_NOSYSTEM: '1' },
  });
}

/** What git's own diff-tree gives for two snapshots, read the way the store reads it once their objects are stored. */
async function gitGrounding(shadow: ShadowStore, before: string, after: string) {
  await shadow.settled();
  return parseChanges(storeGit(shadow, ['diff-tree', '-r', '-M', '--raw', '--numstat', '-p', '-z', '--no-color', '--no-ext-diff', before, after]));
}

async function assertSameAsGit(shadow: ShadowStore, grounding: Grounding, what: string): Promise<void> {
  const reference = await gitGrounding(shadow, grounding.before, grounding.after);
  assert.deepEqual(grounding.files, reference.files, `files and line counts, ${what}`);
  assert.equal(grounding.patch, reference.patch, `patch, ${what}`);
}

function sourceLines(rand: ReturnType<typeof random>, count: number): string[] {
  return Array.from({ length: count }, () => (rand.next() < 0.6 ? rand.pick(VOCABULARY) : `line ${rand.below(50)}`));
}

test('many random steps through the through long-lived git path: objects as git hashes them, a clean fsck, groundings equal to diff-tree', async () => {
  const rand = random(20261127);
  const initial: Record<string, string> = { 'README.md': '# demo\n', 'tool.sh': 'echo hi\n' };
  for (let i = 0; i < 8; i++) initial[`src/mod${i % 3}/file${i}.ts`] = sourceLines(rand, 10 + rand.below(40)).join('\n') + '\n';
  initial['src/no-newline.txt'] = 'last line without newline';
  const ws = makeWorkspace(initial);
  let next: string[] | undefined;
  const fed = await storeFor(ws.dir, { changes: { take: async () => next } });
  // The reference store goes through git's index every time.
  const full = await storeFor(ws.dir, { patch: false });
  // No change feed: a full pass each time, patched from what git status lists; the files the
  // index is behind on are looked at while status runs.
  const passes = await storeFor(ws.dir);
  const files = new Set(Object.keys(initial));
  const folders = ['', 'src/mod0', 'src/mod1', 'src/mod2', 'src'];
  try {
    let before = await fed.shadow.snapshot();
    await full.shadow.snapshot();
    const steps = 80;
    for (let step = 0; step < steps; step++) {
      const changed = new Set<string>();
      for (let op = 1 + rand.below(3); op > 0; op--) {
        const file = rand.pick([...files]);
        const target = path.join(ws.dir, file);
        const kind = rand.below(10);
        if (kind <= 2) {
          // Edit: lines inserted, removed and replaced here and there.
          const lines = (await fs.readFile(target, 'utf8')).split('\n');
          for (let edits = 1 + rand.below(4); edits > 0; edits--) {
            const at = rand.below(lines.length + 1);
            const choice = rand.below(3);
            if (choice === 0) lines.splice(at, 0, ...sourceLines(rand, 1 + rand.below(4)));
            else if (choice === 1) lines.splice(at, 1 + rand.below(3));
            else lines[at] = rand.pick(VOCABULARY);
          }
          await fs.writeFile(target, lines.join('\n'));
        } else if (kind === 3) {
          await fs.appendFile(target, sourceLines(rand, 1 + rand.below(3)).join('\n') + (rand.next() < 0.5 ? '\n' : ''));
        } else if (kind === 4) {
          await fs.writeFile(target, '');
        } else if (kind === 5) {
          const bytes = Buffer.from(Array.from({ length: 20 + rand.below(200) }, () => rand.below(256)));
          bytes[rand.below(bytes.length)] = 0;
          await fs.writeFile(target, bytes);
        } else if (kind === 6) {
          await fs.chmod(target, (await fs.stat(target)).mode & 0o111 ? 0o644 : 0o755);
        } else if (kind === 7 && files.size > 4) {
          await fs.rm(target);
          files.delete(file);
        } else if (kind === 8) {
          // The same bytes written again: a new time, nothing to record.
          await fs.writeFile(target, await fs.readFile(target));
        } else {
          const dir = rand.pick(folders);
          const name = `${dir ? `${dir}/` : ''}new${step}-${op}.txt`;
          await fs.writeFile(path.join(ws.dir, name), sourceLines(rand, rand.below(8)).join('\n') + (rand.next() < 0.7 ? '\n' : ''));
          files.add(name);
          changed.add(name);
          continue;
        }
        changed.add(file);
      }
      next = [...changed];
      const after = await fed.shadow.snapshot();
      const reference = await full.shadow.snapshot();
      assert.equal(await fed.shadow.treeOf(after), await full.shadow.treeOf(reference), `step ${step}: the same tree as git add gives`);
      assert.equal(await passes.shadow.treeOf(await passes.shadow.snapshot()), await full.shadow.treeOf(reference), `step ${step}: a full pass, the same tree`);
      const grounding = await fed.shadow.ground(before, after);
      await assertSameAsGit(fed.shadow, grounding, `step ${step} (${next.join(', ')})`);
      // Every file's object is what git hashes for its bytes.
      const present = [...changed].filter((file) => files.has(file));
      if (present.length) {
        const hashed = execFileSync('git', ['hash-object', '--no-filters', '--', ...present], { cwd: ws.dir, encoding: 'utf8' })
          .trim()
          .split('\n');
        const listed = present.map((file) => storeGit(fed.shadow, ['rev-parse', `${after}:${file}`]).trim());
        assert.deepEqual(listed, hashed, `step ${step}: blob ids`);
      }
      before = after;
    }
    await fed.shadow.settled();
    assert.equal(storeGit(fed.shadow, ['rev-parse', 'refs/apollo/snapshots']).trim(), before, 'the ref, written through long-lived git, names the last snapshot');
    assert.ok(fed.shadow.passes.patched >= steps - 5, `patched ${JSON.stringify(fed.shadow.passes)}`);
    assert.equal(fed.shadow.diffs.git, 0, `diffs ${JSON.stringify(fed.shadow.diffs)}`);
    assert.equal(storeGit(fed.shadow, ['fsck', '--strict', '--no-dangling', '--no-progress']), '');
    assert.ok(passes.shadow.passes.full >= steps, `full passes ${JSON.stringify(passes.shadow.passes)}`);
  } finally {
    fed.cleanup();
    full.cleanup();
    passes.cleanup();
    ws.cleanup();
  }
});

test('with a .gitattributes above a changed file, or attributes in the store, git stores the content and diffs it', async () => {
  const ws = makeWorkspace({ 'plain/a.txt': 'a\n', 'filtered/b.txt': '$Id: old $\nb\n' });
  let next: string[] | undefined;
  const fed = await storeFor(ws.dir, { changes: { take: async () => next } });
  const full = await storeFor(ws.dir, { patch: false });
  try {
    let before = await fed.shadow.snapshot();
    await full.shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'filtered/.gitattributes'), '*.txt ident\n');
    next = ['filtered/.gitattributes'];
    before = await fed.shadow.snapshot();
    await full.shadow.snapshot();

    const step = async (file: string, content: string) => {
      await fs.writeFile(path.join(ws.dir, file), content);
      next = [file];
      const after = await fed.shadow.snapshot();
      assert.equal(await fed.shadow.treeOf(after), await full.shadow.treeOf(await full.shadow.snapshot()), `${file}: the tree git add gives`);
      const grounding = await fed.shadow.ground(before, after);
      await assertSameAsGit(fed.shadow, grounding, file);
      before = after;
      return grounding;
    };
    const diffs = { ...fed.shadow.diffs };
    await step('filtered/b.txt', '$Id: changed $\nb2\n');
    // ident collapsed the keyword: the content git stores is not the file's bytes.
    assert.equal((await fed.shadow.readFile(before, 'filtered/b.txt'))?.toString(), '$Id$\nb2\n');
    assert.equal(fed.shadow.diffs.stdin, diffs.stdin + 1, 'diffed by the long-lived diff-tree');
    await step('plain/a.txt', 'a2\n');
    assert.equal(fed.shadow.diffs.stdin, diffs.stdin + 2);
  } finally {
    fed.cleanup();
    full.cleanup();
    ws.cleanup();
  }

  // Attributes in the store's own info/attributes apply to every file: blobs go through git.
  const other = makeWorkspace({ 'c.txt': 'c\n' });
  const data = tempDir('apollo-data-');
  try {
    const storeDir = path.join(data.dir, 'store.git');
    let feed: string[] | undefined;
    const first = new ShadowStore({ workspace: other.dir, storeDir, changes: { take: async () => feed } });
    await first.init();
    await fs.writeFile(path.join(storeDir, 'info', 'attributes'), '*.txt ident\n');
    const shadow = new ShadowStore({ workspace: other.dir, storeDir, changes: { take: async () => feed } });
    await shadow.init();
    const before = await shadow.snapshot();
    await fs.writeFile(path.join(other.dir, 'c.txt'), '$Id: x $\n');
    feed = ['c.txt'];
    const after = await shadow.snapshot();
    assert.equal(shadow.passes.patched, 1);
    assert.equal((await shadow.readFile(after, 'c.txt'))?.toString(), '$Id$\n');
    const grounding = await shadow.ground(before, after);
    await assertSameAsGit(shadow, grounding, 'info/attributes');
    assert.deepEqual(shadow.diffs, { stdin: 1, git: 0 });
  } finally {
    data.cleanup();
    other.cleanup();
  }
});

/** Contents of two blobs whose names share their first `length` hex digits. */
function sharedPrefixPair(length: number): [string, string] {
  const seen = new Map<string, string>();
  for (let i = 0; ; i++) {
    const content = `prefix twin ${i}\n`;
    const id = createHash('sha1').update(`blob ${content.length}\0${content}`).digest('hex');
    const twin = seen.get(id.slice(0, length));
    if (twin !== undefined) return [twin, content];
    seen.set(id.slice(0, length), content);
  }
}

test('abbreviated names follow what the store holds: a loose twin, many packed objects; packed old blobs and refs are handled', async () => {
  const [first, twin] = sharedPrefixPair(7);
  const ws = makeWorkspace({ 'a.txt': first, 'b.txt': 'b\n' });
  let next: string[] | undefined;
  const { shadow, cleanup } = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    let before = await shadow.snapshot();
    // An object whose name starts like a.txt's: git writes a.txt's name one digit longer.
    storeGit(shadow, ['hash-object', '-w', '--stdin'], twin);
    const step = async (file: string, content: string) => {
      await fs.writeFile(path.join(ws.dir, file), content);
      next = [file];
      const after = await shadow.snapshot();
      const grounding = await shadow.ground(before, after);
      await assertSameAsGit(shadow, grounding, file);
      before = after;
      return grounding;
    };
    const changed = await step('a.txt', 'a changed\n');
    assert.match(changed.patch, /^index [0-9a-f]{8,}\.\.[0-9a-f]{7} 100644$/m);
    assert.deepEqual(shadow.diffs, { stdin: 1, git: 0 });

    // Many packed objects make git's names longer (fast-import writes a pack).
    const stream = Array.from({ length: 17000 }, (_, i) => `blob\ndata ${String(i).length + 1}\n${i}\n`).join('');
    storeGit(shadow, ['fast-import', '--quiet'], stream);
    const longer = await step('b.txt', 'b changed\n');
    assert.match(longer.patch, /^index [0-9a-f]{8}\.\.[0-9a-f]{8} 100644$/m);
    assert.deepEqual(shadow.diffs, { stdin: 2, git: 0 });

    // After a gc everything is packed. A store opened afresh (a resumed run) has none of it in
    // memory: git reads the trees and diffs the packed old blob; the ref, packed too, still moves.
    await shadow.settled();
    storeGit(shadow, ['gc', '--quiet', '--prune=now']);
    const resumed = new ShadowStore({ workspace: ws.dir, storeDir: shadow.storeDir, changes: { take: async () => next } });
    await resumed.init();
    const resumedStep = async (content: string) => {
      await fs.writeFile(path.join(ws.dir, 'a.txt'), content);
      next = ['a.txt'];
      const after = await resumed.snapshot();
      await assertSameAsGit(resumed, await resumed.ground(before, after), content);
      before = after;
    };
    await resumedStep('a again\n');
    assert.deepEqual(resumed.diffs, { stdin: 1, git: 0 }, 'a packed old blob is read by git as any other');
    await resumedStep('a once more\n');
    assert.deepEqual(resumed.diffs, { stdin: 2, git: 0 }, 'and again after the next step');
    await resumed.settled();
    assert.equal(storeGit(shadow, ['rev-parse', 'refs/apollo/snapshots']).trim(), before);
    assert.match(await fs.readFile(path.join(shadow.storeDir, 'packed-refs'), 'utf8'), /refs\/apollo\/snapshots/);
    assert.equal(storeGit(shadow, ['fsck', '--strict', '--no-dangling', '--no-progress']), '');
    storeGit(shadow, ['update-ref', '-d', 'refs/apollo/snapshots']);
    assert.equal(storeGit(shadow, ['for-each-ref', 'refs/apollo/']), '', 'deleting the ref removes the loose and the packed one');
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('names that need quoting, spaces, binary files and modes are written as git writes them', async () => {
  const names = ['with space.txt', 'tab\there.txt', 'quote"d.txt', 'café.txt', 'back\\slash.txt'];
  const ws = makeWorkspace(Object.fromEntries(names.map((name) => [name, 'one\n'])));
  let next: string[] | undefined;
  const { shadow, cleanup } = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    const before = await shadow.snapshot();
    for (const name of names) await fs.writeFile(path.join(ws.dir, name), 'one\ntwo\n');
    await fs.writeFile(path.join(ws.dir, 'image.bin'), Buffer.from([0x89, 0x50, 0, 1, 2]));
    await fs.writeFile(path.join(ws.dir, 'empty.txt'), '');
    await fs.chmod(path.join(ws.dir, 'with space.txt'), 0o755);
    next = [...names, 'image.bin', 'empty.txt'];
    const middle = await shadow.snapshot();
    const grounding = await shadow.ground(before, middle);
    await assertSameAsGit(shadow, grounding, 'names');
    assert.match(grounding.patch, /^--- a\/with space\.txt\t$/m);
    assert.match(grounding.patch, /^Binary files \/dev\/null and b\/image\.bin differ$/m);
    await fs.writeFile(path.join(ws.dir, 'image.bin'), Buffer.from([0x89, 0x50, 0, 1, 3]));
    await fs.rm(path.join(ws.dir, 'empty.txt'));
    await fs.chmod(path.join(ws.dir, 'with space.txt'), 0o644);
    next = ['image.bin', 'empty.txt', 'with space.txt'];
    await assertSameAsGit(shadow, await shadow.ground(middle, await shadow.snapshot()), 'binary, deleted empty file, mode only');
    assert.deepEqual(shadow.diffs, { stdin: 2, git: 0 });
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test("a patch past the size cap is cut as git's would be, wherever the cut falls", async () => {
  const ws = makeWorkspace({ 'a.txt': 'start\n', 'b.txt': 'b\n' });
  let next: string[] | undefined;
  const { shadow, cleanup } = await storeFor(ws.dir, { changes: { take: async () => next } });
  try {
    const before = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'début é€😀\n'.repeat(300));
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'b\nmore\n');
    next = ['a.txt', 'b.txt'];
    const after = await shadow.snapshot();
    const full = await gitGrounding(shadow, before, after);
    for (const max of [0, 1, 150, 151, 152, 153, 154, 4000, 1 << 20]) {
      const cut = await shadow.ground(before, after, { maxPatchBytes: max });
      const truncated = Buffer.byteLength(full.patch) > max;
      assert.deepEqual(cut.files, full.files, `files at ${max}`);
      assert.equal(cut.patch, truncated ? Buffer.from(full.patch).subarray(0, max).toString('utf8') : full.patch, `patch at ${max}`);
      assert.equal(cut.patchTruncated, truncated ? true : undefined, `mark at ${max}`);
    }
    assert.deepEqual(shadow.diffs, { stdin: 9, git: 0 });
  } finally {
    cleanup();
    ws.cleanup();
  }
});

test('full passes skip files they hashed before only while their stat vouches for them', async () => {
  const ws = makeWorkspace({ 'a.txt': 'aaaa\n', 'b.txt': 'bbbb\n', 'c.txt': 'cccc\n' });
  // Full passes (git status names what differs from the store's index) against git add each time.
  const fed = await storeFor(ws.dir);
  const full = await storeFor(ws.dir, { patch: false });
  const past = (seconds: number) => new Date(Date.now() - seconds * 1000);
  const age = (file: string, seconds: number) => fs.utimes(path.join(ws.dir, file), past(seconds), past(seconds));
  const compare = async (what: string) => {
    const [fedTree, fullTree] = [await fed.shadow.treeOf(await fed.shadow.snapshot()), await full.shadow.treeOf(await full.shadow.snapshot())];
    assert.equal(fedTree, fullTree, what);
  };
  try {
    await compare('first');
    // Old files, hashed once: later passes name them again (the index is behind) and skip them.
    for (const file of ['a.txt', 'b.txt']) {
      await fs.writeFile(path.join(ws.dir, file), `${file[0].repeat(3)}X\n`);
      await age(file, 30);
    }
    await compare('old files changed');
    await compare('nothing changed');
    // Same size, a second write within the same moment as the read: never taken as unchanged.
    await fs.writeFile(path.join(ws.dir, 'c.txt'), 'ccc1\n');
    await compare('c changed');
    await fs.writeFile(path.join(ws.dir, 'c.txt'), 'ccc2\n');
    await compare('c changed again, same size, at once');
    // A file hashed when old, then rewritten with the same size: its new time shows.
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'aaaY\n');
    await compare('a rewritten, same size');
    await fs.chmod(path.join(ws.dir, 'b.txt'), 0o755);
    await compare('b made executable');
    await fs.rm(path.join(ws.dir, 'b.txt'));
    await compare('b removed');
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'bbbX\n');
    await age('b.txt', 30);
    await compare('b back, old');
    // New files git status lists as untracked are not ignored; an ignored one is not listed.
    await fs.writeFile(path.join(ws.dir, '.gitignore'), '*.log\n');
    await compare('a .gitignore');
    await fs.writeFile(path.join(ws.dir, 'd.txt'), 'd\n');
    await fs.writeFile(path.join(ws.dir, 'e.log'), 'e\n');
    await compare('new files, one ignored');
    assert.ok(fed.shadow.passes.full >= 11, JSON.stringify(fed.shadow.passes));
  } finally {
    fed.cleanup();
    full.cleanup();
    ws.cleanup();
  }
});

test('the through long-lived git diff follows the settings git reads: abbreviation, path quoting, blank context lines, indent heuristic', async () => {
  const settings: [string, string][][] = [
    [
      ['core.abbrev', '12'],
      ['core.quotePath', 'false'],
    ],
    [
      ['core.abbrev', 'no'],
      ['diff.suppressBlankEmpty', 'true'],
      ['diff.indentHeuristic', 'false'],
    ],
  ];
  for (const config of settings) {
    const ws = makeWorkspace({ 'café.txt': 'a\n\nb\n', 'code.ts': 'function a() {\n  one();\n}\n\nfunction c() {\n  three();\n}\n' });
    const data = tempDir('apollo-data-');
    try {
      const storeDir = path.join(data.dir, 'store.git');
      let next: string[] | undefined;
      const first = new ShadowStore({ workspace: ws.dir, storeDir });
      await first.init();
      for (const [key, value] of config) execFileSync('git', ['config', '--file', path.join(storeDir, 'config'), key, value]);
      const shadow = new ShadowStore({ workspace: ws.dir, storeDir, changes: { take: async () => next } });
      await shadow.init();
      const before = await shadow.snapshot();
      await fs.writeFile(path.join(ws.dir, 'café.txt'), 'a\n\nB\n');
      await fs.writeFile(path.join(ws.dir, 'code.ts'), 'function a() {\n  one();\n}\n\nfunction b() {\n  two();\n}\n\nfunction c() {\n  three();\n}\n');
      next = ['café.txt', 'code.ts'];
      const grounding = await shadow.ground(before, await shadow.snapshot());
      await assertSameAsGit(shadow, grounding, JSON.stringify(config));
      assert.deepEqual(shadow.diffs, { stdin: 1, git: 0 });
    } finally {
      data.cleanup();
      ws.cleanup();
    }
  }
});

/** The git commands simple-git starts while `work` runs. */
async function gitCommands<T>(work: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const prototype = Object.getPrototypeOf(simpleGit()) as { raw: (...args: unknown[]) => Promise<string> };
  const raw = prototype.raw;
  const commands: string[] = [];
  const command = (list: string[]) => list.find((arg) => !arg.startsWith('-') && !arg.includes('=')) ?? '';
  prototype.raw = function (this: unknown, ...args: unknown[]) {
    commands.push(command((Array.isArray(args[0]) ? args[0] : args) as string[]));
    return raw.apply(this, args);
  };
  try {
    return { result: await work(), commands };
  } finally {
    prototype.raw = raw;
  }
}

test('a plain step starts no git process when the watcher names the change, and only git status on a full pass', async () => {
  const ws = makeWorkspace({ 'src/a.txt': 'a\n', 'src/b.txt': 'b\n' });
  // An untracked folder that holds only a file over the size limit: git status lists it every time.
  await fs.mkdir(path.join(ws.dir, 'weights'));
  await fs.writeFile(path.join(ws.dir, 'weights/model.bin'), Buffer.alloc(5000, 1));
  let next: string[] | undefined;
  const watched = await storeFor(ws.dir, { changes: { take: async () => next }, maxFileBytes: 1000 });
  const full = await storeFor(ws.dir, { maxFileBytes: 1000 });
  const last = new Map<ShadowStore, string>();
  /** A snapshot and its grounding against the store's last one, with the git commands they started. */
  const step = async (shadow: ShadowStore) => {
    await shadow.settled();
    const measured = await gitCommands(async () => {
      const after = await shadow.snapshot();
      const grounding = await shadow.ground(last.get(shadow)!, after);
      last.set(shadow, after);
      return grounding;
    });
    return { files: measured.result.files.map((file) => [file.path, file.status]), commands: measured.commands };
  };
  try {
    for (const shadow of [watched.shadow, full.shadow]) last.set(shadow, await shadow.snapshot());
    await fs.writeFile(path.join(ws.dir, 'src/a.txt'), 'a1\n');
    next = ['src/a.txt'];
    await step(watched.shadow);
    await step(full.shadow); // the folder of left-out files is looked at once through the index
    for (const [name, change, changed] of [
      ['edit', () => fs.writeFile(path.join(ws.dir, 'src/a.txt'), 'a2\n'), 'src/a.txt'],
      ['delete', () => fs.rm(path.join(ws.dir, 'src/b.txt')), 'src/b.txt'],
      ['edit again', () => fs.writeFile(path.join(ws.dir, 'src/a.txt'), 'a3\n'), 'src/a.txt'],
    ] as [string, () => Promise<void>, string][]) {
      await change();
      next = [changed];
      const fed = await step(watched.shadow);
      assert.deepEqual(fed.commands, [], `${name}, watcher: no git process`);
      const pass = await step(full.shadow);
      assert.deepEqual(pass.commands, ['status'], `${name}, full pass: git status only`);
      assert.deepEqual(fed.files, [[changed, name === 'delete' ? 'deleted' : 'modified']]);
      assert.deepEqual(pass.files, fed.files);
    }
    // A new file on a full pass: git status has already applied the ignore rules.
    await fs.writeFile(path.join(ws.dir, 'src/c.txt'), 'c\n');
    assert.deepEqual(await step(full.shadow), { files: [['src/c.txt', 'added']], commands: ['status'] });
    // The left-out file shrinks: it comes in (through the index).
    await fs.writeFile(path.join(ws.dir, 'weights/model.bin'), 'small\n');
    assert.deepEqual((await step(full.shadow)).files, [['weights/model.bin', 'added']]);
  } finally {
    watched.cleanup();
    full.cleanup();
    ws.cleanup();
  }
});

test('commit bodies go through one file, written over: a shorter body is stored whole, a removed file is made again, and the file goes with the store', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const { shadow, cleanup } = await storeFor(ws.dir);
  const scratchFiles = () => readdirSync(path.join(shadow.storeDir, 'apollo-index')).filter((name) => name.startsWith('commits-'));
  const processes = new StoreProcesses(shadow.storeDir, ws.dir, { ...process.env, GIT_CONFIG_NOSYSTEM: '1' });
  try {
    const first = await shadow.snapshot();
    const tree = storeGit(shadow, ['rev-parse', `${first}^{tree}`]).trim();
    const person = 'A <a@b> 1700000000 +0000';
    const long = `tree ${tree}\nparent ${first}\nauthor ${person}\ncommitter ${person}\n\nsnapshot with a longer message\n`;
    const short = `tree ${tree}\nauthor ${person}\ncommitter ${person}\n\nindex\n`;
    for (const body of [long, short, long]) {
      const id = await processes.writeCommit(body);
      assert.equal(storeGit(shadow, ['cat-file', 'commit', id]), body);
      assert.equal(
        id,
        createHash('sha1')
          .update(`commit ${Buffer.byteLength(body)}\0${body}`)
          .digest('hex'),
      );
    }
    // A gc empties the scratch folder; the next commit makes its file again.
    rmSync(path.join(shadow.storeDir, 'apollo-index'), { recursive: true, force: true });
    assert.equal(storeGit(shadow, ['cat-file', 'commit', await processes.writeCommit(short)]), short);

    // The store's own snapshots: one file, however many commits.
    await fs.writeFile(path.join(ws.dir, 'a.txt'), 'a, edited\n');
    const second = await shadow.snapshot();
    await fs.writeFile(path.join(ws.dir, 'b.txt'), 'b\n');
    const third = await shadow.snapshot();
    await assertSameAsGit(shadow, await shadow.ground(second, third), 'the diff asked for while the commit was stored');
    await assertSameAsGit(shadow, await shadow.ground(first, third), 'another pair');
    assert.equal(scratchFiles().length, 2, "the store's file and this test's");
    processes.dispose();
    shadow.close();
    for (let waited = 0; scratchFiles().length && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(scratchFiles(), []);
  } finally {
    processes.dispose();
    cleanup();
    ws.cleanup();
  }
});
