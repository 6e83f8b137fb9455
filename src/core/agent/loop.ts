/**
 * The agent loop. One step = one model turn + at most one executed tool call, grounded in the
 * diff between the snapshot taken when the model request was sent and the one taken after the
 * action. Each step's event is flushed before the next step starts.
 */
import type { DatasetEvent, HintKind, RunEndStatus, StepEvent, TokenUsage } from '../dataset/events';
import type { ShadowStore } from '../grounding/shadowStore';
import { ChatMessage, ModelClient, ModelError } from './modelClient';
import { hintMessage, NO_TOOL_CALL_NUDGE, SKIPPED_TOOL_CALL } from './prompt';
import { TOOL_DEFINITIONS, ToolRunner } from './tools';

export interface DeliverableHint {
  hintId: string;
  text: string;
  kind: HintKind;
}

export interface LoopControl {
  /** Writes an event to the dataset (flushed) and tells listeners. */
  record(event: DatasetEvent): Promise<void>;
  /** Hints to put into the next model request; each is handed out once. */
  takeHints(): Promise<DeliverableHint[]>;
  /** Resolves at once unless the run is paused; then when it is resumed or stopped. */
  waitWhilePaused(): Promise<void>;
  /** Aborted by stop: cancels the in-flight model request or command. */
  signal: AbortSignal;
}

export interface LoopOptions {
  client: ModelClient;
  tools: ToolRunner;
  shadow: ShadowStore;
  systemPrompt: string;
  task: string;
  maxSteps: number;
  control: LoopControl;
}

export interface LoopOutcome {
  status: RunEndStatus;
  steps: number;
  summary?: string;
  error?: string;
}

const now = () => new Date().toISOString();

export async function runAgentLoop(options: LoopOptions): Promise<LoopOutcome> {
  const { client, tools, shadow, control } = options;
  const messages: ChatMessage[] = [
    { role: 'system', content: options.systemPrompt },
    { role: 'user', content: options.task },
  ];
  let step = 0;
  const stopped = (): LoopOutcome => ({ status: 'stopped', steps: step });

  try {
    while (step < options.maxSteps) {
      await control.waitWhilePaused();
      if (control.signal.aborted) return stopped();
      const number = step + 1;

      for (const hint of await control.takeHints()) {
        messages.push({ role: 'user', content: hintMessage(hint.kind, hint.text) });
        await control.record({ type: 'hint_delivered', time: now(), hintId: hint.hintId, step: number });
      }

      const before = await shadow.snapshot();
      const modelStarted = Date.now();
      let turn;
      try {
        turn = await client.complete({ messages, tools: TOOL_DEFINITIONS, signal: control.signal });
      } catch (error) {
        if (control.signal.aborted) return stopped();
        throw error;
      }
      const modelMs = Date.now() - modelStarted;

      const [action, ...extra] = turn.toolCalls;
      messages.push({
        role: 'assistant',
        content: turn.content,
        ...(turn.toolCalls.length
          ? {
              tool_calls: turn.toolCalls.map((call) => ({
                id: call.id,
                type: 'function' as const,
                function: { name: call.name, arguments: call.arguments },
              })),
            }
          : {}),
      });

      const toolStarted = Date.now();
      let observation: string;
      let isError = false;
      let finished: { summary: string } | undefined;
      if (action) {
        const result = await tools.run(action, control.signal);
        observation = result.observation;
        isError = result.isError;
        finished = result.finished;
        messages.push({ role: 'tool', tool_call_id: action.id, content: observation });
        for (const call of extra) messages.push({ role: 'tool', tool_call_id: call.id, content: SKIPPED_TOOL_CALL });
      } else {
        observation = NO_TOOL_CALL_NUDGE;
        messages.push({ role: 'user', content: observation });
      }
      const toolMs = Date.now() - toolStarted;

      const after = await shadow.snapshot();
      const grounding = await shadow.ground(before, after);
      const event: StepEvent = {
        type: 'step',
        time: now(),
        step: number,
        assistant: { content: turn.content, toolCalls: turn.toolCalls },
        action: action ?? null,
        observation,
        isError,
        ...(extra.length ? { skippedToolCalls: extra.map((call) => ({ id: call.id, content: SKIPPED_TOOL_CALL })) } : {}),
        grounding,
        ...(turn.usage ? { usage: turn.usage as TokenUsage } : {}),
        modelMs,
        toolMs,
      };
      await control.record(event);
      step = number;

      if (finished) return { status: 'finished', steps: step, summary: finished.summary };
      if (control.signal.aborted) return stopped();
    }
    return { status: 'max_steps', steps: step };
  } catch (error) {
    if (control.signal.aborted) return stopped();
    const message = error instanceof ModelError ? error.message : `The run failed: ${(error as Error)?.message ?? String(error)}`;
    return { status: 'failed', steps: step, error: message };
  }
}
