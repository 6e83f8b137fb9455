/**
 * `atif`: Agent Trajectory Interchange Format v1.4, one JSON file per trajectory. Step 1 is the
 * system prompt, step 2 the task; hints are user steps; each action is an agent step holding its
 * tool calls and their results, and `extra.apollo` holds its labels, mask and grounded diff.
 * The model's reasoning goes in the step's `reasoning_content` (ATIF's field for an agent step's
 * explicit internal reasoning, apart from its `message`). A step that ran several calls has one
 * diff covering them all, in call order.
 */
import { promises as fs } from 'node:fs';
import type { FormatWriter, WriterContext } from './exportDataset';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import { findSecretShapes } from '../dataset/redaction';
import { stepGrounding, stepToolResults } from '../dataset/events';
import { APOLLO_VERSION } from '../version';
import { FolderOutput } from './output';
import type { Trajectory, TrajectoryStep } from './trajectory';

export const ATIF_VERSION = 'ATIF-v1.4';

interface AtifStepBody {
  source: 'system' | 'user' | 'agent';
  message: string;
  [key: string]: unknown;
}

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

function agentStep(step: TrajectoryStep, model: string): AtifStepBody {
  const { event } = step;
  const grounding = stepGrounding(event);
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
    extra: {
      apollo: {
        step: event.step,
        ...(event.branch ? { branch: event.branch, parent_step: event.parentStep } : {}),
        labels: step.labels.map(({ label, axis, source, reason, time }) => ({ label, ...(axis ? { axis } : {}), source, ...(reason ? { reason } : {}), time })),
        effective_label: step.effective?.label ?? null,
        mask: step.mask,
        is_error: event.isError,
        ...(event.assistant.truncated ? { truncated: true } : {}),
        diff: { files: grounding.files, patch: grounding.patch, ...(grounding.patchTruncated ? { patch_truncated: true } : {}) },
      },
    },
  };
}

export function atifTrajectory(trajectory: Trajectory, options: WriterContext['options']) {
  const { started } = trajectory;
  const steps: AtifStepBody[] = [
    { timestamp: started.time, source: 'system', message: started.systemPrompt },
    { timestamp: started.time, source: 'user', message: started.task },
  ];
  let promptTokens = 0;
  let completionTokens = 0;
  for (const step of trajectory.steps) {
    if (options.hints) for (const hint of step.hints) steps.push({ timestamp: step.event.time, source: 'user', message: hintMessage(hint.kind, hint.text) });
    steps.push(agentStep(step, started.model));
    // The nudge follows a turn that called no tool; a turn whose calls were not run got their reasons instead.
    if (!step.event.assistant.toolCalls.length) steps.push({ timestamp: step.event.time, source: 'user', message: NO_TOOL_CALL_NUDGE });
    promptTokens += step.event.usage?.promptTokens ?? 0;
    completionTokens += step.event.usage?.completionTokens ?? 0;
  }
  return {
    schema_version: ATIF_VERSION,
    session_id: trajectory.id,
    agent: { name: 'apollo', version: APOLLO_VERSION, model_name: started.model },
    steps: steps.map((step, index) => ({ step_id: index + 1, ...step })),
    notes: trajectory.abandoned ? `A branch of run ${trajectory.runId} abandoned by a rewind.` : `Run ${trajectory.runId}${trajectory.ended ? `, ${trajectory.ended.status}` : ''}.`,
    final_metrics: { total_prompt_tokens: promptTokens, total_completion_tokens: completionTokens, total_steps: steps.length },
    extra: { apollo: { run_id: trajectory.runId, task_id: started.taskId ?? null, abandoned: trajectory.abandoned, mask_policy: options.policy, status: trajectory.ended?.status ?? null } },
  };
}

/**
 * What ATIF's own validator checks (sequential ids, agent-only fields, tool results answering
 * their step's calls), plus secret shapes in `text`, the document as it will be written.
 */
export function validateAtif(document: ReturnType<typeof atifTrajectory>, text: string): string[] {
  const problems: string[] = [];
  document.steps.forEach((step, index) => {
    const where = `step ${index + 1}`;
    if (step.step_id !== index + 1) problems.push(`${where}: step_id is ${step.step_id}`);
    if (step.source !== 'agent') {
      for (const key of ['model_name', 'reasoning_content', 'tool_calls', 'metrics']) if (key in step) problems.push(`${where}: "${key}" is only allowed on agent steps`);
    }
    const calls = new Set(((step as { tool_calls?: { tool_call_id: string }[] }).tool_calls ?? []).map((call) => call.tool_call_id));
    for (const result of (step as { observation?: { results: { source_call_id?: string }[] } }).observation?.results ?? []) {
      if (result.source_call_id && !calls.has(result.source_call_id)) problems.push(`${where}: result ${result.source_call_id} answers no tool call of its step`);
    }
  });
  const shapes = findSecretShapes(text);
  if (shapes.length) problems.push(`holds a secret shape (${shapes.join(', ')})`);
  return problems;
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
