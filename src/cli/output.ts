/** How runs are shown on the terminal: steps, the context window, trouble, and how a run ended. */
import type { DatasetEvent, RunEndedEvent, ToolCallRecord } from '../core/dataset/events';
import type { CliIo } from './io';

export type StepEvent = Extract<DatasetEvent, { type: 'step' }>;

/** A tool call in a few words: its name and its main argument. */
function describeAction(action: ToolCallRecord | null): string {
  const tool = action?.name ?? '(no tool call)';
  let detail = '';
  if (action) {
    try {
      const args = JSON.parse(action.arguments) as Record<string, unknown>;
      // Only a string names the action; a model can send an object where a path belongs.
      const main = [args.path, args.command, args.summary].find((value) => typeof value === 'string') ?? '';
      detail = main.replace(/\s+/g, ' ').slice(0, 80);
    } catch {
      detail = '(invalid arguments)';
    }
  }
  return `${tool} ${detail}`;
}

function describeDiff(grounding: StepEvent['grounding']): string {
  const added = grounding.files.reduce((sum, file) => sum + file.additions, 0);
  const removed = grounding.files.reduce((sum, file) => sum + file.deletions, 0);
  return grounding.files.length ? `  ${grounding.files.length} file(s) +${added} -${removed}` : '';
}

/** How much of a step's reasoning --verbose prints. */
export const REASONING_SHOWN = 2000;

/**
 * A step in one line; with `verbose`, followed by its reasoning (indented, cut at
 * REASONING_SHOWN characters) and its further actions, one line each.
 */
export function describeStep(event: StepEvent, verbose = false): string {
  const line = `step ${event.step} ${describeAction(event.action)}${describeDiff(event.grounding)}${event.isError ? '  [error]' : ''}`.replace(/ +$/, '');
  if (!verbose) return line;
  const lines = [line];
  const reasoning = event.assistant.reasoning?.trim();
  if (reasoning) {
    const shown = reasoning.length > REASONING_SHOWN ? `${reasoning.slice(0, REASONING_SHOWN)} […]` : reasoning;
    lines.push('    reasoning:', ...shown.split(/\r?\n/).map((text) => `      ${text}`.replace(/ +$/, '')));
  }
  if (event.assistant.truncated) lines.push('    (the reply was cut by the output limit)');
  for (const more of event.moreActions ?? []) {
    lines.push(`    + ${describeAction(more.action)}${describeDiff(more.grounding)}${more.isError ? '  [error]' : ''}`.replace(/ +$/, ''));
  }
  return lines.join('\n');
}

const WINDOW_SOURCES: Record<Extract<DatasetEvent, { type: 'context_window' }>['source'], string> = {
  server: 'from the server',
  setting: 'from the settings',
  default: 'a cautious default',
  refusal: 'the server refused a longer prompt',
};

/** The context window in one line: its size, where that came from, and the prompt budget worked to. */
export function describeContextWindow(event: Extract<DatasetEvent, { type: 'context_window' }>): string {
  const size = event.windowTokens !== undefined ? `${event.windowTokens} tokens` : 'not known';
  return `context window ${size} (${event.detail ?? WINDOW_SOURCES[event.source] ?? event.source}); prompt budget ${event.budgetTokens}`;
}

/** What goes wrong during a run, said on stderr. */
export function describeTrouble(event: DatasetEvent, runId: string, io: CliIo, prefix = ''): void {
  if (event.type === 'judge_usage' && event.error) io.stderr(`${prefix}judge: ${event.error} (steps ${event.steps.join(', ')} stay unjudged; the run goes on)\n`);
  else if (event.type === 'model_retry') io.stderr(`${prefix}model request failed (attempt ${event.attempt}): ${event.error}; retrying in ${Math.round(event.waitMs / 1000)} s\n`);
  else if (event.type === 'external_change') {
    const when = event.phase === 'during_request' ? `while the model answered step ${event.step}` : `before step ${event.step}`;
    io.stderr(`${prefix}warning: the workspace changed outside the agent ${when}: ${event.grounding.files.map((file) => file.path).join(', ')} (recorded apart, not in the step's diff)\n`);
  } else if (event.type === 'hint_undelivered') {
    io.stderr(`${prefix}hint ${event.hintId} not delivered: ${event.reason}\n`);
  } else if (event.type === 'notice') {
    io.stderr(`${prefix}note: ${event.step !== undefined ? `step ${event.step}: ` : ''}${event.message}\n`);
  } else if (event.type === 'run_state' && event.state === 'paused' && event.reason) {
    io.stderr(`${prefix}PAUSED: ${event.reason}\nSend a hint to continue: apollo hint --run ${runId} "…" (or Ctrl+C to stop).\n`);
  }
}

/** Statuses a run ends with that count as success: it stopped where it was meant to. */
export const CLEAN_ENDS = new Set(['finished', 'max_steps', 'budget']);

export function endLine(runId: string, ended: RunEndedEvent): string {
  const why = ended.error ? `: ${ended.error}` : ended.summary ? `: ${ended.summary}` : '';
  return `run ${runId} ${ended.status} after ${ended.steps} step(s)${why}\n`;
}
