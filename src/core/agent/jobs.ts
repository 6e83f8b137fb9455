/**
 * Long-running jobs in named sessions: a training run or a dev server starts in the background
 * and the agent reads its new output later, checks whether it is idle, sends it input, or kills
 * it — while it goes on working.
 */
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

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

  constructor(
    readonly name: string,
    readonly command: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly onOutput: (text: string, ended?: boolean) => void,
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
    this.exited = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        this.onOutput('', true);
        this.running = false;
        this.exitCode = code;
        this.signal = signal;
        resolve();
      }),
    );
    child.on('error', (error) => {
      collect(Buffer.from(`[could not start: ${error.message}]\n`));
    });
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

  kill(): void {
    if (!this.running || !this.child.pid) return;
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      this.child.kill('SIGTERM');
    }
    const pid = this.child.pid;
    setTimeout(() => {
      if (!this.running) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 2000).unref();
  }
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly workspace: string,
    /** Receives every chunk a job prints, so the full log can be kept outside the context; `ended` once, when it ends. */
    private readonly onOutput: (name: string, text: string, ended?: boolean) => void = () => undefined,
  ) {}

  start(name: string, command: string, launch: CommandLaunch = { file: SHELL, args: ['-c', command] }): JobStatus {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error('A job name is 1-64 letters, digits, "_", "." or "-".');
    const existing = this.jobs.get(name);
    if (existing?.running) throw new Error(`Job "${name}" is still running: read it, kill it, or pick another name.`);
    const child = spawn(launch.file, launch.args, {
      cwd: this.workspace,
      detached: true, // its own process group, so kill reaches everything it started
      stdio: ['pipe', 'pipe', 'pipe'],
      env: process.env,
    });
    const job = new Job(name, command, child, (text, ended) => this.onOutput(name, text, ended));
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

  /** Ends every job: a run never leaves processes behind. */
  async killAll(): Promise<void> {
    await Promise.all([...this.jobs.values()].filter((job) => job.running).map((job) => this.kill(job.name)));
  }
}
