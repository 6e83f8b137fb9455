/** The keyboard: the panel's single-key shortcuts and the timeline's own keys. */
import { isTyping } from './dom';
import { nextFlag } from './attention';
import { goToNeediestRun } from './runs';
import { state } from './state';
import { adoptPane, closeDetail, detail, list, rewindPane, showStep } from './timeline';

/** n: the next flagged step; j: the run that needs you most; Escape closes the pane on top. */
export function onPanelKey(event: KeyboardEvent): void {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'n' && !isTyping(event)) {
    event.preventDefault();
    nextFlag();
  } else if (event.key === 'j' && !isTyping(event) && state.liveRuns.length) {
    event.preventDefault();
    goToNeediestRun();
  } else if (event.key === 'Escape') {
    if (adoptPane.open) {
      adoptPane.close();
    } else if (rewindPane.open) {
      rewindPane.close();
    } else if (detail.open) {
      closeDetail(true);
    }
  }
}

/** On a step of the timeline: Enter or Space opens it, the arrows, pages, Home and End move. */
export function onTimelineKey(event: KeyboardEvent): void {
  const target = event.target;
  if (!(target instanceof HTMLLIElement) || !target.classList.contains('step')) return;
  const data = state.data;
  const index = Number(target.getAttribute('aria-posinset')) - 1;
  const step = Number(target.dataset.step);
  const go = (to: number) => {
    event.preventDefault();
    list.focusIndex(Math.max(0, Math.min(data.count - 1, to)));
  };
  switch (event.key) {
    case 'Enter':
    case ' ':
      event.preventDefault();
      showStep(step, true);
      break;
    case 'ArrowDown':
      go(index + 1);
      break;
    case 'ArrowUp':
      go(index - 1);
      break;
    case 'PageDown':
      go(index + Math.max(1, list.lastVisibleIndex() - list.firstVisibleIndex()));
      break;
    case 'PageUp':
      go(index - Math.max(1, list.lastVisibleIndex() - list.firstVisibleIndex()));
      break;
    case 'Home':
      go(0);
      break;
    case 'End':
      go(data.count - 1);
      break;
  }
}
