/**
 * `atif`: Agent Trajectory Interchange Format v1.7 (Harbor's RFC 0001), one JSON file per
 * trajectory. Step 1 is the system prompt, step 2 the task; hints are user steps; each action is
 * an agent step holding its tool calls and their results, and `extra.apollo` holds its labels,
 * mask and grounded diff (the agent's own: `diff.mixed` names files someone else saved while the
 * action ran, and changes made outside the agent are under `external_changes`, never in `diff`;
 * they are context, not in the agent's observation, since the model was not told of them). The model's reasoning goes in the step's `reasoning_content` (ATIF's
 * field for an agent step's explicit internal reasoning, apart from its `message`). A step that
 * ran several calls has one diff covering them all, in call order.
 *
 * A compaction (older steps replaced in the model's context by a summary) is written where it
 * happened as ATIF's context-management boundary: a system step with
 * `extra.context_management = {type: "compaction", boundary: "replace"}`, then the context the
 * model went on with, in its order: the system prompt and the task again, the summary as the user
 * message the model received, and the steps kept after it. What is repeated there is marked
 * `is_copied_context: true` (ATIF: copied for context, to be left out of SFT data; the copies'
 * mask is 0), so the steps after the last boundary are exactly what the model saw.
 */
import { promises as fs } from 'node:fs';
import type { FormatWriter, WriterContext } from './types';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import { findSecretShapes } from '../dataset/redaction';
import { stepGrounding, stepToolResults, type SummaryEvent } from '../dataset/events';
import { APOLLO_VERSION } from '../version';
import { FolderOutput } from './output';
import type { Trajectory, TrajectoryStep } from './trajectory';

export const ATIF_VERSION = 'ATIF-v1.7';
/** The versions Harbor's `Trajectory.schema_version` accepts; reading takes any of them. */
export const ATIF_KNOWN_VERSIONS = ['ATIF-v1.0', 'ATIF-v1.1', 'ATIF-v1.2', 'ATIF-v1.3', 'ATIF-v1.4', 'ATIF-v1.5', 'ATIF-v1.6', 'ATIF-v1.7', 'ATIF-v1.8'] as const;

interface AtifStepBody {
  source: 'system' | 'user' | 'agent';
  message: string;
  [key: string]: unknown;
}

/**
 * A trajectory, and the verifier's rewards when they are known (Harbor's `reward.txt` as
 * `{reward: x}`, or its `reward.json` object), from the run's latest `reward` event.
 */
export type AtifSource = Trajectory & { rewards?: Readonly<Record<string, number>> };

/** ATIF arguments are a JSON object; arguments the model garbled are kept whole under `raw`. */
function argumentsObject(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { raw };
}

function apolloExtra(step: TrajectoryStep) {
  const { event } = step;
  const grounding = stepGrounding(event);
  return {
    step: event.step,
    ...(event.branch ? { branch: event.branch, parent_step: event.parentStep } : {}),
    labels: step.labels.map(({ label, axis, source, reason, time }) => ({ label, ...(axis ? { axis } : {}), source, ...(reason ? { reason } : {}), time })),
    effective_label: step.effective?.label ?? null,
    mask: step.mask,
    is_error: event.isError,
    ...(event.assistant.truncated ? { truncated: true } : {}),
    diff: {
      files: grounding.files,
      patch: grounding.patch,
      ...(grounding.patchTruncated ? { patch_truncated: true } : {}),
      ...(grounding.mixed ? { mixed: { files: grounding.mixed.files } } : {}),
    },
    ...(step.externalChanges?.length
      ? {
          external_changes: step.externalChanges.map((change) => ({
            ...(change.phase ? { phase: change.phase } : {}),
            time: change.time,
            files: change.grounding.files,
            patch: change.grounding.patch,
            ...(change.grounding.patchTruncated ? { patch_truncated: true } : {}),
          })),
        }
      : {}),
  };
}

function agentStep(step: TrajectoryStep, model: string): AtifStepBody {
  const { event } = step;
  return {
    timestamp: event.time,
    source: 'agent',
    model_name: model,
    message: event.assistant.content ?? '',
    ...(event.assistant.reasoning ? { reasoning_content: event.assistant.reasoning } : {}),
    ...(event.assistant.toolCalls.length
      ? {
          tool_calls: event.assistant.toolCalls.map((call) => ({ tool_call_id: call.id, function_name: call.name, arguments: argumentsObject(call.arguments) })),
          observation: {
            results: stepToolResults(event).map((result) => ({ source_call_id: result.id, content: result.content })),
          },
        }
      : {}),
    ...(event.usage ? { metrics: { prompt_tokens: event.usage.promptTokens, completion_tokens: event.usage.completionTokens } } : {}),
    // One Apollo step is one model turn: one inference.
    llm_call_count: 1,
    extra: { apollo: apolloExtra(step) },
  };
}

/**
 * A step repeated after a compaction boundary: the same content, marked as copied context, with
 * no metrics or inference count of its own (they stay on the original, so totals add up), and,
 * for an agent step, mask 0: it is context there, never trained on.
 */
function copied(body: AtifStepBody, originalId: number): AtifStepBody {
  const { metrics: _metrics, llm_call_count: _count, extra, ...rest } = body;
  const apollo = (extra as { apollo?: Record<string, unknown> } | undefined)?.apollo;
  return {
    ...rest,
    is_copied_context: true,
    extra: { ...(extra as object | undefined), apollo: { ...apollo, ...(body.source === 'agent' ? { mask: 0 } : {}), copy_of: originalId } },
  };
}

/** `agent.tool_definitions`: the tool schemas the run offered, in OpenAI's function-calling form. */
function toolDefinitions(tools: readonly unknown[]): Record<string, unknown>[] {
  return tools.filter((tool): tool is Record<string, unknown> => tool !== null && typeof tool === 'object' && !Array.isArray(tool));
}

/** The per-document id: the run and the branch the trajectory ends on (`main` before any rewind). */
export function atifTrajectoryId(trajectory: Pick<Trajectory, 'runId' | 'steps'>): string {
  const last = trajectory.steps[trajectory.steps.length - 1];
  return `${trajectory.runId}@${last?.event.branch ?? 'main'}`;
}

export function atifTrajectory(trajectory: AtifSource, options: WriterContext['options']) {
  const { started } = trajectory;
  const steps: AtifStepBody[] = [
    { timestamp: started.time, source: 'system', message: started.systemPrompt },
    { timestamp: started.time, source: 'user', message: started.task },
  ];
  /** Per Apollo step, the indexes in `steps` of what it put in the context (hints, its turn, a nudge). */
  const written = new Map<number, number[]>();
  const summaries = [...(trajectory.summaries ?? [])].sort((a, b) => a.step - b.step);
  let nextSummary = 0;
  const compaction = (summary: SummaryEvent) => {
    steps.push({
      timestamp: summary.time,
      source: 'system',
      message: `Context compaction before step ${summary.step}: the steps before step ${summary.keptFromStep} were replaced by a summary.`,
      extra: {
        context_management: { type: 'compaction', boundary: 'replace' },
        apollo: {
          step: summary.step,
          kept_from_step: summary.keptFromStep,
          tokens_before: summary.tokensBefore,
          tokens_after: summary.tokensAfter,
          ...(summary.usage ? { usage: { prompt_tokens: summary.usage.promptTokens, completion_tokens: summary.usage.completionTokens } } : {}),
        },
      },
    });
    steps.push(copied(steps[0], 1), copied(steps[1], 2));
    steps.push({ timestamp: summary.time, source: 'user', message: summary.text, extra: { apollo: { summary_of_steps_before: summary.keptFromStep, step: summary.step } } });
    for (const kept of trajectory.steps) {
      if (kept.event.step < summary.keptFromStep || kept.event.step >= summary.step) continue;
      for (const index of written.get(kept.event.step) ?? []) steps.push(copied(steps[index], index + 1));
    }
  };
  let promptTokens = 0;
  let completionTokens = 0;
  for (const step of trajectory.steps) {
    while (nextSummary < summaries.length && summaries[nextSummary].step <= step.event.step) compaction(summaries[nextSummary++]);
    const first = steps.length;
    if (options.hints) for (const hint of step.hints) steps.push({ timestamp: step.event.time, source: 'user', message: hintMessage(hint.kind, hint.text) });
    steps.push(agentStep(step, started.model));
    // The nudge follows a turn that called no tool; a turn whose calls were not run got their reasons instead.
    if (!step.event.assistant.toolCalls.length) steps.push({ timestamp: step.event.time, source: 'user', message: NO_TOOL_CALL_NUDGE });
    written.set(
      step.event.step,
      Array.from({ length: steps.length - first }, (_, offset) => first + offset),
    );
    promptTokens += step.event.usage?.promptTokens ?? 0;
    completionTokens += step.event.usage?.completionTokens ?? 0;
  }
  const tools = toolDefinitions(started.tools ?? []);
  const rewards = trajectory.rewards && Object.keys(trajectory.rewards).length ? { ...trajectory.rewards } : undefined;
  return {
    schema_version: ATIF_VERSION,
    // Run-scoped in v1.7: every trajectory of a run (its final line, its abandoned branches) shares it.
    session_id: trajectory.runId,
    trajectory_id: atifTrajectoryId(trajectory),
    agent: { name: 'apollo', version: APOLLO_VERSION, model_name: started.model, ...(tools.length ? { tool_definitions: tools } : {}) },
    steps: steps.map((step, index) => ({ step_id: index + 1, ...step })),
    notes: trajectory.abandoned ? `A branch of run ${trajectory.runId} abandoned by a rewind.` : `Run ${trajectory.runId}${trajectory.ended ? `, ${trajectory.ended.status}` : ''}.`,
    final_metrics: {
      total_prompt_tokens: promptTokens,
      total_completion_tokens: completionTokens,
      total_steps: steps.length,
      ...(rewards ? { extra: { rewards } } : {}),
    },
    extra: {
      apollo: {
        run_id: trajectory.runId,
        export_id: trajectory.id,
        task_id: started.taskId ?? null,
        abandoned: trajectory.abandoned,
        mask_policy: options.policy,
        status: trajectory.ended?.status ?? null,
        compactions: summaries.length,
        ...(rewards ? { rewards } : {}),
      },
    },
  };
}

/** The step fields Harbor's `Step` model allows only when `source` is "agent". */
const AGENT_ONLY_FIELDS = ['model_name', 'reasoning_effort', 'reasoning_content', 'tool_calls', 'metrics'] as const;

/**
 * What Harbor's model validators check that the writer could get wrong (a known version,
 * sequential ids, agent-only fields, unique call ids answered within their step, the rule for
 * `llm_call_count: 0`), plus secret shapes in `text`, the document as it will be written.
 */
export function validateAtif(document: ReturnType<typeof atifTrajectory>, text: string): string[] {
  const problems: string[] = [];
  if (!(ATIF_KNOWN_VERSIONS as readonly string[]).includes(document.schema_version)) problems.push(`unknown schema_version ${document.schema_version}`);
  if (!document.steps.length) problems.push('no steps (ATIF needs at least one)');
  document.steps.forEach((step, index) => {
    const where = `step ${index + 1}`;
    const fields = step as Record<string, unknown>;
    if (step.step_id !== index + 1) problems.push(`${where}: step_id is ${step.step_id}`);
    if (step.source !== 'agent') {
      for (const key of AGENT_ONLY_FIELDS) if (fields[key] !== undefined && fields[key] !== null) problems.push(`${where}: "${key}" is only allowed on agent steps`);
    }
    if (fields.is_copied_context !== undefined && typeof fields.is_copied_context !== 'boolean') problems.push(`${where}: is_copied_context is not a boolean`);
    if (fields.llm_call_count === 0 && step.source === 'agent' && (fields.metrics !== undefined || fields.reasoning_content !== undefined)) {
      problems.push(`${where}: a step with llm_call_count 0 has no metrics or reasoning_content`);
    }
    const calls = new Set<string>();
    for (const call of (fields.tool_calls as { tool_call_id: string }[] | undefined) ?? []) {
      if (calls.has(call.tool_call_id)) problems.push(`${where}: tool_call_id ${call.tool_call_id} appears twice`);
      calls.add(call.tool_call_id);
    }
    for (const result of (fields.observation as { results: { source_call_id?: string | null }[] } | undefined)?.results ?? []) {
      if (result.source_call_id != null && !calls.has(result.source_call_id)) problems.push(`${where}: result ${result.source_call_id} answers no tool call of its step`);
    }
  });
  const shapes = findSecretShapes(text);
  if (shapes.length) problems.push(`holds a secret shape (${shapes.join(', ')})`);
  return problems;
}

/** One step of a trajectory read back: a new interaction (copied context is left out). */
export interface AtifReadStep {
  /** The step's `step_id` in the file. */
  id: number;
  source: 'system' | 'user' | 'agent';
  /** The message; the text parts of a multimodal one, joined. */
  message: string;
  reasoning?: string;
  toolCalls: { id: string; name: string; arguments: Record<string, unknown> }[];
  results: { callId?: string; content: string }[];
  /** A context-management boundary (`extra.context_management`): e.g. `{type: "compaction", boundary: "replace"}`. */
  contextManagement?: { type?: string; boundary?: string };
  /** What Apollo wrote under `extra.apollo` (labels, mask, diff…), when it wrote the file. */
  apollo?: Record<string, unknown>;
}

export interface AtifRead {
  version: (typeof ATIF_KNOWN_VERSIONS)[number];
  /** v1.7's per-document id; before it, the session id (the only id those files have). */
  trajectoryId: string;
  /** Run-scoped from v1.7 on; optional there, required before. */
  sessionId?: string;
  /** The Apollo run a file came from (`extra.apollo.run_id`), else the session id. */
  runId?: string;
  agent: { name: string; version: string; modelName?: string };
  toolDefinitions: Record<string, unknown>[];
  steps: AtifReadStep[];
  /** Steps marked `is_copied_context` (repeated context), left out of `steps`. */
  copiedSteps: number;
  rewards?: Record<string, number>;
}

export class AtifReadError extends Error {
  constructor(readonly problems: string[]) {
    super(`Not an ATIF trajectory Apollo can read: ${problems.join('; ')}.`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function textOf(message: unknown): string {
  if (typeof message === 'string') return message;
  if (Array.isArray(message))
    return message
      .filter((part) => isObject(part) && part.type === 'text' && typeof part.text === 'string')
      .map((part) => (part as { text: string }).text)
      .join('\n');
  return '';
}

/**
 * Reads an ATIF trajectory of any version Harbor knows (Apollo wrote v1.4 before v1.7; other
 * agents write v1.0–v1.8): the ids of either generation, the agent, its tools, and the steps that
 * are new interactions, in order.
 */
export function readAtif(value: unknown): AtifRead {
  const problems: string[] = [];
  if (!isObject(value)) throw new AtifReadError(['the document is not a JSON object']);
  const version = value.schema_version;
  if (typeof version !== 'string' || !(ATIF_KNOWN_VERSIONS as readonly string[]).includes(version))
    problems.push(`schema_version ${JSON.stringify(version)} is not one of ${ATIF_KNOWN_VERSIONS.join(', ')}`);
  const sessionId = typeof value.session_id === 'string' ? value.session_id : undefined;
  const trajectoryId = typeof value.trajectory_id === 'string' ? value.trajectory_id : sessionId;
  if (!trajectoryId) problems.push('neither trajectory_id nor session_id is set');
  const agent = value.agent;
  if (!isObject(agent) || typeof agent.name !== 'string' || typeof agent.version !== 'string') problems.push('agent needs a name and a version');
  if (!Array.isArray(value.steps)) problems.push('steps is not an array');
  if (problems.length) throw new AtifReadError(problems);
  const agentObject = agent as Record<string, unknown>;
  const steps: AtifReadStep[] = [];
  let copiedSteps = 0;
  for (const [index, raw] of (value.steps as unknown[]).entries()) {
    if (!isObject(raw) || !['system', 'user', 'agent'].includes(raw.source as string)) throw new AtifReadError([`steps[${index}] is not a step`]);
    if (raw.is_copied_context === true) {
      copiedSteps++;
      continue;
    }
    const extra = isObject(raw.extra) ? raw.extra : {};
    const calls = Array.isArray(raw.tool_calls) ? raw.tool_calls.filter(isObject) : [];
    const results = isObject(raw.observation) && Array.isArray(raw.observation.results) ? raw.observation.results.filter(isObject) : [];
    steps.push({
      id: typeof raw.step_id === 'number' ? raw.step_id : index + 1,
      source: raw.source as AtifReadStep['source'],
      message: textOf(raw.message),
      ...(typeof raw.reasoning_content === 'string' ? { reasoning: raw.reasoning_content } : {}),
      toolCalls: calls.map((call) => ({ id: String(call.tool_call_id), name: String(call.function_name), arguments: isObject(call.arguments) ? call.arguments : {} })),
      results: results.map((result) => ({ ...(typeof result.source_call_id === 'string' ? { callId: result.source_call_id } : {}), content: textOf(result.content) })),
      ...(isObject(extra.context_management) ? { contextManagement: extra.context_management } : {}),
      ...(isObject(extra.apollo) ? { apollo: extra.apollo } : {}),
    });
  }
  const rootApollo = isObject(value.extra) && isObject(value.extra.apollo) ? value.extra.apollo : {};
  const finalExtra = isObject(value.final_metrics) && isObject(value.final_metrics.extra) ? value.final_metrics.extra : {};
  const rewards = isObject(finalExtra.rewards) ? (finalExtra.rewards as Record<string, number>) : undefined;
  return {
    version: version as AtifRead['version'],
    trajectoryId: trajectoryId!,
    ...(sessionId ? { sessionId } : {}),
    ...(typeof rootApollo.run_id === 'string' ? { runId: rootApollo.run_id } : sessionId ? { runId: sessionId } : {}),
    agent: { name: agentObject.name as string, version: agentObject.version as string, ...(typeof agentObject.model_name === 'string' ? { modelName: agentObject.model_name } : {}) },
    toolDefinitions: Array.isArray(agentObject.tool_definitions) ? agentObject.tool_definitions.filter(isObject) : [],
    steps,
    copiedSteps,
    ...(rewards ? { rewards } : {}),
  };
}

/** A file name from the trajectory id, safe on every file system. */
function fileName(id: string): string {
  return `${id.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`;
}

export async function openAtifWriter(context: WriterContext): Promise<FormatWriter> {
  const output = await FolderOutput.open(context.options.out);
  return {
    async writeRun(_tree, trajectories) {
      for (const trajectory of trajectories) {
        const document = context.redact(atifTrajectory(trajectory, context.options));
        // Serialized once: the check reads the very text that is written.
        const text = JSON.stringify(document, null, 2) + '\n';
        const problems = validateAtif(document, text);
        if (problems.length) {
          context.skip(trajectory.id, problems);
          continue;
        }
        await fs.writeFile(output.file(fileName(trajectory.id)), text, { flag: 'wx' });
        context.written();
      }
    },
    async finish() {
      await output.commit();
    },
    async discard() {
      await output.discard();
    },
  };
}
