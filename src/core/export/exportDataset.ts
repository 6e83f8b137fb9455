/**
 * `apollo export`: reads the dataset one run at a time (memory stays flat however many runs
 * there are), turns each run into trajectories with their labels and masks, and hands them to
 * the format's writer. A trajectory that fails validation is left out and reported; the output
 * appears only when the export completes.
 */
import { DatasetStore } from '../dataset/store';
import { primaryReward } from '../dataset/events';
import { findSecretShapes, Redactor } from '../dataset/redaction';
import { DEFAULT_MASK_POLICY, MaskPolicy } from '../supervision/labels';
import { buildRunTree, qualityOf, RunTree, Trajectory, trajectoriesOf } from './trajectory';
import { ExportError } from './output';
import { openAtifWriter } from './atif';
import { openHfWriter } from './hf';
import { openOpenAiWriter } from './openai';
import { openPairsWriter } from './pairs';
import { openShareGptWriter } from './sharegpt';
import { openTrlWriter } from './trl';
import { openLlamaFactoryWriter } from './llamafactory';

export type ExportFormat = 'openai' | 'hf' | 'trl' | 'llamafactory' | 'atif' | 'sharegpt' | 'pairs';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['openai', 'hf', 'trl', 'llamafactory', 'atif', 'sharegpt', 'pairs'];

export const FORMAT_DESCRIPTIONS: Record<ExportFormat, string> = {
  openai: 'OpenAI chat fine-tuning JSONL, one context a line (runs are cut at each compaction), weight 0|1 on each assistant message',
  hf: 'Hugging Face dataset folder (README.md card + data/*.jsonl), one context a row, per-message weight and axolotl training flag',
  trl: "Hugging Face dataset folder of prompt-completion rows, one per trained assistant turn: TRL's SFTTrainer puts loss on exactly those turns",
  llamafactory: 'LLaMA-Factory folder (dataset_info.json + data/train.jsonl), one sharegpt row per trained turn, ending with it: train with mask_history: true',
  atif: 'Agent Trajectory Interchange Format v1.7 (Harbor), one JSON file per trajectory',
  sharegpt: 'LLaMA-Factory sharegpt JSONL with function_call / observation turns, whole trajectories (carries no mask)',
  pairs: 'preference pairs where two trajectories part (rewinds, sampled runs of one task): prompt / chosen / rejected assistant turns in chat form (JSONL)',
};

/** Formats that write a folder; the others write one file. */
export const FOLDER_FORMATS: readonly ExportFormat[] = ['hf', 'trl', 'llamafactory', 'atif'];

export interface ExportOptions {
  format: ExportFormat;
  out: string;
  /** `main` (default): each run's final line; `all`: abandoned branches as their own trajectories. */
  branches?: 'main' | 'all';
  policy?: MaskPolicy;
  /** Leave out trajectories whose share of steps not labelled bad is below this (0–1; default 0). */
  minQuality?: number;
  /**
   * Leave out trajectories whose verifier reward (a task of a suite; `reward`, else the mean of the
   * named rewards) is below this, and those with no reward at all. Default: no filter.
   */
  minReward?: number;
  /** Only these runs (default: all). */
  runs?: string[];
  /** Hints as the user messages the model received (default true). */
  hints?: boolean;
  /**
   * One row per trajectory, from its start to its end, instead of one per context the model saw
   * (cut at each compaction). For long-context training; default false.
   */
  wholeTrajectories?: boolean;
  /** Write the (empty) output when no record comes out, instead of refusing (default false). */
  allowEmpty?: boolean;
  onProgress?: (progress: { runsDone: number; runsTotal: number; records: number }) => void;
  signal?: AbortSignal;
}

export type ResolvedExportOptions = Required<Omit<ExportOptions, 'runs' | 'onProgress' | 'signal' | 'minReward'>> & { minReward?: number };

export interface ExportSummary {
  format: ExportFormat;
  out: string;
  policy: MaskPolicy;
  branches: 'main' | 'all';
  hints: boolean;
  wholeTrajectories: boolean;
  minQuality: number;
  minReward?: number;
  runs: number;
  trajectories: number;
  abandonedTrajectories: number;
  /** Records written: lines, files or pairs, by format. */
  records: number;
  steps: number;
  trainedSteps: number;
  maskedSteps: number;
  effectiveLabels: Record<'good' | 'bad' | 'neutral' | 'unlabelled', number>;
  /** Which kind of source decided the effective labels. */
  labelSources: Record<'human' | 'judge' | 'rule', number>;
  models: string[];
  /** Trajectories left out below the minimum quality. */
  belowQuality: number;
  /** Left out by --min-reward: below it, or never verified. */
  belowReward: number;
  /** Records left out because they failed validation, with why. */
  skipped: { id: string; problems: string[] }[];
  /** Problems met reading the dataset (corrupt lines are skipped). */
  warnings: string[];
}

export interface FormatWriter {
  writeRun(tree: RunTree, trajectories: Trajectory[]): Promise<void>;
  /** Writes the records that need every run (pairs across runs), before the output is checked and completed. */
  flush?(): Promise<void>;
  /** Completes the output (the dataset card needs the summary) and puts it in place. */
  finish(summary: ExportSummary): Promise<void>;
  discard(): Promise<void>;
}

/** What writers share: the options, a redactor of last resort and the counters. */
export interface WriterContext {
  options: ResolvedExportOptions;
  /** Secret shapes are replaced once more on the way out, whatever the dataset holds. */
  redact<T>(value: T): T;
  written(count?: number): void;
  skip(id: string, problems: string[]): void;
  /** Reads a run of the export again (for records that span runs); undefined when it has no start. */
  readRun(runId: string): Promise<RunTree | undefined>;
}

export class ExportCancelled extends ExportError {
  constructor() {
    super('The export was cancelled; nothing was written.');
  }
}

const OPENERS: Record<ExportFormat, (context: WriterContext) => Promise<FormatWriter>> = {
  openai: openOpenAiWriter,
  hf: openHfWriter,
  trl: openTrlWriter,
  llamafactory: openLlamaFactoryWriter,
  atif: openAtifWriter,
  sharegpt: openShareGptWriter,
  pairs: openPairsWriter,
};

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
