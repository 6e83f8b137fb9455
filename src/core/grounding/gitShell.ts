/**
 * Git commands run through one long-lived POSIX shell, so that the calling process does not fork
 * itself for each. Forking copies the caller's page tables, and afterwards every page the caller
 * writes for the first time faults; for a big process (the extension host) that costs more than
 * a full stat pass over a small workspace, and the pass runs after every step. The shell is small,
 * so its forks are cheap, and the caller's memory is left alone.
 *
 * Only for commands that read nothing on stdin and whose output fits in memory. Callers fall back
 * to simple-git, as for all other git work, when this fails in any way; there is no shell to keep
 * on Windows, which has no fork either.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gitEnvironment } from './gitEnvironment';

/** A word as the shell reads it back unchanged: single quotes, each ' written as '\''. */
export const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class GitShellError extends Error {
  constructor(message: string, readonly exitCode?: number) {
    super(message);
  }
}

export class GitShell {
  private static instance: GitShell | undefined;

  /** The process's shell, started on first use; undefined where there is none to start. */
  static shared(): GitShell | undefined {
    if (process.platform === 'win32') return undefined;
    GitShell.instance ??= new GitShell();
    return GitShell.instance;
  }

  /** The environment the shell starts with; a command's own differences are set for it alone. */
  private readonly base = gitEnvironment();
  private child: ChildProcess | undefined;
  private folder: string | undefined;
  private pending: { resolve(code: number): void; reject(error: Error): void } | undefined;
  private received = '';
  private queue: Promise<unknown> = Promise.resolve();
  /** Commands run so far (tests count them). */
  commands = 0;

  /** Runs `git <args>` in `cwd` with `env` (a full environment); resolves with stdout. One command at a time. */
  run(cwd: string, args: string[], env: Record<string, string>): Promise<string> {
    const result = this.queue.then(() => this.runNow(cwd, args, env));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Ends the shell; the next command starts another. */
  dispose(): void {
    this.child?.kill();
    this.stopped(this.child, new GitShellError('The git shell was stopped.'));
  }

  private async runNow(cwd: string, args: string[], env: Record<string, string>): Promise<string> {
    const setup: string[] = [];
    for (const [key, value] of Object.entries(env)) {
      if (!NAME.test(key)) throw new GitShellError(`${key} cannot be set through the shell.`);
      if (this.base[key] !== value) setup.push(`export ${key}=${shellQuote(value)};`);
    }
    for (const key of Object.keys(this.base)) if (!(key in env)) setup.push(`unset ${key};`);
    const child = this.start();
    const folder = this.folder!;
    // A cleaner of temporary folders may have taken it meanwhile.
    mkdirSync(folder, { recursive: true });
    const [out, err] = [path.join(folder, 'out'), path.join(folder, 'err')];
    // A subshell, so that the environment and folder stay with this command; git takes its place.
    // Git reads nothing from the shell's stdin, which carries the next commands.
    const command = `(${setup.join(' ')} cd ${shellQuote(cwd)} && exec git ${args.map(shellQuote).join(' ')}) </dev/null >${shellQuote(out)} 2>${shellQuote(err)}; echo $?\n`;
    const code = await new Promise<number>((resolve, reject) => {
      this.pending = { resolve, reject };
      (child.stdout as Socket).ref();
      child.stdin!.write(command);
    });
    this.commands++;
    if (code !== 0) throw new GitShellError(readFileSync(err, 'utf8').trim() || `git ${args[0]} exited with ${code}`, code);
    return readFileSync(out, 'utf8');
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    if (!this.folder) {
      this.folder = mkdtempSync(path.join(os.tmpdir(), 'apollo-git-'));
      process.once('exit', () => this.removeFolder());
    }
    const child = spawn('/bin/sh', [], { env: this.base, stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    this.received = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (data: string) => {
      this.received += data;
      const newline = this.received.indexOf('\n');
      if (newline < 0) return;
      const code = Number(this.received.slice(0, newline));
      this.received = this.received.slice(newline + 1);
      const pending = this.pending;
      this.pending = undefined;
      // Idle, the shell keeps no one waiting: the process may exit around it.
      (child.stdout as Socket).unref();
      pending?.resolve(code);
    });
    child.stdin!.on('error', () => undefined);
    child.on('error', (error) => this.stopped(child, new GitShellError(`The git shell could not run: ${error.message}`)));
    child.on('exit', () => this.stopped(child, new GitShellError('The git shell ended.')));
    child.unref();
    (child.stdout as Socket).unref();
    (child.stdin as Socket).unref();
    return child;
  }

  private stopped(child: ChildProcess | undefined, error: GitShellError): void {
    if (child !== this.child) return;
    this.child = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  private removeFolder(): void {
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
    this.folder = undefined;
  }
}
