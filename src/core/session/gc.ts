/** `apollo gc`: gives back the disk space of snapshots that no run in the dataset refers to. */
import { promises as fs } from 'node:fs';
import { DatasetStore } from '../dataset/store';
import { collectSnapshotGarbage, CollectedGarbage } from '../grounding/shadowStore';
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
  const recording = manifests.some(
    (run) => (run.status === 'running' || run.status === 'paused') && Date.now() - Date.parse(run.updatedAt) < RECENT_MS,
  );
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
