/**
 * Rewind: puts the workspace back to how it stood before a step and records a new branch, so
 * the run can go on from there (typically with a hint) while the abandoned steps stay in the
 * dataset as a rejected alternative.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { snapshotBeforeStep, type FileChange, type RewindEvent } from '../dataset/events';
import { DatasetStore } from '../dataset/store';
import { datasetExclusions, ShadowStore, shadowStoreDir } from '../grounding/shadowStore';
import { currentPath } from './branches';
import { ConfigError } from './runSession';
import { remountCopy } from './overlayCopy';
import { claimFileOf, claimWorkspace, WorkspaceBusyError, type WorkspaceClaim, workspaceHolder } from './workspaceClaim';

/** The user changed files since the run's last snapshot; rewinding would overwrite them. */
export class UnsavedChangesError extends ConfigError {
  constructor(readonly files: string[]) {
    super(
      `The workspace has changes made after the run's last step that rewinding would overwrite: ${files.join(', ')}. ` +
        'Keep them somewhere else first, or rewind with --force (they stay recorded in the dataset).',
    );
  }
}

export interface RewindOptions {
  datasetDir: string;
  runId: string;
  toStep: number;
  /** Overwrite the user's changes made since the last snapshot (they are recorded first). */
  force?: boolean;
}

export interface RewindResult {
  event: RewindEvent;
  /** The user's changes that were overwritten (recorded as an external change first). */
  overwritten: string[];
}

export const newBranchId = () => `b-${randomBytes(4).toString('hex')}`;

/**
 * Where a rewind stands: the run's current branch, the step to go back to and the workspace now.
 * A rewind claims the workspace before looking at it; a preview only needs no other run going
 * there (its own run may be, in the same process: it stops before the rewind).
 */
async function prepare(options: RewindOptions, purpose: 'preview' | 'rewind') {
  if (!Number.isInteger(options.toStep) || options.toStep < 1) throw new ConfigError(`Rewind needs a step number of at least 1, not ${options.toStep}.`);
  const store = new DatasetStore(options.datasetDir);
  await store.readManifest(options.runId);
  const { events } = await store.readEvents(options.runId);
  const started = events.find((event) => event.type === 'run_started');
  if (!started || started.type !== 'run_started') throw new ConfigError(`Run ${options.runId} has no start recorded; it cannot be rewound.`);
  if (started.importedFrom) throw new ConfigError(`Run ${options.runId} was imported (${started.importedFrom.format}): it has no workspace to rewind.`);
  const { steps, lastSnapshot } = currentPath(events);
  const target = steps.find((step) => step.step === options.toStep);
  if (!target) {
    const known = steps.map((step) => step.step);
    throw new ConfigError(
      `Step ${options.toStep} is not on run ${options.runId}'s current branch` + (known.length ? ` (its steps: ${known[0]}–${known[known.length - 1]}).` : ' (it has no steps yet).'),
    );
  }
  const workspace = started.workspace;
  // An overlay working copy whose sampling has ended is mounted again first.
  await remountCopy(workspace).catch((error: Error) => {
    throw new ConfigError(`Run ${options.runId}'s working copy cannot be mounted here: ${error.message}. The CLI mounts it in a namespace of its own: apollo rewind --run ${options.runId}.`);
  });
  const datasetRoot = await fs.realpath(options.datasetDir);
  // Snapshots as the run took them: its own exclusions and size limit (the built-in ones for a
  // run recorded before they were kept).
  const shadow = new ShadowStore({
    workspace,
    storeDir: shadowStoreDir(datasetRoot, workspace),
    exclude: datasetExclusions(workspace, datasetRoot),
    ...(started.grounding ? { excludePatterns: started.grounding.excludePatterns, maxFileBytes: started.grounding.maxFileBytes } : {}),
    runId: options.runId,
  });
  await shadow.init();
  let claim: WorkspaceClaim | undefined;
  if (purpose === 'rewind') {
    claim = await claimWorkspace(workspace, options.runId, 'rewind');
  } else {
    const holder = await workspaceHolder(workspace);
    const ownRunHere = holder?.purpose === 'run' && holder.runId === options.runId && holder.pid === process.pid && holder.host === os.hostname();
    if (holder && !ownRunHere) throw new WorkspaceBusyError(holder, claimFileOf(workspace));
  }
  try {
    // What the workspace holds now, against what the run last recorded: the user's own edits.
    const now = await shadow.snapshot();
    const userEdits = lastSnapshot && (await shadow.treeOf(now)) !== (await shadow.treeOf(lastSnapshot)) ? await shadow.ground(lastSnapshot, now) : undefined;
    return { store, steps, target, shadow, now, userEdits, claim };
  } catch (error) {
    await claim?.release();
    throw error;
  }
}

export interface RewindPreview {
  /** The files a rewind would write or remove: the workspace now against the state before the step. */
  files: FileChange[];
  /** Files the user changed since the run's last step; a rewind overwrites them. */
  userEdits: string[];
}

/** What a rewind to the step would change on disk, without changing anything. */
export async function previewRewind(options: Omit<RewindOptions, 'force'>): Promise<RewindPreview> {
  const { shadow, now, target, userEdits } = await prepare(options, 'preview');
  const { files } = await shadow.ground(now, snapshotBeforeStep(target));
  await shadow.settled();
  return { files, userEdits: userEdits?.files.map((file) => file.path) ?? [] };
}

export async function rewindRun(options: RewindOptions): Promise<RewindResult> {
  const { claim, ...prepared } = await prepare(options, 'rewind');
  try {
    return await rewindClaimed(options, prepared);
  } finally {
    await claim?.release();
  }
}

async function rewindClaimed(options: RewindOptions, prepared: Omit<Awaited<ReturnType<typeof prepare>>, 'claim'>): Promise<RewindResult> {
  const { store, steps, target, shadow, now, userEdits } = prepared;
  let overwritten: string[] = [];
  if (userEdits) {
    overwritten = userEdits.files.map((file) => file.path);
    if (!options.force) throw new UnsavedChangesError(overwritten);
    // Recorded before anything is written, so the edits can always be got back from the store.
    const lastStep = steps.length ? steps[steps.length - 1].step : 1;
    await store.appendEvent(options.runId, { type: 'external_change', time: new Date().toISOString(), step: lastStep, phase: 'before_rewind', grounding: userEdits });
  }

  const files: FileChange[] = await shadow.restore(now, snapshotBeforeStep(target));
  const restored = await shadow.snapshot();
  await shadow.settled();
  const previous = steps.filter((step) => step.step < options.toStep).pop();
  const event: RewindEvent = {
    type: 'rewind',
    time: new Date().toISOString(),
    toStep: options.toStep,
    branch: newBranchId(),
    parentStep: previous?.step ?? 0,
    snapshot: restored,
    files,
  };
  await store.appendEvent(options.runId, event);
  await store.openRun(options.runId).then((writer) => writer.updateManifest({ status: 'paused' }));
  return { event, overwritten };
}
