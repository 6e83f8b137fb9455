/** The hint composer and the hints sent to the run on screen. */
import { HINT_KINDS, oneOf, type TimelineHint } from '../src/protocol';
import { el, setDisabled, setText, vsButton, vsDropdown, vsTextBox } from './dom';
import { post, saved } from './host';
import { scheduleSave } from './persist';
import { state, viewedRunLive } from './state';

const MAX_SENT_HINTS_SHOWN = 50;

export const hintBox = vsTextBox('field', 'Hint', 'Knowledge, strategy or correction for the agent', 'hint');
export const hintKind = vsDropdown(
  'Hint kind',
  HINT_KINDS.map((kind) => [kind, kind] as const),
  'hint-kind',
  saved.hintKind,
);
export const hintWhen = vsDropdown(
  'When',
  [
    ['next', 'next step'],
    ['now', 'now (interrupts)'],
  ],
  'hint-when',
  saved.hintUrgency,
);
const sendHintButton = vsButton('Send hint', sendHint, 'primary');
const hintRow = el('div', 'hint-row');
hintRow.append(hintKind, hintWhen, sendHintButton);
const sentHeading = el('div', 'sent-heading');
const sentList = el('ul', 'sent-hints');
sentList.setAttribute('role', 'list');
sentList.setAttribute('aria-label', 'Sent hints');
export const hintSection = el('section', 'hints');
hintSection.setAttribute('aria-label', 'Hints');
hintSection.append(hintBox, hintRow, sentHeading, sentList);

export function sendHint(): void {
  const text = hintBox.value.trim();
  if (!text || !viewedRunLive() || !state.data.run) return;
  const kind = oneOf(HINT_KINDS, hintKind.value) ? hintKind.value : 'knowledge';
  // The hint goes to the run on screen and to no other.
  post({ type: 'sendHint', text, kind, urgency: hintWhen.value === 'now' ? 'now' : 'next', runId: state.data.run.runId });
  hintBox.value = '';
  updateHintControls();
  scheduleSave();
}

export function updateHintControls(): void {
  setDisabled(sendHintButton, !viewedRunLive() || hintBox.value.trim() === '');
}

function sentHintItem(hint: TimelineHint): HTMLLIElement {
  const item = el('li', 'sent-hint');
  const meta = el('div', 'sent-meta');
  const where = el('span', 'where');
  meta.append(el('span', 'tag kind', hint.kind), where);
  if (hint.urgency === 'now') meta.append(el('span', 'tag now', 'now'));
  const text = el('div', 'sent-text', hint.text);
  text.title = hint.text;
  item.append(meta, text);
  state.sentHints.set(hint.hintId, { item, where });
  updateSentHint(hint);
  return item;
}

export function updateSentHint(hint: TimelineHint): void {
  const entry = state.sentHints.get(hint.hintId);
  if (!entry) return;
  const undelivered = hint.deliveredAtStep === undefined && hint.undelivered !== undefined;
  setText(entry.where, undelivered ? `Hint not delivered: ${hint.undelivered}` : hint.deliveredAtStep === undefined ? 'queued' : `reached step ${hint.deliveredAtStep}`);
  entry.where.title = undelivered ? `Hint not delivered: ${hint.undelivered}` : '';
  entry.where.classList.toggle('queued', hint.deliveredAtStep === undefined && !undelivered);
  entry.where.classList.toggle('undelivered', undelivered);
}

function renderSentHeading(): void {
  const count = state.data.hints.length;
  sentHeading.hidden = count === 0;
  setText(sentHeading, `Sent hints (${count})${count > MAX_SENT_HINTS_SHOWN ? `, latest ${MAX_SENT_HINTS_SHOWN}` : ''}`);
}

/** The hints sent, newest first (the latest few dozen). */
export function renderSentHints(): void {
  state.sentHints.clear();
  sentList.replaceChildren(...state.data.hints.slice(-MAX_SENT_HINTS_SHOWN).reverse().map(sentHintItem));
  renderSentHeading();
}

export function sentHintAdded(hint: TimelineHint): void {
  sentList.prepend(sentHintItem(hint));
  while (sentList.children.length > MAX_SENT_HINTS_SHOWN) {
    const last = sentList.lastElementChild!;
    for (const [id, entry] of state.sentHints) if (entry.item === last) state.sentHints.delete(id);
    last.remove();
  }
  renderSentHeading();
}
