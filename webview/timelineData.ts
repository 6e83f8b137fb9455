/**
 * The panel's copy of the open run: the steps in order, and what hangs off them (hints delivered
 * at a step, attention flags, summaries). Updated message by message; nothing here touches the DOM.
 */
import type { AttentionFlagView, LabelBadge, RunView, TimelineHint, TimelineNote, TimelineStep } from '../src/protocol';
import { formatInteger, oneLine } from './format';

export type InitPayload = { run: RunView | null; steps: TimelineStep[]; hints: TimelineHint[]; notes?: TimelineNote[]; attention: AttentionFlagView[]; unseen?: number };

/** One line shown inside a step's item, above its head. */
export interface StepNote {
  kind: 'branch' | 'summary' | 'hint' | 'flag' | 'mixed' | TimelineNote['kind'];
  text: string;
  title: string;
}

export class TimelineData {
  run: RunView | null = null;
  steps: TimelineStep[] = [];
  hints: TimelineHint[] = [];
  /** Notices, refused prompts and undelivered hints, each shown above the item of its step. */
  notes: TimelineNote[] = [];
  attention: AttentionFlagView[] = [];
  /** Flags raised since the annotator last looked (from the host's `attention` messages). */
  unseen = 0;
  private indexByStep = new Map<number, number>();
  private hintsAtStep = new Map<number, TimelineHint[]>();
  private flagsAtStep = new Map<number, AttentionFlagView[]>();
  private notesAtStep = new Map<number, TimelineNote[]>();
  private summaries = new Map<number, { tokensBefore: number; tokensAfter: number }>();
  /** Step numbers with at least one flag, ascending. */
  private flagged: number[] = [];

  reset(payload: InitPayload): void {
    this.run = payload.run;
    this.steps = Array.isArray(payload.steps) ? payload.steps : [];
    this.hints = Array.isArray(payload.hints) ? payload.hints : [];
    this.attention = Array.isArray(payload.attention) ? payload.attention : [];
    this.unseen = typeof payload.unseen === 'number' ? payload.unseen : 0;
    this.summaries.clear();
    // Steps are in step order; a host that sent them otherwise is put right once, here.
    for (let i = 1; i < this.steps.length; i++) {
      if (this.steps[i].step <= this.steps[i - 1].step) {
        this.steps = [...new Map(this.steps.map((step) => [step.step, step])).values()].sort((a, b) => a.step - b.step);
        break;
      }
    }
    this.reindex();
    this.hintsAtStep.clear();
    for (const hint of this.hints) if (hint.deliveredAtStep !== undefined) this.pushHint(hint, hint.deliveredAtStep);
    this.flagsAtStep.clear();
    this.flagged = [];
    for (const flag of this.attention) this.pushFlag(flag);
    this.notes = Array.isArray(payload.notes) ? payload.notes.filter(isNote) : [];
    this.notesAtStep.clear();
    for (const note of this.notes) this.pushNote(note);
  }

  /** The payload an `init` would carry for the current state (for the saved view state). */
  snapshot(maxSteps: number): InitPayload {
    const steps = this.steps.length > maxSteps ? this.steps.slice(this.steps.length - maxSteps) : this.steps;
    const first = steps.length ? steps[0].step : 0;
    return {
      run: this.run,
      steps,
      hints: this.hints.filter((hint) => hint.deliveredAtStep === undefined || hint.deliveredAtStep >= first),
      notes: this.notes.filter((note) => note.step >= first),
      attention: this.attention.filter((flag) => flag.step >= first),
    };
  }

  get count(): number {
    return this.steps.length;
  }

  indexOf(step: number): number | undefined {
    return this.indexByStep.get(step);
  }

  /**
   * Adds a live step. Returns where it went, and whether it was appended at the end (the
   * usual case) or had to go elsewhere (a re-sent or out-of-order step: the caller re-lays out).
   */
  addStep(step: TimelineStep): { index: number; appended: boolean } {
    const pending = this.summaries.get(step.step);
    if (pending && !step.summaryBefore) step.summaryBefore = pending;
    this.summaries.delete(step.step);
    if (!Array.isArray(step.labels)) step.labels = [];
    const existing = this.indexByStep.get(step.step);
    if (existing !== undefined) {
      this.steps[existing] = step;
      return { index: existing, appended: false };
    }
    const last = this.steps[this.steps.length - 1];
    if (!last || last.step < step.step) {
      this.steps.push(step);
      this.indexByStep.set(step.step, this.steps.length - 1);
      return { index: this.steps.length - 1, appended: true };
    }
    let low = 0;
    let high = this.steps.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.steps[mid].step < step.step) low = mid + 1;
      else high = mid;
    }
    this.steps.splice(low, 0, step);
    this.reindex();
    return { index: low, appended: false };
  }

  addHint(hint: TimelineHint): void {
    if (this.hints.some((known) => known.hintId === hint.hintId)) return;
    this.hints.push(hint);
    if (hint.deliveredAtStep !== undefined) this.pushHint(hint, hint.deliveredAtStep);
  }

  /** Returns the hint, or undefined when the id is unknown. */
  deliverHint(hintId: string, step: number): TimelineHint | undefined {
    const hint = this.hints.find((candidate) => candidate.hintId === hintId);
    if (!hint || hint.deliveredAtStep === step) return hint;
    if (hint.deliveredAtStep !== undefined) {
      const list = this.hintsAtStep.get(hint.deliveredAtStep);
      if (list) list.splice(list.indexOf(hint), 1);
    }
    hint.deliveredAtStep = step;
    this.pushHint(hint, step);
    return hint;
  }

  /** The hint the run ended without delivering; undefined when the id is unknown. */
  undeliverHint(hintId: string, reason: string): TimelineHint | undefined {
    const hint = this.hints.find((candidate) => candidate.hintId === hintId);
    if (hint) hint.undelivered = reason;
    return hint;
  }

  /** Returns the index of the step whose notes changed, if it is already in the timeline. */
  addNote(note: TimelineNote): number | undefined {
    if (!isNote(note)) return undefined;
    this.notes.push(note);
    this.pushNote(note);
    return this.indexByStep.get(note.step);
  }

  addLabel(step: number, badge: LabelBadge): number | undefined {
    const index = this.indexByStep.get(step);
    if (index === undefined) return undefined;
    this.steps[index].labels.push(badge);
    return index;
  }

  /** Returns the index of the step whose notes changed, if it is already in the timeline. */
  addSummary(step: number, tokensBefore: number, tokensAfter: number): number | undefined {
    const index = this.indexByStep.get(step);
    if (index === undefined) {
      this.summaries.set(step, { tokensBefore, tokensAfter });
      return undefined;
    }
    this.steps[index].summaryBefore = { tokensBefore, tokensAfter };
    return index;
  }

  addFlag(flag: AttentionFlagView, unseen: number): number | undefined {
    this.attention.push(flag);
    this.pushFlag(flag);
    this.unseen = unseen;
    return this.indexByStep.get(flag.step);
  }

  /** Distinct steps with a flag. */
  get flaggedCount(): number {
    return this.flagged.length;
  }

  /** The index of the first flagged step after `index` (or at/after it when `inclusive`), wrapping round. */
  nextFlagged(index: number, inclusive: boolean): number | undefined {
    const present = this.flagged.map((step) => this.indexByStep.get(step)).filter((found): found is number => found !== undefined);
    if (!present.length) return undefined;
    return present.find((candidate) => (inclusive ? candidate >= index : candidate > index)) ?? present[0];
  }

  flagsOf(step: number): readonly AttentionFlagView[] {
    return this.flagsAtStep.get(step) ?? [];
  }

  /** How many note lines the step's item carries (its height follows from it). */
  noteCount(index: number): number {
    const step = this.steps[index];
    return (
      (step.branchFrom !== undefined ? 1 : 0) +
      (step.summaryBefore ? 1 : 0) +
      (this.hintsAtStep.get(step.step)?.length ?? 0) +
      (this.notesAtStep.get(step.step)?.length ?? 0) +
      (mixedOf(step).length ? 1 : 0) +
      (this.flagsAtStep.get(step.step)?.length ?? 0)
    );
  }

  /**
   * The note lines themselves, in the order they happened: branch, summary, hints, notices (files
   * changed outside the agent among them), whether the action's diff is mixed, then flags.
   */
  notesOf(index: number): StepNote[] {
    const step = this.steps[index];
    const notes: StepNote[] = [];
    if (step.branchFrom !== undefined) {
      const text = `New branch after a rewind: continues from ${step.branchFrom === 0 ? "the run's start" : `step ${step.branchFrom}`}`;
      notes.push({ kind: 'branch', text, title: step.branch ? `${text} (branch ${step.branch})` : text });
    }
    if (step.summaryBefore) {
      const text = `Context summarized before this step: ${formatInteger(step.summaryBefore.tokensBefore)} → ${formatInteger(step.summaryBefore.tokensAfter)} tokens`;
      notes.push({ kind: 'summary', text, title: `${text}. Every hint is kept verbatim.` });
    }
    for (const hint of this.hintsAtStep.get(step.step) ?? []) {
      const head = `Hint delivered at step ${step.step} (${hint.kind}${hint.urgency === 'now' ? ', now' : ''}): `;
      notes.push({ kind: 'hint', text: head + oneLine(hint.text), title: head + hint.text });
    }
    for (const note of this.notesAtStep.get(step.step) ?? []) notes.push({ kind: note.kind, text: note.text, title: note.title });
    const mixed = mixedOf(step);
    if (mixed.length) {
      const text = `Mixed: you saved ${fileList(mixed)} during this action`;
      notes.push({
        kind: 'mixed',
        text,
        title: `Mixed: you saved ${mixed.join(', ')} in an editor while this action ran, so its diff may hold your edits as well as the agent's; the rules give it no diff-based label.`,
      });
    }
    for (const flag of this.flagsAtStep.get(step.step) ?? []) {
      const text = `Needs attention: ${oneLine(flag.message)}`;
      notes.push({ kind: 'flag', text, title: `Needs attention (${flag.kind.replace('_', ' ')}): ${flag.message}` });
    }
    return notes;
  }

  private reindex(): void {
    this.indexByStep.clear();
    this.steps.forEach((step, index) => {
      if (!Array.isArray(step.labels)) step.labels = [];
      this.indexByStep.set(step.step, index);
    });
  }

  private pushHint(hint: TimelineHint, step: number): void {
    const list = this.hintsAtStep.get(step);
    if (list) list.push(hint);
    else this.hintsAtStep.set(step, [hint]);
  }

  private pushNote(note: TimelineNote): void {
    const list = this.notesAtStep.get(note.step);
    if (list) list.push(note);
    else this.notesAtStep.set(note.step, [note]);
  }

  private pushFlag(flag: AttentionFlagView): void {
    const list = this.flagsAtStep.get(flag.step);
    if (list) {
      list.push(flag);
      return;
    }
    this.flagsAtStep.set(flag.step, [flag]);
    let at = this.flagged.length;
    while (at > 0 && this.flagged[at - 1] > flag.step) at--;
    this.flagged.splice(at, 0, flag.step);
  }
}

const NOTE_KINDS: readonly string[] = ['notice', 'context', 'undelivered', 'external'];

/** The files someone else saved during the step's action (a malformed field reads as none). */
export function mixedOf(step: TimelineStep): string[] {
  return Array.isArray(step.mixed) ? step.mixed.filter((file) => typeof file === 'string') : [];
}

const LISTED_FILES = 5;

function fileList(files: readonly string[]): string {
  const shown = files.slice(0, LISTED_FILES).join(', ');
  return files.length > LISTED_FILES ? `${shown} and ${files.length - LISTED_FILES} more` : shown;
}

function isNote(value: TimelineNote): boolean {
  return typeof value === 'object' && value !== null && NOTE_KINDS.includes(value.kind) && typeof value.step === 'number' && typeof value.text === 'string' && typeof value.title === 'string';
}
