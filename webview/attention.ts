/** The attention bar: how many steps need the annotator, and the way to the next one. */
import { plural } from '../src/protocol';
import { el, setText, vsButton } from './dom';
import { post } from './host';
import { setLastFlagIndex, state } from './state';
import { list } from './timeline';

export const attentionBar = el('div', 'attention');
attentionBar.setAttribute('role', 'status');
const attentionText = el('span', 'attention-text');
const nextFlagButton = vsButton('Next flagged step', () => nextFlag(), 'secondary');
nextFlagButton.title = 'Go to the next step that needs attention (n)';
attentionBar.append(attentionText, nextFlagButton);

/** Scrolls to and focuses the next flagged step after the current position, wrapping round. */
export function nextFlag(): void {
  const data = state.data;
  const lastFlagIndex = state.lastFlagIndex;
  const focused = list.indexOfNode(document.activeElement);
  let from: number;
  let inclusive = false;
  if (focused !== undefined) from = focused;
  else if (lastFlagIndex !== undefined && lastFlagIndex >= list.firstVisibleIndex() && lastFlagIndex <= list.lastVisibleIndex()) from = lastFlagIndex;
  else {
    from = list.firstVisibleIndex();
    inclusive = true;
  }
  const index = data.nextFlagged(from, inclusive);
  if (index === undefined) return;
  setLastFlagIndex(index);
  list.focusIndex(index, 'center');
  post({ type: 'attentionSeen' });
  data.unseen = 0;
  renderAttention();
}

export function renderAttention(): void {
  const data = state.data;
  const flagged = data.flaggedCount;
  attentionBar.hidden = flagged === 0;
  setText(attentionText, flagged ? `${plural(flagged, 'step')} need${flagged === 1 ? 's' : ''} attention${data.unseen ? ` · ${data.unseen} new` : ''}` : '');
}
