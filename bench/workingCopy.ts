/**
 * Working copy benchmark: what one isolated working copy of a generated workspace costs, in time
 * and disk, for a plain folder and for the same tree as a git repository with one commit.
 * Split into the parts a sampling pays: materializing a copy from the shadow store (read-tree +
 * checkout-index), copying the first copy into another (reflinked where the file system can), and
 * the copy's own `.git` (clone --local, read-tree HEAD, refresh). `cp -r` of the workspace is the
 * reference. Then the overlay copies (core/session/overlayCopy.ts): the base written once per
 * sampling, and each copy an overlay mount over it, where this process may mount (root, or run it
 * in a namespace of its own: `unshare --user --map-root-user --mount node out/bench/workingCopy.js`).
 * Prints figures; asserts nothing. `--files N` (default 20000), `--repeat N` (default 5).
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ShadowStore } from '../src/core/grounding/shadowStore';
import { copyLayers, mountCopy, overlaySupport, unmountCopies } from '../src/core/session/overlayCopy';
import { cloneUserRepository, copyWorkingFiles, createCopyStore, indexCopy, materializeSnapshot, type OriginSnapshot, prepareOverlayBase, snapshotOrigin } from '../src/core/session/workingCopy';
import { generate } from './tree';

const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const files = Number(arg('--files') ?? 20_000);
const repeat = Number(arg('--repeat') ?? 5);

const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))),
  GIT_AUTHOR_NAME: 'b',
  GIT_AUTHOR_EMAIL: 'b@b',
  GIT_COMMITTER_NAME: 'b',
  GIT_COMMITTER_EMAIL: 'b@b',
};
const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Allocated blocks under a folder, as du counts them: a file with several links counted once, `shared` those linked from elsewhere too. */
function allocated(dir: string, seen = new Set<string>()): { bytes: number; shared: number } {
  let bytes = 0;
  let shared = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const stat = lstatSync(file);
    const key = `${stat.dev}:${stat.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const size = stat.blocks * 512;
    if (entry.isDirectory()) {
      const inner = allocated(file, seen);
      bytes += size + inner.bytes;
      shared += inner.shared;
    } else {
      bytes += size;
      if (stat.nlink > 1) shared += size;
    }
  }
  return { bytes, shared };
}

/** Times one step; what earlier steps left to write back to disk is flushed first, outside the timing. */
async function timed<T>(work: () => Promise<T> | T): Promise<[number, T]> {
  execFileSync('sync');
  const started = performance.now();
  const result = await work();
  return [performance.now() - started, result];
}

interface Figures {
  tree: string;
  snapshot: number;
  materialize: number[];
  copy: number[];
  clone: number[];
  cp: number[];
  reflinked: boolean;
  copyBytes: number;
  gitBytes: { bytes: number; shared: number };
  workspaceBytes: number;
  /** The workspace's shadow store after the snapshot: what a copy's store would hold without borrowing. */
  originStoreBytes: number;
  /** A copy's own store after its first snapshot, borrowing the workspace store's objects. */
  copyStoreBytes: number;
  copyFirstSnapshot: number;
  /** Overlay copies: the base (once per sampling), one mount, and a copy's upper layer after `git status` in it. */
  overlayBase: number[];
  overlayMount: number[];
  overlayBytes: number;
}

async function bench(name: string, withGit: boolean): Promise<Figures> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-copy-'));
  try {
    const workspace = path.join(root, 'workspace');
    generate(workspace, files);
    if (withGit) {
      git(workspace, ['init', '-q']);
      git(workspace, ['add', '-A']);
      // No gc --auto in the background: it would race the clean-up.
      git(workspace, ['-c', 'gc.auto=0', 'commit', '-q', '-m', 'base']);
    }
    const [snapshot, origin] = await timed<OriginSnapshot>(() => snapshotOrigin({ workspace, datasetDir: path.join(root, 'dataset'), taskId: '20260101-000000-00000000' }));
    const figures: Figures = {
      tree: name,
      snapshot,
      materialize: [],
      copy: [],
      clone: [],
      cp: [],
      reflinked: false,
      copyBytes: 0,
      gitBytes: { bytes: 0, shared: 0 },
      workspaceBytes: allocated(workspace).bytes,
      originStoreBytes: allocated(origin.storeDir).bytes,
      copyStoreBytes: 0,
      copyFirstSnapshot: 0,
      overlayBase: [],
      overlayMount: [],
      overlayBytes: 0,
    };
    const overlay = !(await overlaySupport(root));
    for (let i = 0; i < repeat; i++) {
      const first = path.join(root, 'runs', `${i}`, '0');
      const second = path.join(root, 'runs', `${i}`, '1');
      let [took] = await timed(() => materializeSnapshot(origin.storeDir, origin.snapshot, first));
      figures.materialize.push(took);
      const [copyTook, copied] = await timed(() => copyWorkingFiles(first, second));
      figures.copy.push(copyTook);
      figures.reflinked = copied.reflinked;
      if (withGit) {
        const cloned = path.join(root, 'runs', `${i}`, 'git');
        // The clone goes into the empty folder, the first copy's files are put in, then the index is made.
        const [cloning] = await timed(() => cloneUserRepository(workspace, cloned));
        await copyWorkingFiles(first, cloned);
        const [indexing] = await timed(() => indexCopy(cloned, workspace));
        figures.clone.push(cloning + indexing);
        if (i === 0) figures.gitBytes = allocated(path.join(cloned, '.git'));
      }
      const target = path.join(root, 'runs', `${i}`, 'cp');
      [took] = await timed(() => execFileSync('cp', ['-r', workspace, target]));
      figures.cp.push(took);
      if (i === 0) {
        figures.copyBytes = allocated(second).bytes;
        const storeDir = await createCopyStore(origin.datasetRoot, second, origin.storeDir);
        const shadow = new ShadowStore({ workspace: second, storeDir, runId: 'bench' });
        await shadow.init();
        [figures.copyFirstSnapshot] = await timed(() => shadow.snapshot());
        await shadow.settled();
        figures.copyStoreBytes = allocated(storeDir).bytes;
      }
      if (overlay) {
        const copies = path.join(root, 'runs', `${i}`, 'overlay');
        const [base] = await timed(() => prepareOverlayBase(origin, copies));
        figures.overlayBase.push(base);
        const copy = path.join(copies, '1');
        const [mounted] = await timed(() => mountCopy(copy));
        figures.overlayMount.push(mounted);
        if (i === 0) {
          if (withGit) git(copy, ['status', '--porcelain']);
          const layers = copyLayers(copy);
          figures.overlayBytes = allocated(layers.upper).bytes + allocated(layers.work).bytes;
        }
        await unmountCopies([copy]);
      }
      rmSync(path.join(root, 'runs', `${i}`), { recursive: true, force: true });
    }
    return figures;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function fileSystem(dir: string): string {
  try {
    const lines = execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trim().split('\n');
    return lines[lines.length - 1].split(/\s+/)[1];
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'cpu';
  console.log(
    `working copy benchmark: ${files} files, p50 of ${repeat}; ${os.cpus().length}x ${cpu}, ${fileSystem(os.tmpdir())} under ${os.tmpdir()}, ` +
      `node ${process.version}, ${git('.', ['--version']).trim()}; load average ${os
        .loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
  );
  const rows = [await bench(`generated ${files / 1000}k, plain folder`, false), await bench(`generated ${files / 1000}k, git repository (1 commit)`, true)];
  console.log(
    '| tree | snapshot (once per sampling) | materialize from store | copy from first copy | .git (clone, index) | one copy (first / others) | cp -r | copy on disk | .git on disk (own / hard-linked) | workspace on disk | reflinks |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const clone = row.clone.length ? median(row.clone) : 0;
    console.log(
      `| ${row.tree} | ${ms(row.snapshot)} | ${ms(median(row.materialize))} | ${ms(median(row.copy))} | ${row.clone.length ? ms(clone) : '—'} | ` +
        `${ms(median(row.materialize) + clone)} / ${ms(median(row.copy) + clone)} | ${ms(median(row.cp))} | ${mib(row.copyBytes)} | ` +
        `${row.clone.length ? `${mib(row.gitBytes.bytes - row.gitBytes.shared)} / ${mib(row.gitBytes.shared)}` : '—'} | ${mib(row.workspaceBytes)} | ${row.reflinked ? 'yes' : 'no'} |`,
    );
  }
  console.log('');
  console.log('| tree | overlay base (once per sampling) | overlay copy (mount) | cp -r | overlay copy / cp -r | overlay copy on disk (upper + work, after git status) |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) {
    if (!row.overlayMount.length) {
      console.log(`| ${row.tree} | — | not measured: ${await overlaySupport(os.tmpdir())} | ${ms(median(row.cp))} | — | — |`);
      continue;
    }
    const ratio = median(row.overlayMount) / median(row.cp);
    console.log(`| ${row.tree} | ${ms(median(row.overlayBase))} | ${ms(median(row.overlayMount))} | ${ms(median(row.cp))} | ${ratio.toFixed(3)}x | ${(row.overlayBytes / 1024).toFixed(0)} KiB |`);
  }
  for (const row of rows) {
    console.log(
      `${row.tree}: the workspace's shadow store holds ${mib(row.originStoreBytes)} after the snapshot; a copy's own store, borrowing its objects, ` +
        `${mib(row.copyStoreBytes)} after its first snapshot (${ms(row.copyFirstSnapshot)}; mostly its index).`,
    );
  }
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((value) => value.toFixed(2))
      .join(' ')}`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
