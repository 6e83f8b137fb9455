/** `apollo gc`: gives back the disk space of snapshots that no run in the dataset refers to. */
import { promises as fs } from 'node:fs';
import { DatasetStore } from '../dataset/store';
import path from 'node:path';
import { folderBytes } from '../dataset/store';
import { collectSnapshotGarbage, type CollectedGarbage } from '../grounding/shadowStore';
import { removeWorkingCopies } from './workingCopy';
import { ConfigError } from './runSession';

export interface GarbageReport extends CollectedGarbage {
  /** A run was recording lately, so objects younger than an hour were kept for it. */
  keptRecent: boolean;
}

const RECENT_MS = 60 * 60 * 1000;

export async function collectGarbage(datasetDir: string): Promise<GarbageReport> {
  const stat = await fs.stat(datasetDir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new ConfigError(`There is no dataset folder at ${datasetDir}.`);
  const store = new DatasetStore(datasetDir);
  const keep = new Set(await store.runIds());
  const manifests = await store.listRuns();
  const recording = manifests.some((run) => (run.status === 'running' || run.status === 'paused') && Date.now() - Date.parse(run.updatedAt) < RECENT_MS);
  // A run whose manifest cannot be read may belong to any task: then every task's snapshot is kept.
  const keepTasks = manifests.length === keep.size ? new Set(manifests.flatMap((run) => (run.taskId ? [run.taskId] : []))) : undefined;
  const collected = await collectSnapshotGarbage(datasetDir, keep, { pruneRecent: !recording, keepTasks });
  return { ...collected, keptRecent: recording };
}

export function formatGarbageReport(report: GarbageReport): string {
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
  const reclaimed = Math.max(0, report.bytesBefore - report.bytesAfter);
  const lines = [
    `Reclaimed ${mib(reclaimed)}; the snapshots now take ${mib(report.bytesAfter)}.`,
    report.runs.length ? `Let go of the snapshots of ${report.runs.length} deleted run(s): ${report.runs.join(', ')}.` : 'Every run with snapshots is still in the dataset.',
  ];
  if (report.keptRecent) lines.push('A run recorded within the last hour, so unreferenced snapshots younger than an hour were kept; run again later to reclaim them.');
  return lines.join('\n') + '\n';
}

export interface WorkingCopyReport {
  /** Task ids whose working copies were removed. */
  removed: string[];
  /** Task ids with a run still going or paused: their copies stay. */
  kept: string[];
  bytes: number;
}

/**
 * `apollo gc --working-copies`: removes the working copies of samplings whose runs have all
 * ended. The runs, their snapshots and whatever was adopted stay; only the folders the agents
 * worked in go.
 */
export async function removeEndedWorkingCopies(datasetDir: string): Promise<WorkingCopyReport> {
  const store = new DatasetStore(datasetDir);
  const byTask = new Map<string, { live: boolean; copies: Set<string> }>();
  for (const run of await store.listRuns()) {
    if (!run.taskId || !run.originWorkspace) continue;
    const task = byTask.get(run.taskId) ?? { live: false, copies: new Set<string>() };
    task.live ||= run.status === 'running' || run.status === 'paused';
    // A copy lives in <runs folder>/<task id>/<n>.
    if (path.basename(path.dirname(run.workspace)) === run.taskId) task.copies.add(path.dirname(path.dirname(run.workspace)));
    byTask.set(run.taskId, task);
  }
  const report: WorkingCopyReport = { removed: [], kept: [], bytes: 0 };
  for (const [taskId, task] of byTask) {
    if (task.live) {
      report.kept.push(taskId);
      continue;
    }
    for (const runsDir of task.copies) {
      const bytes = await folderBytes(path.join(runsDir, taskId));
      if (await removeWorkingCopies(runsDir, taskId)) {
        report.bytes += bytes;
        if (!report.removed.includes(taskId)) report.removed.push(taskId);
      }
    }
  }
  return report;
}

export function formatWorkingCopyReport(report: WorkingCopyReport): string {
  const lines = [
    report.removed.length
      ? `Removed the working copies of ${report.removed.length} sampling(s) whose runs have ended (${(report.bytes / 1024 / 1024).toFixed(2)} MiB): ${report.removed.join(', ')}.`
      : 'No working copies of ended samplings to remove.',
  ];
  if (report.kept.length) lines.push(`Kept the copies of ${report.kept.length} sampling(s) with a run still going or paused: ${report.kept.join(', ')}.`);
  return lines.join('\n') + '\n';
}
