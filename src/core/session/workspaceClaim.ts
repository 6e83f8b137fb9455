/**
 * One agent at a time in a workspace, across processes: a run (from the extension or the CLI),
 * a rewind and an adopt each claim the workspace's shadow store while they change files there,
 * and are refused while another holds it. Without this, two processes would edit the same files
 * and share one index, and a rewind could pull the files from under a run going elsewhere.
 *
 * The claim is a small file created exclusively in the store. A claim whose process is gone
 * (a crash, a closed window) is taken over; one held on another machine (a dataset on a shared
 * folder) cannot be checked and counts as held.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './errors';

export const CLAIM_FILE = 'apollo-claim.json';

export interface WorkspaceClaimHolder {
  /** The run working there, or the run being rewound or adopted. */
  runId: string;
  purpose: 'run' | 'rewind' | 'adopt';
  pid: number;
  host: string;
  since: string;
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claims held by this process that are still in use, by file. */
const heldHere = new Map<string, string>();

/**
 * Whether a claim can be taken over: its process ended. A claim naming this process that this
 * process does not hold is left from an earlier use that never let go.
 */
function stale(holder: WorkspaceClaimHolder, file: string, text: string): boolean {
  if (holder.host !== os.hostname()) return false;
  if (holder.pid === process.pid) return heldHere.get(file) !== text;
  return !alive(holder.pid);
}

function parseHolder(text: string): WorkspaceClaimHolder | undefined {
  try {
    const value = JSON.parse(text) as WorkspaceClaimHolder;
    return typeof value.runId === 'string' && Number.isInteger(value.pid) && typeof value.host === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Who holds the workspace of a shadow store now, if anyone (a stale claim counts as none). */
export async function workspaceHolder(storeDir: string): Promise<WorkspaceClaimHolder | undefined> {
  const file = path.join(storeDir, CLAIM_FILE);
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const holder = parseHolder(text);
  return holder && !stale(holder, file, text) ? holder : undefined;
}

/**
 * Claims the workspace of a shadow store (the folder must exist) for a run, a rewind or an
 * adopt. Throws WorkspaceBusyError while another one holds it.
 */
export async function claimWorkspace(storeDir: string, runId: string, purpose: WorkspaceClaimHolder['purpose']): Promise<WorkspaceClaim> {
  const file = path.join(storeDir, CLAIM_FILE);
  const holder: WorkspaceClaimHolder = { runId, purpose, pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
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
    if (other && !stale(other, file, found)) throw new WorkspaceBusyError(other, file);
    if (!other && !found.endsWith('\n') && attempt === 0) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    await takeOver(file, found);
  }
  heldHere.set(file, text);
  let released = false;
  return {
    holder,
    release: async () => {
      if (released) return;
      released = true;
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
