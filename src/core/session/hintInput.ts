/**
 * A hint typed on one line: its kind and urgency may lead as prefixes, so the annotator types
 * `strategy: read the parser first` or `! stop editing the tests` and sends it in one step.
 * Without a prefix, the defaults apply (a knowledge hint, delivered at the next step).
 */
import { HINT_KINDS, type HintKind, type HintUrgency } from '../dataset/events';

export interface HintInput {
  text: string;
  kind: HintKind;
  urgency: HintUrgency;
}

export const HINT_DEFAULTS: Readonly<Omit<HintInput, 'text'>> = { kind: 'knowledge', urgency: 'next' };

export const HINT_KIND_DESCRIPTIONS: Record<HintKind, string> = {
  knowledge: 'a fact the agent lacks',
  strategy: 'how to approach the task',
  correction: 'what the agent got wrong',
};

/** What the input box says before anything is typed. */
export const HINT_PLACEHOLDER = 'The hint. Prefix "strategy:" or "correction:" for its kind (knowledge by default), "!" or "now:" to interrupt the model call in flight.';

/** One leading prefix: a kind or an urgency word and a colon, or "!". */
const PREFIX = new RegExp(`^\\s*(?:(${[...HINT_KINDS, 'now', 'next'].join('|')})\\s*:|!)`, 'i');

/**
 * Reads the prefixes off the front of a typed hint, in any order; the last one of each sort
 * counts. What follows is the hint as sent (trimmed). `defaults`: the kind and urgency chosen
 * otherwise (the Options… button), which a prefix overrides.
 */
export function parseHintInput(raw: string, defaults: Omit<HintInput, 'text'> = HINT_DEFAULTS): HintInput {
  let rest = raw;
  let { kind, urgency } = defaults;
  for (let match = PREFIX.exec(rest); match; match = PREFIX.exec(rest)) {
    const word = match[1]?.toLowerCase();
    if (word === undefined || word === 'now') urgency = 'now';
    else if (word === 'next') urgency = 'next';
    else kind = word as HintKind;
    rest = rest.slice(match[0].length);
  }
  return { text: rest.trim(), kind, urgency };
}

/** What sending the typed hint would do, or what is missing: for the input box while typing. */
export function describeHintInput(parsed: HintInput): { ok: boolean; message: string } {
  const when = parsed.urgency === 'now' ? 'now: the model call in flight is interrupted and sent again with it' : 'at the next step; the run does not pause';
  if (!parsed.text) return { ok: false, message: 'Type the hint (after any prefix).' };
  return { ok: true, message: `A ${parsed.kind} hint (${HINT_KIND_DESCRIPTIONS[parsed.kind]}), delivered ${when}.` };
}

/** The kinds and urgencies to choose from (the Options… button), the current choice first. */
export function hintOptions(current: Omit<HintInput, 'text'>): { label: string; description: string; hint: Omit<HintInput, 'text'> }[] {
  const all = (['next', 'now'] as const).flatMap((urgency) =>
    HINT_KINDS.map((kind) => ({
      label: `${kind}${urgency === 'now' ? ', now' : ''}`,
      description: `${HINT_KIND_DESCRIPTIONS[kind]}; ${urgency === 'now' ? 'interrupts the model call in flight' : 'at the next step'}`,
      hint: { kind, urgency },
    })),
  );
  const isCurrent = (item: (typeof all)[number]) => item.hint.kind === current.kind && item.hint.urgency === current.urgency;
  return [...all.filter(isCurrent), ...all.filter((item) => !isCurrent(item))];
}
