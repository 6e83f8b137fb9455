/**
 * Shadow stores that borrow objects from another store of the same dataset. A sampled run's
 * working copy starts as a snapshot of the user's workspace, so the copy's own store lists the
 * workspace's store in `objects/info/alternates`: its first snapshot finds every object there and
 * writes none of its own.
 *
 * Git finds an object in the lender and does not write it again, whichever ref of the lender made
 * it (another run's snapshot, even an unreferenced object). Collecting the lender's garbage must
 * therefore keep every object a borrower's refs reach: before the lender is collected, those
 * objects are pinned under `refs/apollo/borrowed/<borrower>` by a commit of Apollo's own.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gitEnvironment } from './gitEnvironment';

export const BORROWED_REF_PREFIX = 'refs/apollo/borrowed/';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'Apollo',
  GIT_AUTHOR_EMAIL: 'apollo@localhost',
  GIT_COMMITTER_NAME: 'Apollo',
  GIT_COMMITTER_EMAIL: 'apollo@localhost',
};

/** Runs git against one store, feeding `input` on stdin; resolves with stdout. */
function git(storeDir: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [`--git-dir=${storeDir}`, ...args], { env: gitEnvironment(IDENTITY), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (data: Buffer) => out.push(data));
    child.stderr.on('data', (data: Buffer) => err.push(data));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`git ${args[0]} failed in ${storeDir}: ${Buffer.concat(err).toString('utf8').trim() || `exit code ${code}`}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

const alternatesFile = (storeDir: string) => path.join(storeDir, 'objects', 'info', 'alternates');

/**
 * Lets `borrower` read the objects of `lender`. The path is written relative to the borrower's
 * objects folder, so it survives the dataset folder being moved or merged.
 */
export async function lendObjects(borrower: string, lender: string): Promise<void> {
  const objects = path.join(borrower, 'objects');
  await fs.mkdir(path.join(objects, 'info'), { recursive: true });
  const relative = path.relative(objects, path.join(lender, 'objects')).split(path.sep).join('/');
  await fs.writeFile(alternatesFile(borrower), `${relative}\n`);
}

/** The object folders a store borrows from, as absolute paths. */
export async function lendersOf(storeDir: string): Promise<string[]> {
  const text = await fs.readFile(alternatesFile(storeDir), 'utf8').catch(() => '');
  const objects = path.join(storeDir, 'objects');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => path.resolve(objects, line));
}

/** For each store among `stores` that others borrow from, the stores that borrow from it. */
export async function borrowersByLender(stores: string[]): Promise<Map<string, string[]>> {
  const byObjects = new Map(stores.map((store) => [path.resolve(store, 'objects'), store]));
  const result = new Map<string, string[]>();
  for (const store of stores) {
    for (const objects of await lendersOf(store)) {
      const lender = byObjects.get(objects);
      if (!lender || lender === store) continue;
      result.set(lender, [...(result.get(lender) ?? []), store]);
    }
  }
  return result;
}

function refFor(borrower: string): string {
  return `${BORROWED_REF_PREFIX}${path
    .basename(borrower)
    .replace(/\.git$/, '')
    .replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/**
 * Pins in `lender` every object of its own that a ref of a borrower reaches, under one ref per
 * borrower (replacing the last pin), and drops the pins of borrowers that are gone. Blobs and
 * trees go into a tree whose entries are named by their ids; commits become the parents of the
 * pinning commit. Returns the number of objects pinned.
 */
export async function pinBorrowedObjects(lender: string, borrowers: string[]): Promise<number> {
  let pinned = 0;
  const current = new Set<string>();
  for (const borrower of borrowers) {
    const ref = refFor(borrower);
    current.add(ref);
    // Reachable from the borrower's refs, read through its alternates.
    const listed = (await git(borrower, ['rev-list', '--objects', '--all'])).split('\n');
    const ids = [...new Set(listed.map((line) => line.slice(0, 40)).filter((id) => /^[0-9a-f]{40}$/.test(id)))];
    if (!ids.length) {
      await git(lender, ['update-ref', '-d', ref]).catch(() => undefined);
      continue;
    }
    // Which of them the lender holds itself (the lender borrows from no one), and their types.
    const checked = (await git(lender, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], ids.join('\n') + '\n')).split('\n');
    const entries: { mode: string; id: string }[] = [];
    const commits: string[] = [];
    for (const line of checked) {
      const [id, type] = line.split(' ');
      if (type === 'blob') entries.push({ mode: '100644', id });
      else if (type === 'tree') entries.push({ mode: '40000', id });
      else if (type === 'commit') commits.push(id);
    }
    if (!entries.length && !commits.length) {
      await git(lender, ['update-ref', '-d', ref]).catch(() => undefined);
      continue;
    }
    // Entry names are all 40 hex digits, so sorting by name is git's tree order.
    entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const body = Buffer.concat(entries.map((entry) => Buffer.concat([Buffer.from(`${entry.mode} ${entry.id}\0`), Buffer.from(entry.id, 'hex')])));
    const treeFile = path.join(lender, `apollo-borrowed-${process.pid}-${Date.now()}`);
    let tree: string;
    try {
      await fs.writeFile(treeFile, body);
      tree = (await git(lender, ['hash-object', '-w', '-t', 'tree', '--', treeFile])).trim();
    } finally {
      await fs.rm(treeFile, { force: true });
    }
    const parents = commits.flatMap((commit) => ['-p', commit]);
    const commit = (await git(lender, ['commit-tree', tree, ...parents, '-m', `objects borrowed by ${path.basename(borrower)}`])).trim();
    await git(lender, ['update-ref', ref, commit]);
    pinned += entries.length + commits.length;
  }
  const stale = (await git(lender, ['for-each-ref', '--format=%(refname)', BORROWED_REF_PREFIX])).split('\n').filter((ref) => ref && !current.has(ref));
  for (const ref of stale) await git(lender, ['update-ref', '-d', ref]);
  return pinned;
}
