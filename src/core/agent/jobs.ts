/**
 * Long-running jobs in named sessions: a training run or a dev server starts in the background
 * and the agent reads its new output later, checks whether it is idle, sends it input, or kills
 * it — while it goes on working.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CapWatchdog, type Caps, COMMAND_TOKEN_ENV, commandEnvironment, killGroup, killMarked, newToken, RUN_TOKEN_ENV } from './processes';

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
/**
 * How to start a command: the program and its arguments. Without one, a job runs `SHELL -c command`;
 * with the sandbox on, the ToolRunner passes the bwrap invocation (sandbox.ts), so a job runs in the
 * same sandbox as run_command.
 */
export interface CommandLaunch {
  file: string;
  args: string[];
}

/** Output a job keeps until it is read; older unread output is dropped with a note. */
const MAX_UNREAD_CHARS = 200_000;
/**
 * After a job's shell exits, how long its output may still arrive before the processes it left
 * behind (a `setsid` or `nohup … &` child holding the output open) are ended and the job counts as
 * ended. Inside the sandbox they end with the shell anyway (its PID namespace goes).
 */
export const OUTPUT_GRACE_MS = 500;

/** How a job's processes are marked and capped (processes.ts). */
export interface JobProcessOptions {
  /** The run's token, marking every process of the run. */
  runToken: string;
  /** Variable names kept although they look like secrets. */
  passEnv?: readonly string[];
  /** Caps on the job's processes and memory; absent: none. */
  caps?: Caps;
}

export interface JobStatus {
  name: string;
  command: string;
  running: boolean;
  exitCode: number | null;
  signal: string | null;
  startedAt: number;
  /** Milliseconds since the job last printed anything. */
  idleMs: number;
}

class Job {
  private unread = '';
  private droppedChars = 0;
  private lastOutputAt = Date.now();
  readonly startedAt = Date.now();
  exitCode: number | null = null;
  signal: string | null = null;
  running = true;
  readonly exited: Promise<void>;

  private watchdog: CapWatchdog | undefined;
  /** Why Apollo ended the job (a cap), when it did. */
  stoppedBecause: string | undefined;

  constructor(
    readonly name: string,
    readonly command: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly onOutput: (text: string, ended?: boolean) => void,
    private readonly token: string,
    caps?: Caps,
  ) {
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.lastOutputAt = Date.now();
      this.unread += text;
      if (this.unread.length > MAX_UNREAD_CHARS) {
        const cut = this.unread.length - MAX_UNREAD_CHARS;
        this.droppedChars += cut;
        this.unread = this.unread.slice(cut);
      }
      this.onOutput(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    this.exited = new Promise((resolve) => {
      let done = false;
      const end = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        this.watchdog?.stop();
        // What the job left behind ends with it, as it does inside the sandbox.
        killMarked(COMMAND_TOKEN_ENV, this.token);
        if (this.stoppedBecause) collect(Buffer.from(`\n[Stopped by Apollo: ${this.stoppedBecause}.]\n`));
        this.onOutput('', true);
        this.running = false;
        this.exitCode = code;
        this.signal = signal;
        resolve();
      };
      child.on('close', end);
      child.on('exit', (code, signal) => {
        // A detached child may hold the output open: its end is not waited for past a grace.
        setTimeout(() => {
          killMarked(COMMAND_TOKEN_ENV, this.token);
          child.stdout.destroy();
          child.stderr.destroy();
          end(code, signal);
        }, OUTPUT_GRACE_MS).unref();
      });
    });
    child.on('error', (error) => {
      collect(Buffer.from(`[could not start: ${error.message}]\n`));
    });
    if (caps) {
      this.watchdog = new CapWatchdog(child.pid, token, caps, (reason) => {
        this.stoppedBecause = reason;
        this.kill(true);
      });
    }
  }

  takeOutput(): { text: string; dropped: number } {
    const result = { text: this.unread, dropped: this.droppedChars };
    this.unread = '';
    this.droppedChars = 0;
    return result;
  }

  status(): JobStatus {
    return {
      name: this.name,
      command: this.command,
      running: this.running,
      exitCode: this.exitCode,
      signal: this.signal,
      startedAt: this.startedAt,
      idleMs: Date.now() - this.lastOutputAt,
    };
  }

  send(input: string): void {
    if (!this.running) throw new Error(`Job "${this.name}" has ended; it takes no input.`);
    this.child.stdin.write(input);
  }

  /** SIGTERM first (SIGKILL 2 s later); `now`: SIGKILL at once. Reaches detached children too. */
  kill(now = false): void {
    if (!this.running || !this.child.pid) return;
    const pid = this.child.pid;
    const hard = () => {
      killGroup(pid);
      killMarked(COMMAND_TOKEN_ENV, this.token);
      this.watchdog?.killNamespace();
    };
    if (now) return hard();
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      this.child.kill('SIGTERM');
    }
    setTimeout(() => {
      if (this.running) hard();
    }, 2000).unref();
  }
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly workspace: string,
    /** Receives every chunk a job prints, so the full log can be kept outside the context; `ended` once, when it ends. */
    private readonly onOutput: (name: string, text: string, ended?: boolean) => void = () => undefined,
    /** How jobs' processes are marked, cleaned and capped; default a token of this manager's own, no caps. */
    private readonly processes: JobProcessOptions = { runToken: newToken() },
  ) {}

  start(name: string, command: string, launch: CommandLaunch = { file: SHELL, args: ['-c', command] }): JobStatus {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error('A job name is 1-64 letters, digits, "_", "." or "-".');
    const existing = this.jobs.get(name);
    if (existing?.running) throw new Error(`Job "${name}" is still running: read it, kill it, or pick another name.`);
    const token = newToken();
    const child = spawn(launch.file, launch.args, {
      cwd: this.workspace,
      detached: true, // its own process group, so kill reaches everything it started
      stdio: ['pipe', 'pipe', 'pipe'],
      env: commandEnvironment({ passEnv: this.processes.passEnv, runToken: this.processes.runToken, commandToken: token }),
    });
    const job = new Job(name, command, child, (text, ended) => this.onOutput(name, text, ended), token, this.processes.caps);
    this.jobs.set(name, job);
    return job.status();
  }

  private get(name: string): Job {
    const job = this.jobs.get(name);
    if (!job) {
      const known = [...this.jobs.keys()];
      throw new Error(`No job named "${name}".${known.length ? ` Jobs: ${known.join(', ')}.` : ' No job has been started.'}`);
    }
    return job;
  }

  read(name: string): { status: JobStatus; text: string; dropped: number } {
    const job = this.get(name);
    return { status: job.status(), ...job.takeOutput() };
  }

  send(name: string, input: string): JobStatus {
    const job = this.get(name);
    job.send(input);
    return job.status();
  }

  async kill(name: string): Promise<JobStatus> {
    const job = this.get(name);
    job.kill();
    await Promise.race([job.exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    return job.status();
  }

  list(): JobStatus[] {
    return [...this.jobs.values()].map((job) => job.status());
  }

  /** Ends every job, and every process the run's commands left anywhere: a run never leaves processes behind. */
  async killAll(): Promise<void> {
    await Promise.all([...this.jobs.values()].filter((job) => job.running).map((job) => this.kill(job.name)));
    killMarked(RUN_TOKEN_ENV, this.processes.runToken);
  }
}
