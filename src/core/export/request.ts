/**
 * What an export command is asked: the parts a caller (a test, a keybinding, another extension)
 * settles in its request, the target a picker proposes, and the sentence that reports the result.
 * Pure: the VS Code command asks only for what is left.
 */
import path from 'node:path';
import { EXPORT_FORMATS, type ExportFormat, type ExportSummary, FOLDER_FORMATS } from './exportDataset';

/** A caller's request, unchecked. */
export interface ExportRequest {
  format?: unknown;
  out?: unknown;
  branches?: unknown;
  minQuality?: unknown;
  hints?: unknown;
}

export interface SettledExport {
  format?: ExportFormat;
  /** Main line only when a target is given without saying (no one is there to ask). */
  branches?: 'main' | 'all';
  /** Resolved against the workspace. */
  out?: string;
  minQuality?: number;
  hints?: false;
}

/** What the request settles; what it leaves undefined is asked. Values of the wrong type count as not given. */
export function settleExport(request: ExportRequest = {}, workspace: string): SettledExport {
  const format = EXPORT_FORMATS.includes(request.format as ExportFormat) ? (request.format as ExportFormat) : undefined;
  const branches = request.branches === 'main' || request.branches === 'all' ? request.branches : request.out === undefined ? undefined : 'main';
  return {
    ...(format ? { format } : {}),
    ...(branches ? { branches } : {}),
    ...(typeof request.out === 'string' ? { out: path.resolve(workspace, request.out) } : {}),
    ...(typeof request.minQuality === 'number' ? { minQuality: request.minQuality } : {}),
    ...(request.hints === false ? { hints: false as const } : {}),
  };
}

const FILE_EXTENSIONS: Partial<Record<ExportFormat, string>> = { openai: 'jsonl', sharegpt: 'jsonl', pairs: 'jsonl' };

/** The name a picker proposes (`apollo-openai-20260101-120000`), and whether the format writes a folder or a file. */
export function exportTarget(format: ExportFormat, now = new Date()): { name: string; folder: boolean; extension: string } {
  const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return { name: `apollo-${format}-${stamp}`, folder: FOLDER_FORMATS.includes(format), extension: FILE_EXTENSIONS[format] ?? 'jsonl' };
}

/** What the export did, in one sentence; a warning when records were left out. */
export function exportReport(summary: Pick<ExportSummary, 'records' | 'runs' | 'trainedSteps' | 'maskedSteps' | 'policy' | 'skipped'>, format: ExportFormat): { message: string; warning: boolean } {
  const skipped = summary.skipped.length ? ` ${summary.skipped.length} left out because they failed validation (see the Apollo log).` : '';
  return {
    message: `Apollo: exported ${summary.records} ${format} record(s) from ${summary.runs} run(s): ${summary.trainedSteps} step(s) trained, ${summary.maskedSteps} masked (${summary.policy}).${skipped}`,
    warning: summary.skipped.length > 0,
  };
}
