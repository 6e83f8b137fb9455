import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DatasetEvent, LabelAxis, LabelValue, RunManifest, RunStatus } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { shadowStoreDir } from '../../src/core/grounding/shadowStore';
import type { AdoptPreview } from '../../src/core/session/adopt';
import { adoptConfirmation, RunRegistry, rewindConfirmation, runEventLog, type TrackedSession } from '../../src/core/session/registry';
import type { RewindPreview } from '../../src/core/session/rewind';
import type { HostToWebview } from '../../src/protocol';
import { label, runStarted, step, tick, writeRun } from '../fixtures/trajectories';

/** A session stand-in whose history read can be held open while events keep arriving. */
class FakeSession implements TrackedSession {
  isLive = true;
  status: RunStatus = 'running';
  readonly shadow = { workspace: '/workspace', storeDir: '/shadow' };
  readonly labels: { step: number; label: LabelValue; options: object }[] = [];
  private readonly listeners = new Set<(event: DatasetEvent, sequence: number) => void>();
  private readonly recorded: DatasetEvent[] = [];
  private sequence = 0;
  /** While set, history() waits for it after taking its snapshot. */
  gate: Promise<void> | undefined;

  constructor(
    readonly runId: string,
    readonly store: DatasetStore = new DatasetStore(os.tmpdir()),
  ) {}

  get stepCount(): number {
    return this.recorded.filter((event) => event.type === 'step').length;
  }

  onEvent(listener: (event: DatasetEvent, sequence: number) => void) {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Records an event and tells the listeners, as RunSession does. */
  emit(event: DatasetEvent): number {
    const sequence = ++this.sequence;
    this.recorded.push(event);
    for (const listener of this.listeners) listener(event, sequence);
    return sequence;
  }

  /** Tells the listeners again about an event already recorded (a late notification). */
  renotify(event: DatasetEvent, sequence: number): void {
    for (const listener of this.listeners) listener(event, sequence);
  }

  async history() {
    const sequence = this.sequence;
    const events = [...this.recorded];
    await this.gate;
    return { events, sequence };
  }

  async label(stepNumber: number, value: LabelValue, options: { axis?: LabelAxis; reason?: string; source?: string } = {}) {
    this.labels.push({ step: stepNumber, label: value, options });
  }
}

function registry() {
  const posted: HostToWebview[] = [];
  const events: string[] = [];
  const runs = new RunRegistry<FakeSession>({ post: (message) => posted.push(message), policy: () => 'not-bad', event: (run, event) => events.push(`${run.session.runId}:${event.type}`) });
  return { runs, posted, events };
}

const stepsAdded = (posted: HostToWebview[]) => posted.flatMap((message) => (message.type === 'stepAdded' ? [message.step.step] : []));
const lastInit = (posted: HostToWebview[]) => posted.filter((message): message is Extract<HostToWebview, { type: 'init' }> => message.type === 'init').at(-1);

test('a run attached while it goes shows every event once: history, events during the read, events after', async () => {
  const { runs, posted, events } = registry();
  const session = new FakeSession('run-a');
  session.emit(runStarted('run-a'));
  session.emit(step(1));
  const step2 = step(2);
  const sequence2 = session.emit(step2);
  let open!: () => void;
  session.gate = new Promise((resolve) => (open = resolve));
  const attached = runs.attach(session);
  // While the history is read: a new step, and a late notification of one the history holds.
  session.emit(step(3));
  session.renotify(step2, sequence2);
  open();
  await attached;
  assert.deepEqual(
    lastInit(posted)?.steps.map((item) => item.step),
    [1, 2, 3],
  );
  session.emit(step(4));
  assert.deepEqual(stepsAdded(posted), [4]);
  assert.deepEqual(events, ['run-a:step', 'run-a:step'], 'the hook hears steps 3 and 4, never step 2 again');
  runs.dispose();
});

test('an action targets the run named, else the one on screen, else the only one going; with several it never guesses', async () => {
  const { runs } = registry();
  assert.throws(() => runs.target(), /No run is going/);
  const a = new FakeSession('run-a');
  const b = new FakeSession('run-b');
  await runs.attach(a);
  assert.equal(runs.target(), a);
  await runs.attach(b, { show: false });
  assert.equal(runs.viewed?.runId, 'run-a', 'a run attached with show: false does not take the screen from a live one');
  assert.equal(runs.target(), a, 'the run on screen');
  assert.equal(runs.target('run-b'), b);
  assert.throws(() => runs.target('run-c'), /Run run-c is not going in this window/);
  a.isLive = false;
  assert.equal(runs.target(), b, 'the only one going');
  const c = new FakeSession('run-c');
  await runs.attach(c, { show: false });
  assert.equal(runs.viewed?.runId, 'run-c', 'the run on screen had ended: the new one takes its place');
  await runs.attach(new FakeSession('run-d'), { show: false });
  c.isLive = false;
  assert.throws(() => runs.target(), /2 runs are going: open the one you mean/);
  b.isLive = false;
  assert.throws(() => runs.target('run-b'), /not going/);
  runs.dispose();
});

test('a second run on the workspace is refused; sampled runs have folders of their own', async () => {
  const { runs } = registry();
  const sampled = new FakeSession('run-s');
  await runs.attach(sampled, { sample: { taskId: 'task-1', index: 1, count: 2 } });
  runs.requireWorkspaceFree('starting');
  await runs.attach(new FakeSession('run-w'));
  assert.throws(() => runs.requireWorkspaceFree('starting'), /Run run-w is still going in this workspace: stop it before starting another/);
  assert.throws(() => runs.requireWorkspaceFree('resuming'), /stop it before resuming another/);
  assert.equal(runs.runName(runs.get('run-s')!), 'run 1 of 2 (run-s)');
  assert.equal(runs.previewName('run-s'), 'Run 1 of 2');
  assert.equal(runs.previewName('run-w'), 'Run run-w');
  runs.dispose();
});

async function dataset() {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'apollo-registry-'));
  return { root, store: new DatasetStore(root) };
}

function manifest(id: string, extra: Partial<RunManifest>): RunManifest {
  const time = tick();
  return {
    id,
    task: 'Fix it',
    workspace: '/workspace',
    model: 'm',
    baseUrl: 'http://127.0.0.1:1/v1',
    status: 'running',
    steps: 0,
    createdAt: time,
    updatedAt: time,
    tokens: { promptTokens: 0, completionTokens: 0 },
    ...extra,
  };
}

test('resume: interrupted runs are those not ended and not going here; a sampled run keeps its place among its task', async () => {
  const { root, store } = await dataset();
  const { runs } = registry();
  for (const [id, extra] of [
    ['run-1', { taskId: 'task-x', originWorkspace: '/origin' }],
    ['run-2', { taskId: 'task-x', originWorkspace: '/origin', status: 'finished' as const }],
    ['run-3', { taskId: 'task-x', originWorkspace: '/origin', status: 'paused' as const }],
    ['run-4', {}],
    // Stopped by a full disk: no run_ended, it goes on once there is space.
    ['run-5', { status: 'stopped' as const, resumable: 'disk_full' as const }],
    ['run-6', { status: 'stopped' as const }],
  ] as const) {
    const writer = await store.createRun(manifest(id, extra));
    await writer.append({ ...runStarted(id), ...(id === 'run-4' ? { provider: 'vscode-lm', model: 'copilot-gpt' } : {}) });
  }
  const going = new FakeSession('run-4');
  await runs.attach(going);
  assert.deepEqual((await runs.interrupted(root)).map((run) => run.id).sort(), ['run-1', 'run-3', 'run-5']);
  assert.equal(runs.liveToResume('run-4'), going);
  assert.equal(runs.liveToResume(), going, 'the one on screen');
  assert.equal(runs.liveToResume('run-1'), undefined);
  const interrupted = await runs.interrupted(root);
  const third = interrupted.find((run) => run.id === 'run-3');
  assert.deepEqual(await runs.samplePosition(root, 'run-3', third), { taskId: 'task-x', index: 3, count: 3 });
  assert.equal(await runs.samplePosition(root, 'run-4', undefined), undefined);
  // A sampled run resumes while a run goes on the workspace; a run on the workspace does not.
  assert.deepEqual(await runs.checkResume(root, 'run-3', third), { model: 'test-model' });
  going.isLive = false;
  assert.deepEqual(await runs.checkResume(root, 'run-4', manifest('run-4', {})), { provider: 'vscode-lm', model: 'copilot-gpt' });
  going.isLive = true;
  await assert.rejects(runs.checkResume(root, 'run-4', manifest('run-4', {})), /still going in this workspace/);
  runs.dispose();
});

test('a past run opens for reading: its label is appended in the recorded shape, its snapshots are found, its output stays inside its run', async () => {
  const { root, store } = await dataset();
  const { runs, posted } = registry();
  await writeRun(store, 'run-past', [
    runStarted('run-past'),
    step(1),
    { ...step(2), fullOutput: 'outputs/out.txt' },
    { ...step(3), fullOutput: '../run-other/secret.txt' },
    { ...step(4), fullOutput: 'outputs/link.txt' },
    label(1, 'good'),
  ]);
  await fs.mkdir(path.join(store.runDir('run-past'), 'outputs'), { recursive: true });
  await fs.writeFile(path.join(store.runDir('run-past'), 'outputs', 'out.txt'), 'the whole output');
  const outside = path.join(root, 'outside.txt');
  await fs.writeFile(outside, 'not the run');
  await fs.symlink(outside, path.join(store.runDir('run-past'), 'outputs', 'link.txt'));
  assert.deepEqual(await runs.open('run-past', async () => root), []);
  assert.equal(runs.viewed?.runId, 'run-past');
  assert.equal(lastInit(posted)?.run?.readOnly, true);
  assert.equal(await runs.fullOutputPath(2), realpathSync(path.join(store.runDir('run-past'), 'outputs', 'out.txt')));
  await assert.rejects(runs.fullOutputPath(1), /kept no separate output/);
  await assert.rejects(runs.fullOutputPath(3), /output path points outside its run/);
  await assert.rejects(runs.fullOutputPath(4), /output path points outside its run/, 'a link out of the run folder is refused too');
  await assert.rejects(runs.fullOutputPath(9), /Step 9 is not in the open run/);
  assert.deepEqual(await runs.shadowOfViewed(), { workspace: '/workspace', storeDir: shadowStoreDir(realpathSync(root), '/workspace') });
  assert.equal((await runs.stepDetail(2)).hasFullOutput, true);

  await runs.label(2, 'bad', { axis: 'decision', reason: 'wrong file' });
  const lines = (await fs.readFile(path.join(store.runDir('run-past'), 'events.jsonl'), 'utf8')).trim().split('\n');
  assert.match(lines.at(-1)!, /^\{"type":"label","time":"[^"]+","step":2,"label":"bad","source":"human","axis":"decision","reason":"wrong file"\}$/);
  await runs.label(3, 'good', { reason: '' });
  assert.match(
    (await fs.readFile(path.join(store.runDir('run-past'), 'events.jsonl'), 'utf8')).trim().split('\n').at(-1)!,
    /^\{"type":"label","time":"[^"]+","step":3,"label":"good","source":"human"\}$/,
  );
  assert.deepEqual(
    posted.filter((message) => message.type === 'labelAdded').map((message) => message.type === 'labelAdded' && message.step),
    [2, 3],
    'the panel hears of both',
  );
  await assert.rejects(runs.label(5, 'good'), /Run run-past has no step 5 yet \(it has 4\)/);
  runs.dispose();
});

test('a live run is labelled through its session; with nothing open the error says what to do', async () => {
  const { runs } = registry();
  await assert.rejects(runs.label(1, 'good'), /No run is open to label: start or resume one/);
  const session = new FakeSession('run-live');
  await runs.attach(session);
  await runs.label(1, 'good', { axis: 'execution' });
  assert.deepEqual(session.labels, [{ step: 1, label: 'good', options: { source: 'human', axis: 'execution' } }]);
  runs.dispose();
});

const adoptPreview = (conflicts: string[]): AdoptPreview =>
  ({
    runId: 'run-s',
    status: 'finished',
    workspace: '/w',
    base: 'a',
    final: 'b',
    originStore: '/o',
    runStore: '/r',
    files: [
      { path: 'a.txt', status: 'modified' },
      { path: 'gone.txt', status: 'deleted' },
    ],
    conflicts,
  }) as unknown as AdoptPreview;

test('an adopt confirmation covers only the conflicts the preview showed', async () => {
  const { runs } = registry();
  assert.throws(() => runs.confirmAdoptFromPanel(adoptPreview(['a.txt']), true), /You changed a\.txt too; nothing was written/, 'no preview was shown');
  const message = runs.adoptPreviewShown(adoptPreview(['a.txt']));
  assert.deepEqual(message, { type: 'adoptPreview', preview: { runId: 'run-s', name: 'Run run-s', written: ['a.txt'], removed: ['gone.txt'], conflicts: ['a.txt'] } });
  assert.throws(() => runs.confirmAdoptFromPanel(adoptPreview(['a.txt']), false), /nothing was written/, 'conflicts shown but not agreed to');
  assert.equal(runs.confirmAdoptFromPanel(adoptPreview(['a.txt']), true), true);
  assert.throws(() => runs.confirmAdoptFromPanel(adoptPreview(['a.txt', 'gone.txt']), true), /You changed gone\.txt too/, 'a conflict that appeared since');
  assert.equal(runs.confirmAdoptFromPanel(adoptPreview([]), undefined), false);
  assert.throws(() => runs.confirmAdoptAgain(adoptPreview([]), adoptPreview(['a.txt'])), /while the preview was open; nothing was written/);
  assert.equal(runs.confirmAdoptAgain(adoptPreview(['a.txt']), adoptPreview(['a.txt'])), true);
  const ask = adoptConfirmation(adoptPreview(['a.txt']));
  assert.equal(ask.action, 'Adopt and Overwrite My Changes');
  assert.match(ask.detail, /Written: a\.txt\.\nRemoved: gone\.txt\.\nYou changed these files too/);
  runs.dispose();
});

test('a rewind confirmed in the panel is asked again only for edits its preview did not show', async () => {
  const { runs } = registry();
  await runs.attach(new FakeSession('run-r'));
  const preview = (userEdits: string[]) => ({ files: [{ path: 'x.txt', status: 'modified' }], userEdits }) as unknown as RewindPreview;
  assert.throws(() => new RunRegistry({ post: () => undefined, policy: () => 'not-bad' }).rewindPreviewShown(2, preview([])), /There is no run to rewind/);
  assert.deepEqual(runs.rewindPreviewShown(2, preview(['mine.txt'])), { type: 'rewindPreview', preview: { step: 2, written: ['x.txt'], removed: [], userEdits: ['mine.txt'], stopsRun: true } });
  assert.equal(runs.rewindNeedsConfirmation(2, preview(['mine.txt']), true), false);
  assert.equal(runs.rewindNeedsConfirmation(2, preview(['mine.txt', 'new.txt']), true), true, 'an edit made since');
  assert.equal(runs.rewindNeedsConfirmation(3, preview(['mine.txt']), true), true, 'another step than the preview');
  assert.equal(runs.rewindNeedsConfirmation(2, preview([]), false), true, 'without the panel, always');
  assert.match(rewindConfirmation(preview(['mine.txt']), true), /Written back: x\.txt\.\nYour own changes since the last step are overwritten .*mine\.txt\.\nThe run stops first\./);
  runs.dispose();
});

test('the status bar counts the runs going and the flags waiting', async () => {
  const { runs } = registry();
  assert.deepEqual(runs.status(), { state: 'none', live: false, going: 0, unseen: 0, unseenHere: 0 });
  const a = new FakeSession('run-a');
  await runs.attach(a);
  a.emit(step(1));
  assert.equal(runs.status().item?.text, '$(sync~spin) Apollo: running · 1 step');
  assert.equal(runs.status().item?.command, 'apollo.panel.focus');
  const b = new FakeSession('run-b');
  b.status = 'paused';
  await runs.attach(b, { show: false });
  assert.equal(runs.status().item?.text, '$(sync~spin) Apollo: 2 runs (1 paused)');
  assert.equal(runs.status().item?.command, 'apollo.nextRunNeedingAttention');
  runs.dispose();
});

test('the log says what went wrong in a run, and how it ended', () => {
  assert.deepEqual(runEventLog('run r1', { type: 'model_retry', time: tick(), step: 3, attempt: 2, error: 'HTTP 502', waitMs: 1000 }), {
    level: 'warn',
    text: 'run r1, step 3: model request failed (attempt 2): HTTP 502',
  });
  assert.equal(
    runEventLog('run r1', { type: 'judge_usage', time: tick(), model: 'j', steps: [1], promptTokens: 1, completionTokens: 1 } as DatasetEvent),
    undefined,
    'a judge that worked is not news',
  );
  assert.deepEqual(runEventLog('run 2 of 3 (r2)', { type: 'run_ended', time: tick(), status: 'failed', steps: 4, error: 'boom' }), {
    level: 'info',
    text: 'run 2 of 3 (r2) failed after 4 step(s): boom',
  });
  assert.equal(runEventLog('run r1', step(1)), undefined);
});

test('a suite run is listed with its task, "verifying" while its verifier runs, then its reward; failing verifiers first when asked', async () => {
  let verifierFailuresFirst = false;
  const posted: HostToWebview[] = [];
  const runs = new RunRegistry<FakeSession>({ post: (message) => posted.push(message), policy: () => 'not-bad', needOrder: () => ({ verifierFailuresFirst }) });
  const suiteRun = async (runId: string, task: string, index: number) => {
    const session = new FakeSession(runId);
    session.emit({ ...runStarted(runId, `Do ${task}`), taskId: `task-${task}`, taskSource: { format: 'harbor', name: task, dir: `/suite/${task}` } });
    session.emit(step(1));
    await runs.attach(session, { sample: { taskId: `task-${task}`, index, count: 1 }, show: false });
    return session;
  };
  const ended = (session: FakeSession) => {
    session.isLive = false;
    session.status = 'finished';
    session.emit({ type: 'run_ended', time: tick(), status: 'finished', steps: 1 });
  };
  const reward = (task: string, rewards: Record<string, number>, error?: string, timedOut?: boolean) =>
    ({ type: 'reward', time: tick(), source: 'verifier', rewards, task, exitCode: error ? null : 0, durationMs: 10, ...(error ? { error } : {}), ...(timedOut ? { timedOut } : {}) }) as const;
  const stuck = new FakeSession('stuck');
  stuck.emit(runStarted('stuck'));
  await runs.attach(stuck);
  stuck.status = 'paused';
  stuck.emit({ type: 'run_state', time: tick(), state: 'paused', reason: 'the model failed 5 times in a row' });
  const hello = await suiteRun('hello', 'hello-file', 1);
  const sum = await suiteRun('sum', 'sum-metrics', 1);
  const item = (runId: string) => runs.liveRuns().find((run) => run.runId === runId)!;
  assert.deepEqual(item('hello').suiteTask, { name: 'hello-file' }, 'no verdict while it runs');
  assert.equal(item('stuck').suiteTask, undefined, 'a run of no suite has no task line');

  ended(hello);
  ended(sum);
  runs.setVerifying('hello', true);
  runs.setVerifying('sum', true);
  assert.deepEqual(item('sum').suiteTask, { name: 'sum-metrics', verifying: true });
  runs.setVerifying('hello', false);
  runs.observe('hello', reward('hello-file', { reward: 1 }));
  runs.setVerifying('sum', false);
  runs.observe('sum', reward('sum-metrics', {}, 'tests/test.sh ran past its timeout (60 s, [verifier] timeout_sec) and was stopped.', true));
  assert.deepEqual(item('hello').suiteTask, { name: 'hello-file', reward: { value: 1, rewards: { reward: 1 } } });
  assert.equal(item('sum').suiteTask?.reward?.error, 'timed out');
  assert.match(item('sum').suiteTask?.reward?.detail ?? '', /ran past its timeout/);

  // By default the run that waits comes first, then the failing verifier, then the solved run.
  assert.deepEqual(
    runs.liveRuns().map((run) => [run.runId, run.need.kind]),
    [
      ['stuck', 'paused'],
      ['sum', 'verifier_failed'],
      ['hello', 'ended'],
    ],
  );
  verifierFailuresFirst = true;
  assert.deepEqual(
    runs.liveRuns().map((run) => run.runId),
    ['sum', 'stuck', 'hello'],
  );
  assert.equal(runs.liveRuns()[0].need.message, 'verifier: no reward (timed out)');

  // A later verdict (apollo verify again) replaces the earlier one.
  runs.observe('sum', reward('sum-metrics', { reward: 1, correct: 1 }));
  assert.deepEqual(
    runs.liveRuns().map((run) => run.runId),
    ['stuck', 'hello', 'sum'],
  );
  runs.dispose();
});
