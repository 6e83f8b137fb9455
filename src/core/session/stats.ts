/** `apollo stats`: what a dataset holds, read from the events (the single source of truth). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetStore, folderBytes } from '../dataset/store';
import { SHADOW_FOLDER } from '../grounding/shadowStore';

export interface RunStats {
  id: string;
  status: string;
  steps: number;
  promptTokens: number;
  completionTokens: number;
  modelMs: number;
  toolMs: number;
  groundingMs: number;
  wallMs: number;
  hints: number;
  summaries: number;
  retries: number;
  labels: Record<string, number>;
}

export interface DatasetStats {
  runs: number;
  steps: number;
  promptTokens: number;
  completionTokens: number;
  hints: number;
  hintsPerAgentHour: number;
  labels: Record<string, number>;
  storeBytes: number;
  /** Of storeBytes, the shadow git stores that hold the snapshots. */
  snapshotBytes: number;
  problems: string[];
  perRun: RunStats[];
}

export async function datasetStats(store: DatasetStore): Promise<DatasetStats> {
  const perRun: RunStats[] = [];
  const problems: string[] = [];
  for (const manifest of await store.listRuns()) {
    const { events, problems: runProblems } = await store.readEvents(manifest.id);
    problems.push(...runProblems);
    const run: RunStats = {
      id: manifest.id,
      status: manifest.status,
      steps: 0,
      promptTokens: 0,
      completionTokens: 0,
      modelMs: 0,
      toolMs: 0,
      groundingMs: 0,
      wallMs: 0,
      hints: 0,
      summaries: 0,
      retries: 0,
      labels: {},
    };
    for (const event of events) {
      if (event.type === 'step') {
        run.steps = Math.max(run.steps, event.step);
        run.promptTokens += event.usage?.promptTokens ?? 0;
        run.completionTokens += event.usage?.completionTokens ?? 0;
        run.modelMs += event.modelMs;
        run.toolMs += event.toolMs;
        run.groundingMs += event.groundingMs ?? 0;
      } else if (event.type === 'summary') {
        run.summaries++;
        run.promptTokens += event.usage?.promptTokens ?? 0;
        run.completionTokens += event.usage?.completionTokens ?? 0;
      } else if (event.type === 'hint_queued') run.hints++;
      else if (event.type === 'model_retry') run.retries++;
      else if (event.type === 'label') run.labels[event.label] = (run.labels[event.label] ?? 0) + 1;
    }
    if (events.length > 1) run.wallMs = Date.parse(events[events.length - 1].time) - Date.parse(events[0].time);
    perRun.push(run);
  }
  const sum = (pick: (run: RunStats) => number) => perRun.reduce((total, run) => total + pick(run), 0);
  const labels: Record<string, number> = {};
  for (const run of perRun) for (const [label, count] of Object.entries(run.labels)) labels[label] = (labels[label] ?? 0) + count;
  const agentHours = sum((run) => run.wallMs) / 3_600_000;
  const hints = sum((run) => run.hints);
  return {
    runs: perRun.length,
    steps: sum((run) => run.steps),
    promptTokens: sum((run) => run.promptTokens),
    completionTokens: sum((run) => run.completionTokens),
    hints,
    hintsPerAgentHour: agentHours > 0 ? Math.round((hints / agentHours) * 100) / 100 : 0,
    labels,
    storeBytes: await folderBytes(store.root),
    snapshotBytes: await folderBytes(path.join(store.root, SHADOW_FOLDER)),
    problems,
    perRun,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatStats(stats: DatasetStats): string {
  const lines = [
    `runs: ${stats.runs}   steps: ${stats.steps}   hints: ${stats.hints} (${stats.hintsPerAgentHour} per agent-hour)`,
    `tokens: ${stats.promptTokens} in, ${stats.completionTokens} out`,
    `labels: ${Object.entries(stats.labels).map(([label, count]) => `${label} ${count}`).join(', ') || 'none'}`,
    `dataset size: ${(stats.storeBytes / 1024 / 1024).toFixed(2)} MiB, of which snapshots ${(stats.snapshotBytes / 1024 / 1024).toFixed(2)} MiB ("apollo gc" reclaims those of deleted runs)`,
    '',
    'run                       status     steps  tokens in/out      model     tools     grounding wall',
  ];
  for (const run of stats.perRun) {
    lines.push(
      [
        run.id.padEnd(25),
        run.status.padEnd(10),
        String(run.steps).padStart(5),
        `${run.promptTokens}/${run.completionTokens}`.padStart(15),
        seconds(run.modelMs).padStart(9),
        seconds(run.toolMs).padStart(9),
        seconds(run.groundingMs).padStart(9),
        seconds(run.wallMs).padStart(9),
      ].join(' '),
    );
  }
  for (const problem of stats.problems) lines.push(`warning: ${problem}`);
  return lines.join('\n') + '\n';
}
