/**
 * `sharegpt`: LLaMA-Factory's sharegpt format with tools, JSON lines. Turns alternate
 * human/observation and gpt/function_call, as its converter requires (it silently drops a row
 * that breaks the order), so a hint that follows a tool result joins that observation turn.
 * Each step's executed calls are one `function_call` turn (a JSON list when the turn ran several,
 * LLaMA-Factory's form for parallel calls) and their results one `observation` turn; calls the
 * engine did not execute are left out, and a turn none of whose calls ran (cut by the output
 * limit) is the model's text followed by what it was told. The model's thought of a
 * tool-calling turn, and its reasoning, have no place in this format and are not kept. The
 * format carries no mask: LLaMA-Factory trains on every model turn of a row (or, with
 * `mask_history`, only the last), so each row is a whole trajectory and every turn is trained.
 * For masked training use `llamafactory` (one row per trained turn) instead.
 * `task_id` (null for a run on its own) groups the runs sampled for one task; LLaMA-Factory reads
 * only the columns dataset_info.json names, so it is left alone there.
 *
 * dataset_info.json entry:
 *   "apollo": { "file_name": "<file>.jsonl", "formatting": "sharegpt",
 *               "columns": { "messages": "conversations", "system": "system", "tools": "tools" } }
 */
import type { FormatWriter, WriterContext } from './types';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import { findSecretShapes } from '../dataset/redaction';
import { stepToolResults } from '../dataset/events';
import { openJsonlWriter } from './jsonlWriter';
import type { Trajectory } from './trajectory';

export interface ShareGptTurn {
  from: 'human' | 'gpt' | 'function_call' | 'observation';
  value: string;
}

const ODD = new Set(['human', 'observation']);

/** Function definitions as LLaMA-Factory's tool formatters read them: name, description, parameters. */
export function toolDefinitions(tools: unknown[]): unknown[] {
  return tools.map((tool) => {
    const record = tool as { type?: string; function?: { parameters?: { properties?: unknown } } };
    const fn = record.type === 'function' && record.function ? record.function : (tool as { parameters?: { properties?: unknown } });
    return { ...fn, parameters: { type: 'object', properties: {}, ...(fn.parameters ?? {}) } };
  });
}

function parsedArguments(raw: string): unknown {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
  } catch {
    // fall through
  }
  return { raw };
}

export function shareGptRecord(trajectory: Trajectory, options: WriterContext['options']) {
  const turns: ShareGptTurn[] = [{ from: 'human', value: trajectory.started.task }];
  /** A user message right after another human/observation turn joins it. */
  const say = (text: string) => {
    const last = turns[turns.length - 1];
    if (ODD.has(last.from)) last.value = `${last.value}\n\n${text}`;
    else turns.push({ from: 'human', value: text });
  };
  for (const step of trajectory.steps) {
    if (options.hints) for (const hint of step.hints) say(hintMessage(hint.kind, hint.text));
    const { event } = step;
    if (event.action) {
      const executed = [{ action: event.action, observation: event.observation }, ...(event.moreActions ?? [])];
      const calls = executed.map(({ action }) => ({ name: action.name, arguments: parsedArguments(action.arguments) }));
      turns.push({ from: 'function_call', value: JSON.stringify(calls.length === 1 ? calls[0] : calls) });
      turns.push({ from: 'observation', value: executed.map(({ observation }) => observation).join('\n\n') });
    } else {
      turns.push({ from: 'gpt', value: event.assistant.content ?? '' });
      // Calls that were not run (a reply cut mid-call) were answered with why; no call at all, with the nudge.
      const told = event.assistant.toolCalls.length ? stepToolResults(event).map((result) => result.content) : [NO_TOOL_CALL_NUDGE];
      say(told.join('\n\n'));
    }
  }
  // A conversation ends with the model's turn: the last tool result (or nudge) is not trained on anyway.
  while (turns.length && ODD.has(turns[turns.length - 1].from)) turns.pop();
  return {
    conversations: turns,
    system: trajectory.started.systemPrompt,
    tools: JSON.stringify(toolDefinitions(trajectory.started.tools)),
    task_id: trajectory.started.taskId ?? null,
  };
}

/** The order LLaMA-Factory's converter enforces, valid function_call JSON, and no secret shapes. */
export function validateShareGpt(record: { conversations: ShareGptTurn[] }): string[] {
  const problems: string[] = [];
  const { conversations } = record;
  if (conversations.length < 2 || conversations.length % 2 !== 0) problems.push(`${conversations.length} turns: a conversation needs an even number, ending with the model's turn`);
  conversations.forEach((turn, index) => {
    const expected = index % 2 === 0 ? 'human or observation' : 'gpt or function_call';
    if (ODD.has(turn.from) !== (index % 2 === 0)) problems.push(`turn ${index + 1} is ${turn.from}; expected ${expected}`);
    if (turn.from === 'function_call') {
      try {
        const parsed = JSON.parse(turn.value) as unknown;
        const calls = (Array.isArray(parsed) ? parsed : [parsed]) as { name?: unknown; arguments?: unknown }[];
        if (!calls.length || calls.some((call) => !call || typeof call.name !== 'string' || typeof call.arguments !== 'object'))
          problems.push(`turn ${index + 1}: function_call needs a name and an arguments object`);
      } catch {
        problems.push(`turn ${index + 1}: function_call is not valid JSON`);
      }
    }
  });
  const shapes = findSecretShapes(JSON.stringify(record));
  if (shapes.length) problems.push(`holds a secret shape (${shapes.join(', ')})`);
  return problems;
}

export function openShareGptWriter(context: WriterContext): Promise<FormatWriter> {
  return openJsonlWriter(context, (_tree, trajectories) => trajectories.map((trajectory) => ({ id: trajectory.id, record: shareGptRecord(trajectory, context.options) })), validateShareGpt);
}
