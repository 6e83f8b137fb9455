/**
 * The hints of one run on their way to the model: the queue of hints not yet delivered, the inbox
 * other processes (`apollo hint`) write to, `now` hints that interrupt the model request in flight,
 * and the refusals of a run started with hints disabled. Owned by the run's session.
 */
import type { DatasetEvent, HintKind, HintUrgency, RunStatus } from '../dataset/events';
import { HINT_KINDS, HINT_URGENCIES } from '../dataset/events';
import { newHintId } from '../dataset/ids';
import type { InboxHint } from '../dataset/store';
import type { DeliverableHint } from '../agent/loop';
import { ConfigError } from './errors';

export const HINTS_DISABLED = (runId: string) => `Run ${runId} takes no hints: it was started with hints disabled (the control group of a hints comparison).`;

export interface PendingHint extends DeliverableHint {
  urgency: HintUrgency;
}

/** A model request in flight: aborting its controller with interruptedBy set sends it again with those hints. */
export interface InFlightRequest {
  controller: AbortController;
  interruptedBy?: string[];
}

export interface HintInboxHost {
  runId: string;
  /** No hint reaches the run (the control group of a hints comparison). */
  hintsDisabled?: boolean;
  /** Takes the hints other processes left in the run's inbox, each once. */
  takeInboxHints(): Promise<InboxHint[]>;
  record(event: DatasetEvent): Promise<void>;
  log(line: string): void;
  /** Why a hint can no longer reach the run (it ended), or undefined while it can. */
  closed(): string | undefined;
  /** Called when hints joined the queue, before a `now` hint interrupts the request in flight (a run paused on errors resumes). */
  onQueued(): void;
  /** How often the inbox is checked for urgent hints while a request is in flight. */
  inboxPollMs: number;
}

const now = () => new Date().toISOString();

export class HintInbox {
  private readonly pendingHints: PendingHint[] = [];
  private pullingInbox: Promise<InboxHint[]> | undefined;
  private inFlight: InFlightRequest | undefined;

  /** `pending`: hints queued but not delivered before the run was interrupted (a resumed run). */
  constructor(
    private readonly host: HintInboxHost,
    pending: PendingHint[] = [],
  ) {
    this.pendingHints.push(...pending);
  }

  /**
   * Queues a hint. `next` (default) reaches the model in its next request; `now` interrupts the
   * request in flight and sends it again with the hint. Returns the hint's id.
   */
  async inject(text: string, kind: HintKind = 'knowledge', source = 'human', urgency: HintUrgency = 'next'): Promise<string> {
    if (typeof text !== 'string' || text.trim() === '') throw new ConfigError('The hint is empty: type what the agent should know.');
    if (!HINT_KINDS.includes(kind)) throw new ConfigError(`Unknown hint kind "${kind}": use ${HINT_KINDS.join(', ')}.`);
    if (!HINT_URGENCIES.includes(urgency)) throw new ConfigError(`Unknown urgency "${urgency}": use next or now.`);
    const closed = this.host.closed();
    if (closed !== undefined) throw new ConfigError(closed);
    if (this.host.hintsDisabled) throw new ConfigError(HINTS_DISABLED(this.host.runId));
    const hintId = newHintId();
    await this.host.record({ type: 'hint_queued', time: now(), hintId, text, kind, source, urgency });
    this.pendingHints.push({ hintId, text, kind, urgency });
    this.afterHintQueued([{ hintId, urgency }]);
    return hintId;
  }

  private afterHintQueued(hints: { hintId: string; urgency: HintUrgency }[]): void {
    this.host.onQueued();
    const urgent = hints.filter((hint) => hint.urgency === 'now').map((hint) => hint.hintId);
    if (urgent.length && this.inFlight && !this.inFlight.controller.signal.aborted) {
      this.inFlight.interruptedBy = urgent;
      this.inFlight.controller.abort();
    }
  }

  /** Moves hints sent by other processes (`apollo hint`) from the inbox into the queue. */
  pull(): Promise<InboxHint[]> {
    this.pullingInbox ??= (async () => {
      try {
        const taken = await this.host.takeInboxHints();
        const hints = this.host.hintsDisabled ? [] : taken;
        if (this.host.hintsDisabled) {
          for (const hint of taken) await this.host.record({ type: 'hint_undelivered', time: now(), hintId: hint.hintId, reason: HINTS_DISABLED(this.host.runId) });
        }
        for (const hint of hints) {
          const urgency = hint.urgency ?? 'next';
          await this.host.record({ type: 'hint_queued', time: now(), hintId: hint.hintId, text: hint.text, kind: hint.kind, source: hint.source, urgency });
          this.pendingHints.push({ hintId: hint.hintId, text: hint.text, kind: hint.kind, urgency });
        }
        if (hints.length) this.afterHintQueued(hints.map((hint) => ({ hintId: hint.hintId, urgency: hint.urgency ?? 'next' })));
        return hints;
      } finally {
        this.pullingInbox = undefined;
      }
    })();
    return this.pullingInbox;
  }

  /** Hints from the panel and from other processes, each handed out once. */
  async take(): Promise<DeliverableHint[]> {
    await this.pull();
    return this.pendingHints.splice(0).map(({ hintId, text, kind }) => ({ hintId, text, kind }));
  }

  /** Whether a hint waits for delivery, after looking in the inbox. */
  async hasPending(): Promise<boolean> {
    await this.pull();
    return this.pendingHints.length > 0;
  }

  /**
   * Watches a model request while it is in flight: a `now` hint interrupts it, and the inbox is
   * checked for urgent hints from other processes meanwhile. Returns what ends the watch.
   */
  watch(request: InFlightRequest): () => void {
    this.inFlight = request;
    // Urgent hints from other processes arrive through the inbox while the model thinks.
    const poll = setInterval(() => void this.pull().catch(() => undefined), this.host.inboxPollMs);
    return () => {
      clearInterval(poll);
      if (this.inFlight === request) this.inFlight = undefined;
    };
  }

  /** Hints queued (here or through the inbox) that the run ended before it could deliver. */
  async recordUndelivered(status: RunStatus): Promise<void> {
    await this.pull().catch(() => undefined);
    for (const hint of this.pendingHints.splice(0)) {
      const reason = `the run ended (${status}) before its next model request`;
      this.host.log(`Hint ${hint.hintId} was not delivered: ${reason}.`);
      await this.host.record({ type: 'hint_undelivered', time: now(), hintId: hint.hintId, reason }).catch(() => undefined);
    }
  }
}
