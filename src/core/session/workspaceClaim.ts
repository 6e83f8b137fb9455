/**
 * One agent at a time in a workspace, across processes and datasets: a run (from the extension
 * or the CLI), a rewind and an adopt each claim the workspace while they change files there,
 * and are refused while another holds it. Without this, two processes would edit the same files
 * and share one index, and a rewind could pull the files from under a run going elsewhere.
 *
 * The claim is one small file per workspace real path, created exclusively in the user's Apollo
 * folder (`<APOLLO_HOME>/claims/<workspace key>.json`), whatever dataset the run records into:
 * two runs on one workspace with two datasets still meet there. A claim is taken over when its
 * holder is gone: on this machine, when the process has ended, is a zombie (a crashed process
 * nobody reaped), or its id now belongs to another process (the start time differs); a claim
 * from another machine (a shared folder) when its heartbeat (the holder touches the file every
 * few seconds) has stopped for CLAIM_EXPIRY_MS.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apolloHome, workspaceKey } from '../paths';
import { ConfigError } from './errors';

/** How often a holder touches its claim. */
export const CLAIM_HEARTBEAT_MS = 5_000;
/** A claim from another machine whose heartbeat stopped this long ago is taken over. */
export const CLAIM_EXPIRY_MS = 6 * CLAIM_HEARTBEAT_MS;

export interface WorkspaceClaimHolder {
  /** The run working there, or the run being rewound or adopted. */
  runId: string;
  purpose: 'run' | 'rewind' | 'adopt';
  pid: number;
  host: string;
  since: string;
  /** The holder process's start (boot id and start tick on Linux, `ps` start time elsewhere): a reused pid is told apart. */
  started?: string;
  /** The workspace claimed (its real path). */
  workspace?: string;
}

export interface ClaimOptions {
  /** The Apollo folder holding `claims/`; default apolloHome(). */
  home?: string;
  /** How often the holder touches its claim; default CLAIM_HEARTBEAT_MS. */
  heartbeatMs?: number;
}

/** Another run, rewind or adopt holds the workspace. */
export class WorkspaceBusyError extends ConfigError {
  constructor(
    readonly holder: WorkspaceClaimHolder,
    readonly claimFile: string,
  ) {
    const doing = holder.purpose === 'run' ? `Run ${holder.runId} is going` : `Run ${holder.runId} is being ${holder.purpose === 'rewind' ? 'rewound' : 'adopted'}`;
    const where = holder.host === os.hostname() ? (holder.pid === process.pid ? 'in this process' : `in process ${holder.pid}`) : `on ${holder.host}`;
    super(
      `${doing} in this workspace (${where}, since ${holder.since}): stop it or let it finish first, or sample runs (each works in its own copy). ` +
        `If nothing of Apollo's is running there, delete ${claimFile}.`,
    );
  }
}

export interface WorkspaceClaim {
  readonly holder: WorkspaceClaimHolder;
  /** Lets the workspace go; a second call does nothing. */
  release(): Promise<void>;
}

/** The claim file of a workspace (give its real path). */
export function claimFileOf(workspace: string, home: string = apolloHome()): string {
  return path.join(home, 'claims', `${workspaceKey(workspace)}.json`);
}

async function realWorkspace(workspace: string): Promise<string> {
  return fs.realpath(workspace).catch(() => path.resolve(workspace));
}

interface ProcessState {
  /** One letter: R, S, D, T, Z (zombie), X (dead)… */
  state: string;
  started: string;
}

let bootId: string | undefined;
function currentBoot(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = '';
    }
  }
  return bootId;
}

/**
 * How a process of this machine stands: undefined when there is none with that id, 'unknown'
 * when it cannot be told (then only its existence counts).
 */
export function processState(pid: number): ProcessState | undefined | 'unknown' {
  if (process.platform === 'linux') {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
      return 'unknown';
    }
    // "pid (comm) state ppid …": the command name may hold spaces and parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0] ?? '';
    const startTick = fields[19];
    if (!state || !startTick) return 'unknown';
    return { state, started: `linux:${currentBoot()}:${startTick}` };
  }
  if (process.platform === 'win32') return 'unknown';
  try {
    const out = execFileSync('ps', ['-o', 'stat=', '-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    if (!out) return undefined;
    const [state, ...start] = out.split(/\s+/);
    return { state: state.slice(0, 1), started: `ps:${start.join(' ')}` };
  } catch (error) {
    // ps exits 1 when no process has that id.
    return (error as { status?: number }).status === 1 ? undefined : 'unknown';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process a claim names is gone: ended, a zombie, or its id reused by another. */
function holderGone(holder: WorkspaceClaimHolder): boolean {
  const state = processState(holder.pid);
  if (state === undefined) return true;
  if (state === 'unknown') return !alive(holder.pid);
  if (state.state === 'Z' || state.state === 'X' || state.state === 'x') return true;
  return holder.started !== undefined && holder.started !== state.started;
}

let ownStart: string | undefined;
function ownStarted(): string | undefined {
  if (ownStart === undefined) {
    const state = processState(process.pid);
    ownStart = typeof state === 'object' ? state.started : '';
  }
  return ownStart || undefined;
}

/** Claims held by this process that are still in use, by file. */
const heldHere = new Map<string, string>();

/**
 * Whether a claim can be taken over (see the module comment). A claim naming this process that
 * this process does not hold is left from an earlier use that never let go.
 */
async function stale(holder: WorkspaceClaimHolder, file: string, text: string): Promise<boolean> {
  if (holder.host !== os.hostname()) {
    const touched = (await fs.stat(file).catch(() => undefined))?.mtimeMs;
    return touched === undefined || Date.now() - touched > CLAIM_EXPIRY_MS;
  }
  if (holder.pid === process.pid && (holder.started === undefined || holder.started === ownStarted())) return heldHere.get(file) !== text;
  return holderGone(holder);
}

function parseHolder(text: string): WorkspaceClaimHolder | undefined {
  try {
    const value = JSON.parse(text) as WorkspaceClaimHolder;
    return typeof value.runId === 'string' && Number.isInteger(value.pid) && typeof value.host === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Who holds a workspace now, if anyone (a stale claim counts as none). */
export async function workspaceHolder(workspace: string, options: ClaimOptions = {}): Promise<WorkspaceClaimHolder | undefined> {
  const file = claimFileOf(await realWorkspace(workspace), options.home);
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const holder = parseHolder(text);
  return holder && !(await stale(holder, file, text)) ? holder : undefined;
}

/**
 * Claims a workspace for a run, a rewind or an adopt, whatever dataset it records into. Throws
 * WorkspaceBusyError while another one holds it. The claim's file is touched every
 * `heartbeatMs` until it is let go.
 */
export async function claimWorkspace(workspace: string, runId: string, purpose: WorkspaceClaimHolder['purpose'], options: ClaimOptions = {}): Promise<WorkspaceClaim> {
  const real = await realWorkspace(workspace);
  const file = claimFileOf(real, options.home);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const started = ownStarted();
  const holder: WorkspaceClaimHolder = { runId, purpose, pid: process.pid, host: os.hostname(), since: new Date().toISOString(), ...(started ? { started } : {}), workspace: real };
  const text = JSON.stringify(holder) + '\n';
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.writeFile(file, text, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw error;
    }
    const found = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (found === undefined) continue; // let go meanwhile
    const other = parseHolder(found);
    // A claim half written by a process that died while writing it is stale too.
    if (other && !(await stale(other, file, found))) throw new WorkspaceBusyError(other, file);
    if (!other && !found.endsWith('\n') && attempt === 0) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    await takeOver(file, found);
  }
  heldHere.set(file, text);
  let released = false;
  // The heartbeat: a holder on another machine is known to be alive only by it.
  const heartbeat = setInterval(() => {
    void fs
      .readFile(file, 'utf8')
      .then((current) => {
        if (current === text && !released) {
          const now = new Date();
          return fs.utimes(file, now, now);
        }
      })
      .catch(() => undefined);
  }, options.heartbeatMs ?? CLAIM_HEARTBEAT_MS);
  heartbeat.unref();
  return {
    holder,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      heldHere.delete(file);
      // Only this claim's own file: never one another process made after a takeover.
      const current = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (current === text) await fs.rm(file, { force: true });
    },
  };
}

/**
 * Removes a stale claim. Moved aside first, then checked: should another process have replaced
 * it in between with a claim of its own, that claim is put back.
 */
async function takeOver(file: string, staleText: string): Promise<void> {
  const aside = `${file}.${randomBytes(4).toString('hex')}.stale`;
  try {
    await fs.rename(file, aside);
  } catch {
    return; // another process took it over first
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => staleText);
  if (moved !== staleText) await fs.link(aside, file).catch(() => undefined);
  await fs.rm(aside, { force: true });
}
