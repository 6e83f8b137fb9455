/**
 * Whether a model's earlier reasoning goes back into its context, and how. Models trained for
 * interleaved thinking across tool calls expect their reasoning back on the next request; the
 * others are best served without it (it costs context and some servers refuse it).
 * - GLM-4.5 and later (Z.ai, vLLM/SGLang chat templates read `reasoning_content` of earlier turns);
 * - Kimi K2 thinking models (Moonshot asks to keep `reasoning_content` across tool calls);
 * - DeepSeek in thinking mode with tools (V3.2: `reasoning_content` is passed back within a task);
 * - MiniMax M2 (its docs ask for the `<think>…</think>` text to stay in the assistant content).
 */
import type { AssistantRecord, ReasoningInContext } from '../dataset/events';
import type { ChatMessage } from './modelClient';

const INTERLEAVED_THINKING = /glm-?4\.[5-9]|glm-?[5-9](\b|[.-])|kimi|\bk2\b|minimax|deepseek/i;
const INLINE_THINKING = /minimax/i;

export function keepsReasoning(policy: ReasoningInContext, model: string): boolean {
  if (policy === 'always') return true;
  if (policy === 'never') return false;
  return INTERLEAVED_THINKING.test(model);
}

/** The assistant message of a turn as it goes back into the model's context. */
export function assistantContextMessage(turn: AssistantRecord, keepReasoning: boolean, model: string): ChatMessage {
  const reasoning = keepReasoning && turn.reasoning ? turn.reasoning : undefined;
  const inline = reasoning !== undefined && INLINE_THINKING.test(model);
  const content = inline ? `<think>${reasoning}</think>\n\n${turn.content ?? ''}` : turn.content;
  return {
    role: 'assistant',
    content,
    ...(reasoning !== undefined && !inline ? { reasoning_content: reasoning } : {}),
    ...(turn.toolCalls.length
      ? {
          tool_calls: turn.toolCalls.map((call) => ({
            id: call.id,
            type: 'function' as const,
            function: { name: call.name, arguments: call.arguments },
            // Provider fields the server asked to get back (Google's thought signature).
            ...(call.extra ?? {}),
          })),
        }
      : {}),
  };
}
