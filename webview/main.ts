/**
 * The Intervention panel. Controls come from @vscode/webview-ui-toolkit (loaded as its own
 * script); every text from the model or the workspace is set with textContent, never as HTML.
 *
 * Layout, top to bottom: the run's header (status, figures, notices: header.ts), the live runs
 * and the runs of the dataset (collapsed: runs.ts), the task and run controls (controls.ts),
 * the attention bar (attention.ts), the timeline (virtualized), the rewind and adopt
 * confirmations and the step detail when open (timeline.ts), and the hint composer with the
 * hints sent (hints.ts). What the panel keeps between messages lives in state.ts; the host's
 * messages go through messages.ts; the keys through keyboard.ts.
 *
 * This file only wires them: it lays out the sections, attaches the listeners and connects the
 * host's messages. The view state (drafts, position, a bounded copy of the timeline) is saved
 * at most once a second, never per message (persist.ts).
 */
import type { HostToWebview } from '../src/protocol';
import { attentionBar, renderAttention } from './attention';
import { runSection, taskBox } from './controls';
import { el } from './dom';
import { header, renderHeader, showNotice } from './header';
import { hintBox, hintKind, hintSection, hintWhen, renderSentHints, sendHint, updateHintControls } from './hints';
import { type PanelState, post, saved } from './host';
import { onPanelKey, onTimelineKey } from './keyboard';
import { applyInit, onMessage, updateControls } from './messages';
import { flushIfPending, scheduleSave } from './persist';
import { liveSection, renderRuns, renderRunsSummary, runsDetails } from './runs';
import { setSaveSource, state } from './state';
import { adoptPane, detail, emptyNote, list, rewindPane, scroller, timelineList } from './timeline';

/** Steps kept in the saved state: serializing 10,000 steps would cost tens of milliseconds a save. */
const MAX_SAVED_STEPS = 2000;

const data = state.data;

const app = document.getElementById('app') ?? document.body.appendChild(el('div'));
app.classList.add('app');
app.append(header, liveSection, runsDetails, runSection, attentionBar, scroller, rewindPane.node, adoptPane.node, detail.node, hintSection);

// ---- listeners ----------------------------------------------------------------------------

runsDetails.addEventListener('toggle', () => {
  if (runsDetails.open && state.runsStale) renderRuns();
  scheduleSave();
});
scroller.addEventListener('scroll', () => scheduleSave(), { passive: true });
timelineList.addEventListener('keydown', onTimelineKey);
document.addEventListener('keydown', onPanelKey);

taskBox.addEventListener('input', () => scheduleSave());
hintBox.addEventListener('input', () => {
  updateHintControls();
  scheduleSave();
});
hintBox.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') sendHint();
});
hintKind.addEventListener('change', () => scheduleSave());
hintWhen.addEventListener('change', () => scheduleSave());

// ---- saved view state ---------------------------------------------------------------------

setSaveSource((): PanelState => {
  const anchor = list.topAnchor();
  const run = data.run;
  const top = anchor && data.steps[anchor.index];
  const selectedStep = state.selectedStep;
  return {
    version: 2,
    taskDraft: taskBox.value ?? '',
    hintDraft: hintBox.value ?? '',
    hintKind: hintKind.value || 'knowledge',
    hintUrgency: hintWhen.value || 'next',
    runsOpen: runsDetails.open,
    ...(run && top ? { position: { runId: run.runId, step: top.step, delta: anchor.delta, follow: list.follow } } : {}),
    ...(selectedStep !== undefined ? { selectedStep } : {}),
    ...(run || data.count ? { timeline: data.snapshot(MAX_SAVED_STEPS) } : {}),
  };
});
window.addEventListener('pagehide', flushIfPending);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flushIfPending();
});

// ---- messages from the host ---------------------------------------------------------------

window.addEventListener('message', (event: MessageEvent) => {
  const message = event.data as HostToWebview | undefined;
  if (!message || typeof message !== 'object' || typeof message.type !== 'string') return;
  onMessage(message);
});

// ---- start --------------------------------------------------------------------------------

taskBox.value = saved.taskDraft;
hintBox.value = saved.hintDraft;
renderRunsSummary();
showNotice(undefined);
if (saved.timeline) {
  applyInit(saved.timeline, true);
} else {
  renderHeader();
  renderAttention();
  renderSentHints();
  emptyNote.hidden = false;
  list.render();
}
updateControls();
post({ type: 'ready' });
