/**
 * The processes of the agent's commands: what environment they get, how they are found again and
 * ended, and the caps on how many there are and how much memory they use.
 *
 * Environment: with or without the sandbox, a command never inherits variables whose names look
 * like secrets (`isSecretEnvName`, the definition the record's redaction and the sandbox use) nor
 * agent and bus sockets (`SOCKET_ENV`), except the names in the pass list. Each command's
 * environment carries two marks: `APOLLO_RUN_TOKEN` (random, one per run) and
 * `APOLLO_COMMAND_TOKEN` (random, one per command or job).
 *
 * Ending: a process that leaves the command's process group (`setsid`, `nohup … &`, a double fork)
 * still carries the marks, so on Linux `killMarked` ends every process of ours whose
 * `/proc/PID/environ` holds the mark: when a command ends or times out (its command token), when a
 * job ends or is stopped (its token), and when the run ends (the run token). Elsewhere only the
 * process group is reached. A program that wipes its own environment (`env -i`) before detaching
 * escapes the mark; inside the sandbox it does not escape: the sandbox's PID namespace ends with the
 * command (bwrap's `--unshare-pid`, `--die-with-parent`).
 *
 * Caps: a watchdog on the host counts a command's processes (those in its sandbox's PID namespace,
 * and those carrying its command token) and their memory (resident size, confirmed with the
 * proportional size, which counts pages shared between forked workers once), every
 * `WATCH_INTERVAL_MS`, and
 * ends the whole command over a cap, with a reason the observation gives. Why a watchdog: the
 * unprivileged limits do not fit. RLIMIT_NPROC counts every process of the real user, Apollo's
 * and the editor's included (a cap low enough to stop a fork loop would break the host), and does
 * not apply to root; RLIMIT_AS counts reserved address space, which V8 and the JVM reserve by
 * gigabytes, so node and java would fail at any useful cap; RLIMIT_DATA has the same trouble with
 * JIT heaps and counts per process, not per command. Cgroups need a delegated cgroup tree, which a
 * plain user session does not have. The watchdog's price: a fork loop runs for up to one interval
 * before it is stopped.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isSecretEnvName } from '../dataset/redaction';
import { SOCKET_ENV } from './sandbox';

export const RUN_TOKEN_ENV = 'APOLLO_RUN_TOKEN';
export const COMMAND_TOKEN_ENV = 'APOLLO_COMMAND_TOKEN';

/** Defaults of the caps (options of the sandbox settings). */
export const DEFAULT_MAX_PROCESSES = 512;
export const DEFAULT_MAX_MEMORY_BYTES = 8 * 1024 * 1024 * 1024;
export const WATCH_INTERVAL_MS = 200;

export function newToken(): string {
  return randomBytes(12).toString('hex');
}

/** The environment a command gets: `base` without secrets and sockets, plus its marks. */
export function commandEnvironment(options: { base?: NodeJS.ProcessEnv; passEnv?: readonly string[]; runToken: string; commandToken: string }): NodeJS.ProcessEnv {
  const pass = new Set(options.passEnv ?? []);
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(options.base ?? process.env)) {
    if (value === undefined) continue;
    if (!pass.has(name) && (isSecretEnvName(name) || SOCKET_ENV.includes(name))) continue;
    env[name] = value;
  }
  env[RUN_TOKEN_ENV] = options.runToken;
  env[COMMAND_TOKEN_ENV] = options.commandToken;
  return env;
}

const HAS_PROC = process.platform === 'linux';

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return [];
  }
}

function carries(pid: number, needle: Buffer): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(needle);
  } catch {
    return false;
  }
}

/** Processes (of the users whose environment Apollo can read: ours) whose environment holds NAME=VALUE. */
export function marked(name: string, value: string): number[] {
  if (!HAS_PROC) return [];
  const needle = Buffer.from(`\0${name}=${value}\0`);
  const first = Buffer.from(`${name}=${value}\0`);
  return pids().filter((pid) => {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`);
      return environ.includes(needle) || environ.subarray(0, first.length).equals(first);
    } catch {
      return false;
    }
  });
}

/**
 * SIGKILLs every process marked NAME=VALUE, again until none is left (a fork loop makes new ones
 * while the first round runs), at most `rounds` rounds. Returns how many were signalled.
 */
export function killMarked(name: string, value: string, rounds = 8): number {
  let total = 0;
  for (let round = 0; round < rounds; round++) {
    const found = marked(name, value);
    if (!found.length) break;
    for (const pid of found) {
      try {
        process.kill(pid, 'SIGKILL');
        total++;
      } catch {
        // gone already
      }
    }
  }
  return total;
}

/** SIGKILLs a process group, ignoring one already gone. */
export function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

function residentBytes(pid: number): number {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return Number.isFinite(pages) ? pages * 4096 : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size: shared pages (forked workers, shared libraries) counted once in all. */
function proportionalBytes(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : residentBytes(pid);
  } catch {
    return residentBytes(pid);
  }
}

export interface Caps {
  maxProcesses: number;
  maxMemoryBytes: number;
}

export interface Usage {
  processes: number;
  memoryBytes: number;
}

/**
 * Watches one command (its top process `pid`, its command token) and calls `over` once, with the
 * reason, when it passes a cap. Linux only; elsewhere it does nothing.
 */
export class CapWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private namespace: string | undefined;
  private readonly hostNamespace = HAS_PROC ? pidNamespace(process.pid) : undefined;
  private tripped = false;

  constructor(
    private readonly pid: number | undefined,
    private readonly commandToken: string,
    private readonly caps: Caps,
    private readonly over: (reason: string, usage: Usage) => void,
  ) {
    if (!HAS_PROC || !pid) return;
    this.timer = setInterval(() => this.tick(), WATCH_INTERVAL_MS);
    this.timer.unref();
  }

  /** The command's processes now: in its sandbox's PID namespace, or carrying its token. */
  usage(precise = false): Usage {
    if (!this.namespace && this.pid) {
      // bwrap (pid) forks the sandbox's init, which lives in the new PID namespace.
      for (const child of childrenOf(this.pid)) {
        const ns = pidNamespace(child);
        if (ns && ns !== this.hostNamespace) this.namespace = ns;
      }
    }
    const needle = Buffer.from(`${COMMAND_TOKEN_ENV}=${this.commandToken}\0`);
    let processes = 0;
    let memoryBytes = 0;
    for (const pid of pids()) {
      const inSandbox = this.namespace !== undefined && pidNamespace(pid) === this.namespace;
      if (!inSandbox && !carries(pid, needle)) continue;
      processes++;
      memoryBytes += precise ? proportionalBytes(pid) : residentBytes(pid);
    }
    return { processes, memoryBytes };
  }

  private tick(): void {
    if (this.tripped) return;
    const usage = this.usage();
    let reason: string | undefined;
    if (usage.processes > this.caps.maxProcesses) {
      reason = `it had ${usage.processes} processes, over the cap of ${this.caps.maxProcesses} processes per command`;
    } else if (usage.memoryBytes > this.caps.maxMemoryBytes) {
      // Resident sizes count shared pages once per process (forked data-loader workers share
      // their parent's memory): confirmed with proportional sizes before anything is ended.
      const precise = this.usage(true);
      if (precise.memoryBytes > this.caps.maxMemoryBytes) {
        reason = `its processes used ${formatBytes(precise.memoryBytes)} of memory, over the cap of ${formatBytes(this.caps.maxMemoryBytes)} per command`;
      }
    }
    if (!reason) return;
    this.tripped = true;
    this.stop();
    this.over(reason, usage);
  }

  /** Ends every process of the sandbox's namespace (its init first: the kernel ends the rest). */
  killNamespace(): void {
    if (!this.namespace) return;
    for (const pid of pids()) {
      if (pidNamespace(pid) !== this.namespace) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}
