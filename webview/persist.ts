/** Saves the view state at most once a second, never per message (see ViewState.saveSource). */
import { writeSaved } from './host';
import { setSaveTimer, state } from './state';

const SAVE_DELAY_MS = 1000;
const SAVE_MAX_WAIT_MS = 10_000;

/** Saves the view state 1 s after the last change (at most 10 s after the first). */
export function scheduleSave(): void {
  const now = Date.now();
  if (!state.saveTimer) setSaveTimer(0, now);
  else clearTimeout(state.saveTimer);
  const wait = Math.max(0, Math.min(SAVE_DELAY_MS, state.firstPendingSave + SAVE_MAX_WAIT_MS - now));
  setSaveTimer(window.setTimeout(flushSave, wait));
}

export function flushSave(): void {
  if (state.saveTimer) clearTimeout(state.saveTimer);
  setSaveTimer(0);
  if (state.saveSource) writeSaved(state.saveSource());
}

export function flushIfPending(): void {
  if (state.saveTimer) flushSave();
}
