/**
 * The runs of one window (or one CLI process): those started or resumed here, each with a
 * timeline kept current whether shown or not, and the one on screen (live, or a past run opened
 * for reading). It decides which run an action targets, replays a run's history to a late
 * subscriber without missing or doubling an event, knows the rules of resuming, remembers what
 * an adopt or rewind preview showed so a confirmation covers only that, and finds a step's
 * detail, its full output and its snapshots. Pure session logic: no UI, tested in plain Node.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DatasetEvent, LabelAxis, LabelValue, RunManifest, StepEvent } from '../dataset/events';
import { DatasetStore } from '../dataset/store';
import { shadowStoreDir } from '../grounding/shadowStore';
import { type AttentionFlag, type NeedOrderOptions, orderByNeed } from '../supervision/attention';
import type { MaskPolicy } from '../supervision/labels';
import type { HostToWebview, LiveRunItem, StepDetail } from './panelViews';
import { type AdoptPreview, adoptRefusal, previewAdopt } from './adopt';
import { ConfigError } from './errors';
import { labelStep, recordedRun } from './labelStep';
import type { RewindPreview } from './rewind';
import type { RunSession } from './runSession';
import { stepDetail, TimelineModel } from './timeline';

/** What the registry needs of a session (a RunSession; tests hand it stand-ins). */
export type TrackedSession = Pick<RunSession, 'runId' | 'isLive' | 'status' | 'stepCount' | 'store' | 'onEvent' | 'history' | 'label'> & {
  readonly shadow: { workspace: string; storeDir: string };
};

/** A sampled run's place among the runs of its task. */
export interface SamplePosition {
  taskId: string;
  index: number;
  count: number;
}

/** A run started or resumed here; its timeline is kept current whether shown or not. */
export interface LiveRun<S extends TrackedSession = TrackedSession> {
  session: S;
  model: TimelineModel;
  subscription: { dispose(): void };
  sample?: SamplePosition;
}

/** The run on screen: a live session's, or a past run opened for reading. */
export interface ViewedRun<S extends TrackedSession = TrackedSession> {
  runId: string;
  store: DatasetStore;
  model: TimelineModel;
  /** Set for a run started or resumed here. */
  session?: S;
}

export interface RegistryHooks<S extends TrackedSession> {
  /** A message for the panel: the timeline of the run on screen, the live runs list. */
  post(message: HostToWebview): void;
  /** Every event of a live run, after its timeline took it. */
  event?(run: LiveRun<S>, event: DatasetEvent): void;
  /** A live run raised a flag. */
  attention?(run: LiveRun<S>, flag: AttentionFlag): void;
  /** What the status bar and badge show may have changed. */
  changed?(): void;
  /** The mask policy a new timeline uses. */
  policy(): MaskPolicy;
  /** How the live runs list orders the runs (apollo.attention.verifierFailuresFirst). */
  needOrder?(): NeedOrderOptions;
}

/** What the status bar says, worked out from the runs. */
export interface StatusView {
  /** apollo.runState and apollo.runLive. */
  state: string;
  live: boolean;
  going: number;
  /** Flagged steps not seen yet, in every run; and in the run on screen. */
  unseen: number;
  unseenHere: number;
  /** Undefined when there is no run to show. */
  item?: { text: string; tooltip: string; command: string; warning: boolean };
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** At most eight paths, then how many more. */
export function listPaths(paths: readonly string[]): string {
  return paths.slice(0, 8).join(', ') + (paths.length > 8 ? `, and ${paths.length - 8} more` : '');
}

/** The paths a change writes and those it removes. */
export function splitChanges(files: readonly { path: string; status: string }[]): { written: string[]; removed: string[] } {
  return { written: files.filter((file) => file.status !== 'deleted').map((file) => file.path), removed: files.filter((file) => file.status === 'deleted').map((file) => file.path) };
}

/** The detail of the adopt confirmation: what is written, removed and overwritten. */
export function adoptConfirmation(preview: AdoptPreview): { message: string; detail: string; action: string } {
  const { written, removed } = splitChanges(preview.files);
  const detail = [
    written.length ? `Written: ${listPaths(written)}.` : '',
    removed.length ? `Removed: ${listPaths(removed)}.` : '',
    preview.conflicts.length ? `You changed these files too; adopting overwrites your changes: ${listPaths(preview.conflicts)}.` : 'None of these files has changes of your own.',
    'The adoption is recorded in the run.',
  ];
  return {
    message: `Adopt the ${plural(preview.files.length, 'file change')} of run ${preview.runId} into your workspace?`,
    detail: detail.filter(Boolean).join('\n'),
    action: preview.conflicts.length ? 'Adopt and Overwrite My Changes' : 'Adopt',
  };
}

/** The detail of the rewind confirmation: what changes on disk, and that a live run stops. */
export function rewindConfirmation(preview: RewindPreview, stopsRun: boolean): string {
  const { written, removed } = splitChanges(preview.files);
  return [
    preview.files.length === 0 ? 'No file changes on disk: the workspace already matches.' : '',
    written.length ? `Written back: ${listPaths(written)}.` : '',
    removed.length ? `Removed: ${listPaths(removed)}.` : '',
    preview.userEdits.length ? `Your own changes since the last step are overwritten (they stay recorded in the dataset): ${listPaths(preview.userEdits)}.` : '',
    stopsRun ? 'The run stops first.' : '',
    'The steps from this one on stay in the dataset as an abandoned branch; resume to go on from here.',
  ]
    .filter(Boolean)
    .join('\n');
}

/** The log line an event of a live run deserves, if any: trouble as a warning, the end as news. */
export function runEventLog(name: string, event: DatasetEvent): { level: 'info' | 'warn'; text: string } | undefined {
  switch (event.type) {
    case 'model_retry':
      return { level: 'warn', text: `${name}, step ${event.step}: model request failed (attempt ${event.attempt}): ${event.error}` };
    case 'external_change':
      return { level: 'warn', text: `The workspace of ${name} changed outside the agent before step ${event.step}: ${event.grounding.files.map((file) => file.path).join(', ')}` };
    case 'judge_usage':
      return event.error ? { level: 'warn', text: `The judge could not score steps ${event.steps.join(', ')} of ${name}: ${event.error}` } : undefined;
    case 'run_ended':
      return {
        level: 'info',
        text: `${name} ${event.status} after ${event.steps} step(s)${event.error ? `: ${event.error}` : ''}${event.status === 'budget' && event.summary ? `: ${event.summary}` : ''}`,
      };
    default:
      return undefined;
  }
}

export class RunRegistry<S extends TrackedSession = RunSession> {
  private readonly live = new Map<string, LiveRun<S>>();
  /** The session started or resumed last, for callers that want "the" run (tests, the API). */
  private last: S | undefined;
  private shown: ViewedRun<S> | undefined;
  private adoptShown: { runId: string; conflicts: Set<string> } | undefined;
  private rewindShown: { runId: string; step: number; userEdits: Set<string> } | undefined;
  private liveListTimer: ReturnType<typeof setTimeout> | undefined;
  /** Runs whose task verifier is running now. */
  private readonly verifyingRuns = new Set<string>();

  constructor(private readonly hooks: RegistryHooks<S>) {}

  get viewed(): ViewedRun<S> | undefined {
    return this.shown;
  }

  get lastStarted(): S | undefined {
    return this.last;
  }

  /** The session of the run on screen, or else the one started last. */
  currentSession(): S | undefined {
    return this.shown?.session ?? this.last;
  }

  /** Every session started or resumed here, live or ended. */
  sessions(): S[] {
    return [...this.live.values()].map((run) => run.session);
  }

  get(runId: string): LiveRun<S> | undefined {
    return this.live.get(runId);
  }

  get size(): number {
    return this.live.size;
  }

  /** The live run working in the user's own workspace (not in a working copy), if any. */
  workspaceRun(): S | undefined {
    return [...this.live.values()].find((run) => !run.sample && run.session.isLive)?.session;
  }

  /** Refuses a second run in the workspace: two agents in one folder would trip over each other. */
  requireWorkspaceFree(doing: 'starting' | 'resuming'): void {
    const going = this.workspaceRun();
    if (going) {
      throw new ConfigError(
        doing === 'starting'
          ? `Run ${going.runId} is still going in this workspace: stop it before starting another, or sample runs (each works in its own copy).`
          : `Run ${going.runId} is still going in this workspace: stop it before resuming another.`,
      );
    }
  }

  /**
   * The live run an action is for: the one named, else the one on screen, else the only one
   * going. With several going and none shown, the annotator must pick: an action never guesses.
   */
  target(runId?: string): S {
    if (runId !== undefined) {
      const session = this.live.get(runId)?.session;
      if (!session?.isLive) throw new ConfigError(`Run ${runId} is not going in this window.`);
      return session;
    }
    if (this.shown?.session?.isLive) return this.shown.session;
    const going = [...this.live.values()].filter((run) => run.session.isLive);
    if (going.length === 1) return going[0].session;
    if (going.length === 0) throw new ConfigError('No run is going: start one with "Apollo: Start Run".');
    throw new ConfigError(`${going.length} runs are going: open the one you mean in the Apollo panel (the live runs list), then try again.`);
  }

  /**
   * Follows a session from now on. It subscribes before reading the history: events that arrive
   * meanwhile wait, and those the history already holds are skipped, so none is missed or shown
   * twice. The run is shown unless `show` is false and another live run is on screen.
   */
  async attach(session: S, options: { sample?: SamplePosition; show?: boolean } = {}): Promise<LiveRun<S>> {
    const previous = this.live.get(session.runId);
    previous?.subscription.dispose();
    // Nothing is awaited before the subscription: a fast first step must not slip past it.
    const sample = options.sample ?? previous?.sample;
    const run: LiveRun<S> = { session, model: new TimelineModel({ policy: this.hooks.policy(), readOnly: false }), subscription: { dispose: () => undefined }, ...(sample ? { sample } : {}) };
    let waiting: { event: DatasetEvent; sequence: number }[] | undefined = [];
    let replayedThrough = 0;
    run.subscription = session.onEvent((event, sequence) => {
      if (waiting) waiting.push({ event, sequence });
      else if (sequence > replayedThrough) this.forward(run, event);
    });
    this.live.set(session.runId, run);
    this.last = session;
    const history = await session.history();
    replayedThrough = history.sequence;
    for (const event of history.events) run.model.observe(event);
    const arrived = waiting;
    waiting = undefined;
    for (const { event, sequence } of arrived) if (sequence > replayedThrough) this.forward(run, event);
    if (options.show !== false || !this.shown?.session?.isLive) this.view(run);
    else this.scheduleLiveRuns();
    return run;
  }

  private forward(run: LiveRun<S>, event: DatasetEvent): void {
    const shown = this.shown?.runId === run.session.runId;
    for (const message of run.model.observe(event)) {
      if (shown) this.hooks.post(message);
      if (message.type === 'attention') {
        this.hooks.changed?.();
        this.scheduleLiveRuns();
        this.hooks.attention?.(run, message.flag);
      }
    }
    this.hooks.event?.(run, event);
    if (event.type === 'step' || event.type === 'run_state' || event.type === 'run_ended' || event.type === 'label') {
      if (shown) this.hooks.changed?.();
      this.scheduleLiveRuns();
    }
  }

  /** Shows a run of this window. */
  view(run: LiveRun<S>): void {
    this.shown = { runId: run.session.runId, store: run.session.store, model: run.model, session: run.session };
    this.hooks.post(run.model.init());
    this.hooks.changed?.();
    this.postLiveRuns();
  }

  /**
   * Shows a run: one going here, a sampled one still listed, or the one started last (a rewound
   * run waits there to be resumed) as it is kept; any other is read from the dataset, for
   * reading. Returns the problems reading it found.
   */
  async open(runId: string, datasetDir: () => Promise<string>): Promise<string[]> {
    const live = this.live.get(runId);
    if (live && (live.session.isLive || live.sample || live.session === this.last)) {
      this.view(live);
      return [];
    }
    const store = new DatasetStore(await datasetDir());
    const { events, problems } = await store.readEvents(runId);
    const model = new TimelineModel({ policy: this.hooks.policy(), readOnly: true });
    for (const event of events) model.observe(event);
    model.markSeen();
    this.shown = { runId, store, model };
    this.hooks.post(model.init());
    this.hooks.changed?.();
    this.postLiveRuns();
    return problems;
  }

  /** The panel's first message after it (re)connects. */
  init(): HostToWebview {
    return this.shown ? this.shown.model.init() : { type: 'init', run: null, steps: [], hints: [], notes: [], attention: [], unseen: 0 };
  }

  /** The run on screen, or a ConfigError saying there is none (`why`: what to do about it). */
  requireViewed(why = 'No run is open: start one, or open one from the runs list.'): ViewedRun<S> {
    if (!this.shown) throw new ConfigError(why);
    return this.shown;
  }

  /** The events of the run on screen. */
  async viewedEvents(): Promise<DatasetEvent[]> {
    const viewed = this.requireViewed();
    if (viewed.session) return (await viewed.session.history()).events;
    return (await viewed.store.readEvents(viewed.runId)).events;
  }

  /** The steps of the run on screen, oldest first. */
  async viewedSteps(): Promise<StepEvent[]> {
    return (await this.viewedEvents()).filter((event): event is StepEvent => event.type === 'step');
  }

  async findStep(step: number): Promise<StepEvent> {
    const event = (await this.viewedEvents()).find((candidate): candidate is StepEvent => candidate.type === 'step' && candidate.step === step);
    if (!event) throw new ConfigError(`Step ${step} is not in the open run.`);
    return event;
  }

  /** Everything about one step of the run on screen, for the detail view. */
  async stepDetail(step: number): Promise<StepDetail> {
    this.requireViewed('No run is open.');
    return stepDetail(await this.findStep(step));
  }

  /** The file holding the full output of a step's command; never a path outside the step's run folder. */
  async fullOutputPath(step: number): Promise<string> {
    const event = await this.findStep(step);
    if (!event.fullOutput) throw new ConfigError(`Step ${step} kept no separate output: its observation is complete.`);
    const viewed = this.requireViewed();
    const runDir = viewed.store.runDir(viewed.runId);
    const file = path.resolve(runDir, event.fullOutput);
    if (!file.startsWith(runDir + path.sep)) throw new ConfigError(`Step ${step}'s output path points outside its run.`);
    // A link inside the run folder that leads out of it is refused the same way.
    const real = await fs.realpath(file).catch(() => undefined);
    if (real === undefined) throw new ConfigError(`Step ${step}'s full output is missing from its run folder.`);
    const realRunDir = await fs.realpath(runDir);
    if (!real.startsWith(realRunDir + path.sep)) throw new ConfigError(`Step ${step}'s output path points outside its run.`);
    return real;
  }

  /** The shadow store holding the snapshots of the run on screen: its session's, or the one its start names. */
  async shadowOfViewed(): Promise<{ workspace: string; storeDir: string }> {
    const viewed = this.requireViewed();
    if (viewed.session) return viewed.session.shadow;
    const started = (await this.viewedEvents()).find((candidate) => candidate.type === 'run_started');
    if (started?.type !== 'run_started') throw new ConfigError('The run has no start recorded; its snapshots cannot be found.');
    return { workspace: started.workspace, storeDir: shadowStoreDir(await fs.realpath(viewed.store.root), started.workspace) };
  }

  /** Labels a step of the run on screen: through its session, or appended to a past run's events. */
  async label(step: number, label: LabelValue, details: { axis?: LabelAxis; reason?: string } = {}): Promise<void> {
    const viewed = this.requireViewed('No run is open to label: start or resume one, or open one from the runs list.');
    const request = { ...(details.axis ? { axis: details.axis } : {}), ...(details.reason ? { reason: details.reason } : {}) };
    if (viewed.session) await viewed.session.label(step, label, { source: 'human', ...request });
    else {
      const event = await labelStep(recordedRun(viewed.store, viewed.runId), { step, label, ...request });
      this.observe(viewed.runId, event);
    }
    this.markSeen();
  }

  /** An event written beside a run (an adoption, a rewind): its timeline takes it, the panel hears if it shows it. */
  observe(runId: string, event: DatasetEvent): void {
    const model = this.live.get(runId)?.model ?? (this.shown?.runId === runId ? this.shown.model : undefined);
    for (const message of model?.observe(event) ?? []) if (this.shown?.runId === runId) this.hooks.post(message);
    this.scheduleLiveRuns();
  }

  /** The annotator looked or acted: the flags of the run on screen count as seen. */
  markSeen(): void {
    this.shown?.model.markSeen();
    this.hooks.changed?.();
    this.scheduleLiveRuns();
  }

  /** "run 2 of 3 (id)" for a sampled run, "run <id>" otherwise: how messages name a run. */
  runName(run: LiveRun<S>): string {
    return run.sample ? `run ${run.sample.index} of ${run.sample.count} (${run.session.runId})` : `run ${run.session.runId}`;
  }

  /** The name the adopt preview gives a run. */
  previewName(runId: string): string {
    const sample = this.live.get(runId)?.sample;
    return sample ? `Run ${sample.index} of ${sample.count}` : `Run ${runId}`;
  }

  /** The runs of this window, most in need of the annotator first. */
  liveRuns(): LiveRunItem[] {
    // Sampled runs stay listed after they end (to review or adopt); a run on the workspace leaves the list.
    const runs = [...this.live.values()].filter((run) => run.model.runView && (run.sample || run.session.isLive));
    const byId = new Map(runs.map((run) => [run.session.runId, run]));
    return orderByNeed(
      runs.map((run) => {
        const view = run.model.runView!;
        // The session's id: a recorded run_started may name another (a run copied before it was resumed).
        const verifier =
          view.reward && !this.verifyingRuns.has(run.session.runId)
            ? { ...(view.reward.value !== undefined ? { reward: view.reward.value } : {}), ...(view.reward.error ? { error: view.reward.error } : {}) }
            : undefined;
        return {
          runId: run.session.runId,
          status: view.status,
          ...(view.pausedReason ? { pausedReason: view.pausedReason } : {}),
          unseen: run.model.unseenFlagList(),
          startedAt: view.startedAt,
          ...(verifier ? { verifier } : {}),
        };
      }),
      this.hooks.needOrder?.(),
    ).map((need) => {
      const run = byId.get(need.runId)!;
      const view = run.model.runView!;
      const ended = !(view.status === 'running' || view.status === 'paused');
      return {
        runId: need.runId,
        task: view.task,
        status: view.status,
        steps: view.steps,
        ...(run.sample ? { sample: run.sample } : {}),
        need: { kind: need.kind, message: need.message },
        unseen: run.model.unseenFlags,
        adoptable: ended && !!view.originWorkspace && !view.adoptedAt,
        ...(view.suiteTask ? { suiteTask: { name: view.suiteTask, ...(this.verifyingRuns.has(need.runId) ? { verifying: true } : view.reward ? { reward: view.reward } : {}) } } : {}),
      };
    });
  }

  /** A run's task verifier started (true) or gave its outcome (false: its reward event follows through `observe`). */
  setVerifying(runId: string, verifying: boolean): void {
    if (verifying) this.verifyingRuns.add(runId);
    else this.verifyingRuns.delete(runId);
    this.scheduleLiveRuns();
  }

  /** Posts the live runs list soon, once for a burst of events. */
  scheduleLiveRuns(): void {
    if (this.liveListTimer) return;
    this.liveListTimer = setTimeout(() => {
      this.liveListTimer = undefined;
      this.postLiveRuns();
    }, 150);
  }

  postLiveRuns(): void {
    this.hooks.post({ type: 'liveRuns', runs: this.liveRuns() });
  }

  /** What the status bar, the badge and the context keys show. */
  status(): StatusView {
    const session = this.currentSession();
    const status = session?.status;
    const going = [...this.live.values()].filter((run) => run.session.isLive);
    // The badge counts what waits in every run, not just the one on screen.
    const unseen = [...this.live.values()].reduce((sum, run) => sum + run.model.unseenFlags, 0) + (this.shown && !this.shown.session ? this.shown.model.unseenFlags : 0);
    const unseenHere = this.shown?.model.unseenFlags ?? 0;
    const view: StatusView = { state: status ?? 'none', live: session?.isLive ?? false, going: going.length, unseen, unseenHere };
    if (!session) return view;
    const attention = unseen > 0 ? ` · $(warning) ${unseen} need${unseen === 1 ? 's' : ''} attention` : '';
    const waiting = unseen ? ` ${unseen} flagged step(s) wait for you.` : '';
    if (going.length > 1) {
      const paused = going.filter((run) => run.session.status === 'paused').length;
      view.item = {
        text: `$(sync~spin) Apollo: ${going.length} runs${paused ? ` (${paused} paused)` : ''}${attention}`,
        tooltip: `${going.length} runs are going in this window.${waiting} Click to go to the run that needs you most.`,
        command: 'apollo.nextRunNeedingAttention',
        warning: unseen > 0,
      };
    } else {
      const icon = status === 'running' ? '$(sync~spin)' : status === 'paused' ? '$(debug-pause)' : status === 'failed' ? '$(error)' : '$(check)';
      view.item = {
        text: `${icon} Apollo: ${status} · ${plural(session.stepCount, 'step')}${attention}`,
        tooltip: `Run ${session.runId}: ${status}.${waiting} Click to open the Intervention panel.`,
        command: unseen > 0 ? (unseenHere > 0 ? 'apollo.nextFlaggedStep' : 'apollo.nextRunNeedingAttention') : 'apollo.panel.focus',
        warning: unseen > 0,
      };
    }
    return view;
  }

  // Resuming

  /** The live session a resume is for (paused, or going and needing nothing), if there is one. */
  liveToResume(runId?: string): S | undefined {
    const known = runId ? this.live.get(runId)?.session : this.shown?.session;
    return known?.isLive ? known : undefined;
  }

  /** The recorded runs that were interrupted (not ended, or stopped by a full disk), and not going here. */
  async interrupted(datasetDir: string): Promise<RunManifest[]> {
    return (await new DatasetStore(datasetDir).listRuns()).filter(
      (run) => (run.status === 'running' || run.status === 'paused' || run.resumable === 'disk_full') && !this.live.get(run.id)?.session.isLive,
    );
  }

  /**
   * Checks that the run may be resumed here and returns how it started (its provider and model):
   * a run on the workspace waits while another goes there; a sampled one has a folder of its own.
   */
  async checkResume(datasetDir: string, runId: string, manifest: RunManifest | undefined): Promise<{ provider?: string; model?: string }> {
    if (!manifest?.originWorkspace) this.requireWorkspaceFree('resuming');
    const started = (await new DatasetStore(datasetDir).readEvents(runId)).events.find((event) => event.type === 'run_started');
    return started?.type === 'run_started' ? { ...(started.provider ? { provider: started.provider } : {}), model: started.model } : {};
  }

  /** A sampled run keeps its place among the runs of its task when resumed. */
  async samplePosition(datasetDir: string, runId: string, manifest: RunManifest | undefined): Promise<SamplePosition | undefined> {
    if (!manifest?.taskId) return undefined;
    const siblings = (await new DatasetStore(datasetDir).listRuns()).filter((run) => run.taskId === manifest.taskId).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return { taskId: manifest.taskId, index: siblings.findIndex((run) => run.id === runId) + 1, count: siblings.length };
  }

  // Adopting

  /** What adopting the run would do; refuses runs still going and what can never be adopted. */
  async adoptable(datasetDir: string, runId: string): Promise<AdoptPreview> {
    if (this.live.get(runId)?.session.isLive) throw new ConfigError(`Run ${runId} is still going: let it end, or stop it, before adopting its changes.`);
    const preview = await previewAdopt(datasetDir, runId);
    // What can never be adopted (a path into .git, a link in the way) is said before any preview.
    const refusal = adoptRefusal(preview, { overwrite: true });
    if (refusal) throw refusal;
    return preview;
  }

  /** The sampled runs of the workspace that ended and were not adopted yet. */
  async adoptCandidates(datasetDir: string, workspace: string): Promise<RunManifest[]> {
    const real = await fs.realpath(workspace);
    const candidates = (await new DatasetStore(datasetDir).listRuns()).filter((run) => run.originWorkspace === real && run.status !== 'running' && run.status !== 'paused' && !run.adoptedAt);
    if (!candidates.length) throw new ConfigError('No sampled run of this workspace waits to be adopted: sample runs first ("Apollo: Sample Runs…").');
    return candidates;
  }

  /** The panel showed these conflicts: a confirmation from it overwrites only those. */
  adoptPreviewShown(preview: AdoptPreview): HostToWebview {
    this.adoptShown = { runId: preview.runId, conflicts: new Set(preview.conflicts) };
    return { type: 'adoptPreview', preview: { runId: preview.runId, name: this.previewName(preview.runId), ...splitChanges(preview.files), conflicts: preview.conflicts } };
  }

  /**
   * Whether the panel's confirmation covers the conflicts as they are now (returns whether to
   * overwrite); a conflict that appeared since, or one not agreed to, stops it.
   */
  confirmAdoptFromPanel(preview: AdoptPreview, overwrite: boolean | undefined): boolean {
    const shown = this.adoptShown?.runId === preview.runId ? this.adoptShown.conflicts : new Set<string>();
    const unseen = preview.conflicts.filter((file) => !overwrite || !shown.has(file));
    if (unseen.length) throw new ConfigError(`You changed ${listPaths(unseen)} too; nothing was written. Press Adopt again to see the conflicts and choose to overwrite them.`);
    return preview.conflicts.length > 0;
  }

  /** After a modal confirmation: edits made while it was open were not shown, and are not overwritten unasked. */
  confirmAdoptAgain(shown: AdoptPreview, now: AdoptPreview): boolean {
    const unseen = now.conflicts.filter((file) => !shown.conflicts.includes(file));
    if (unseen.length) throw new ConfigError(`You changed ${listPaths(unseen)} while the preview was open; nothing was written. Adopt again to see the changes as they are now.`);
    return shown.conflicts.length > 0;
  }

  adopted(): void {
    this.adoptShown = undefined;
  }

  // Rewinding

  /** The panel showed this rewind preview: a confirmation from it covers only these edits. */
  rewindPreviewShown(step: number, preview: RewindPreview): HostToWebview {
    const viewed = this.requireViewed('There is no run to rewind: start or resume one, or open one from the runs list.');
    this.rewindShown = { runId: viewed.runId, step, userEdits: new Set(preview.userEdits) };
    return { type: 'rewindPreview', preview: { step, ...splitChanges(preview.files), userEdits: preview.userEdits, stopsRun: !!viewed.session?.isLive } };
  }

  /** Whether the rewind must still be confirmed: always without the panel's, and when edits appeared since its preview. */
  rewindNeedsConfirmation(step: number, preview: RewindPreview, confirmed: boolean): boolean {
    const viewed = this.requireViewed();
    const shown = this.rewindShown?.runId === viewed.runId && this.rewindShown.step === step ? this.rewindShown.userEdits : new Set<string>();
    return !confirmed || preview.userEdits.some((file) => !shown.has(file));
  }

  dispose(): void {
    if (this.liveListTimer) clearTimeout(this.liveListTimer);
    for (const run of this.live.values()) run.subscription.dispose();
  }
}
