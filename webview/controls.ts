/** The task and the run controls: start, sample, pause, resume, stop, adopt. */
import { el, setDisabled, vsButton, vsTextBox } from './dom';
import { showNotice } from './header';
import { post } from './host';
import { state, viewedRunLive } from './state';

export const taskBox = vsTextBox('area', 'Task', 'What should the agent do?', 'task');
taskBox.setAttribute('rows', '2');
taskBox.setAttribute('resize', 'vertical');
const startButton = vsButton('Start run', startRun, 'primary');
const sampleButton = vsButton('Sample runs', sampleRuns, 'secondary');
sampleButton.title = 'Several runs of this task, each in its own working copy of the workspace';
// Controls act on the run on screen only, named so the host never guesses.
const onViewed = <T extends 'pauseRun' | 'resumeRun' | 'stopRun'>(type: T) => (state.data.run ? { type, runId: state.data.run.runId } : { type });
const pauseButton = vsButton('Pause', () => post(onViewed('pauseRun')));
const resumeButton = vsButton('Resume', () => post(onViewed('resumeRun')));
const stopButton = vsButton('Stop', () => post(onViewed('stopRun')));
const adoptButton = vsButton('Adopt', () => state.data.run && post({ type: 'previewAdopt', runId: state.data.run.runId }), 'primary');
adoptButton.title = "Apply this run's changes to your workspace, after a preview";
adoptButton.hidden = true;
const controls = el('div', 'controls');
controls.append(startButton, sampleButton, pauseButton, resumeButton, stopButton, adoptButton);
export const runSection = el('section', 'run-controls');
runSection.setAttribute('aria-label', 'Run');
runSection.append(taskBox, controls);

function startRun(): void {
  const task = taskBox.value.trim();
  if (!task) return showNotice({ level: 'error', message: 'The task is empty: describe what the agent should do.' });
  post({ type: 'startRun', task });
}

function sampleRuns(): void {
  const task = taskBox.value.trim();
  if (!task) return showNotice({ level: 'error', message: 'The task is empty: describe what the agents should do.' });
  post({ type: 'sampleRuns', task });
}

export function updateRunControls(): void {
  const run = state.data.run;
  const live = viewedRunLive();
  const writable = !!run && !run.readOnly;
  // A run on the workspace blocks another there; sampled runs work in copies and block nothing.
  setDisabled(startButton, (live && !run?.taskId) || state.liveRunId !== undefined);
  adoptButton.hidden = !(run && run.originWorkspace && !run.adoptedAt && run.status !== 'running' && run.status !== 'paused');
  setDisabled(pauseButton, !(live && run?.status === 'running'));
  // Resume also continues a rewound run, which waits paused and not live.
  setDisabled(resumeButton, !(writable && run.status === 'paused'));
  setDisabled(stopButton, !live);
}
