/**
 * Effective labels and loss masks. Labels are appended, never rewritten; what a step is worth
 * is worked out from all of them by one rule:
 *
 * - Sources rank human > judge > rules: the effective label comes from the highest-ranked kind of
 *   source that labelled the step at all.
 * - Within that kind, each source's latest label per axis counts (a label without an axis speaks
 *   for both axes). The step is bad if any of those is bad, else good if any is good, else
 *   neutral.
 * - The mask follows from the effective label by the mask policy.
 */
import type { LabelAxis, LabelEvent, LabelValue } from '../dataset/events';
import { LABEL_AXES } from '../dataset/events';

export type LabelTier = 'human' | 'judge' | 'rule';
const TIER_RANK: Record<LabelTier, number> = { human: 3, judge: 2, rule: 1 };

/** Which kind of source a label's `source` names; undefined for a source Apollo does not know. */
export function tierOf(source: string): LabelTier | undefined {
  if (source === 'human' || source.startsWith('human:')) return 'human';
  if (source.startsWith('judge:')) return 'judge';
  if (source.startsWith('rule:')) return 'rule';
  return undefined;
}

/**
 * - `not-bad`: train on every step whose effective label is not bad (unlabelled steps included).
 * - `good-only`: train only on steps whose effective label is good.
 * - `all`: train on every step (labels are exported but do not mask).
 */
export type MaskPolicy = 'not-bad' | 'good-only' | 'all';
export const MASK_POLICIES: readonly MaskPolicy[] = ['not-bad', 'good-only', 'all'];
export const DEFAULT_MASK_POLICY: MaskPolicy = 'not-bad';

export const MASK_POLICY_DESCRIPTIONS: Record<MaskPolicy, string> = {
  'not-bad': 'assistant turns are trained on unless their effective label is bad (unlabelled turns are trained on)',
  'good-only': 'only assistant turns whose effective label is good are trained on',
  all: 'every assistant turn is trained on; labels are informative only',
};

export interface EffectiveLabel {
  label: LabelValue;
  tier: LabelTier;
  /** The sources whose labels decided it, e.g. ["rule:command_failed"]. */
  sources: string[];
  /** The latest label of each axis within the deciding tier. */
  axes: Partial<Record<LabelAxis, LabelValue>>;
  /** The reasons given by the deciding labels that carry the verdict. */
  reasons: string[];
}

export function maskOf(effective: EffectiveLabel | undefined, policy: MaskPolicy): 0 | 1 {
  switch (policy) {
    case 'all':
      return 1;
    case 'good-only':
      return effective?.label === 'good' ? 1 : 0;
    case 'not-bad':
      return effective?.label === 'bad' ? 0 : 1;
  }
}

const SEVERITY: Record<LabelValue, number> = { bad: 2, good: 1, neutral: 0 };

/** Bad outweighs good, and good outweighs neutral. */
function worse(a: LabelValue, b: LabelValue): LabelValue {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

interface Slot {
  label: LabelValue;
  reason?: string;
}

/** The labels of one step: per source, the latest label of each axis. */
class StepLabels {
  readonly bySource = new Map<string, Map<LabelAxis, Slot>>();

  add(event: LabelEvent): void {
    let slots = this.bySource.get(event.source);
    if (!slots) this.bySource.set(event.source, (slots = new Map()));
    const slot = { label: event.label, ...(event.reason ? { reason: event.reason } : {}) };
    for (const axis of event.axis ? [event.axis] : LABEL_AXES) slots.set(axis, slot);
  }

  effective(): EffectiveLabel | undefined {
    let best: LabelTier | undefined;
    for (const source of this.bySource.keys()) {
      const tier = tierOf(source);
      if (tier && (!best || TIER_RANK[tier] > TIER_RANK[best])) best = tier;
    }
    if (!best) return undefined;
    const deciding = [...this.bySource].filter(([source]) => tierOf(source) === best);
    const all = deciding.flatMap(([source, slots]) => [...slots].map(([axis, slot]) => ({ source, axis, ...slot })));
    const label = all.map((slot) => slot.label).reduce(worse);
    const carrying = all.filter((slot) => slot.label === label);
    const axes: Partial<Record<LabelAxis, LabelValue>> = {};
    for (const slot of all) axes[slot.axis] = axes[slot.axis] ? worse(axes[slot.axis]!, slot.label) : slot.label;
    return {
      label,
      tier: best,
      sources: [...new Set(carrying.map((slot) => slot.source))].sort(),
      axes,
      reasons: [...new Set(carrying.map((slot) => slot.reason).filter((reason): reason is string => !!reason))],
    };
  }
}

/** Every label of a run, by step, read in the order they were appended. */
export class LabelBook {
  private readonly steps = new Map<number, StepLabels>();
  private readonly events = new Map<number, LabelEvent[]>();

  add(event: LabelEvent): void {
    let labels = this.steps.get(event.step);
    if (!labels) this.steps.set(event.step, (labels = new StepLabels()));
    labels.add(event);
    const list = this.events.get(event.step);
    if (list) list.push(event);
    else this.events.set(event.step, [event]);
  }

  /** All label events of a step, oldest first. */
  labelsOf(step: number): LabelEvent[] {
    return this.events.get(step) ?? [];
  }

  effective(step: number): EffectiveLabel | undefined {
    return this.steps.get(step)?.effective();
  }

  /** Each source's latest label per axis for a step: what `apollo relabel` compares against. */
  latestBySource(step: number): Map<string, Map<LabelAxis, LabelValue>> {
    const result = new Map<string, Map<LabelAxis, LabelValue>>();
    for (const [source, slots] of this.steps.get(step)?.bySource ?? []) {
      result.set(source, new Map([...slots].map(([axis, slot]) => [axis, slot.label])));
    }
    return result;
  }

  labelledSteps(): number[] {
    return [...this.steps.keys()].sort((a, b) => a - b);
  }
}
