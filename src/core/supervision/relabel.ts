/** `apollo relabel`: brings the rule labels of recorded runs up to date with the rules. */
import type { DatasetStore } from '../dataset/store';
import { relabelEvents, type RuleOptions } from './rules';

export interface RelabelResult {
  runId: string;
  /** Label events appended: new verdicts and verdicts taken back. */
  appended: number;
  flagged: number;
  cleared: number;
  skipped?: string;
}

/** Runs still going (or interrupted) are labelled by their engine; only those asked for by id are done anyway. */
const LIVE = new Set(['running', 'paused']);

export async function relabelRuns(store: DatasetStore, options: { runs?: string[]; rules?: RuleOptions } = {}): Promise<RelabelResult[]> {
  const explicit = options.runs !== undefined;
  const results: RelabelResult[] = [];
  for (const runId of options.runs ?? (await store.runIds()).sort()) {
    const manifest = await store.readManifest(runId);
    if (!explicit && LIVE.has(manifest.status)) {
      results.push({ runId, appended: 0, flagged: 0, cleared: 0, skipped: `the run is ${manifest.status}; its own rules label it as it goes (name it with --run to relabel it anyway)` });
      continue;
    }
    const { events } = await store.readEvents(runId);
    const labels = relabelEvents(events, new Date().toISOString(), options.rules);
    for (const label of labels) await store.appendEvent(runId, label);
    const cleared = labels.filter((label) => label.label === 'neutral').length;
    results.push({ runId, appended: labels.length, flagged: labels.length - cleared, cleared });
  }
  return results;
}
