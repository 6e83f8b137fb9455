/**
 * The panel's link to its host: the one VS Code API object (it can be acquired only once), the
 * messages out, and the view state saved across reloads.
 */
import type { WebviewToHost } from '../src/protocol';
import type { InitPayload } from './timelineData';

export interface PanelState {
  version: 2;
  taskDraft: string;
  hintDraft: string;
  hintKind: string;
  hintUrgency: string;
  runsOpen: boolean;
  /** The step at the top of the timeline, to come back to the same place. */
  position?: { runId: string; step: number; delta: number; follow: boolean };
  selectedStep?: number;
  /** The last timeline, bounded: enough to paint at once on reload, until the host's `init`. */
  timeline?: InitPayload;
}

interface VsCodeApi {
  postMessage(message: WebviewToHost): void;
  getState(): unknown;
  setState(state: PanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
export const post = (message: WebviewToHost) => vscode.postMessage(message);
export const writeSaved = (state: PanelState) => vscode.setState(state);
/** The view state saved before the view reloaded (defaults when there is none). */
export const saved = readState(vscode.getState());

function readState(raw: unknown): PanelState {
  const fallback: PanelState = { version: 2, taskDraft: '', hintDraft: '', hintKind: 'knowledge', hintUrgency: 'next', runsOpen: false };
  if (typeof raw !== 'object' || raw === null) return fallback;
  const state = raw as Partial<PanelState>;
  const text = (value: unknown, otherwise: string) => (typeof value === 'string' ? value : otherwise);
  return {
    version: 2,
    taskDraft: text(state.taskDraft, ''),
    hintDraft: text(state.hintDraft, ''),
    hintKind: text(state.hintKind, 'knowledge'),
    hintUrgency: text(state.hintUrgency, 'next'),
    runsOpen: state.runsOpen === true,
    ...(state.position && typeof state.position.runId === 'string' ? { position: state.position } : {}),
    ...(typeof state.selectedStep === 'number' ? { selectedStep: state.selectedStep } : {}),
    ...(state.version === 2 && state.timeline && Array.isArray(state.timeline.steps) ? { timeline: state.timeline } : {}),
  };
}
