/**
 * `apollo import --format atif`: trajectories in the Agent Trajectory Interchange Format (what
 * Harbor writes for every agent it runs, on its distributed environments too) become runs of the
 * dataset, so the annotator can label them in the panel and they export like recorded runs.
 *
 * The mapping is the inverse of the ATIF export: the first system step is the system prompt, the
 * first user step the task; each agent step is a step (its message, reasoning, tool calls and the
 * observation's results, answered by call id); user steps between agent steps are hints delivered
 * with the next step (Apollo's own hint messages keep their kind); labels, diff and mask written
 * under `extra.apollo` come back; `final_metrics.extra.rewards` becomes a reward event. Copied
 * context (`is_copied_context`) and compaction boundaries are context, not steps. An imported run
 * has no workspace: it cannot be resumed, rewound or verified, only read, labelled and exported.
 *
 * Import is idempotent: a trajectory already imported (by its trajectory id) is skipped.
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import type { DatasetEvent, FileChange, HintKind, LabelEvent, StepEvent } from '../dataset/events';
import { HINT_KINDS, LABEL_AXES, LABEL_VALUES } from '../dataset/events';
import { newHintId } from '../dataset/ids';
import type { DatasetStore } from '../dataset/store';
import { readAtif, type AtifRead } from '../export/atif';
import { ConfigError } from './errors';

/** Where an imported run says it came from (run_started `importedFrom`). */
export const IMPORTED_WORKSPACE = '(imported)';

export interface ImportReport {
  imported: { file: string; runId: string; steps: number }[];
  /** Already in the dataset (same trajectory id). */
  skipped: { file: string; runId: string }[];
  failed: { file: string; error: string }[];
}

const HINT_PATTERN = /^\[Hint from the annotator \((\w+)\)\]: ([\s\S]*)$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A run id for an imported trajectory: stable, so importing twice finds the first import. */
export function importedRunId(trajectoryId: string, firstTime: string | undefined): string {
  const time = firstTime && !Number.isNaN(Date.parse(firstTime)) ? new Date(firstTime) : new Date(0);
  const pad = (value: number) => String(value).padStart(2, '0');
  const stamp = `${time.getUTCFullYear()}${pad(time.getUTCMonth() + 1)}${pad(time.getUTCDate())}-${pad(time.getUTCHours())}${pad(time.getUTCMinutes())}${pad(time.getUTCSeconds())}`;
  return `${stamp}-${createHash('sha256').update(trajectoryId).digest('hex').slice(0, 8)}`;
}

/** The events of one ATIF trajectory as an Apollo run. */
export function atifToEvents(read: AtifRead, raw: Record<string, unknown>, runId: string): DatasetEvent[] {
  const rawSteps = (raw.steps as Record<string, unknown>[]).filter((step) => step.is_copied_context !== true);
  const timeOf = (index: number) => (typeof rawSteps[index]?.timestamp === 'string' ? rawSteps[index].timestamp : new Date(0).toISOString());
  const system = read.steps.findIndex((step) => step.source === 'system');
  const firstUser = read.steps.findIndex((step) => step.source === 'user');
  const task = firstUser >= 0 ? read.steps[firstUser].message : '';
  const startTime = timeOf(0);
  const events: DatasetEvent[] = [
    {
      type: 'run_started',
      time: startTime,
      version: 1,
      runId,
      task,
      workspace: IMPORTED_WORKSPACE,
      model: read.agent.modelName ?? read.agent.name,
      baseUrl: '',
      maxSteps: Math.max(1, read.steps.filter((step) => step.source === 'agent').length),
      systemPrompt: system >= 0 ? read.steps[system].message : '',
      tools: read.toolDefinitions,
      importedFrom: { format: 'atif', trajectoryId: read.trajectoryId, agent: `${read.agent.name} ${read.agent.version}` },
    },
  ];
  let number = 0;
  let pendingHints: { hintId: string; kind: HintKind; text: string; time: string }[] = [];
  let lastTime = startTime;
  for (const [index, step] of read.steps.entries()) {
    const time = timeOf(index);
    lastTime = time;
    if (index === system || index === firstUser) continue;
    if (step.contextManagement || (isObject(step.apollo) && ('summary_of_steps_before' in step.apollo || 'kept_from_step' in step.apollo))) continue;
    if (step.source === 'user') {
      if (step.message === NO_TOOL_CALL_NUDGE) continue;
      const match = HINT_PATTERN.exec(step.message);
      const kind = match && (HINT_KINDS as readonly string[]).includes(match[1]) ? (match[1] as HintKind) : 'knowledge';
      pendingHints.push({ hintId: newHintId(), kind, text: match ? match[2] : step.message, time });
      continue;
    }
    if (step.source !== 'agent') continue;
    number++;
    for (const hint of pendingHints) {
      events.push({ type: 'hint_queued', time: hint.time, hintId: hint.hintId, text: hint.text, kind: hint.kind, source: 'import' });
      events.push({ type: 'hint_delivered', time: hint.time, hintId: hint.hintId, step: number });
    }
    pendingHints = [];
    const calls = step.toolCalls.map((call) => ({
      id: call.id,
      name: call.name,
      arguments: 'raw' in call.arguments && Object.keys(call.arguments).length === 1 && typeof call.arguments.raw === 'string' ? call.arguments.raw : JSON.stringify(call.arguments),
    }));
    const results = new Map(step.results.map((result, position) => [result.callId ?? calls[position]?.id, result.content]));
    const apollo = isObject(step.apollo) ? step.apollo : {};
    const diff = isObject(apollo.diff) ? apollo.diff : {};
    const [first, ...rest] = calls;
    const event: StepEvent = {
      type: 'step',
      time,
      step: number,
      assistant: { content: step.message, toolCalls: calls, ...(step.reasoning ? { reasoning: step.reasoning } : {}) },
      action: first ?? null,
      observation: first ? (results.get(first.id) ?? '') : '',
      isError: apollo.is_error === true,
      grounding: { before: '', after: '', files: Array.isArray(diff.files) ? (diff.files as FileChange[]) : [], patch: typeof diff.patch === 'string' ? diff.patch : '' },
      ...(rest.length ? { skippedToolCalls: rest.map((call) => ({ id: call.id, content: results.get(call.id) ?? '' })) } : {}),
      modelMs: 0,
      toolMs: 0,
    };
    const metrics = isObject(rawSteps[index]?.metrics) ? rawSteps[index].metrics : {};
    if (typeof metrics.prompt_tokens === 'number' || typeof metrics.completion_tokens === 'number') {
      event.usage = { promptTokens: Number(metrics.prompt_tokens ?? 0), completionTokens: Number(metrics.completion_tokens ?? 0) };
    }
    events.push(event);
    for (const entry of Array.isArray(apollo.labels) ? apollo.labels : []) {
      if (!isObject(entry) || !(LABEL_VALUES as readonly string[]).includes(entry.label as string)) continue;
      const label: LabelEvent = {
        type: 'label',
        time: typeof entry.time === 'string' ? entry.time : time,
        step: number,
        label: entry.label as LabelEvent['label'],
        source: typeof entry.source === 'string' ? entry.source : 'import',
        ...(typeof entry.axis === 'string' && (LABEL_AXES as readonly string[]).includes(entry.axis) ? { axis: entry.axis as LabelEvent['axis'] } : {}),
        ...(typeof entry.reason === 'string' ? { reason: entry.reason } : {}),
      };
      events.push(label);
    }
  }
  events.push({ type: 'run_ended', time: lastTime, status: 'finished', steps: number });
  if (read.rewards && Object.keys(read.rewards).length) {
    const rewards = Object.fromEntries(Object.entries(read.rewards).filter(([, value]) => typeof value === 'number' && Number.isFinite(value)));
    events.push({ type: 'reward', time: lastTime, source: 'verifier', rewards, task: task.split('\n')[0].slice(0, 80), exitCode: null, durationMs: 0 });
  }
  return events;
}

/** The ATIF files of `source`: the file itself, or the .json files of a folder (not recursive), sorted. */
async function atifFiles(source: string): Promise<string[]> {
  if (!existsSync(source)) throw new ConfigError(`${source} does not exist: give an ATIF .json file or a folder of them.`);
  if (statSync(source).isFile()) return [source];
  const names = (await fs.readdir(source)).filter((name) => name.endsWith('.json')).sort();
  if (!names.length) throw new ConfigError(`${source} holds no .json file: give an ATIF trajectory file or a folder of them.`);
  return names.map((name) => path.join(source, name));
}

export async function importAtif(store: DatasetStore, sources: string[]): Promise<ImportReport> {
  const report: ImportReport = { imported: [], skipped: [], failed: [] };
  await store.init();
  const existing = new Set(await store.runIds());
  for (const source of sources) {
    for (const file of await atifFiles(path.resolve(source))) {
      let raw: unknown;
      try {
        raw = JSON.parse(await fs.readFile(file, 'utf8'));
      } catch (error) {
        report.failed.push({ file, error: `not JSON: ${(error as Error).message}` });
        continue;
      }
      let read: AtifRead;
      try {
        read = readAtif(raw);
      } catch (error) {
        report.failed.push({ file, error: (error as Error).message });
        continue;
      }
      const rawSteps = (raw as Record<string, unknown>).steps as Record<string, unknown>[];
      const runId = importedRunId(read.trajectoryId, typeof rawSteps[0]?.timestamp === 'string' ? rawSteps[0].timestamp : undefined);
      if (existing.has(runId)) {
        report.skipped.push({ file, runId });
        continue;
      }
      const events = atifToEvents(read, raw as Record<string, unknown>, runId);
      const started = events[0];
      const ended = events.find((event) => event.type === 'run_ended');
      const steps = ended?.type === 'run_ended' ? ended.steps : 0;
      const writer = await store.createRun({
        id: runId,
        task: started.type === 'run_started' ? started.task : '',
        workspace: IMPORTED_WORKSPACE,
        model: started.type === 'run_started' ? started.model : '',
        baseUrl: '',
        status: 'finished',
        steps,
        createdAt: started.time,
        updatedAt: ended?.time ?? started.time,
        endedAt: ended?.time ?? started.time,
        tokens: { promptTokens: 0, completionTokens: 0 },
      });
      for (const event of events) await writer.append(event);
      existing.add(runId);
      report.imported.push({ file, runId, steps });
    }
  }
  return report;
}

export function formatImportReport(report: ImportReport): string {
  const lines = report.imported.map((entry) => `imported ${entry.runId} (${entry.steps} step(s)) from ${entry.file}`);
  for (const entry of report.skipped) lines.push(`already imported: ${entry.file} (run ${entry.runId})`);
  for (const entry of report.failed) lines.push(`not imported: ${entry.file}: ${entry.error}`);
  lines.push(`${report.imported.length} imported, ${report.skipped.length} already there, ${report.failed.length} failed`);
  return lines.join('\n') + '\n';
}
