/**
 * `apollo export`: reads the dataset one run at a time (memory stays flat however many runs
 * there are), turns each run into trajectories with their labels and masks, and hands them to
 * the format's writer. A trajectory that fails validation is left out and reported; the output
 * appears only when the export completes.
 */
import type { DatasetStore } from '../dataset/store';
import { primaryReward } from '../dataset/events';
import { findSecretShapes, Redactor } from '../dataset/redaction';
import { DEFAULT_MASK_POLICY } from '../supervision/labels';
import { buildRunTree, qualityOf, trajectoriesOf } from './trajectory';
import { ExportError } from './output';
import { OPENERS } from './formats';
import { EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportSummary, type ResolvedExportOptions, type WriterContext } from './types';

export { EXPORT_FORMATS } from './types';
export type { ExportFormat, ExportOptions, ExportSummary, FormatWriter, ResolvedExportOptions, WriterContext } from './types';
export { FOLDER_FORMATS, FORMAT_DESCRIPTIONS } from './formats';

export class ExportCancelled extends ExportError {
  constructor() {
    super('The export was cancelled; nothing was written.');
  }
}

export function resolveExportOptions(options: ExportOptions): ResolvedExportOptions {
  if (!EXPORT_FORMATS.includes(options.format)) throw new ExportError(`Unknown format "${options.format}": use ${EXPORT_FORMATS.join(', ')}.`);
  const minQuality = options.minQuality ?? 0;
  if (!(minQuality >= 0 && minQuality <= 1)) throw new ExportError('The minimum quality is a share of steps between 0 and 1 (e.g. 0.8).');
  if (options.minReward !== undefined && !Number.isFinite(options.minReward)) throw new ExportError('The minimum reward is a number (e.g. 1 for solved tasks).');
  const branches = options.branches ?? 'main';
  if (branches !== 'main' && branches !== 'all') throw new ExportError('Branches are "main" or "all".');
  return {
    format: options.format,
    out: options.out,
    branches,
    policy: options.policy ?? DEFAULT_MASK_POLICY,
    minQuality,
    minReward: options.minReward,
    hints: options.hints ?? true,
    wholeTrajectories: options.wholeTrajectories ?? false,
    allowEmpty: options.allowEmpty ?? false,
  };
}

/** Why a format gave no record, for the refusal of an empty export. */
function whyEmpty(format: ExportFormat, summary: ExportSummary, seen: { rewinds: number; sampledTasks: number }): string {
  if (!summary.trajectories) {
    if (summary.belowQuality) return `every trajectory is below the minimum quality ${summary.minQuality}`;
    if (summary.belowReward) return `no trajectory has a verifier reward of at least ${summary.minReward}`;
    if (summary.skipped.length) return `every run was refused (${summary.skipped.map((skipped) => `${skipped.id}: ${skipped.problems[0]}`).join('; ')})`;
    return 'no run has a trajectory to export';
  }
  if (summary.skipped.length) return `every record failed validation (${summary.skipped.length} left out)`;
  if (format === 'pairs') {
    if (!seen.rewinds && !seen.sampledTasks) return 'the dataset has no rewinds or sampled tasks';
    return 'no rewind or pair of sampled runs gave two different assistant turns with one preferred';
  }
  if ((format === 'trl' || format === 'llamafactory') && !summary.trainedSteps) return `no step is trained on under the mask policy ${summary.policy}`;
  return 'no trajectory has a step';
}

export async function exportDataset(store: DatasetStore, options: ExportOptions): Promise<ExportSummary> {
  const resolved = resolveExportOptions(options);
  const known = await store.runIds();
  const wanted = options.runs ?? known;
  const knownIds = new Set(known);
  const missing = wanted.filter((id) => !knownIds.has(id));
  if (missing.length) throw new ExportError(`No run ${missing.join(', ')} in ${store.root}.`);
  if (!wanted.length) throw new ExportError(`The dataset ${store.root} has no runs to export.`);

  const summary: ExportSummary = {
    format: resolved.format,
    out: resolved.out,
    policy: resolved.policy,
    branches: resolved.branches,
    hints: resolved.hints,
    wholeTrajectories: resolved.wholeTrajectories,
    minQuality: resolved.minQuality,
    ...(resolved.minReward !== undefined ? { minReward: resolved.minReward } : {}),
    runs: 0,
    trajectories: 0,
    abandonedTrajectories: 0,
    records: 0,
    steps: 0,
    trainedSteps: 0,
    maskedSteps: 0,
    effectiveLabels: { good: 0, bad: 0, neutral: 0, unlabelled: 0 },
    labelSources: { human: 0, judge: 0, rule: 0 },
    models: [],
    belowQuality: 0,
    belowReward: 0,
    skipped: [],
    warnings: [],
  };
  const redactor = new Redactor();
  const context: WriterContext = {
    options: resolved,
    redact: (value) => redactor.redactDeep(value),
    written: (count = 1) => (summary.records += count),
    skip: (id, problems) => summary.skipped.push({ id, problems }),
    readRun: async (runId) => {
      const { events } = await store.readEvents(runId);
      return findSecretShapes(JSON.stringify(events)).length ? undefined : buildRunTree(events);
    },
  };
  const writer = await OPENERS[resolved.format](context);
  const models = new Set<string>();
  const seen = { rewinds: 0, sampledTasks: 0 };
  const tasks = new Set<string>();
  try {
    for (const [index, runId] of [...wanted].sort().entries()) {
      if (options.signal?.aborted) throw new ExportCancelled();
      const { events, problems } = await store.readEvents(runId);
      summary.warnings.push(...problems);
      // A run whose record holds a secret shape is refused whole, in every format.
      const shapes = findSecretShapes(JSON.stringify(events));
      if (shapes.length) {
        summary.skipped.push({ id: runId, problems: [`refused: the run's record holds a secret shape (${shapes.join(', ')}); \`apollo validate\` shows the file and line`] });
        continue;
      }
      const tree = buildRunTree(events);
      if (!tree) {
        summary.warnings.push(`run ${runId} has no run_started event; left out`);
        continue;
      }
      const trajectories = trajectoriesOf(tree, resolved).filter((trajectory) => {
        if (qualityOf(trajectory) < resolved.minQuality) {
          summary.belowQuality++;
          return false;
        }
        if (resolved.minReward !== undefined && !((primaryReward(trajectory.rewards) ?? -Infinity) >= resolved.minReward)) {
          summary.belowReward++;
          return false;
        }
        return true;
      });
      summary.runs++;
      models.add(tree.started.model);
      seen.rewinds += tree.rewinds.length;
      if (tree.started.taskId) tasks.add(tree.started.taskId);
      for (const trajectory of trajectories) {
        summary.trajectories++;
        if (trajectory.abandoned) summary.abandonedTrajectories++;
        for (const step of trajectory.steps) {
          summary.steps++;
          if (step.mask) summary.trainedSteps++;
          else summary.maskedSteps++;
          summary.effectiveLabels[step.effective?.label ?? 'unlabelled']++;
          if (step.effective) summary.labelSources[step.effective.tier]++;
        }
      }
      await writer.writeRun(tree, trajectories);
      options.onProgress?.({ runsDone: index + 1, runsTotal: wanted.length, records: summary.records });
    }
    summary.models = [...models].sort();
    if (options.signal?.aborted) throw new ExportCancelled();
    await writer.flush?.();
    seen.sampledTasks = tasks.size;
    if (!summary.records && !resolved.allowEmpty) {
      throw new ExportError(`Nothing to export as ${resolved.format}: ${whyEmpty(resolved.format, summary, seen)}. Nothing was written (allow an empty output with --allow-empty).`);
    }
    await writer.finish(summary);
  } catch (error) {
    await writer.discard().catch(() => undefined);
    throw error;
  }
  return summary;
}

export function formatExportSummary(summary: ExportSummary): string {
  const lines = [
    `exported ${summary.records} ${summary.format} record(s) from ${summary.trajectories} trajectorie(s) of ${summary.runs} run(s) to ${summary.out}`,
    `steps: ${summary.steps}, trained ${summary.trainedSteps}, masked ${summary.maskedSteps} (policy ${summary.policy})`,
    `effective labels: good ${summary.effectiveLabels.good}, bad ${summary.effectiveLabels.bad}, neutral ${summary.effectiveLabels.neutral}, unlabelled ${summary.effectiveLabels.unlabelled}`,
  ];
  if (summary.abandonedTrajectories) lines.push(`abandoned branches: ${summary.abandonedTrajectories}`);
  if (summary.belowQuality) lines.push(`left out below minimum quality ${summary.minQuality}: ${summary.belowQuality}`);
  if (summary.belowReward) lines.push(`left out below minimum reward ${summary.minReward} (or never verified): ${summary.belowReward}`);
  for (const skipped of summary.skipped) lines.push(`skipped ${skipped.id}: ${skipped.problems.join('; ')}`);
  for (const warning of summary.warnings) lines.push(`warning: ${warning}`);
  return lines.join('\n') + '\n';
}
