import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, lstatSync, mkdirSync, promises as fs, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, RunAdoptedEvent } from '../../src/core/dataset/events';
import { validateEvent } from '../../src/core/dataset/events';
import { newRunId } from '../../src/core/dataset/ids';
import { DatasetStore } from '../../src/core/dataset/store';
import { ShadowStore, shadowStoreDir } from '../../src/core/grounding/shadowStore';
import { blobId, SnapshotReader, type TreeListing } from '../../src/core/grounding/snapshotTree';
import { AdoptConflictError, AdoptError, adoptRun, previewAdopt } from '../../src/core/session/adopt';
import { main } from '../../src/cli/main';
import { fingerprint } from '../fixtures/shadow';
import { runStarted, step, tick, writeRun } from '../fixtures/trajectories';
import { GIT_IDENTITY, makeWorkspace, tempDir, type TempWorkspace } from '../fixtures/workspace';

interface Sampled {
  origin: string;
  copy: string;
  datasetDir: string;
  runId: string;
  base: string;
  final: string;
  store: DatasetStore;
  cleanup(): void;
}

interface SampleOptions {
  status?: 'finished' | 'running';
  origin?: boolean;
  /** Extra setup of the origin before its snapshot is taken (the copy is made after). */
  prepareOrigin?(dir: string): void;
  /** The "agent's" edits in the working copy. */
  edit?(dir: string): void;
}

const ORIGIN_FILES = {
  'README.md': '# demo\n',
  'src/a.txt': 'a1\n',
  'src/keep.txt': 'keep\n',
  'del.txt': 'delete me\n',
  'run.sh': 'echo hi\n',
  'shared.txt': 'shared 1\n',
  'out/x.txt': 'x1\n',
};

/** Create, modify, delete, exec bit, symbolic link, a nested folder. */
function agentEdits(dir: string): void {
  writeFileSync(path.join(dir, 'src/a.txt'), 'a2 by the agent\n');
  rmSync(path.join(dir, 'del.txt'));
  chmodSync(path.join(dir, 'run.sh'), 0o755);
  symlinkSync('src/a.txt', path.join(dir, 'link'));
  mkdirSync(path.join(dir, 'new/deep'), { recursive: true });
  writeFileSync(path.join(dir, 'new/deep/c.txt'), 'c\n');
  writeFileSync(path.join(dir, 'shared.txt'), 'shared 2 by the agent\n');
  writeFileSync(path.join(dir, 'out/x.txt'), 'x2 by the agent\n');
}

/**
 * A sampled run built without the sampling code: the origin (a git repository with an
 * uncommitted change) is snapshotted in its own store, copied, the copy edited and snapshotted
 * under the run's ref in the copy's store, and the run recorded with its origin and task id.
 */
async function sampledRun(options: SampleOptions = {}): Promise<Sampled> {
  const ws = makeWorkspace(ORIGIN_FILES);
  const copyFolder = tempDir('apollo-copy-');
  const data = tempDir('apollo-data-');
  const origin = realpathSync(ws.dir);
  const copy = realpathSync(copyFolder.dir);
  const datasetDir = realpathSync(data.dir);
  writeFileSync(path.join(origin, 'src/keep.txt'), 'keep, uncommitted\n');
  options.prepareOrigin?.(origin);
  const originShadow = new ShadowStore({ workspace: origin, storeDir: shadowStoreDir(datasetDir, origin) });
  await originShadow.init();
  const base = await originShadow.snapshot();
  await originShadow.settled();
  // A name that is not UTF-8 comes through as text with U+FFFD and cannot be copied by it: a test's edit() writes such files itself.
  cpSync(origin, copy, { recursive: true, verbatimSymlinks: true, filter: (source) => path.basename(source) !== '.git' && !source.includes('\uFFFD') });

  const runId = newRunId();
  const runShadow = new ShadowStore({ workspace: copy, storeDir: shadowStoreDir(datasetDir, copy), runId });
  await runShadow.init();
  const before = await runShadow.snapshot();
  (options.edit ?? agentEdits)(copy);
  const final = await runShadow.snapshot();
  await runShadow.settled();

  const store = new DatasetStore(datasetDir);
  const started = { ...runStarted(runId, 'Improve the files'), workspace: copy, taskId: 'task-1', ...(options.origin === false ? {} : { origin: { workspace: origin, snapshot: base } }) };
  const first = step(1, { tool: 'run_command', args: { command: 'edit things' } });
  const events: DatasetEvent[] = [started, { ...first, grounding: { ...first.grounding, before, after: final } }];
  if (options.status !== 'running') events.push({ type: 'run_ended', time: tick(), status: 'finished', steps: 1 });
  await writeRun(store, runId, events, options.status ?? 'finished');
  return {
    origin,
    copy,
    datasetDir,
    runId,
    base,
    final,
    store,
    cleanup: () => {
      ws.cleanup();
      copyFolder.cleanup();
      data.cleanup();
    },
  };
}

/** The origin workspace as a listing (mode and id per path), taken by snapshotting it. */
async function listingOf(run: Sampled): Promise<TreeListing> {
  const shadow = new ShadowStore({ workspace: run.origin, storeDir: shadowStoreDir(run.datasetDir, run.origin) });
  await shadow.init();
  const snapshot = await shadow.snapshot();
  await shadow.settled();
  return new SnapshotReader(shadow.storeDir).list(snapshot);
}

const runListing = (run: Sampled) => new SnapshotReader(shadowStoreDir(run.datasetDir, run.copy)).list(run.final);
const sorted = (listing: TreeListing) => [...listing].sort(([a], [b]) => (a < b ? -1 : 1));
const read = (dir: string, file: string) => readFileSync(path.join(dir, file), 'utf8');

test("adopt applies exactly the run's net change: the origin afterwards is base plus the run's changes, the user's other edits survive", async () => {
  const run = await sampledRun();
  try {
    const gitBefore = fingerprint(path.join(run.origin, '.git'));
    // The user edits a file the run did not touch, after the copy was made.
    writeFileSync(path.join(run.origin, 'README.md'), '# demo, edited by the user\n');

    const preview = await previewAdopt(run.datasetDir, run.runId);
    assert.equal(preview.taskId, 'task-1');
    assert.equal(preview.workspace, run.origin);
    assert.equal(preview.base, run.base);
    assert.equal(preview.final, run.final);
    assert.equal(preview.status, 'finished');
    assert.deepEqual(
      preview.files.map((file) => [file.path, file.status]),
      [
        ['del.txt', 'deleted'],
        ['link', 'added'],
        ['new/deep/c.txt', 'added'],
        ['out/x.txt', 'modified'],
        ['run.sh', 'modified'],
        ['shared.txt', 'modified'],
        ['src/a.txt', 'modified'],
      ],
    );
    const a = preview.files.find((file) => file.path === 'src/a.txt')!;
    assert.deepEqual([a.additions, a.deletions], [1, 1], 'line counts read across the two stores');
    assert.deepEqual(preview.conflicts, []);
    assert.deepEqual(preview.blocked, []);
    assert.equal(read(run.origin, 'src/a.txt'), 'a1\n', 'a preview writes nothing');

    const keepTime = lstatSync(path.join(run.origin, 'src/keep.txt')).mtimeMs;
    const result = await adoptRun(run.datasetDir, run.runId);
    assert.equal(result.written.length, 7);
    assert.deepEqual(result.overwritten, []);

    const expected: TreeListing = new Map(await runListing(run));
    expected.set('README.md', { mode: '100644', id: blobId(Buffer.from('# demo, edited by the user\n')) });
    assert.deepEqual(sorted(await listingOf(run)), sorted(expected));
    assert.equal(read(run.origin, 'src/keep.txt'), 'keep, uncommitted\n');
    assert.equal(lstatSync(path.join(run.origin, 'src/keep.txt')).mtimeMs, keepTime, 'untouched files are not written');
    assert.equal(read(run.origin, 'README.md'), '# demo, edited by the user\n');
    assert.equal(readlinkSync(path.join(run.origin, 'link')), 'src/a.txt');
    assert.equal(lstatSync(path.join(run.origin, 'run.sh')).mode & 0o111, 0o111);
    assert.equal(read(run.origin, 'new/deep/c.txt'), 'c\n');
    await assert.rejects(fs.access(path.join(run.origin, 'del.txt')));

    const { events } = await run.store.readEvents(run.runId);
    const adopted = events[events.length - 1] as RunAdoptedEvent;
    assert.equal(adopted.type, 'run_adopted');
    assert.doesNotThrow(() => validateEvent(adopted));
    assert.equal(adopted.workspace, run.origin);
    assert.equal(adopted.snapshot, run.final);
    assert.deepEqual(adopted.overwritten, []);
    assert.equal(adopted.files.length, 7);
    const manifest = await run.store.readManifest(run.runId);
    assert.equal(manifest.adoptedAt, adopted.time);

    // Adopting twice changes nothing: no file, no event.
    const before = fingerprint(run.origin);
    const again = await adoptRun(run.datasetDir, run.runId);
    assert.equal(again.event, undefined);
    assert.deepEqual(again.written, []);
    assert.equal(again.preview.upToDate.length, 7);
    assert.equal(fingerprint(run.origin), before);
    assert.equal((await run.store.readEvents(run.runId)).events.length, events.length);

    assert.equal(fingerprint(path.join(run.origin, '.git')), gitBefore, "the user's .git is untouched");
  } finally {
    run.cleanup();
  }
});

test('a conflicting user edit refuses the adopt with nothing written; overwrite writes it and records it', async () => {
  const run = await sampledRun();
  try {
    writeFileSync(path.join(run.origin, 'shared.txt'), "shared, the user's version\n");
    // A file already as the run left it is not a conflict.
    writeFileSync(path.join(run.origin, 'src/a.txt'), 'a2 by the agent\n');
    const preview = await previewAdopt(run.datasetDir, run.runId);
    assert.deepEqual(preview.conflicts, ['shared.txt']);
    assert.deepEqual(preview.upToDate, ['src/a.txt']);

    const before = fingerprint(run.origin);
    await assert.rejects(adoptRun(run.datasetDir, run.runId), (error: Error) => error instanceof AdoptConflictError && /shared\.txt/.test(error.message) && /--force/.test(error.message));
    assert.equal(fingerprint(run.origin), before, 'nothing was written');
    assert.equal((await run.store.readManifest(run.runId)).adoptedAt, undefined);

    const result = await adoptRun(run.datasetDir, run.runId, { overwrite: true });
    assert.deepEqual(result.overwritten, ['shared.txt']);
    assert.equal(result.written.length, 6, 'src/a.txt was already so');
    assert.equal(read(run.origin, 'shared.txt'), 'shared 2 by the agent\n');
    assert.deepEqual(result.event?.overwritten, ['shared.txt']);
    const { events } = await run.store.readEvents(run.runId);
    assert.deepEqual(events[events.length - 1], result.event);
    assert.deepEqual(sorted(await listingOf(run)), sorted(await runListing(run)));
  } finally {
    run.cleanup();
  }
});

test('refusals: a live run, a run without origin, missing snapshots; nothing is written', async () => {
  const live = await sampledRun({ status: 'running' });
  const plain = await sampledRun({ origin: false });
  try {
    const before = fingerprint(live.origin);
    await assert.rejects(adoptRun(live.datasetDir, live.runId), (error: Error) => error instanceof AdoptError && /is running; only a run that has ended/.test(error.message));
    assert.equal(fingerprint(live.origin), before);
    assert.equal((await previewAdopt(live.datasetDir, live.runId)).files.length, 7, 'a live run can still be previewed');

    await assert.rejects(adoptRun(plain.datasetDir, plain.runId), (error: Error) => error instanceof AdoptError && /not a sampled run/.test(error.message));

    rmSync(path.join(shadowStoreDir(live.datasetDir, live.copy)), { recursive: true, force: true });
    await assert.rejects(previewAdopt(live.datasetDir, live.runId), (error: Error) => error instanceof AdoptError && /snapshots are missing/.test(error.message));
  } finally {
    live.cleanup();
    plain.cleanup();
  }
});

test('nothing is written through a symbolic link: a folder the user replaced by a link out of the workspace blocks the adopt', async () => {
  const outside: TempWorkspace = tempDir('apollo-outside-');
  const run = await sampledRun();
  try {
    writeFileSync(path.join(outside.dir, 'x.txt'), 'outside\n');
    rmSync(path.join(run.origin, 'out'), { recursive: true });
    symlinkSync(outside.dir, path.join(run.origin, 'out'));
    const preview = await previewAdopt(run.datasetDir, run.runId);
    assert.deepEqual(
      preview.blocked.map((entry) => entry.path),
      ['out/x.txt'],
    );
    assert.match(preview.blocked[0].reason, /out is a symbolic link/);
    const before = fingerprint(run.origin);
    await assert.rejects(adoptRun(run.datasetDir, run.runId, { overwrite: true }), /out\/x\.txt \(out is a symbolic link/);
    assert.equal(read(outside.dir, 'x.txt'), 'outside\n');
    assert.equal(fingerprint(run.origin), before, 'nothing was written');
  } finally {
    run.cleanup();
    outside.cleanup();
  }
});

test('a link out of the workspace that the run replaced by a folder is removed, not written through', async () => {
  const outside: TempWorkspace = tempDir('apollo-outside-');
  const run = await sampledRun({
    prepareOrigin: (dir) => symlinkSync(outside.dir, path.join(dir, 'ext')),
    edit: (dir) => {
      rmSync(path.join(dir, 'ext'));
      mkdirSync(path.join(dir, 'ext'));
      writeFileSync(path.join(dir, 'ext/x.txt'), 'inside\n');
    },
  });
  try {
    const result = await adoptRun(run.datasetDir, run.runId);
    assert.deepEqual(
      result.written.map((file) => [file.path, file.status]),
      [
        ['ext', 'deleted'],
        ['ext/x.txt', 'added'],
      ],
    );
    assert.equal(lstatSync(path.join(run.origin, 'ext')).isDirectory(), true);
    assert.equal(read(run.origin, 'ext/x.txt'), 'inside\n');
    assert.deepEqual(await fs.readdir(outside.dir), [], 'nothing landed outside');
    const again = await adoptRun(run.datasetDir, run.runId);
    assert.equal(again.event, undefined);
    assert.deepEqual(again.preview.upToDate, ['ext', 'ext/x.txt']);
  } finally {
    run.cleanup();
    outside.cleanup();
  }
});

test('apollo adopt: --dry-run lists the files and conflicts and writes nothing; refusal exits 1; --force adopts', async () => {
  const run = await sampledRun();
  try {
    writeFileSync(path.join(run.origin, 'shared.txt'), 'mine\n');
    const out: string[] = [];
    const err: string[] = [];
    const io = { cwd: run.origin, env: {}, stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text) };
    const before = fingerprint(run.origin);
    assert.equal(await main(['adopt', '--dataset', run.datasetDir, '--run', run.runId, '--dry-run', '--force'], io), 0);
    assert.match(out.join(''), /deleted +del\.txt/);
    assert.match(out.join(''), /modified +shared\.txt +\[changed in the workspace too\]/);
    assert.match(out.join(''), /conflicts \(changed in the workspace too\): shared\.txt/);
    assert.match(out.join(''), /dry run: nothing written/);
    assert.equal(fingerprint(run.origin), before);

    assert.equal(await main(['adopt', '--dataset', run.datasetDir, '--run', run.runId, '--dry-run'], io), 1);
    assert.equal(await main(['adopt', '--dataset', run.datasetDir, '--run', run.runId], io), 1);
    assert.match(err.join(''), /changed too: shared\.txt\. Nothing was written/);
    assert.equal(fingerprint(run.origin), before);

    assert.equal(await main(['adopt', '--dataset', run.datasetDir, '--run', run.runId, '--force'], io), 0);
    assert.match(out.join(''), /adopted run .*: 7 file\(s\) written or removed/);
    assert.equal(read(run.origin, 'shared.txt'), 'shared 2 by the agent\n');
    assert.equal(await main(['adopt', '--dataset', run.datasetDir, '--run', run.runId], io), 0);
    assert.match(out.join(''), /was adopted before .* nothing written/);
    assert.equal(await main(['adopt', '--dataset', run.datasetDir], io), 2);
  } finally {
    run.cleanup();
  }
});

test('a path into a .git folder is never written, whatever the user confirms', async () => {
  const run = await sampledRun();
  try {
    // A snapshot no shadow store would take: built by hand, with .git/hooks/pre-commit in it.
    const storeDir = shadowStoreDir(run.datasetDir, run.copy);
    const plumbing = (args: string[], input?: string) =>
      execFileSync('git', [`--git-dir=${storeDir}`, ...args], {
        input,
        encoding: 'utf8',
        env: { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))), ...GIT_IDENTITY },
      }).trim();
    const blob = plumbing(['hash-object', '-w', '--stdin'], '#!/bin/sh\necho pwned\n');
    const hooks = plumbing(['mktree'], `100755 blob ${blob}\tpre-commit\n`);
    const dotGit = plumbing(['mktree'], `040000 tree ${hooks}\thooks\n`);
    const root = plumbing(['mktree'], `${plumbing(['ls-tree', run.final])}\n040000 tree ${dotGit}\t.git\n`);
    const commit = plumbing(['commit-tree', root, '-p', run.final, '-m', 'crafted']);
    plumbing(['update-ref', `refs/apollo/runs/${run.runId}`, commit]);

    const preview = await previewAdopt(run.datasetDir, run.runId);
    assert.deepEqual(preview.blocked, [{ path: '.git/hooks/pre-commit', reason: 'inside a .git folder, which adopting never touches' }]);
    const gitBefore = fingerprint(path.join(run.origin, '.git'));
    const before = fingerprint(run.origin);
    await assert.rejects(adoptRun(run.datasetDir, run.runId, { overwrite: true }), /\.git\/hooks\/pre-commit \(inside a \.git folder/);
    assert.equal(fingerprint(run.origin), before);
    assert.equal(fingerprint(path.join(run.origin, '.git')), gitBefore);
  } finally {
    run.cleanup();
  }
});

test('names that are not UTF-8: a run that modified one file and created another under such names is adopted under their own bytes', async () => {
  const modified = Buffer.from([0x66, 0xff, 0x2e, 0x74]);
  const folder = Buffer.from('caf\xe9', 'latin1');
  const created = Buffer.from([0x6e, 0x65, 0x77, 0x80, 0x2e, 0x74, 0x78, 0x74]);
  const at = (dir: string, ...parts: Buffer[]) => Buffer.concat([Buffer.from(`${dir}/`), ...parts.flatMap((part, index) => (index ? [Buffer.from('/'), part] : [part]))]);
  const run = await sampledRun({
    prepareOrigin: (dir) => writeFileSync(at(dir, modified), 'one\n'),
    edit: (dir) => {
      // The copy was made without it (see sampledRun): as it was, then as the run leaves it.
      writeFileSync(at(dir, modified), 'one\ntwo, by the agent\n');
      mkdirSync(at(dir, folder));
      writeFileSync(at(dir, folder, created), 'new\n');
      writeFileSync(path.join(dir, 'src/a.txt'), 'a2 by the agent\n');
    },
  });
  try {
    const pathOf = (bytes: Buffer) => ({ pathBase64: bytes.toString('base64') });
    const preview = await previewAdopt(run.datasetDir, run.runId);
    assert.deepEqual(
      preview.files.map((file) => [file.path, file.pathBase64, file.status, file.additions, file.deletions]),
      [
        ['"caf\\351/new\\200.txt"', Buffer.concat([folder, Buffer.from('/'), created]).toString('base64'), 'added', 1, 0],
        ['"f\\377.t"', pathOf(modified).pathBase64, 'modified', 1, 0],
        ['src/a.txt', undefined, 'modified', 1, 1],
      ],
    );
    assert.deepEqual(preview.conflicts, []);
    assert.deepEqual(preview.blocked, []);

    const result = await adoptRun(run.datasetDir, run.runId);
    assert.equal(result.written.length, 3);
    assert.equal(readFileSync(at(run.origin, modified), 'utf8'), 'one\ntwo, by the agent\n');
    assert.equal(readFileSync(at(run.origin, folder, created), 'utf8'), 'new\n');
    assert.equal(read(run.origin, 'src/a.txt'), 'a2 by the agent\n');
    const names = (await fs.readdir(run.origin, { encoding: 'buffer' })).map((name) => name.toString('latin1'));
    assert.ok(!names.some((name) => name.includes('\xef\xbf\xbd')), 'no name written with U+FFFD in place of its bytes');
    assert.ok(!names.some((name) => name.includes('.apollo-adopt-')), 'no temporary file left');
    assert.deepEqual(sorted(await listingOf(run)), sorted(await runListing(run)), 'the origin is now what the run left, byte for byte');

    const { events } = await run.store.readEvents(run.runId);
    const adopted = events[events.length - 1] as RunAdoptedEvent;
    assert.doesNotThrow(() => validateEvent(adopted));
    assert.deepEqual(adopted.files.map((file) => file.pathBase64).filter(Boolean), [Buffer.concat([folder, Buffer.from('/'), created]).toString('base64'), modified.toString('base64')]);

    // The user edits the file again: a conflict, named as the events name it, and nothing written.
    writeFileSync(at(run.origin, modified), "the user's version\n");
    const again = await previewAdopt(run.datasetDir, run.runId);
    assert.deepEqual(again.conflicts, ['"f\\377.t"']);
    await assert.rejects(adoptRun(run.datasetDir, run.runId), AdoptConflictError);
    assert.equal(readFileSync(at(run.origin, modified), 'utf8'), "the user's version\n");
    // Removed by the user: the run's version comes back under its own name on overwrite.
    rmSync(at(run.origin, folder), { recursive: true });
    const forced = await adoptRun(run.datasetDir, run.runId, { overwrite: true });
    assert.deepEqual(forced.overwritten, ['"f\\377.t"']);
    assert.equal(readFileSync(at(run.origin, modified), 'utf8'), 'one\ntwo, by the agent\n');
    assert.equal(readFileSync(at(run.origin, folder, created), 'utf8'), 'new\n');
  } finally {
    run.cleanup();
  }
});
