/** The agent's tools. Each returns an observation for the model; refusals are observations too. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ToolCallRecord } from '../dataset/events';
import { safeCut } from '../dataset/redaction';
import type { ChatTool } from './modelClient';
import { hardenedGit } from '../grounding/gitEnvironment';
import { checkCommand, suggestAllowPattern } from './commandPolicy';
import { type CommandLaunch, JobManager, type JobStatus, OUTPUT_GRACE_MS } from './jobs';
import { describeSandbox, detectSandbox, expandHome, type SandboxInfo, wrapCommand } from './sandbox';
import { GitMetadataGuard } from './gitMetadataGuard';
import { CapWatchdog, type Caps, COMMAND_TOKEN_ENV, commandEnvironment, DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_PROCESSES, killGroup, killMarked, newToken, RUN_TOKEN_ENV } from './processes';
import { PathRefusedError, type WorkspaceGuard } from './workspaceGuard';

function tool(name: string, description: string, properties: Record<string, object>, required: string[] = []): ChatTool {
  return { type: 'function', function: { name, description, parameters: { type: 'object', properties, required } } };
}

const PATH = { type: 'string', description: 'Path relative to the workspace root.' };

export const TOOL_DEFINITIONS: ChatTool[] = [
  tool(
    'read_file',
    'Read a text file of the workspace, optionally only a range of lines (numbered from 1).',
    { path: PATH, start_line: { type: 'integer', minimum: 1 }, end_line: { type: 'integer', minimum: 1 } },
    ['path'],
  ),
  tool(
    'write_file',
    'Create or overwrite a file with the given content. Parent folders are created.',
    { path: PATH, content: { type: 'string', description: 'The complete new content of the file.' } },
    ['path', 'content'],
  ),
  tool(
    'edit_file',
    'Replace one exact, unique occurrence of old_text in a file with new_text. Include enough context in old_text to make it unique.',
    { path: PATH, old_text: { type: 'string' }, new_text: { type: 'string' } },
    ['path', 'old_text', 'new_text'],
  ),
  tool('list_dir', 'List the entries of a folder of the workspace (folders end with /).', { path: { type: 'string', description: 'Folder relative to the workspace root; default ".".' } }),
  tool(
    'search',
    'Search the workspace for a regular expression (extended syntax), skipping files ignored by .gitignore. Returns path:line:text.',
    { pattern: { type: 'string' }, path: { type: 'string', description: 'Folder or file to search in; default the whole workspace.' }, ignore_case: { type: 'boolean' } },
    ['pattern'],
  ),
  tool(
    'run_command',
    'Run a shell command in the workspace root and wait for it; returns its output and exit code. For anything that runs long, use job_start.',
    { command: { type: 'string' }, timeout_seconds: { type: 'number', description: 'Time limit in seconds (default 120).' } },
    ['command'],
  ),
  tool(
    'job_start',
    'Start a long-running command in the background as a named job (a training run, a server). Read its output later with job_read.',
    { name: { type: 'string' }, command: { type: 'string' } },
    ['name', 'command'],
  ),
  tool('job_read', 'Read the output a job printed since the last read, with whether it is still running and how long it has been idle.', { name: { type: 'string' } }, ['name']),
  tool('job_send', 'Send text to the standard input of a running job (add "\\n" to end a line).', { name: { type: 'string' }, input: { type: 'string' } }, ['name', 'input']),
  tool('job_kill', 'Stop a running job and everything it started.', { name: { type: 'string' } }, ['name']),
  tool('finish', 'End the task, with a short summary of what was done and how it was checked.', { summary: { type: 'string' } }, ['summary']),
];

const TOOL_NAMES = TOOL_DEFINITIONS.map((tool) => (tool as { function: { name: string } }).function.name);

export interface ToolResult {
  observation: string;
  isError: boolean;
  finished?: { summary: string };
  /** Where the full output was kept when the observation shows only its head and tail. */
  fullOutput?: string;
}

/**
 * How commands (run_command and job_start) are contained. Absent: they run as they are, with no
 * sandbox and no policy (the behaviour before the sandbox existed).
 */
export interface CommandSandboxOptions {
  /** `auto`: bubblewrap when it works here, else the command policy. `off`: always the command policy. */
  mode: 'auto' | 'off';
  /** false cuts the network inside the sandbox (`apollo.sandbox.network`). */
  network: boolean;
  /** More folders or files to hide inside the sandbox (absolute or `~/…`); the guard's forbidden folders (dataset, shadow store) are always hidden. */
  hiddenPaths?: string[];
  /** More folders writable inside the sandbox (absolute or `~/…`), e.g. a host cache to share. */
  extraWritable?: string[];
  /** The user's allow list for the command policy: prefixes, `/regex/flags` or `rule:<id>` (commandPolicy.ts). A function is read at every check. */
  allow?: readonly string[] | (() => readonly string[]);
  /** Environment variable names to keep inside the sandbox although they look like secrets. */
  passEnv?: string[];
  /** The home folder (credentials hidden, caches provided, HOME inside); default os.homedir(). For tests. */
  home?: string;
  /** Apollo's sandbox package cache; default `<home>/.cache/apollo-sandbox`. */
  cacheDir?: string;
  /** Replaces `detectSandbox()`; for tests. */
  detect?: () => Promise<SandboxInfo>;
  /** An absolute path where commands also see the workspace, e.g. a task's WORKDIR (/app). */
  workspaceAlias?: string;
  /** Cap on the processes of one command or job (processes.ts); default DEFAULT_MAX_PROCESSES. 0: none. */
  maxProcesses?: number;
  /** Cap on the resident memory of one command or job, in bytes; default DEFAULT_MAX_MEMORY_BYTES. 0: none. */
  maxMemoryBytes?: number;
  /** Folders the git metadata scan reads at most (gitMetadataGuard.ts). */
  maxGitScanDirs?: number;
}

export interface CommandApprovalRequest {
  command: string;
  /** The policy rule that matched first (commandPolicy.ts POLICY_RULES). */
  rule: string;
  /** Why the command is asked about, in words for the annotator (every matching rule). */
  reason: string;
  tool: 'run_command' | 'job_start';
  /** A pattern that would allow such commands from now on, to offer as "always allow". */
  suggestedAllow: string;
  /** Aborted when the run stops while the question is open. */
  signal?: AbortSignal;
}

export interface ToolRunnerOptions {
  workspace: string;
  guard: WorkspaceGuard;
  /** The command sandbox and policy; absent: neither. */
  sandbox?: CommandSandboxOptions;
  /**
   * Asks the annotator about a command the policy flags. Called only when no sandbox is in use.
   * Absent: such commands are refused, with an observation saying why and how to allow them.
   */
  approveCommand?: (request: CommandApprovalRequest) => Promise<'allow' | 'deny'>;
  commandTimeoutMs?: number;
  maxObservationChars?: number;
  /** Keeps a command's full output outside the context; returns where it was kept. */
  keepFullOutput?: (name: string, text: string) => Promise<string>;
  /** Receives every chunk a background job prints; `ended` once, with an empty chunk, when the job ends. */
  onJobOutput?: (job: string, text: string, ended?: boolean) => void;
  /** Receives what the git metadata guard did (a repository neutralised), for the run's record. */
  onNotice?: (message: string) => void;
}

export interface ToolContext {
  signal?: AbortSignal;
  /** The step the call belongs to, for naming kept outputs. */
  step?: number;
}

function error(observation: string): ToolResult {
  return { observation, isError: true };
}

/** Keeps the head and the tail of a long text, saying how much was left out. */
export function capText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const half = Math.floor(maxChars / 2);
  const omitted = text.length - 2 * half;
  return `${text.slice(0, half)}\n[… ${omitted} characters omitted …]\n${text.slice(text.length - half)}`;
}

function requireString(args: Record<string, unknown>, key: string, tool: string): string {
  const value = args[key];
  if (typeof value !== 'string') throw new ArgumentError(`${tool} needs "${key}" as a string.`);
  return value;
}

class ArgumentError extends Error {}

/** A refusal the model can act on (text not found, bad range, …). */
class ToolError extends Error {}

const MAX_SEARCH_LINES = 200;
/** A search whose git prints nothing for this long is stopped. */
const SEARCH_SILENCE_MS = 60_000;

function optionalLine(args: Record<string, unknown>, key: string): number | undefined {
  const value = args[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new ArgumentError(`"${key}" must be a line number from 1.`);
  return value;
}

function describeExit(status: JobStatus): string {
  return status.exitCode !== null ? `exit code ${status.exitCode}` : `killed by ${status.signal ?? 'a signal'}`;
}

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
const MAX_KEPT_OUTPUT_CHARS = 50 * 1024 * 1024;
/** A job silent this long (or ended) has its unfinished last line shown: a prompt waiting for input. */
const JOB_SETTLE_MS = 1000;

/** What a command runs as, or why it does not run. */
type CommandGate = { launch: CommandLaunch; sandboxed: boolean; note?: string } | { refused: ToolResult };

export interface SandboxStatus {
  /** True when commands run inside the bubblewrap sandbox. */
  active: boolean;
  /** One or two sentences for the user: what contains the commands, or why nothing does. */
  description: string;
}

export class ToolRunner {
  private readonly commandTimeoutMs: number;
  private readonly maxObservationChars: number;
  readonly jobs: JobManager;
  /** Per job, output read but not shown yet: an unfinished line while the job is printing. */
  private readonly heldJobOutput: Map<string, string>;
  private sandboxInfo: Promise<SandboxInfo | undefined> | undefined;
  /** The run's private /tmp inside the sandbox, shared by its commands and jobs. */
  private sandboxTmp: string | undefined;
  private realWorkspace: string | undefined;
  /** Marks every process of this runner's commands and jobs (processes.ts). */
  private readonly runToken = newToken();
  private readonly caps: Caps | undefined;
  /** Keeps the workspace's git metadata from running code outside the sandbox; with `sandbox` options only. */
  private readonly gitGuard: GitMetadataGuard | undefined;

  constructor(private readonly options: ToolRunnerOptions) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 120_000;
    this.maxObservationChars = options.maxObservationChars ?? 20_000;
    const sandbox = options.sandbox;
    const maxProcesses = sandbox?.maxProcesses ?? DEFAULT_MAX_PROCESSES;
    const maxMemoryBytes = sandbox?.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
    this.caps = sandbox ? { maxProcesses: maxProcesses || Infinity, maxMemoryBytes: maxMemoryBytes || Infinity } : undefined;
    this.jobs = new JobManager(
      options.workspace,
      (job, text, ended) => {
        options.onJobOutput?.(job, text, ended);
        if (ended) this.checkGitMetadata();
      },
      { runToken: this.runToken, passEnv: sandbox?.passEnv, caps: this.caps },
    );
    this.heldJobOutput = new Map();
    if (sandbox) {
      const home = sandbox.home ?? os.homedir();
      this.gitGuard = new GitMetadataGuard({
        workspace: options.workspace,
        maxDirs: sandbox.maxGitScanDirs,
        excluded: options.guard.forbiddenPaths,
        writableRoots: () =>
          [this.sandboxTmp, sandbox.cacheDir ?? path.join(home, '.cache', 'apollo-sandbox'), ...(sandbox.extraWritable ?? []).map((p) => expandHome(p, home))].filter((p): p is string => !!p),
        onNotice: options.onNotice,
      });
      // What exists now is the user's: read-only to commands, never rewritten.
      this.gitGuard.baseline();
    }
  }

  /** Runs the git metadata guard now; returns the notes for the observation (empty when nothing was done). */
  private checkGitMetadata(): string[] {
    try {
      return this.gitGuard?.check() ?? [];
    } catch (caught) {
      return [`[Could not check the git metadata of the workspace: ${(caught as Error).message}]`];
    }
  }

  /** A file tool wrote: a nested `.git/config` or hook written that way is neutralised too. */
  private afterWrite(result: ToolResult): ToolResult {
    const guarded = this.checkGitMetadata();
    return guarded.length ? { ...result, observation: `${result.observation}\n${guarded.join('\n')}` } : result;
  }

  /** The workspace watcher saw a change under a `.git` name: the guard checks soon. */
  gitMetadataChanged(): void {
    this.gitGuard?.poke();
  }

  async run(call: ToolCallRecord, context: ToolContext = {}): Promise<ToolResult> {
    const { signal } = context;
    if (!TOOL_NAMES.includes(call.name)) {
      return error(`Unknown tool "${call.name}". Available tools: ${TOOL_NAMES.join(', ')}.`);
    }
    let args: Record<string, unknown>;
    try {
      const parsed: unknown = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      args = parsed as Record<string, unknown>;
    } catch {
      return error(`The arguments of ${call.name} are not a valid JSON object: ${call.arguments.slice(0, 200)}. Send them again as JSON.`);
    }
    try {
      switch (call.name) {
        case 'read_file':
          return await this.readFile(requireString(args, 'path', call.name), optionalLine(args, 'start_line'), optionalLine(args, 'end_line'));
        case 'write_file':
          return this.afterWrite(await this.writeFile(requireString(args, 'path', call.name), requireString(args, 'content', call.name)));
        case 'edit_file':
          return this.afterWrite(await this.editFile(requireString(args, 'path', call.name), requireString(args, 'old_text', call.name), requireString(args, 'new_text', call.name)));
        case 'list_dir':
          return await this.listDir(typeof args.path === 'string' ? args.path : '.');
        case 'search':
          return await this.search(requireString(args, 'pattern', call.name), typeof args.path === 'string' ? args.path : '.', args.ignore_case === true);
        case 'run_command': {
          const timeout = typeof args.timeout_seconds === 'number' && args.timeout_seconds > 0 ? args.timeout_seconds * 1000 : this.commandTimeoutMs;
          return await this.runCommand(requireString(args, 'command', call.name), timeout, context);
        }
        case 'job_start': {
          const name = requireString(args, 'name', call.name);
          const command = requireString(args, 'command', call.name);
          const gate = await this.gate(command, 'job_start', signal);
          if ('refused' in gate) return gate.refused;
          const status = this.jobs.start(name, command, gate.launch);
          this.gitGuard?.poke();
          return { observation: `Job "${status.name}" started. Read its output with job_read.${gate.note ? `\n${gate.note}` : ''}`, isError: false };
        }
        case 'job_read': {
          const read = this.readJob(requireString(args, 'name', call.name));
          const guarded = this.checkGitMetadata();
          return guarded.length ? { ...read, observation: `${read.observation}\n${guarded.join('\n')}` } : read;
        }
        case 'job_send': {
          const status = this.jobs.send(requireString(args, 'name', call.name), requireString(args, 'input', call.name));
          return { observation: `Sent to job "${status.name}".`, isError: false };
        }
        case 'job_kill': {
          const status = await this.jobs.kill(requireString(args, 'name', call.name));
          return { observation: `Job "${status.name}" ${status.running ? 'is still stopping' : `ended (${describeExit(status)})`}.`, isError: false };
        }
        default: {
          const summary = requireString(args, 'summary', call.name);
          return { observation: 'Task finished.', isError: false, finished: { summary } };
        }
      }
    } catch (caught) {
      if (caught instanceof PathRefusedError || caught instanceof ArgumentError || caught instanceof ToolError) return error(caught.message);
      const code = (caught as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return error(`No such file or folder: ${(caught as NodeJS.ErrnoException).path ?? ''}`);
      if (code === 'EISDIR') return error('That path is a folder; use list_dir.');
      if (code === 'ENOTDIR') return error('That path is not a folder.');
      return error(`${call.name} failed: ${(caught as Error).message}`);
    }
  }

  private async readFile(userPath: string, startLine?: number, endLine?: number): Promise<ToolResult> {
    let content = (await this.options.guard.files.readFile(userPath)).toString('utf8');
    let range = '';
    if (startLine !== undefined || endLine !== undefined) {
      const lines = content.split('\n');
      const first = startLine ?? 1;
      const last = Math.min(endLine ?? lines.length, lines.length);
      if (first > lines.length) throw new ToolError(`${userPath} has ${lines.length} lines; start_line ${first} is past the end.`);
      if (last < first) throw new ToolError('end_line is before start_line.');
      content = lines.slice(first - 1, last).join('\n');
      range = ` (lines ${first}-${last} of ${lines.length})`;
    }
    if (content.length <= this.maxObservationChars) return { observation: range ? `[${userPath}${range}]\n${content}` : content, isError: false };
    const shownLines = content.slice(0, this.maxObservationChars).split('\n').length;
    return {
      observation: `${content.slice(0, this.maxObservationChars)}\n[Cut at ${this.maxObservationChars} of ${content.length} characters${range}: about ${shownLines} lines shown. Read further with start_line/end_line.]`,
      isError: false,
    };
  }

  private async editFile(userPath: string, oldText: string, newText: string): Promise<ToolResult> {
    if (oldText === '') throw new ToolError('old_text is empty: give the exact text to replace (use write_file to create a file).');
    const content = (await this.options.guard.files.readFile(userPath, 'write')).toString('utf8');
    const first = content.indexOf(oldText);
    if (first < 0) throw new ToolError(`old_text was not found in ${userPath}; nothing was changed. Read the file and copy the text exactly (whitespace included).`);
    const second = content.indexOf(oldText, first + 1);
    if (second >= 0) {
      const count = content.split(oldText).length - 1;
      throw new ToolError(`old_text occurs ${count} times in ${userPath}; nothing was changed. Include more surrounding lines to make it unique.`);
    }
    await this.options.guard.files.writeFile(userPath, content.slice(0, first) + newText + content.slice(first + oldText.length));
    const line = content.slice(0, first).split('\n').length;
    return { observation: `Edited ${userPath} at line ${line}.`, isError: false };
  }

  private async search(pattern: string, userPath: string, ignoreCase: boolean): Promise<ToolResult> {
    if (pattern === '') throw new ToolError('The pattern is empty.');
    const files = this.options.guard.files;
    // The pathspec is where the path really is, found by the same walk as the other file tools,
    // and relative: git grep --no-index fails on absolute ones.
    const pathspec = await files.locate(userPath);
    // --no-index --exclude-standard: works without a repository and honours .gitignore files.
    // git skips symlinks (it lstats each file) but opens files by name, so a folder swapped for a
    // symlink meanwhile could lead it outside: each match is shown only when the line is what the
    // fd-relative read of that file finds there. A silent git (a FIFO swapped in) is stopped.
    const git = hardenedGit({ baseDir: files.workspace, timeout: { block: SEARCH_SILENCE_MS } });
    const args = ['grep', '--no-index', '--exclude-standard', '-z', '-n', '-I', '-E', '--no-color', '--no-textconv', ...(ignoreCase ? ['-i'] : []), '-e', pattern, '--', pathspec];
    let output: string;
    try {
      output = await git.raw(args);
    } catch (caught) {
      throw new ToolError(`search failed: ${(caught as Error).message.trim()}`);
    }
    const lines: string[] = [];
    let file: { name: string; lines: string[] | undefined } | undefined;
    for (const record of output.split('\n')) {
      // -z: "path\0line\0text".
      const afterPath = record.indexOf('\0');
      const afterLine = record.indexOf('\0', afterPath + 1);
      if (afterPath < 0 || afterLine < 0) continue;
      const name = record.slice(0, afterPath);
      const line = Number(record.slice(afterPath + 1, afterLine));
      const text = record.slice(afterLine + 1);
      if (file?.name !== name)
        file = {
          name,
          lines: await files.readFile(name).then(
            (content) => content.toString('utf8').split('\n'),
            () => undefined,
          ),
        };
      if (file.lines?.[line - 1] === text) lines.push(`${name}:${line}:${text}`);
    }
    if (lines.length === 0) return { observation: `No match for /${pattern}/.`, isError: false };
    const shown = lines.slice(0, MAX_SEARCH_LINES).map((line) => (line.length > 300 ? `${line.slice(0, 300)}…` : line));
    const more = lines.length > MAX_SEARCH_LINES ? `\n[${lines.length - MAX_SEARCH_LINES} more matches not shown: narrow the pattern or the path.]` : '';
    return { observation: shown.join('\n') + more, isError: false };
  }

  private readJob(name: string): ToolResult {
    const { status, dropped, text: fresh } = this.jobs.read(name);
    // While a job is printing, an unfinished line (or key block) waits for the next read, so a
    // secret split between two reads is whole when it is redacted; an idle or ended job shows all.
    const pending = (this.heldJobOutput.get(name) ?? '') + fresh;
    const cut = status.running && status.idleMs < JOB_SETTLE_MS ? safeCut(pending) : pending.length;
    this.heldJobOutput.set(name, pending.slice(cut));
    const text = pending.slice(0, cut);
    const state = status.running ? `running, idle for ${Math.round(status.idleMs / 1000)} s` : `ended (${describeExit(status)})`;
    const droppedNote = dropped ? `[${dropped} older characters were not kept]\n` : '';
    const held = this.heldJobOutput.get(name)?.length ?? 0;
    const heldNote = held ? `\n[an unfinished line (${held} characters) is shown once it ends or the job pauses]` : '';
    const body = (text ? capText(text, this.maxObservationChars) : '(no new output)') + heldNote;
    return { observation: `[job "${name}": ${state}]\n${droppedNote}${body}`, isError: false };
  }

  private async writeFile(userPath: string, content: string): Promise<ToolResult> {
    await this.options.guard.files.writeFile(userPath, content);
    return { observation: `Wrote ${Buffer.byteLength(content)} bytes to ${userPath}.`, isError: false };
  }

  private async listDir(userPath: string): Promise<ToolResult> {
    const { entries, relative } = await this.options.guard.files.listDir(userPath);
    const names = entries.map((entry) => (entry.directory ? `${entry.name}/` : entry.name));
    return { observation: names.length ? names.join('\n') : `(${relative} is empty)`, isError: false };
  }

  /** Whether commands are sandboxed, for the session to say once at the start of a run. */
  async sandboxStatus(): Promise<SandboxStatus> {
    const options = this.options.sandbox;
    if (!options) return { active: false, description: 'Commands run without a sandbox and without the command policy.' };
    const policy = this.options.approveCommand
      ? "risky commands (sudo, git push, writes outside the workspace, curl | sh…) wait for the annotator's approval"
      : 'risky commands (sudo, git push, writes outside the workspace, curl | sh…) are refused, as no one can approve them here';
    if (options.mode === 'off') return { active: false, description: `The command sandbox is off (sandbox mode "off"): commands run unsandboxed; ${policy}.` };
    const sandbox = await this.sandbox();
    if (sandbox?.kind === 'bwrap') return { active: true, description: describeSandbox(sandbox, { network: options.network }) };
    return { active: false, description: `Commands are not sandboxed: ${sandbox?.kind === 'none' ? sandbox.reason : 'no sandbox'}. Instead ${policy}.` };
  }

  /** Ends the jobs and removes the sandbox's private /tmp. Call when the run ends. */
  async dispose(): Promise<void> {
    await this.jobs.killAll().catch(() => undefined);
    killMarked(RUN_TOKEN_ENV, this.runToken);
    this.checkGitMetadata();
    this.gitGuard?.dispose();
    if (this.sandboxTmp) rmSync(this.sandboxTmp, { recursive: true, force: true });
    this.sandboxTmp = undefined;
  }

  private sandbox(): Promise<SandboxInfo | undefined> {
    const options = this.options.sandbox;
    if (!options || options.mode === 'off') return Promise.resolve(undefined);
    this.sandboxInfo ??= (options.detect ?? (() => detectSandbox()))().catch((error: Error): SandboxInfo => ({ kind: 'none', reason: error.message }));
    return this.sandboxInfo;
  }

  private allowList(): readonly string[] {
    const allow = this.options.sandbox?.allow;
    return typeof allow === 'function' ? allow() : (allow ?? []);
  }

  /** Sandbox, policy or neither: how a command runs, or the observation that says it does not. */
  private async gate(command: string, tool: 'run_command' | 'job_start', signal?: AbortSignal): Promise<CommandGate> {
    const plain: CommandLaunch = { file: SHELL, args: ['-c', command] };
    const options = this.options.sandbox;
    if (!options) return { launch: plain, sandboxed: false };
    const sandbox = await this.sandbox();
    if (sandbox?.kind === 'bwrap') {
      try {
        this.sandboxTmp ??= mkdtempSync(path.join(os.tmpdir(), 'apollo-sandbox-tmp-'));
        const launch = wrapCommand(sandbox, {
          workspace: this.options.workspace,
          command,
          network: options.network,
          home: options.home ?? os.homedir(),
          hiddenPaths: [...this.options.guard.forbiddenPaths, ...(options.hiddenPaths ?? [])],
          extraWritable: options.extraWritable,
          tmpDir: this.sandboxTmp,
          cacheDir: options.cacheDir,
          passEnv: options.passEnv,
          shell: SHELL,
          placements: options.workspaceAlias ? [{ source: this.options.workspace, dest: options.workspaceAlias, writable: true }] : undefined,
          gitMetadata: this.gitGuard?.readOnlyPaths(),
        });
        return { launch, sandboxed: true };
      } catch (caught) {
        return { refused: error(`The command was not run: the sandbox could not be prepared (${(caught as Error).message}).`) };
      }
    }
    this.realWorkspace ??= realpathSync(this.options.workspace);
    const verdict = checkCommand(command, {
      workspace: this.options.workspace,
      workspaceAliases: [this.realWorkspace],
      home: options.home ?? os.homedir(),
      allow: this.allowList(),
      forbidden: this.options.guard.forbiddenPaths,
    });
    if (verdict.verdict === 'allow') return { launch: plain, sandboxed: false };
    const suggestedAllow = suggestAllowPattern(verdict.findings[0]);
    if (!this.options.approveCommand) {
      return {
        refused: error(
          `Refused, not run (command policy, rule "${verdict.rule}"): ${verdict.reason}. ` +
            "Commands run without a sandbox here, so such commands need the annotator's approval, and no one can approve them in this session. " +
            'Find another way that stays inside the workspace. ' +
            `(For the user: to allow it, add "${suggestedAllow}" or "rule:${verdict.rule}" to the command allow list, or enable the bubblewrap sandbox.)`,
        ),
      };
    }
    if (signal?.aborted) return { refused: error('The command was stopped before it ran.') };
    let answer: 'allow' | 'deny' | 'aborted';
    let onAbort: (() => void) | undefined;
    try {
      const abort = new Promise<'aborted'>((resolve) => {
        onAbort = () => resolve('aborted');
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      answer = await Promise.race([this.options.approveCommand({ command, rule: verdict.rule, reason: verdict.reason, tool, suggestedAllow, signal }), abort]);
    } catch (caught) {
      return { refused: error(`Not run: asking the annotator about this command failed (${(caught as Error).message}).`) };
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
    if (answer === 'aborted') return { refused: error("The command was stopped while waiting for the annotator's approval; it did not run.") };
    if (answer !== 'allow') {
      return { refused: error(`Not run: the annotator did not allow this command (command policy, rule "${verdict.rule}": ${verdict.reason}). Do it another way.`) };
    }
    return { launch: plain, sandboxed: false, note: `[Allowed by the annotator (command policy, rule "${verdict.rule}": ${verdict.reason}).]` };
  }

  private async runCommand(command: string, timeoutMs: number, context: ToolContext): Promise<ToolResult> {
    const gate = await this.gate(command, 'run_command', context.signal);
    if ('refused' in gate) return gate.refused;
    const executed = await this.execute(gate.launch, timeoutMs, context.signal);
    // Before the observation returns, what the command did to git metadata is neutralised.
    const guarded = this.checkGitMetadata();
    const notes = [gate.note, gate.sandboxed ? sandboxNote(executed.text.observation) : undefined, ...guarded].filter(Boolean);
    const { fullText } = executed;
    const text = notes.length ? { ...executed.text, observation: `${executed.text.observation}\n${notes.join('\n')}` } : executed.text;
    if (!fullText || !this.options.keepFullOutput) return text;
    // The model sees head and tail; the dataset keeps everything, and the observation says where.
    const where = await this.options.keepFullOutput(`step-${context.step ?? 0}-output.txt`, fullText);
    return { ...text, observation: `${text.observation}\n[Full output (${fullText.length} characters) kept in the dataset: ${where}]`, fullOutput: where };
  }

  private execute(launch: CommandLaunch, timeoutMs: number, signal?: AbortSignal): Promise<{ text: ToolResult; fullText?: string }> {
    return new Promise((resolve) => {
      const token = newToken();
      const child = spawn(launch.file, launch.args, {
        cwd: this.options.workspace,
        detached: true, // its own process group, so a timeout kills everything it started
        stdio: ['ignore', 'pipe', 'pipe'],
        // Never the secrets or sockets of the host; marked so that detached children are found again.
        env: commandEnvironment({ passEnv: this.options.sandbox?.passEnv, runToken: this.runToken, commandToken: token }),
      });
      const chunks: string[] = [];
      let total = 0;
      const collect = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        // The full output is kept for the dataset, up to a bound that protects memory.
        if (total < MAX_KEPT_OUTPUT_CHARS) chunks.push(text);
        total += text.length;
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      let ended: 'timeout' | 'aborted' | 'cap' | undefined;
      let capReason = '';
      // Everything the command started: its group, what left the group (setsid, nohup … &), its sandbox.
      const killAll = () => {
        killGroup(child.pid);
        killMarked(COMMAND_TOKEN_ENV, token);
        watchdog?.killNamespace();
      };
      const kill = (why: 'timeout' | 'aborted' | 'cap') => {
        ended ??= why;
        killAll();
      };
      const watchdog = this.caps
        ? new CapWatchdog(child.pid, token, this.caps, (reason) => {
            capReason = reason;
            kill('cap');
          })
        : undefined;
      const timer = setTimeout(() => kill('timeout'), timeoutMs);
      const onAbort = () => kill('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      let finished = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = (code: number | null, killedBy: NodeJS.Signals | null) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        if (graceTimer) clearTimeout(graceTimer);
        watchdog?.stop();
        signal?.removeEventListener('abort', onAbort);
        // What the command left running ends with it, as inside the sandbox: use job_start for that.
        killMarked(COMMAND_TOKEN_ENV, token);
        let output = chunks.join('');
        if (total > MAX_KEPT_OUTPUT_CHARS) output += `\n[${total - output.length} further characters were not kept]`;
        const shown = capText(output, this.maxObservationChars);
        const fullText = shown.length < output.length ? output : undefined;
        if (ended === 'timeout') {
          resolve({ text: error(`${shown}\n[Timed out after ${Math.round(timeoutMs / 1000)} s; the command was killed.]`), fullText });
        } else if (ended === 'aborted') {
          resolve({ text: error(`${shown}\n[The command was stopped.]`), fullText });
        } else if (ended === 'cap') {
          resolve({
            text: error(`${shown}\n[Stopped by Apollo: ${capReason}. All its processes were ended; the run goes on. Use fewer processes or less memory (or ask the user to raise the cap).]`),
            fullText,
          });
        } else {
          const status = code === null ? `killed by ${killedBy}` : `exit code ${code}`;
          resolve({ text: { observation: `${shown}${shown.endsWith('\n') || !shown ? '' : '\n'}[${status}]`, isError: code !== 0 }, fullText });
        }
      };
      child.on('error', (spawnError) => {
        finished = true;
        clearTimeout(timer);
        watchdog?.stop();
        resolve({ text: error(`The command could not start: ${spawnError.message}`) });
      });
      child.on('close', finish);
      child.on('exit', (code, killedBy) => {
        // The shell is gone; a detached child may still hold the output open. A short grace for
        // the last output, then the leftovers are ended and the streams closed.
        graceTimer = setTimeout(() => {
          killAll();
          child.stdout.destroy();
          child.stderr.destroy();
          finish(code, killedBy);
        }, OUTPUT_GRACE_MS);
      });
    });
  }
}

/** A line that explains a sandbox refusal to the model, when the output shows one. */
function sandboxNote(output: string): string | undefined {
  const bwrapError = /^bwrap: (.+)$/m.exec(output);
  if (bwrapError) return `[The sandbox could not start this command (bwrap: ${bwrapError[1]}). This is a problem of the sandbox's setup, not of the command.]`;
  if (/Read-only file system/i.test(output)) {
    return '[Sandbox: only the workspace (not the metadata of its git repositories: .git folders and files, gitdirs, bare repositories that existed when the command started), /tmp and the package caches are writable; everything else is read-only. Keep your changes inside the workspace.]';
  }
  return undefined;
}
