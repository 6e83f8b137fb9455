/**
 * Grounding benchmark: snapshot + diff per action on generated trees of 2k, 20k and 100k files
 * and on a real tree (this project's installed node_modules), one file changed per action.
 * Side by side in the same run, on the same changes:
 *   status  — `git status --porcelain` in the workspace: the stat pass any approach must pay;
 *   naive   — `git add -A` into a fresh index, write-tree, commit-tree;
 *   shadow  — Apollo's shadow store with a full stat pass each snapshot;
 *   watched — Apollo's shadow store fed by the file watcher.
 * Prints figures; asserts nothing. `--sizes 2000,20000` picks the generated trees, `--actions N`,
 * `--real-tree DIR` the real tree (copied first), `--no-real` leaves it out.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, realpathSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ShadowStore } from '../src/core/grounding/shadowStore';
import { WorkspaceWatcher } from '../src/core/grounding/watcher';
import { generate } from './tree';

const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const sizes = (arg('--sizes') ?? '2000,20000,100000').split(',').map(Number);
const actions = Number(arg('--actions') ?? 30);
const naiveLimit = Number(arg('--naive-actions') ?? 5);

const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))),
  GIT_AUTHOR_NAME: 'b',
  GIT_AUTHOR_EMAIL: 'b@b',
  GIT_COMMITTER_NAME: 'b',
  GIT_COMMITTER_EMAIL: 'b@b',
};
const git = (cwd: string, args: string[], extra: Record<string, string> = {}) =>
  execFileSync('git', args, { cwd, env: { ...env, ...extra }, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function duBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) total += duBytes(file);
    else total += statSync(file).size;
  }
  return total;
}

function listFiles(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const relative = path.join(dir, entry.name);
    if (entry.name === '.git') continue;
    if (entry.isDirectory()) out.push(...listFiles(root, relative));
    else if (entry.isFile()) out.push(relative);
  }
  return out;
}

interface Row {
  tree: string;
  files: number;
  figures: Record<string, number[]>;
  bytesPerStep: number;
}

async function benchTree(name: string, workspace: string, files: string[]): Promise<Row> {
  git(workspace, ['init', '-q']);
  git(workspace, ['add', '-A']);
  git(workspace, ['commit', '-q', '-m', 'base']);
  const data = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-data-'));
  const naiveDir = path.join(data, 'naive.git');
  git(data, ['init', '-q', '--bare', naiveDir]);

  // No default excludes here: every approach snapshots the same files.
  const shadow = new ShadowStore({ workspace, storeDir: path.join(data, 'shadow.git'), excludePatterns: [] });
  const watcher = new WorkspaceWatcher(workspace);
  const watched = new ShadowStore({ workspace, storeDir: path.join(data, 'watched.git'), excludePatterns: [], changes: watcher });
  await shadow.init();
  await watched.init();
  await watcher.start();
  let lastShadow = await shadow.snapshot();
  let lastWatched = await watched.snapshot();
  const objectsBefore = duBytes(path.join(data, 'shadow.git', 'objects'));

  const figures: Record<string, number[]> = { status: [], naive: [], shadow: [], watched: [], shadowAfter: [], watchedAfter: [] };
  for (let i = 0; i < actions; i++) {
    // One file changed per action: mostly edits, every fifth a new file.
    if (i % 5 === 4) writeFileSync(path.join(workspace, path.dirname(files[i * 7]), `added${i}.ts`), `export const added = ${i};\n`);
    else writeFileSync(path.join(workspace, files[(i * 7919) % files.length]), `// changed by action ${i}\n`);

    let started = performance.now();
    git(workspace, ['status', '--porcelain']);
    figures.status.push(performance.now() - started);

    if (i < naiveLimit) {
      const index = path.join(data, 'naive-index');
      rmSync(index, { force: true });
      started = performance.now();
      const extra = { GIT_INDEX_FILE: index, GIT_DIR: naiveDir, GIT_WORK_TREE: workspace };
      git(workspace, ['add', '-A'], extra);
      const tree = git(workspace, ['write-tree'], extra).trim();
      git(workspace, ['commit-tree', tree, '-m', 'snapshot'], extra);
      figures.naive.push(performance.now() - started);
    }

    started = performance.now();
    const next = await shadow.snapshot();
    await shadow.ground(lastShadow, next);
    figures.shadow.push(performance.now() - started);
    lastShadow = next;
    // The snapshot's objects and the run's ref are stored after a snapshot returns, and a full
    // pass's index catches up, while the agent waits for the model: timed on their own.
    started = performance.now();
    await shadow.settled();
    figures.shadowAfter.push(performance.now() - started);

    started = performance.now();
    const nextWatched = await watched.snapshot();
    const grounding = await watched.ground(lastWatched, nextWatched);
    figures.watched.push(performance.now() - started);
    lastWatched = nextWatched;
    started = performance.now();
    await watched.settled();
    figures.watchedAfter.push(performance.now() - started);
    if (grounding.files.length !== 1) throw new Error(`action ${i}: the watched store saw ${grounding.files.length} changed files, not 1`);
  }
  watcher.dispose();
  const bytesPerStep = (duBytes(path.join(data, 'shadow.git', 'objects')) - objectsBefore) / actions;
  rmSync(data, { recursive: true, force: true });
  return { tree: name, files: files.length, figures, bytesPerStep };
}

function print(row: Row): void {
  const cell = (values: number[]) => (values.length ? `${percentile(values, 50).toFixed(0)} / ${percentile(values, 99).toFixed(0)} ms` : '—');
  const status = percentile(row.figures.status, 50);
  const ratio = (values: number[]) => (percentile(values, 50) / status).toFixed(2);
  console.log(
    `| ${row.tree} | ${row.files} | ${cell(row.figures.status)} | ${cell(row.figures.naive)} | ${cell(row.figures.shadow)} (${ratio(row.figures.shadow)}x) | ${cell(row.figures.watched)} (${ratio(row.figures.watched)}x) | ${cell(row.figures.shadowAfter)} / ${cell(row.figures.watchedAfter)} | ${(row.bytesPerStep / 1024).toFixed(1)} KiB |`,
  );
}

async function main(): Promise<void> {
  console.log(
    `grounding benchmark (${os.cpus().length}x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${git('.', ['--version']).trim()}), ${actions} actions, naive on the first ${naiveLimit}`,
  );
  console.log('| tree | files | git status p50 / p99 | naive p50 / p99 | shadow, stat pass p50 / p99 | shadow, watcher p50 / p99 | afterwards, stat pass / watcher | stored per step |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const size of sizes) {
    const workspace = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-tree-'));
    try {
      print(await benchTree(`generated ${size / 1000}k`, workspace, generate(workspace, size)));
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  }
  const given = arg('--real-tree') ?? path.join(__dirname, '..', '..', 'node_modules');
  if (existsSync(given) && !process.argv.includes('--no-real')) {
    // The folder itself, not a link to it: a link would be copied as a link.
    const modules = realpathSync(given);
    const workspace = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-real-'));
    try {
      // Copied under another name: node_modules is excluded from snapshots by default.
      cpSync(modules, path.join(workspace, 'deps'), { recursive: true, verbatimSymlinks: true });
      print(await benchTree('node_modules (real)', workspace, listFiles(workspace)));
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
