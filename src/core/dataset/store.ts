/**
 * The dataset folder: `runs/<id>/run.json` (manifest) and `runs/<id>/events.jsonl` (append-only).
 * It is the single source of truth that the panel, the CLI and exporters read.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { type DatasetEvent, type HintKind, HINT_KINDS, type HintUrgency, InvalidEventError, type RunManifest, validateEvent } from './events';
import { isValidRunId } from './ids';
import { Redactor } from './redaction';

/** Where earlier versions kept a workspace's dataset by default; datasets now default to `<APOLLO_HOME>/datasets/<key>` (paths.ts). */
export const DEFAULT_DATASET_RELATIVE = path.join('.apollo', 'dataset');

/** A dataset folder inside the workspace (`<workspace>/.apollo/dataset`), for callers that choose to keep one there. */
export function defaultDatasetPath(workspace: string): string {
  return path.join(workspace, DEFAULT_DATASET_RELATIVE);
}

export class DatasetError extends Error {}

/** Error codes of a full disk (or a full quota). */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** Whether an error (from a write here, or from git writing the shadow store) says the disk is full. */
export function isDiskFull(error: unknown): boolean {
  if (error instanceof DiskFullError) return true;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code && DISK_FULL_CODES.has(code)) return true;
  return /ENOSPC|EDQUOT|No space left on device|Disk quota exceeded/i.test(String((error as Error | undefined)?.message ?? error));
}

/** A write to the dataset failed for want of space; nothing half written was left. */
export class DiskFullError extends DatasetError {
  constructor(
    readonly root: string,
    cause: unknown,
  ) {
    super(`The disk holding the dataset ${root} is full (${(cause as Error)?.message ?? String(cause)}).`);
  }
}

/** Bytes set aside in each live run's folder (`.reserve`), freed to write the run's final state when the disk fills up. */
export const SPACE_RESERVE_BYTES = 64 * 1024;
export const RESERVE_FILE = '.reserve';

/** Bytes of the files under a folder; 0 when it does not exist. */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await folderBytes(full);
    else if (entry.isFile()) total += (await fs.stat(full).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export interface InboxHint {
  hintId: string;
  text: string;
  kind: HintKind;
  source: string;
  time: string;
  urgency?: HintUrgency;
}

export interface EventLineProblem {
  file: string;
  /** Numbered from 1. */
  line: number;
  message: string;
  /** The last line was cut short (a crash mid-write): expected after a crash, not corruption. */
  truncated: boolean;
}

/** Parses an events file; a line that is not a valid event is reported and skipped. */
export function parseEventLines(text: string, file: string): { events: DatasetEvent[]; problems: EventLineProblem[] } {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  const events: DatasetEvent[] = [];
  const problems: EventLineProblem[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      events.push(validateEvent(JSON.parse(line)));
    } catch (error) {
      const truncated = index === lines.length - 1 && !complete;
      const why = error instanceof InvalidEventError ? error.message : 'not valid JSON';
      problems.push({ file, line: index + 1, message: truncated ? 'truncated last line (interrupted write)' : why, truncated });
    }
  });
  return { events, problems };
}

/** A `.gitignore` holding `*` hides a folder (itself included) from every git status. */
const IGNORE_EVERYTHING = '*\n';

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes through a temporary file and a rename, so readers never see half a file. When the write
 * fails (a full disk), the temporary file is removed and the file stays as it was.
 */
async function writeAtomically(file: string, content: string): Promise<void> {
  const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.writeFile(temporary, content);
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Appends one line and flushes it to disk before returning: the line is written whole or not at
 * all. On a short or failed write (a full disk) the file is cut back to its length before the
 * write, which needs no space, and the error is thrown.
 */
async function appendLine(file: string, line: string): Promise<void> {
  const handle = await fs.open(file, 'a');
  try {
    const bytes = Buffer.from(line, 'utf8');
    const before = (await handle.stat()).size;
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
        if (bytesWritten <= 0) throw Object.assign(new Error('No space left on device (nothing could be written)'), { code: 'ENOSPC' });
        written += bytesWritten;
      }
      await handle.sync();
    } catch (error) {
      await handle.truncate(before).catch(() => undefined);
      await handle.sync().catch(() => undefined);
      throw error;
    }
  } finally {
    await handle.close();
  }
}

/** A write to the dataset, with a full disk reported as DiskFullError. */
async function guarded<T>(root: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    throw isDiskFull(error) && !(error instanceof DiskFullError) ? new DiskFullError(root, error) : error;
  }
}

export class DatasetStore {
  readonly root: string;
  readonly redactor: Redactor;

  constructor(root: string, options: { redactor?: Redactor } = {}) {
    this.root = path.resolve(root);
    this.redactor = options.redactor ?? new Redactor();
  }

  async init(): Promise<void> {
    await fs.mkdir(path.join(this.root, 'runs'), { recursive: true });
    const ignoreFiles = [path.join(this.root, '.gitignore')];
    const parent = path.dirname(this.root);
    if (path.basename(parent) === '.apollo') ignoreFiles.push(path.join(parent, '.gitignore'));
    for (const file of ignoreFiles) {
      if (!(await exists(file))) await fs.writeFile(file, IGNORE_EVERYTHING);
    }
  }

  runDir(runId: string): string {
    if (!isValidRunId(runId)) throw new DatasetError(`"${runId}" is not a valid run id.`);
    return path.join(this.root, 'runs', runId);
  }

  private eventsFile(runId: string): string {
    return path.join(this.runDir(runId), 'events.jsonl');
  }

  private manifestFile(runId: string): string {
    return path.join(this.runDir(runId), 'run.json');
  }

  private inboxDir(runId: string): string {
    return path.join(this.runDir(runId), 'inbox');
  }

  private async requireRun(runId: string): Promise<void> {
    if (!(await exists(this.manifestFile(runId)))) {
      throw new DatasetError(`No run "${runId}" in ${this.root}. List the runs in ${path.join(this.root, 'runs')}.`);
    }
  }

  async createRun(manifest: RunManifest): Promise<RunWriter> {
    await this.init();
    const dir = this.runDir(manifest.id);
    try {
      await fs.mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new DatasetError(`Run "${manifest.id}" already exists.`);
      throw error;
    }
    await fs.mkdir(this.inboxDir(manifest.id));
    const writer = new RunWriter(this, manifest);
    await writeAtomically(this.manifestFile(manifest.id), JSON.stringify(manifest, null, 2) + '\n');
    await fs.writeFile(this.eventsFile(manifest.id), '');
    return writer;
  }

  async openRun(runId: string): Promise<RunWriter> {
    return new RunWriter(this, await this.readManifest(runId));
  }

  async readManifest(runId: string): Promise<RunManifest> {
    await this.requireRun(runId);
    try {
      return JSON.parse(await fs.readFile(this.manifestFile(runId), 'utf8')) as RunManifest;
    } catch (error) {
      throw new DatasetError(`The manifest of run "${runId}" cannot be read: ${(error as Error).message}`);
    }
  }

  /** Every run with a readable manifest, newest first. */
  /** The ids of every run folder, readable or not. */
  async runIds(): Promise<string[]> {
    const names = await fs.readdir(path.join(this.root, 'runs')).catch(() => [] as string[]);
    return names.filter(isValidRunId);
  }

  async listRuns(): Promise<RunManifest[]> {
    let names: string[];
    try {
      names = await fs.readdir(path.join(this.root, 'runs'));
    } catch {
      return [];
    }
    const manifests: RunManifest[] = [];
    for (const name of names) {
      if (!isValidRunId(name)) continue;
      try {
        manifests.push(await this.readManifest(name));
      } catch {
        // An unreadable run folder is reported by validation, not by listing.
      }
    }
    return manifests.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  /**
   * Reads a run's events. A corrupt line is reported and skipped; so is a truncated last line
   * (a crash mid-write), never fatal.
   */
  async readEvents(runId: string): Promise<{ events: DatasetEvent[]; problems: string[] }> {
    const { events, problems } = await this.readEventLines(runId);
    return { events, problems: problems.map((problem) => `${problem.file} line ${problem.line}: ${problem.message}; skipped`) };
  }

  /** Like readEvents, with each problem's file, line number and whether it is a truncated last line. */
  async readEventLines(runId: string): Promise<{ events: DatasetEvent[]; problems: EventLineProblem[] }> {
    await this.requireRun(runId);
    const file = this.eventsFile(runId);
    return parseEventLines(await fs.readFile(file, 'utf8'), file);
  }

  /** Validates and redacts an event: the event as recorded, and the line to write. */
  prepare<E extends DatasetEvent>(event: E): { recorded: E; line: string } {
    validateEvent(event);
    const recorded = this.redactor.redactDeep(event);
    return { recorded, line: JSON.stringify(recorded) + '\n' };
  }

  /**
   * Appends an event from outside the run's own writer (another process, or a finished run):
   * one write of one line in append mode, which never interleaves with other appends.
   */
  async appendEvent(runId: string, event: DatasetEvent): Promise<void> {
    await this.requireRun(runId);
    await guarded(this.root, () => appendLine(this.eventsFile(runId), this.prepare(event).line));
  }

  /**
   * Keeps a large text beside a run (a command's full output, a job's log), redacted, and
   * returns its path relative to the run folder.
   */
  async writeRunFile(runId: string, name: string, text: string, options: { append?: boolean } = {}): Promise<string> {
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) throw new DatasetError(`"${name}" is not a valid file name.`);
    const dir = path.join(this.runDir(runId), 'outputs');
    await fs.mkdir(dir, { recursive: true });
    const redacted = this.redactor.redact(text);
    const file = path.join(dir, name);
    await guarded(this.root, async () => {
      // On a full disk nothing half written stays: an appended part is cut off, a new file removed.
      const before = options.append ? ((await fs.stat(file).catch(() => undefined))?.size ?? 0) : 0;
      try {
        if (options.append) await fs.appendFile(file, redacted);
        else await fs.writeFile(file, redacted);
      } catch (error) {
        if (options.append) await fs.truncate(file, before).catch(() => undefined);
        else await fs.rm(file, { force: true }).catch(() => undefined);
        throw error;
      }
    });
    return `outputs/${name}`;
  }

  /** Leaves a hint for a run that another process is executing; it picks it up at its next step. */
  async queueHintFile(runId: string, hint: InboxHint): Promise<void> {
    await this.requireRun(runId);
    const dir = this.inboxDir(runId);
    await fs.mkdir(dir, { recursive: true });
    // File names sort by time, so hints are delivered in the order they were sent.
    const name = `${Date.now().toString().padStart(15, '0')}-${hint.hintId}.json`;
    await writeAtomically(path.join(dir, name), JSON.stringify(hint));
  }

  /** Takes (reads and removes) the hints waiting in a run's inbox, oldest first. */
  async takeInboxHints(runId: string): Promise<InboxHint[]> {
    const dir = this.inboxDir(runId);
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter((name) => name.endsWith('.json')).sort();
    } catch {
      return [];
    }
    const hints: InboxHint[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      let hint: InboxHint | undefined;
      try {
        const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as InboxHint;
        if (typeof parsed.text === 'string' && parsed.text.trim() && HINT_KINDS.includes(parsed.kind)) hint = parsed;
      } catch {
        hint = undefined;
      }
      if (hint) {
        await fs.rm(file, { force: true });
        hints.push({ ...hint, hintId: String(hint.hintId), source: String(hint.source ?? 'cli'), urgency: hint.urgency === 'now' ? 'now' : 'next' });
      } else {
        // Kept aside rather than deleted: nothing sent is ever lost silently.
        await fs.mkdir(path.join(dir, 'rejected'), { recursive: true });
        await fs.rename(file, path.join(dir, 'rejected', name));
      }
    }
    return hints;
  }
}

/** The writer a run uses for its own events: serialized, flushed appends and manifest updates. */
export class RunWriter {
  readonly runId: string;
  private current: RunManifest;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: DatasetStore,
    manifest: RunManifest,
  ) {
    this.runId = manifest.id;
    this.current = manifest;
  }

  manifest(): RunManifest {
    return this.current;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Reads the run's events after every write queued so far, and before any queued later. */
  readEvents(): Promise<{ events: DatasetEvent[]; problems: string[] }> {
    return this.enqueue(() => this.store.readEvents(this.runId));
  }

  /** Appends an event (flushed) and returns it as recorded: secrets redacted. */
  async append<E extends DatasetEvent>(event: E): Promise<E> {
    const { recorded, line } = this.store.prepare(event);
    await this.enqueue(() => this.guard(() => appendLine(path.join(this.store.runDir(this.runId), 'events.jsonl'), line)));
    return recorded;
  }

  updateManifest(patch: Partial<RunManifest>): Promise<void> {
    this.current = { ...this.current, ...patch, updatedAt: new Date().toISOString() };
    const content = JSON.stringify(this.store.redactor.redactDeep(this.current), null, 2) + '\n';
    return this.enqueue(() => this.guard(() => writeAtomically(path.join(this.store.runDir(this.runId), 'run.json'), content)));
  }

  private full = false;

  /** Whether a write of this run found the disk full. */
  get diskFull(): boolean {
    return this.full;
  }

  private async guard(write: () => Promise<void>): Promise<void> {
    try {
      await guarded(this.store.root, write);
    } catch (error) {
      if (error instanceof DiskFullError) this.full = true;
      throw error;
    }
  }

  private reservePath(): string {
    return path.join(this.store.runDir(this.runId), RESERVE_FILE);
  }

  /**
   * Sets space aside for the run's final state (SPACE_RESERVE_BYTES, real blocks). Throws
   * DiskFullError when even that does not fit.
   */
  async reserveSpace(): Promise<void> {
    await this.guard(async () => {
      try {
        await fs.writeFile(this.reservePath(), Buffer.alloc(SPACE_RESERVE_BYTES, 0x20));
      } catch (error) {
        await fs.rm(this.reservePath(), { force: true }).catch(() => undefined);
        throw error;
      }
    });
  }

  /** Gives the reserved space back (to write the final state, or when the run ends). */
  async releaseReserve(): Promise<void> {
    await fs.rm(this.reservePath(), { force: true });
  }
}
