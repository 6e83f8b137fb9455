/**
 * One long-lived git process fed requests on stdin (`cat-file --batch`, `hash-object
 * --stdin-paths`, `mktree --batch`, `update-ref --stdin`, `diff-tree --stdin`…): a step's object
 * work costs a write and a read on a pipe instead of starting git again.
 *
 * Started with `child_process`, not simple-git: simple-git runs one command to its end and cannot
 * keep feeding a live process's stdin. This is the project's one exception to "simple-git for all
 * git work"; the environment is the same hardened one (gitEnvironment.ts).
 *
 * Requests go one at a time. Each says how its answer ends (a framer over the bytes received so
 * far). A process that dies fails the request in flight with git's own error text, and the next
 * request starts a new one. Idle, the process keeps nothing alive; `dispose` ends it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/** Given the bytes received for a request so far, the length of its complete answer, or undefined while more is to come. */
export type Framer = (received: Buffer) => number | undefined;

export class GitProcessError extends Error {
  constructor(
    message: string,
    readonly stderr = '',
  ) {
    super(message);
  }
}

export interface GitProcessOptions {
  /** Arguments after `git`. */
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The program to start (tests use another); `git` by default. */
  command?: string;
  /** Idle this long, the process is ended (the next request starts another); 30 s by default. */
  idleMs?: number;
}

interface Pending {
  frame: Framer;
  resolve(answer: Buffer): void;
  reject(error: Error): void;
}

/** Answers of `lines` newline-terminated lines. */
export const lines =
  (count: number): Framer =>
  (received) => {
    let at = -1;
    for (let i = 0; i < count; i++) {
      at = received.indexOf(10, at + 1);
      if (at < 0) return undefined;
    }
    return at + 1;
  };

/** Answers that end with `marker` (a line git echoes back after the real answer). */
export const endsWith =
  (marker: string): Framer =>
  (received) => {
    const tail = Buffer.from(marker);
    return received.length >= tail.length && received.subarray(received.length - tail.length).equals(tail) ? received.length : undefined;
  };

export class GitProcess {
  private child: ChildProcess | undefined;
  private pending: Pending | undefined;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private stderr = '';
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Processes started so far (tests count restarts). */
  starts = 0;
  /** Requests answered. */
  requests = 0;

  constructor(private readonly options: GitProcessOptions) {}

  /** The running process's id, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Writes `input` and resolves with the answer `frame` delimits. One request at a time. */
  request(input: string | Buffer, frame: Framer): Promise<Buffer> {
    const result = this.queue.then(() => this.send(input, frame));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Ends the process once the requests queued so far are answered; the next request starts a new one. */
  restart(): void {
    this.queue = this.queue.then(() => {
      const child = this.child;
      this.child = undefined;
      child?.stdin?.end();
    });
  }

  /** Ends the process; a later request starts none. */
  dispose(): void {
    this.disposed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const child = this.child;
    child?.stdin?.end();
    child?.kill();
    this.stopped(child, new GitProcessError(`git ${this.options.args[0]} was stopped.`));
  }

  private send(input: string | Buffer, frame: Framer): Promise<Buffer> {
    if (this.disposed) return Promise.reject(new GitProcessError(`git ${this.options.args[0]} was stopped.`));
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const child = this.start();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending = { frame, resolve, reject };
      // Awaited, the process keeps Node alive until it answers or ends.
      child.ref();
      (child.stdout as Socket).ref();
      child.stdin!.write(input);
    });
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(this.options.command ?? 'git', this.options.args, { cwd: this.options.cwd, env: { ...this.options.env, GIT_FLUSH: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.starts++;
    this.child = child;
    this.received = [];
    this.receivedBytes = 0;
    this.stderr = '';
    child.stdout.on('data', (data: Buffer) => this.data(child, data));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      // The last few KB say what went wrong.
      this.stderr = (this.stderr + text).slice(-8192);
    });
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => this.stopped(child, new GitProcessError(`git ${this.options.args[0]} could not start: ${error.message}`)));
    child.on('close', (code, signal) => {
      const text = this.stderr.trim();
      this.stopped(child, new GitProcessError(text || `git ${this.options.args[0]} ended (${signal ?? `exit code ${code}`})`, text));
    });
    child.unref();
    (child.stdout as Socket).unref();
    (child.stderr as Socket).unref();
    (child.stdin as Socket).unref();
    return child;
  }

  private data(child: ChildProcess, data: Buffer): void {
    if (child !== this.child) return;
    this.received.push(data);
    this.receivedBytes += data.length;
    const pending = this.pending;
    if (!pending) return;
    const all = this.received.length === 1 ? this.received[0] : Buffer.concat(this.received, this.receivedBytes);
    const length = pending.frame(all);
    if (length === undefined) {
      this.received = [all];
      return;
    }
    const rest = all.subarray(length);
    this.received = rest.length ? [rest] : [];
    this.receivedBytes = rest.length;
    this.pending = undefined;
    this.requests++;
    // Idle, the process keeps no one waiting: Node may exit around it.
    child.unref();
    (child.stdout as Socket).unref();
    // A store no one uses any more leaves no process behind.
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.child !== child || this.pending) return;
      // Forgotten first: a request from now on starts a new process.
      this.child = undefined;
      child.stdin!.end();
    }, this.options.idleMs ?? 30_000);
    this.idleTimer.unref();
    pending.resolve(Buffer.from(all.subarray(0, length)));
  }

  private stopped(child: ChildProcess | undefined, error: GitProcessError): void {
    if (!child || child !== this.child) return;
    this.child = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}
