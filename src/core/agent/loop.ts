/**
 * The agent loop. One step = one model turn + the tool calls it asked for, each grounded in the
 * diff between the snapshot before it and the one after it. The first call's diff starts from
 * the snapshot taken when the model's reply arrived: whatever changed between the request and
 * the reply (the user editing while the model thought) is an `external_change` of the step,
 * never the agent's. "Before step N" stays the snapshot taken when the request was sent. Each
 * step's event is flushed before the next step starts. Model faults are retried
 * with backoff (honouring Retry-After) and, after too many in a row, the run pauses and waits
 * for the annotator instead of burning budget.
 */
import type { ActionResult, BudgetKind, DatasetEvent, Grounding, HintKind, RunEndStatus, SamplingOptions, StepEvent } from '../dataset/events';
import { type ContextManager, estimateTokens, readContextRefusal, SUMMARY_INSTRUCTIONS, transcript } from './context';
import { type ChatMessage, type ChatModelClient, ModelError, type ModelTurn } from './modelClient';
import { AFTER_FINISH_TOOL_CALL, budgetNote, FINISH_HELD_FOR_HINT, hintMessage, NO_TOOL_CALL_NUDGE, tooManyCalls, TRUNCATED_TOOL_CALL } from './prompt';
import { assistantContextMessage } from './reasoning';
import { TOOL_DEFINITIONS, type ToolRunner } from './tools';

export interface DeliverableHint {
  hintId: string;
  text: string;
  kind: HintKind;
}

/** What grounding the loop needs: snapshots and the diff between two of them. */
export interface Grounder {
  snapshot(): Promise<string>;
  ground(before: string, after: string): Promise<Grounding>;
}

/**
 * Files someone other than the agent saved while one action ran (an editor's saves). An action's
 * diff cannot tell such a save from the agent's own write, so the step's grounding is marked
 * mixed, naming them. The CLI has no such source: there, edits made while an action runs stay in
 * its diff.
 */
export type WatchOutsideSaves = () => {
  /** Stops noting saves; the workspace-relative paths saved since the watch began, each once. */
  end(): string[];
};

/** A model request that can be cut short by stop (ends the run) or an urgent hint (re-sent). */
export interface RequestHandle {
  signal: AbortSignal;
  /** Ids of the urgent hints that interrupted this request, if that is why it was aborted. */
  interruptedBy(): string[] | undefined;
  end(): void;
}

export interface LoopControl {
  /** Writes an event to the dataset (flushed) and tells listeners. */
  record(event: DatasetEvent): Promise<void>;
  /** Hints to put into the next model request; each is handed out once. */
  takeHints(): Promise<DeliverableHint[]>;
  /** True when hints are waiting for the next request (checked before a finish is carried out). */
  hasPendingHints?(): Promise<boolean>;
  /** Resolves at once unless the run is paused; then when it is resumed or stopped. */
  waitWhilePaused(): Promise<void>;
  /** Pauses the run until the annotator resumes it (or sends a hint). */
  pauseForErrors(reason: string): void;
  beginRequest(): RequestHandle;
  /**
   * Asked between steps, with the number of steps done: the time or token budget the run has
   * reached, with the words saying so; the run then ends with status `budget`.
   */
  budgetReached?(steps: number): { kind: BudgetKind; summary: string } | undefined;
  /** Aborted by stop: cancels the in-flight model request or command. */
  signal: AbortSignal;
}

export interface LoopOptions {
  client: ChatModelClient;
  tools: ToolRunner;
  grounder: Grounder;
  context: ContextManager;
  maxSteps: number;
  control: LoopControl;
  /** The first step to run (1 for a new run, later when resuming). */
  firstStep?: number;
  /** When the run started, for the budget note. */
  startedAt?: number;
  /** The snapshot after the last recorded action, when resuming. */
  lastSnapshot?: string;
  maxConsecutiveFailures?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** What the model may read of an observation (secrets redacted, unless the user lets it see them). */
  forModel?: (text: string) => string;
  /** Sent with every request of the run. */
  sampling?: SamplingOptions;
  /** Earlier turns' reasoning goes back to the model (models trained for interleaved thinking). */
  keepReasoning?: boolean;
  /** Begun right before each action runs and ended once its after-snapshot is taken; absent: none. */
  watchOutsideSaves?: WatchOutsideSaves;
}

export interface LoopOutcome {
  status: RunEndStatus;
  steps: number;
  summary?: string;
  error?: string;
  /** With status `budget`: which budget was reached. */
  budget?: BudgetKind;
}

const now = () => new Date().toISOString();

/** A turn's calls past this many are not run (the model is told why): one reply cannot fan out without bound. */
export const MAX_CALLS_PER_TURN = 16;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function isEmptyTurn(turn: ModelTurn): boolean {
  return turn.toolCalls.length === 0 && (turn.content ?? '').trim() === '';
}

export async function runAgentLoop(options: LoopOptions): Promise<LoopOutcome> {
  const { client, tools, grounder, context, control } = options;
  const maxFailures = options.maxConsecutiveFailures ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 60_000;
  const startedAt = options.startedAt ?? Date.now();
  let step = (options.firstStep ?? 1) - 1;
  /** The snapshot after the last action: a different tree before the next request means someone else changed files. */
  let lastAfter = options.lastSnapshot;
  const stopped = (): LoopOutcome => ({ status: 'stopped', steps: step });
  let reachedModel = false;
  /** Set once the endpoint's token counts were found unbelievable (said once). */
  let usageDoubted = false;

  /** Replaces older steps by a state snapshot when the next prompt would pass the budget. */
  async function compactIfNeeded(number: number, noteTokens: number): Promise<void> {
    if (!context.needsCompaction(noteTokens)) return;
    const plan = context.planCompaction();
    if (!plan) return;
    const throughStep = plan.summarized[plan.summarized.length - 1].step;
    let snapshot: string;
    let usage;
    try {
      const turn = await client.complete({
        messages: [
          { role: 'system', content: SUMMARY_INSTRUCTIONS },
          { role: 'user', content: transcript(plan.summarized, context.summaryText) },
        ],
        signal: control.signal,
      });
      snapshot = turn.content ?? '';
      usage = turn.usage;
      if (!snapshot.trim()) throw new Error('empty summary');
    } catch {
      if (control.signal.aborted) return;
      // The run goes on without the model's summary: a plain record of the actions stands in.
      snapshot = transcript(plan.summarized.slice(-5), undefined, 300);
    }
    const compaction = context.applyCompaction(context.composeSummary(snapshot, throughStep), plan.keptFromStep);
    await control.record({
      type: 'summary',
      time: now(),
      step: number,
      keptFromStep: compaction.keptFromStep,
      text: compaction.text,
      tokensBefore: compaction.tokensBefore,
      tokensAfter: compaction.tokensAfter,
      ...(usage ? { usage } : {}),
    });
  }

  try {
    while (step < options.maxSteps) {
      await control.waitWhilePaused();
      if (control.signal.aborted) return stopped();
      const reached = control.budgetReached?.(step);
      if (reached) return { status: 'budget', steps: step, budget: reached.kind, summary: reached.summary };
      const number = step + 1;

      let turn: ModelTurn | undefined;
      let before = '';
      let modelMs = 0;
      let failures = 0;
      while (!turn) {
        for (const hint of await control.takeHints()) {
          context.add(number, { role: 'user', content: hintMessage(hint.kind, hint.text) });
          context.noteHint({ step: number, kind: hint.kind, text: hint.text });
          await control.record({ type: 'hint_delivered', time: now(), hintId: hint.hintId, step: number });
        }
        const note: ChatMessage = { role: 'system', content: budgetNote({ step: number, maxSteps: options.maxSteps, startedAt }) };
        const noteTokens = estimateTokens(note);
        await compactIfNeeded(number, noteTokens);
        if (control.signal.aborted) return stopped();

        before = await grounder.snapshot();
        if (lastAfter && before !== lastAfter) {
          // Changes made between steps belong to whoever made them, never to the next action.
          await control.record({ type: 'external_change', time: now(), step: number, phase: 'before_request', grounding: await grounder.ground(lastAfter, before) });
        }
        lastAfter = before;
        const request = control.beginRequest();
        const started = Date.now();
        const rawTokens = context.rawPromptTokens(noteTokens);
        try {
          const candidate = await client.complete({ messages: context.prompt([note]), tools: TOOL_DEFINITIONS, signal: request.signal, sampling: options.sampling });
          if (isEmptyTurn(candidate)) throw new ModelError('The model sent an empty reply.', 'protocol');
          turn = candidate;
          reachedModel = true;
          modelMs = Date.now() - started;
          if (turn.usage && !context.calibrate(turn.usage.promptTokens, rawTokens) && !usageDoubted) {
            usageDoubted = true;
            await control.record({
              type: 'notice',
              time: now(),
              step: number,
              message: `The endpoint reported ${turn.usage.promptTokens} prompt tokens for a prompt of about ${rawTokens} estimated tokens; such counts are not believed, and the context is kept within budget by estimate.`,
            });
          }
        } catch (error) {
          if (control.signal.aborted) return stopped();
          const urgent = request.interruptedBy();
          if (urgent) {
            // An urgent hint arrived: send the request again, with the hint.
            await control.record({ type: 'request_interrupted', time: now(), step: number, hintIds: urgent });
            continue;
          }
          const modelError = error instanceof ModelError ? error : new ModelError(String((error as Error)?.message ?? error), 'protocol');
          if (modelError.kind === 'context') {
            // The prompt did not fit: compact harder and send again; never a reason to fail the run.
            const said = readContextRefusal(modelError.message);
            if (said.promptTokens) context.calibrate(said.promptTokens, rawTokens);
            const budgetTokens = context.shrinkAfterRefusal(said.windowTokens, options.sampling?.maxOutputTokens);
            await control.record({
              type: 'context_window',
              time: now(),
              ...(said.windowTokens ? { windowTokens: said.windowTokens } : {}),
              budgetTokens,
              source: 'refusal',
              detail: modelError.message,
            });
          }
          // An endpoint never reached is a configuration problem; one that answered before is retried.
          const tooLong = modelError.kind === 'context';
          if (!tooLong && (!modelError.retryable || (modelError.kind === 'unreachable' && !reachedModel))) throw modelError;
          failures++;
          const pausing = failures >= maxFailures;
          const waitMs = pausing || tooLong ? 0 : Math.min(retryMaxMs, modelError.retryAfterMs ?? retryBaseMs * 2 ** (failures - 1));
          await control.record({
            type: 'model_retry',
            time: now(),
            step: number,
            attempt: failures,
            error: tooLong ? `${modelError.message} The context is compacted to ${context.budgetTokens} tokens and the request sent again.` : modelError.message,
            ...(modelError.status ? { status: modelError.status } : {}),
            waitMs,
          });
          if (pausing) {
            control.pauseForErrors(`${failures} model requests in a row failed; the last: ${modelError.message}`);
            await control.waitWhilePaused();
            failures = 0;
          } else {
            await sleep(waitMs, control.signal);
          }
          if (control.signal.aborted) return stopped();
        } finally {
          request.end();
        }
      }

      context.add(number, assistantContextMessage(turn, options.keepReasoning ?? false, client.model));

      // The reply is in: what changed since the request was sent is someone else's, and the
      // action's diff starts from here. The store is watcher-fed, so this costs little when
      // nothing changed (the same snapshot comes back).
      const replyStarted = Date.now();
      const replied = await grounder.snapshot();
      let groundingMs = Date.now() - replyStarted;
      let requestSnapshot: string | undefined;
      if (replied !== before) {
        const groundingStarted = Date.now();
        const during = await grounder.ground(before, replied);
        groundingMs += Date.now() - groundingStarted;
        if (during.files.length) {
          await control.record({ type: 'external_change', time: now(), step: number, phase: 'during_request', grounding: during });
          requestSnapshot = before;
        }
      }

      // Every call of the turn runs, in order, each grounded in its own diff; what cannot run (a
      // call cut by the output limit, calls after finish) is told to the model with the reason.
      const cut = turn.truncated ? turn.toolCalls[turn.toolCalls.length - 1] : undefined;
      const executed: ActionResult[] = [];
      const skipped: { id: string; content: string }[] = [];
      let finished: { summary: string } | undefined;
      let heldFinish = false;
      let previous = replied;
      for (const call of turn.toolCalls) {
        let content: string | undefined;
        if (call === cut) content = TRUNCATED_TOOL_CALL;
        else if (finished || heldFinish) content = AFTER_FINISH_TOOL_CALL;
        else if (executed.length >= MAX_CALLS_PER_TURN) content = tooManyCalls(MAX_CALLS_PER_TURN);
        if (content !== undefined) {
          skipped.push({ id: call.id, content });
          context.add(number, { role: 'tool', tool_call_id: call.id, content });
          continue;
        }
        const toolStarted = Date.now();
        const saves = options.watchOutsideSaves?.();
        let result: { observation: string; isError: boolean; finished?: { summary: string }; fullOutput?: string };
        if (call.name === 'finish' && (await control.hasPendingHints?.())) {
          // A hint came in while the model was deciding to finish: it goes to the model first.
          heldFinish = true;
          result = { observation: FINISH_HELD_FOR_HINT, isError: false };
        } else {
          try {
            result = await tools.run(call, { signal: control.signal, step: number });
          } catch (error) {
            saves?.end();
            throw error;
          }
        }
        const toolMs = Date.now() - toolStarted;
        const groundingStarted = Date.now();
        const after = await grounder.snapshot();
        let grounding = await grounder.ground(previous, after);
        groundingMs += Date.now() - groundingStarted;
        // Only saves that reach the diff make it mixed (a save of an unchanged or ignored file does not).
        const saved = new Set(saves?.end() ?? []);
        const savedOutside = grounding.files.filter((file) => saved.has(file.path) || (file.oldPath !== undefined && saved.has(file.oldPath))).map((file) => file.path);
        if (savedOutside.length) grounding = { ...grounding, mixed: { files: savedOutside } };
        previous = after;
        finished = result.finished;
        executed.push({ action: call, observation: result.observation, isError: result.isError, grounding, toolMs, ...(result.fullOutput ? { fullOutput: result.fullOutput } : {}) });
        context.add(number, { role: 'tool', tool_call_id: call.id, content: options.forModel ? options.forModel(result.observation) : result.observation });
        if (control.signal.aborted) break;
      }
      if (!turn.toolCalls.length) context.add(number, { role: 'user', content: NO_TOOL_CALL_NUDGE });

      const first: ActionResult | undefined = executed[0];
      // Nothing ran: the step changed nothing (what changed while the model answered is recorded above).
      const grounding: Grounding = first?.grounding ?? { before: replied, after: replied, files: [], patch: '' };
      lastAfter = previous;
      const event: StepEvent = {
        type: 'step',
        time: now(),
        step: number,
        assistant: {
          content: turn.content,
          toolCalls: turn.toolCalls,
          ...(turn.reasoning ? { reasoning: turn.reasoning } : {}),
          ...(turn.truncated ? { truncated: true } : {}),
        },
        action: first?.action ?? null,
        observation: first ? first.observation : turn.toolCalls.length ? skipped.map((entry) => entry.content).join('\n') : NO_TOOL_CALL_NUDGE,
        isError: first?.isError ?? false,
        ...(skipped.length ? { skippedToolCalls: skipped } : {}),
        grounding,
        ...(requestSnapshot ? { requestSnapshot } : {}),
        ...(executed.length > 1 ? { moreActions: executed.slice(1) } : {}),
        ...(turn.usage ? { usage: turn.usage } : {}),
        modelMs,
        toolMs: executed.reduce((sum, part) => sum + part.toolMs, 0),
        groundingMs,
        ...(first?.fullOutput ? { fullOutput: first.fullOutput } : {}),
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
