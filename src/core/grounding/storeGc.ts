/**
 * Garbage collection of shadow stores: reclaims the space of snapshots no run in the dataset
 * refers to any more, keeping what working copies' stores borrow.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { folderBytes } from '../dataset/store';
import { borrowersByLender, pinBorrowedObjects } from './borrowedObjects';
import { driverOverrides, hardenedGit } from './gitEnvironment';
import { RUN_REF_PREFIX, SHADOW_FOLDER } from './storePaths';
import { withStoreLock } from './storeLock';

export interface CollectedGarbage {
  /** Runs whose snapshots were let go: their folders are gone from the dataset. */
  runs: string[];
  bytesBefore: number;
  bytesAfter: number;
}

/** Each sampling pins the snapshot its working copies were made from (see session/workingCopy). */
export const TASK_REF_PREFIX = 'refs/apollo/tasks/';
/** A task's snapshot younger than this is kept even with no run of the task yet: its copies may be being made. */
const TASK_GRACE_SECONDS = 60 * 60;

/**
 * Reclaims the space of snapshots no run in the dataset refers to any more, in every shadow store
 * of a dataset. `keepRuns` are the run folders that exist; `pruneRecent` false keeps unreferenced
 * objects younger than an hour, which a run still recording may be about to refer to.
 * `keepTasks` are the task ids of the runs that exist: a sampling's base snapshot is let go once
 * no run of its task remains (and it is over an hour old); without the set every one is kept.
 * A store that others borrow objects from (a working copy's store) keeps every object theirs reach.
 */
export async function collectSnapshotGarbage(datasetRoot: string, keepRuns: Set<string>, options: { pruneRecent: boolean; keepTasks?: Set<string> }): Promise<CollectedGarbage> {
  const root = path.join(datasetRoot, SHADOW_FOLDER);
  const bytesBefore = await folderBytes(root);
  const runs: string[] = [];
  const names = (await fs.readdir(root).catch(() => [] as string[])).filter((name) => name.endsWith('.git'));
  const borrowers = await borrowersByLender(names.map((name) => path.join(root, name)));
  const borrowing = new Set([...borrowers.values()].flat());
  // Borrowers first: the objects a lender keeps for them are those their remaining refs reach.
  const stores = names.map((name) => path.join(root, name)).sort((a, b) => Number(borrowing.has(b)) - Number(borrowing.has(a)));
  for (const storeDir of stores) {
    await withStoreLock(storeDir, async () => {
      const git = hardenedGit({ baseDir: storeDir }, {}, await driverOverrides(storeDir, {}, [`--git-dir=${storeDir}`]));
      const raw = (args: string[]) => git.raw([`--git-dir=${storeDir}`, ...args]);
      const refs = (await raw(['for-each-ref', '--format=%(refname)', RUN_REF_PREFIX])).split('\n').filter(Boolean);
      for (const ref of refs) {
        const runId = ref.slice(RUN_REF_PREFIX.length);
        if (keepRuns.has(runId)) continue;
        await raw(['update-ref', '-d', ref]);
        runs.push(runId);
      }
      if (options.keepTasks) {
        const tasks = (await raw(['for-each-ref', '--format=%(refname) %(committerdate:unix)', TASK_REF_PREFIX])).split('\n').filter(Boolean);
        for (const line of tasks) {
          const [ref, date] = line.split(' ');
          const young = Date.now() / 1000 - Number(date) < TASK_GRACE_SECONDS;
          if (!young && !options.keepTasks.has(ref.slice(TASK_REF_PREFIX.length))) await raw(['update-ref', '-d', ref]);
        }
      }
      // HEAD only serves `git status` (set again before each one); left on a snapshot it would
      // keep a deleted run's last snapshot, and what it borrows, from being collected.
      await fs.writeFile(path.join(storeDir, 'HEAD'), 'ref: refs/heads/unborn\n');
      if (borrowing.has(storeDir) && !(await raw(['for-each-ref', '--count=1', '--format=%(refname)'])).trim()) {
        // A working copy's store whose runs are all gone: its indexes name objects the lender is
        // about to let go of. A run that works there again builds them afresh.
        await forgetIndexes(storeDir);
      }
      await pinBorrowedObjects(storeDir, borrowers.get(storeDir) ?? []);
      await raw(['reflog', 'expire', '--expire=now', '--all']);
      // No commit-graph: git leaves the old one in place when no ref is left, naming collected commits.
      await raw(['-c', 'gc.writeCommitGraph=false', 'gc', '--quiet', `--prune=${options.pruneRecent ? 'now' : '1.hour.ago'}`]);
      await fs.rm(path.join(storeDir, 'objects', 'info', 'commit-graph'), { force: true });
      await fs.rm(path.join(storeDir, 'objects', 'info', 'commit-graphs'), { recursive: true, force: true });
    });
  }
  return { runs, bytesBefore, bytesAfter: await folderBytes(root) };
}

/** Removes a store's indexes (its own, the split index's shared parts, those of nested repositories). */
async function forgetIndexes(storeDir: string): Promise<void> {
  for (const name of await fs.readdir(storeDir)) {
    if (name === 'index' || name.startsWith('sharedindex.')) await fs.rm(path.join(storeDir, name), { force: true });
  }
  const scratch = path.join(storeDir, 'apollo-index');
  for (const name of await fs.readdir(scratch).catch(() => [] as string[])) await fs.rm(path.join(scratch, name), { recursive: true, force: true });
}
