/**
 * A trajectory as a chat conversation, the way the model saw it: system prompt, task, then per
 * step the hints delivered with its request, the assistant turn and the tool results. Shared by
 * the chat-shaped exports (openai, hf, pairs) and checked by `validateChat` before it is written.
 */
import { findSecretShapes } from '../dataset/redaction';
import { stepToolResults, type StepEvent } from '../dataset/events';
import { hintMessage, NO_TOOL_CALL_NUDGE } from '../agent/prompt';
import { segmentsOf, type Trajectory, type TrajectorySegment, type TrajectoryStep } from './trajectory';

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  /**
   * `reasoning_content`: the model's reasoning for the turn, apart from its visible text. The key
   * is the one the chat templates of reasoning models read (Qwen3 and GLM-4.5 put it inside
   * `<think>…</think>` before the content; DeepSeek-R1's servers send it under that name).
   * gpt-oss's template reads `thinking` instead: rename the key for it.
   */
  /** `content` is always a string, "" for a turn that only calls tools (Qwen3's and gpt-oss's templates fail on null). */
  | { role: 'assistant'; content: string; reasoning_content?: string; tool_calls?: ChatToolCall[]; weight?: 0 | 1 }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatOptions {
  /** Hints appear as the user messages the model received; false leaves them out. */
  hints: boolean;
}

/**
 * A call's arguments as the object chat templates iterate over (the HF convention); a string that
 * is not a JSON object (a call cut by the output limit) is kept as `{"raw": <the string>}`.
 */
export function argumentsObject(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // kept raw below
  }
  return { raw };
}

/** Function tools as JSON schema objects, as `apply_chat_template(tools=…)` takes them. */
export function functionTools(tools: unknown[]): unknown[] {
  return tools.map((tool) => {
    const record = tool as { type?: string; function?: unknown };
    return record.type === 'function' && record.function ? tool : { type: 'function', function: tool };
  });
}

/** Maps a step's tool call ids to the ids used in the conversation. */
type CallIds = (id: string) => string;
const sameIds: CallIds = (id) => id;

/**
 * Many servers number tool calls per response (`call_0`, `call_1`, …), so ids repeat across a
 * long run; a repeated id is renamed, in the call and in its result alike, so every pairing is
 * unambiguous.
 */
function uniqueCallIds(used: Set<string>, step: StepEvent): CallIds {
  const renamed = new Map<string, string>();
  for (const call of step.assistant.toolCalls) {
    let id = call.id;
    for (let attempt = 1; used.has(id); attempt++) id = `${call.id}_s${step.step}${attempt > 1 ? `_${attempt}` : ''}`;
    used.add(id);
    renamed.set(call.id, id);
  }
  return (id) => renamed.get(id) ?? id;
}

export function assistantMessage(step: StepEvent, weight?: 0 | 1, ids: CallIds = sameIds): ChatMessage {
  const calls = step.assistant.toolCalls.map((call): ChatToolCall => ({ id: ids(call.id), type: 'function', function: { name: call.name, arguments: call.arguments } }));
  return {
    role: 'assistant',
    // A turn that only calls tools has no text: "", which every chat template renders (null breaks some).
    content: step.assistant.content ?? '',
    ...(step.assistant.reasoning ? { reasoning_content: step.assistant.reasoning } : {}),
    ...(calls.length ? { tool_calls: calls } : {}),
    ...(weight === undefined ? {} : { weight }),
  };
}

/** What followed the assistant turn: one tool message per call, or the nudge when it called none. */
export function resultMessages(step: StepEvent, ids: CallIds = sameIds): ChatMessage[] {
  if (!step.assistant.toolCalls.length) return [{ role: 'user', content: NO_TOOL_CALL_NUDGE }];
  return stepToolResults(step).map((result) => ({ role: 'tool' as const, tool_call_id: ids(result.id), content: result.content }));
}

export function hintMessages(step: TrajectoryStep, options: ChatOptions): ChatMessage[] {
  return options.hints ? step.hints.map((hint) => ({ role: 'user' as const, content: hintMessage(hint.kind, hint.text) })) : [];
}

/** Everything the model had seen before a step's request: system, task, earlier steps. */
export function promptMessages(trajectory: Pick<Trajectory, 'started'>, steps: readonly TrajectoryStep[], options: ChatOptions, weights = true): { messages: ChatMessage[]; usedIds: Set<string> } {
  const messages: ChatMessage[] = [
    { role: 'system', content: trajectory.started.systemPrompt },
    { role: 'user', content: trajectory.started.task },
  ];
  const usedIds = new Set<string>();
  for (const step of steps) {
    const ids = uniqueCallIds(usedIds, step.event);
    messages.push(...hintMessages(step, options), assistantMessage(step.event, weights ? step.mask : undefined, ids), ...resultMessages(step.event, ids));
  }
  return { messages, usedIds };
}

/** A conversation and where each of its steps' assistant turns is in it. */
export interface SegmentChat {
  segment: TrajectorySegment;
  messages: ChatMessage[];
  /** The segment's own steps, each with the index of its assistant message in `messages`. */
  turns: { step: TrajectoryStep; index: number }[];
  usedIds: Set<string>;
}

/**
 * One context the model saw: system, task, the summary that stood for the older steps (if any),
 * the steps carried over with it (weight 0: they were trained in the context before), then the
 * segment's own steps with their masks. `weights` false leaves `weight` off every message.
 */
export function segmentChat(trajectory: Pick<Trajectory, 'started'>, segment: TrajectorySegment, options: ChatOptions, weights = true): SegmentChat {
  const messages: ChatMessage[] = [
    { role: 'system', content: trajectory.started.systemPrompt },
    { role: 'user', content: trajectory.started.task },
  ];
  if (segment.summary) messages.push({ role: 'user', content: segment.summary.text });
  const usedIds = new Set<string>();
  const turns: SegmentChat['turns'] = [];
  const add = (step: TrajectoryStep, weight: 0 | 1 | undefined, own: boolean) => {
    const ids = uniqueCallIds(usedIds, step.event);
    messages.push(...hintMessages(step, options));
    if (own) turns.push({ step, index: messages.length });
    messages.push(assistantMessage(step.event, weights ? weight : undefined, ids), ...resultMessages(step.event, ids));
  };
  for (const step of segment.carried) add(step, 0, false);
  for (const step of segment.steps) add(step, step.mask, true);
  return { segment, messages, turns, usedIds };
}

/** The trajectory's contexts, cut at each compaction (one, the whole trajectory, with `whole`). */
export function segmentChats(trajectory: Trajectory, options: ChatOptions & { wholeTrajectories?: boolean }, weights = true): SegmentChat[] {
  return segmentsOf(trajectory, { whole: options.wholeTrajectories }).map((segment) => segmentChat(trajectory, segment, options, weights));
}

/** The record id of a segment: the trajectory's id, with `#k` for the k-th context after a compaction. */
export function segmentId(trajectory: Pick<Trajectory, 'id'>, segment: TrajectorySegment): string {
  return segment.index ? `${trajectory.id}#${segment.index}` : trajectory.id;
}

/** The assistant turn of a step that continues a conversation whose call ids are `usedIds`. */
export function continuation(step: StepEvent, usedIds: ReadonlySet<string>): ChatMessage {
  return assistantMessage(step, undefined, uniqueCallIds(new Set(usedIds), step));
}

/** The whole trajectory, every assistant message carrying its weight (0: kept as context only). */
export function chatOf(trajectory: Trajectory, options: ChatOptions): ChatMessage[] {
  return promptMessages(trajectory, trajectory.steps, options).messages;
}

/**
 * The problems that would make a trainer reject or mislearn a conversation: tool results not
 * paired with their call, weights on other than assistant messages, arguments that are not
 * strings, secret shapes left in the text. Empty when the conversation is sound.
 */
export function validateChat(messages: readonly ChatMessage[], options: { completion?: boolean } = {}): string[] {
  const problems: string[] = [];
  let open = new Set<string>();
  const seen = new Set<string>();
  messages.forEach((message, index) => {
    const where = `message ${index + 1} (${message.role})`;
    if ('weight' in message && message.role !== 'assistant') problems.push(`${where}: "weight" is only allowed on assistant messages`);
    if (message.role === 'assistant') {
      if (message.weight !== undefined && message.weight !== 0 && message.weight !== 1) problems.push(`${where}: "weight" must be 0 or 1`);
      if (open.size) problems.push(`${where}: tool call(s) ${[...open].join(', ')} have no tool result`);
      open = new Set();
      for (const call of message.tool_calls ?? []) {
        if (typeof call.function.arguments !== 'string') problems.push(`${where}: the arguments of ${call.function.name} are not a JSON string`);
        if (seen.has(call.id)) problems.push(`${where}: tool call id ${call.id} is used twice`);
        seen.add(call.id);
        open.add(call.id);
      }
    } else if (message.role === 'tool') {
      if (!open.delete(message.tool_call_id)) problems.push(`${where}: tool_call_id ${message.tool_call_id} answers no open tool call`);
    } else if (open.size) {
      problems.push(`${where}: tool call(s) ${[...open].join(', ')} have no tool result`);
      open = new Set();
    }
    const text = [message.content, ...(message.role === 'assistant' ? [message.reasoning_content ?? '', ...(message.tool_calls ?? []).map((call) => call.function.arguments)] : [])].join('\n');
    const shapes = findSecretShapes(text);
    if (shapes.length) problems.push(`${where}: holds a secret shape (${shapes.join(', ')})`);
  });
  // A completion (the chosen or rejected turn of a pair) ends with its calls; their results are not part of it.
  if (open.size && !options.completion) problems.push(`the last tool call(s) ${[...open].join(', ')} have no tool result`);
  return problems;
}
