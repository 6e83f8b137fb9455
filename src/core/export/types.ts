/**
 * What the export and its format writers share: the options, the summary and the writer's
 * interface. The writers import only this module (and the helpers beside them), never the
 * export that drives them, so that the table of formats (formats.ts) can import the writers
 * without a cycle.
 */
import type { MaskPolicy } from '../supervision/labels';
import type { RunTree, Trajectory } from './trajectory';

export type ExportFormat = 'openai' | 'hf' | 'trl' | 'llamafactory' | 'atif' | 'sharegpt' | 'pairs';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['openai', 'hf', 'trl', 'llamafactory', 'atif', 'sharegpt', 'pairs'];

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
