/**
 * `apollo merge SRC… --into DIR`: brings the runs of other dataset folders (other machines,
 * other sampling jobs) into one. Runs are keyed by their globally unique ids, so a run is copied
 * once; merging the same folders again changes nothing. A run whose events differ between the
 * folders is never overwritten: the longer record wins only when the shorter one is its start
 * (a run that went on after an earlier merge); anything else is reported as a conflict.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatasetError, DatasetStore } from './store';
import { isValidRunId } from './ids';

export interface MergeReport {
  copied: string[];
  /** Runs whose record in the target was the start of the source's: brought up to date. */
  extended: string[];
  unchanged: string[];
  conflicts: { runId: string; source: string; why: string }[];
  /** Snapshot store files copied (objects are content-addressed: never overwritten). */
  snapshotFiles: number;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Copies a folder's files that the target lacks; existing files are left as they are. Returns how many were copied. */
async function copyMissing(from: string, to: string, skip: (name: string) => boolean = () => false): Promise<number> {
  let copied = 0;
  let entries;
  try {
    entries = await fs.readdir(from, { withFileTypes: true });
  } catch {
    return 0;
  }
  await fs.mkdir(to, { recursive: true });
  for (const entry of entries) {
    if (skip(entry.name)) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) copied += await copyMissing(source, target, skip);
    else if (entry.isFile() && !(await exists(target))) {
      await fs.copyFile(source, target);
      copied++;
    }
  }
  return copied;
}

/** Copies a run folder whole, through a temporary name, so a half-copied run never appears. */
async function copyRun(from: string, to: string): Promise<void> {
  const partial = `${to}.partial-${randomBytes(4).toString('hex')}`;
  // A hint waiting in an inbox belongs to the process running the run, not to a merged copy.
  await copyMissing(from, partial, (name) => name === 'inbox');
  await fs.mkdir(path.join(partial, 'inbox'), { recursive: true });
  await fs.rename(partial, to);
}

export async function mergeDatasets(sources: string[], into: string): Promise<MergeReport> {
  const target = new DatasetStore(into);
  await target.init();
  const report: MergeReport = { copied: [], extended: [], unchanged: [], conflicts: [], snapshotFiles: 0 };
  for (const source of sources) {
    const from = path.resolve(source);
    if (from === target.root) throw new DatasetError(`${source} is the folder merged into; name other dataset folders.`);
    if (!(await exists(path.join(from, 'runs')))) throw new DatasetError(`${source} is not a dataset folder: it has no runs/ folder.`);
    const store = new DatasetStore(from);
    for (const runId of (await store.runIds()).sort()) {
      if (!isValidRunId(runId)) continue;
      const sourceDir = store.runDir(runId);
      const targetDir = target.runDir(runId);
      if (!(await exists(targetDir))) {
        await copyRun(sourceDir, targetDir);
        report.copied.push(runId);
        continue;
      }
      const [mine, theirs] = await Promise.all([fs.readFile(path.join(targetDir, 'events.jsonl'), 'utf8'), fs.readFile(path.join(sourceDir, 'events.jsonl'), 'utf8')]);
      if (mine === theirs) {
        report.unchanged.push(runId);
      } else if (theirs.startsWith(mine)) {
        // The run went on after an earlier merge: append what is new, then bring the manifest and outputs along.
        await fs.appendFile(path.join(targetDir, 'events.jsonl'), theirs.slice(mine.length));
        await fs.copyFile(path.join(sourceDir, 'run.json'), path.join(targetDir, 'run.json'));
        await copyMissing(sourceDir, targetDir, (name) => name === 'inbox' || name === 'events.jsonl' || name === 'run.json');
        report.extended.push(runId);
      } else if (mine.startsWith(theirs)) {
        report.unchanged.push(runId);
      } else {
        report.conflicts.push({ runId, source, why: 'the two records of this run differ; both are kept as they are' });
      }
    }
    // Snapshots only: an index, a lock or a workspace claim belongs to the processes of the other folder.
    const processState = (name: string) => name === 'index' || name.endsWith('.lock') || name.startsWith('apollo-claim');
    report.snapshotFiles += await copyMissing(path.join(from, 'shadow'), path.join(target.root, 'shadow'), processState);
  }
  return report;
}

export function formatMergeReport(report: MergeReport, into: string): string {
  const lines = [
    `merged into ${into}: ${report.copied.length} run(s) copied, ${report.extended.length} brought up to date, ${report.unchanged.length} already there; ${report.snapshotFiles} snapshot file(s) copied`,
  ];
  for (const conflict of report.conflicts) lines.push(`conflict: run ${conflict.runId} from ${conflict.source}: ${conflict.why}`);
  return lines.join('\n') + '\n';
}
