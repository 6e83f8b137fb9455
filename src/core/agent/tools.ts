/** The agent's tools. Each returns an observation for the model; refusals are observations too. */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ToolCallRecord } from '../dataset/events';
import type { ChatTool } from './modelClient';
import { PathRefusedError, WorkspaceGuard } from './workspaceGuard';

export const TOOL_DEFINITIONS: ChatTool[] = [
  {
    type: 'function',
    function: {
      name: 'read_file',
      description: 'Read a text file of the workspace.',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string', description: 'Path relative to the workspace root.' } },
        required: ['path'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'write_file',
      description: 'Create or overwrite a file of the workspace with the given content. Parent folders are created.',
      parameters: {
        type: 'object',
        properties: {
          path: { type: 'string', description: 'Path relative to the workspace root.' },
          content: { type: 'string', description: 'The complete new content of the file.' },
        },
        required: ['path', 'content'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'list_dir',
      description: 'List the entries of a folder of the workspace (folders end with /).',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string', description: 'Folder relative to the workspace root; default ".".' } },
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'run_command',
      description: 'Run a shell command in the workspace root and return its output and exit code.',
      parameters: {
        type: 'object',
        properties: {
          command: { type: 'string', description: 'The shell command line.' },
          timeout_seconds: { type: 'number', description: 'Time limit in seconds (default 120).' },
        },
        required: ['command'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'finish',
      description: 'End the task, with a short summary of what was done.',
      parameters: {
        type: 'object',
        properties: { summary: { type: 'string', description: 'What was done and how it was checked.' } },
        required: ['summary'],
      },
    },
  },
];

const TOOL_NAMES = TOOL_DEFINITIONS.map((tool) => (tool as { function: { name: string } }).function.name);

export interface ToolResult {
  observation: string;
  isError: boolean;
  finished?: { summary: string };
}

export interface ToolRunnerOptions {
  workspace: string;
  guard: WorkspaceGuard;
  commandTimeoutMs?: number;
  maxObservationChars?: number;
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

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

export class ToolRunner {
  private readonly commandTimeoutMs: number;
  private readonly maxObservationChars: number;

  constructor(private readonly options: ToolRunnerOptions) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 120_000;
    this.maxObservationChars = options.maxObservationChars ?? 20_000;
  }

  async run(call: ToolCallRecord, signal?: AbortSignal): Promise<ToolResult> {
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
          return await this.readFile(requireString(args, 'path', call.name));
        case 'write_file':
          return await this.writeFile(requireString(args, 'path', call.name), requireString(args, 'content', call.name));
        case 'list_dir':
          return await this.listDir(typeof args.path === 'string' ? args.path : '.');
        case 'run_command': {
          const timeout = typeof args.timeout_seconds === 'number' && args.timeout_seconds > 0 ? args.timeout_seconds * 1000 : this.commandTimeoutMs;
          return await this.runCommand(requireString(args, 'command', call.name), timeout, signal);
        }
        default: {
          const summary = requireString(args, 'summary', call.name);
          return { observation: 'Task finished.', isError: false, finished: { summary } };
        }
      }
    } catch (caught) {
      if (caught instanceof PathRefusedError || caught instanceof ArgumentError) return error(caught.message);
      const code = (caught as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return error(`No such file or folder: ${(caught as NodeJS.ErrnoException).path ?? ''}`);
      if (code === 'EISDIR') return error('That path is a folder; use list_dir.');
      if (code === 'ENOTDIR') return error('That path is not a folder.');
      return error(`${call.name} failed: ${(caught as Error).message}`);
    }
  }

  private relative(real: string): string {
    return path.relative(this.options.guard.workspace, real) || '.';
  }

  private async readFile(userPath: string): Promise<ToolResult> {
    const real = await this.options.guard.resolve(userPath, 'read');
    const content = await fs.readFile(real, 'utf8');
    if (content.length <= this.maxObservationChars) return { observation: content, isError: false };
    return {
      observation: `${content.slice(0, this.maxObservationChars)}\n[File cut at ${this.maxObservationChars} of ${content.length} characters.]`,
      isError: false,
    };
  }

  private async writeFile(userPath: string, content: string): Promise<ToolResult> {
    const real = await this.options.guard.resolve(userPath, 'write');
    await fs.mkdir(path.dirname(real), { recursive: true });
    await fs.writeFile(real, content);
    return { observation: `Wrote ${Buffer.byteLength(content)} bytes to ${userPath}.`, isError: false };
  }

  private async listDir(userPath: string): Promise<ToolResult> {
    const real = await this.options.guard.resolve(userPath, 'read');
    const entries = await fs.readdir(real, { withFileTypes: true });
    const names: string[] = [];
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (await this.options.guard.isHidden(path.join(real, entry.name))) continue;
      names.push(entry.isDirectory() ? `${entry.name}/` : entry.name);
    }
    return { observation: names.length ? names.join('\n') : `(${this.relative(real)} is empty)`, isError: false };
  }

  private runCommand(command: string, timeoutMs: number, signal?: AbortSignal): Promise<ToolResult> {
    return new Promise((resolve) => {
      const child = spawn(SHELL, ['-c', command], {
        cwd: this.options.workspace,
        detached: true, // its own process group, so a timeout kills everything it started
        stdio: ['ignore', 'pipe', 'pipe'],
        env: process.env,
      });
      let output = '';
      const collect = (chunk: Buffer) => {
        // Keep memory bounded for chatty commands; the model sees head and tail anyway.
        output += chunk.toString('utf8');
        if (output.length > 4 * this.maxObservationChars) output = capText(output, 2 * this.maxObservationChars);
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      let ended: 'timeout' | 'aborted' | undefined;
      const kill = (why: 'timeout' | 'aborted') => {
        ended ??= why;
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const timer = setTimeout(() => kill('timeout'), timeoutMs);
      const onAbort = () => kill('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (spawnError) => {
        clearTimeout(timer);
        resolve(error(`The command could not start: ${spawnError.message}`));
      });
      child.on('close', (code, killedBy) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const shown = capText(output, this.maxObservationChars);
        if (ended === 'timeout') {
          resolve(error(`${shown}\n[Timed out after ${Math.round(timeoutMs / 1000)} s; the command was killed.]`));
        } else if (ended === 'aborted') {
          resolve(error(`${shown}\n[The command was stopped.]`));
        } else {
          const status = code === null ? `killed by ${killedBy}` : `exit code ${code}`;
          resolve({ observation: `${shown}${shown.endsWith('\n') || !shown ? '' : '\n'}[${status}]`, isError: code !== 0 });
        }
      });
    });
  }
}
