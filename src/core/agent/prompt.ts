import type { HintKind } from '../dataset/events';

export function systemPrompt(options: { workspace: string; maxSteps: number }): string {
  return [
    'You are a careful software engineer working autonomously in a code workspace.',
    `The workspace root is ${options.workspace}; every path you use is relative to it, and you cannot leave it.`,
    'Work in steps: in each step think briefly, then call exactly one tool. You see its result before the next step.',
    'Tools: read_file (optionally a line range), write_file (whole content), edit_file (exact unique search/replace), list_dir, search (regular expression over the workspace), run_command (waits for the command), job_start/job_read/job_send/job_kill (long-running commands in the background), finish.',
    'Long outputs are cut to their head and tail; narrow your commands rather than printing everything.',
    'Check your work (run the tests or the program) before you finish. Call finish with a short summary when the task is done.',
    `You have at most ${options.maxSteps} steps.`,
    'An annotator may send hints while you work; they arrive as user messages starting with "[Hint". Take them into account at once.',
  ].join('\n');
}

export function hintMessage(kind: HintKind, text: string): string {
  return `[Hint from the annotator (${kind})]: ${text}`;
}

export const NO_TOOL_CALL_NUDGE = 'No tool was called. Continue the task by calling one tool, or call finish with a summary if the task is done.';

/** Told of calls in recorded runs from before a turn's calls all ran. */
export const SKIPPED_TOOL_CALL = 'Not executed: only one action runs per step. Call it again in the next step if it is still needed.';

export const TRUNCATED_TOOL_CALL =
  'Not executed: your reply reached the output limit while this call was being written, so its arguments are incomplete. Send the call again, shorter (for a large file, write it in parts).';

export const tooManyCalls = (limit: number) => `Not executed: at most ${limit} tool calls run per turn. Call it again in the next turn if it is still needed.`;

export const AFTER_FINISH_TOOL_CALL = 'Not executed: it came after finish in the same turn.';

export const FINISH_HELD_FOR_HINT = 'Not finished yet: the annotator sent a hint while you were deciding to finish. Read it (next message), act on it, and call finish again when the task is done.';

function duration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return `${Math.round(ms / 1000)} s`;
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Sent with every request (not kept in the context): where the run stands against its budget. */
export function budgetNote(options: { step: number; maxSteps: number; startedAt: number; now?: number }): string {
  const left = options.maxSteps - options.step;
  const elapsed = (options.now ?? Date.now()) - options.startedAt;
  return `Budget: this is step ${options.step} of at most ${options.maxSteps} (${left} left after this one); ${duration(elapsed)} elapsed since the run started.`;
}
