/**
 * Tasks in Harbor's layout, the one task suites use (SWE-bench, terminal-bench and others have
 * adapters to it):
 *
 *   my-task/
 *     instruction.md        what the agent is asked to do
 *     task.toml             metadata, timeouts ([agent] / [verifier] timeout_sec), resources
 *     environment/          the container the agent works in: a Dockerfile and its build context
 *     tests/test.sh         the verifier; writes /logs/verifier/reward.txt (a number) or
 *                           /logs/verifier/reward.json (named numbers)
 *     solution/solve.sh     optional: a reference solution (the "oracle")
 *
 * Apollo runs a task without a container engine: the workspace is a folder of the host (a fresh
 * working copy of the files the Dockerfile copies into its WORKDIR, or the user's own), and the
 * verifier runs in the command sandbox with the paths Harbor's scripts expect bound in place (the
 * workspace at the WORKDIR, /tests, /logs/verifier). What a Dockerfile can say and still run here
 * is therefore limited: FROM (the host stands in for the image), WORKDIR, COPY/ADD of files of the
 * build context, ENV, ARG, LABEL, USER, EXPOSE, CMD, ENTRYPOINT, and RUN lines that only install
 * packages the host already has (apt-get/apk/pip/npm installs, mkdir). Anything else — a RUN that
 * builds or downloads, a prebuilt `docker_image`, a docker-compose file, GPUs the host lacks — is
 * refused before the run with the reason, so a team knows to run that task under Harbor itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { isInside } from '../paths';
import { ConfigError } from './errors';

/** A task folder that cannot be read, or cannot run here. */
export class TaskError extends ConfigError {}

/** Harbor's defaults (its TaskConfig): ten minutes for the verifier and for the agent. */
export const DEFAULT_VERIFIER_TIMEOUT_SEC = 600;

/** The WORKDIR assumed when the Dockerfile sets none: the one Harbor's examples and adapters use. */
export const DEFAULT_WORKDIR = '/app';

export interface DockerfileCopy {
  /** Relative to the build context (`environment/`). */
  from: string;
  /** Absolute in the container (relative destinations resolved against the WORKDIR then). */
  to: string;
}

export interface HarborTask {
  /** The task folder, absolute. */
  dir: string;
  /** `[task] name`, else the folder's name. */
  name: string;
  instruction: string;
  verifier: { timeoutSec: number; env: Record<string, string> };
  agent: { timeoutSec?: number };
  environment: {
    dockerImage?: string;
    cpus?: number;
    memoryMb?: number;
    gpus: number;
    allowInternet: boolean;
  };
  /** The container's working directory: where the workspace is placed for the verifier. */
  workdir: string;
  /** What the Dockerfile copies into the image, in order. */
  copies: DockerfileCopy[];
  /** The Dockerfile's RUN lines, continuation lines joined. */
  runLines: string[];
  /** ENV lines of the Dockerfile. */
  env: Record<string, string>;
  hasDockerfile: boolean;
  hasCompose: boolean;
  hasSolution: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberField(table: Record<string, unknown>, key: string, where: string): number | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TaskError(`${where}: ${key} must be a number of at least 0 (got ${JSON.stringify(value)}).`);
  return value;
}

/** "4G", "512M", 2048 (MB) → megabytes. */
function memoryMb(table: Record<string, unknown>, where: string): number | undefined {
  const mb = numberField(table, 'memory_mb', where);
  if (mb !== undefined) return mb;
  const text = table.memory;
  if (text === undefined) return undefined;
  const match = typeof text === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text) : null;
  if (!match) throw new TaskError(`${where}: memory must look like "4G" or "512M" (got ${JSON.stringify(text)}).`);
  const factor = { '': 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Number(match[1]) * factor;
}

/** Dockerfile lines: comments dropped, continuations joined, `INSTRUCTION rest`. */
export function dockerfileInstructions(text: string): { keyword: string; rest: string }[] {
  const out: { keyword: string; rest: string }[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!pending && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (!whole || whole.startsWith('#')) continue;
    const match = /^(\S+)\s*(.*)$/.exec(whole);
    if (match) out.push({ keyword: match[1].toUpperCase(), rest: match[2] });
  }
  if (pending.trim()) {
    const match = /^(\S+)\s*(.*)$/.exec(pending.trim());
    if (match) out.push({ keyword: match[1].toUpperCase(), rest: match[2] });
  }
  return out;
}

/** The arguments of COPY/ADD: JSON form or words; `--chown=`-style flags dropped. */
function copyArguments(rest: string): string[] {
  const trimmed = rest.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return parsed;
    } catch {
      // not JSON: read as words
    }
  }
  return trimmed.split(/\s+/).filter((word) => word && !word.startsWith('--'));
}

function parseEnv(rest: string, env: Record<string, string>): void {
  const unquote = (value: string) => value.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  if (/^[A-Za-z_][A-Za-z0-9_]*\s+[^=]*$/.test(rest) && !rest.includes('=')) {
    const [name, ...value] = rest.split(/\s+/);
    env[name] = unquote(value.join(' '));
    return;
  }
  for (const match of rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) env[match[1]] = unquote(match[2]);
}

/** Reads a task folder. Throws TaskError saying what is missing or wrong. */
export async function loadTask(dir: string): Promise<HarborTask> {
  const root = path.resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new TaskError(`${dir} is not a task folder (no such folder).`);
  const instructionFile = path.join(root, 'instruction.md');
  const tomlFile = path.join(root, 'task.toml');
  const testFile = path.join(root, 'tests', 'test.sh');
  const missing = [instructionFile, tomlFile, testFile].filter((file) => !existsSync(file)).map((file) => path.relative(root, file));
  if (missing.length) throw new TaskError(`${dir} is not a task in Harbor's layout: ${missing.join(', ')} missing (a task has instruction.md, task.toml and tests/test.sh).`);
  const instruction = (await fs.readFile(instructionFile, 'utf8')).trim();
  if (!instruction) throw new TaskError(`${path.relative(process.cwd(), instructionFile) || instructionFile} is empty: it is the task the agent is given.`);
  let config: Record<string, unknown>;
  try {
    config = parseToml(await fs.readFile(tomlFile, 'utf8'));
  } catch (error) {
    throw new TaskError(`${tomlFile} is not valid TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  const table = (name: string): Record<string, unknown> => {
    const value = config[name];
    if (value === undefined) return {};
    if (!isObject(value)) throw new TaskError(`${tomlFile}: [${name}] must be a table.`);
    return value;
  };
  const verifierTable = table('verifier');
  const agentTable = table('agent');
  const environmentTable = table('environment');
  const taskTable = table('task');
  const verifierEnv: Record<string, string> = {};
  if (verifierTable.env !== undefined) {
    if (!isObject(verifierTable.env)) throw new TaskError(`${tomlFile}: [verifier] env must be a table of strings.`);
    for (const [key, value] of Object.entries(verifierTable.env)) verifierEnv[key] = String(value);
  }
  const gpus = numberField(environmentTable, 'gpus', `${tomlFile} [environment]`) ?? 0;
  const dockerImage = typeof environmentTable.docker_image === 'string' && environmentTable.docker_image.trim() ? environmentTable.docker_image.trim() : undefined;
  const allowInternet = environmentTable.allow_internet === undefined ? true : environmentTable.allow_internet === true;

  const envDir = path.join(root, 'environment');
  const dockerfile = path.join(envDir, 'Dockerfile');
  const hasDockerfile = existsSync(dockerfile);
  const hasCompose = ['docker-compose.yaml', 'docker-compose.yml', 'compose.yaml', 'compose.yml'].some((name) => existsSync(path.join(envDir, name)));
  let workdir = DEFAULT_WORKDIR;
  const copies: DockerfileCopy[] = [];
  const runLines: string[] = [];
  const env: Record<string, string> = {};
  if (hasDockerfile) {
    let sawWorkdir = false;
    for (const { keyword, rest } of dockerfileInstructions(await fs.readFile(dockerfile, 'utf8'))) {
      if (keyword === 'WORKDIR') {
        const value = rest.trim().replace(/^"(.*)"$/, '$1');
        workdir = path.posix.resolve(sawWorkdir ? workdir : '/', value);
        sawWorkdir = true;
      } else if (keyword === 'COPY' || keyword === 'ADD') {
        if (/--from=/.test(rest)) {
          runLines.push(`${keyword} ${rest}`);
          continue;
        }
        const words = copyArguments(rest);
        if (words.length < 2) continue;
        const to = words[words.length - 1];
        for (const from of words.slice(0, -1)) copies.push({ from, to: path.posix.resolve(sawWorkdir ? workdir : '/', to) + (to.endsWith('/') ? '/' : '') });
      } else if (keyword === 'RUN') {
        runLines.push(rest);
      } else if (keyword === 'ENV') {
        parseEnv(rest, env);
      }
    }
  }
  return {
    dir: root,
    name: typeof taskTable.name === 'string' && taskTable.name.trim() ? taskTable.name.trim() : path.basename(root),
    instruction,
    verifier: { timeoutSec: numberField(verifierTable, 'timeout_sec', `${tomlFile} [verifier]`) ?? DEFAULT_VERIFIER_TIMEOUT_SEC, env: verifierEnv },
    agent: { timeoutSec: numberField(agentTable, 'timeout_sec', `${tomlFile} [agent]`) },
    environment: {
      dockerImage,
      cpus: numberField(environmentTable, 'cpus', `${tomlFile} [environment]`),
      memoryMb: memoryMb(environmentTable, `${tomlFile} [environment]`),
      gpus,
      allowInternet,
    },
    workdir,
    copies,
    runLines,
    env,
    hasDockerfile,
    hasCompose,
    hasSolution: existsSync(path.join(root, 'solution', 'solve.sh')),
  };
}

/** What the host has, as far as running tasks goes. */
export interface TaskHost {
  /** True when a command of that name is on PATH. */
  hasCommand(name: string): boolean;
  /** True when a Debian/Alpine package of that name is installed, or a command of that name exists. */
  hasPackage(name: string): boolean;
  /** True when the Python package is importable or installed (pip's name). */
  hasPythonPackage(name: string): boolean;
  /** GPUs visible to the sandbox. */
  gpus: number;
  /** Whether the command sandbox works here (the verifier needs it to place /tests and the workspace). */
  sandbox: boolean;
  /** Why there is no sandbox, when there is none. */
  sandboxReason?: string;
}

function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      if (statSync(path.join(dir, name)).isFile()) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** The host this process runs on. */
export function localTaskHost(sandbox: { available: boolean; reason?: string }): TaskHost {
  const packages = new Map<string, boolean>();
  let gpus: number;
  try {
    gpus = readdirSync('/dev').filter((entry) => /^nvidia\d+$/.test(entry)).length;
  } catch {
    gpus = 0;
  }
  return {
    hasCommand: onPath,
    hasPackage(name) {
      if (onPath(name)) return true;
      const cached = packages.get(`deb:${name}`);
      if (cached !== undefined) return cached;
      const found = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }).stdout?.includes('install ok installed') ?? false;
      packages.set(`deb:${name}`, found);
      return found;
    },
    hasPythonPackage(name) {
      const cached = packages.get(`py:${name}`);
      if (cached !== undefined) return cached;
      const python = onPath('python3') ? 'python3' : 'python';
      const found = spawnSync(python, ['-m', 'pip', 'show', '-q', name], { encoding: 'utf8' }).status === 0;
      packages.set(`py:${name}`, found);
      return found;
    },
    gpus,
    sandbox: sandbox.available,
    sandboxReason: sandbox.reason,
  };
}

/** Top-level folders a task's WORKDIR may not take over in the sandbox (the workspace is placed there). */
const SYSTEM_FOLDERS = new Set(['bin', 'boot', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'logs', 'proc', 'run', 'sbin', 'sys', 'tests', 'tmp', 'usr', 'var', 'solution']);

/** Package-manager words that are not package names. */
const INSTALL_FLAGS = /^(-|--)/;
const HARMLESS_COMMAND = /^(apt-get|apt)\s+(update|clean|autoremove)\b|^rm\s+-rf\s+\/var\/lib\/apt\/lists\/?\*?$|^mkdir\s+(-p\s+)?\S+$|^true$|^:$/;

/**
 * What one RUN line needs from the host, or why it cannot run without a container engine.
 * Returns the missing pieces (empty when the host has everything) or a refusal.
 */
function runLineNeeds(line: string, host: TaskHost): { missing: string[]; refusal?: string } {
  const missing: string[] = [];
  if (/^\[/.test(line.trim())) return { missing, refusal: `RUN ${line}` };
  for (const raw of line.split(/&&|;/)) {
    const command = raw.trim().replace(/^(DEBIAN_FRONTEND=\S+\s+)+/, '');
    if (!command || HARMLESS_COMMAND.test(command)) continue;
    const apt = /^(?:apt-get|apt)\s+(?:-\S+\s+)*install\s+(.*)$/.exec(command) ?? /^apk\s+add\s+(.*)$/.exec(command);
    if (apt) {
      for (const word of apt[1].split(/\s+/)) {
        if (!word || INSTALL_FLAGS.test(word)) continue;
        const name = word.replace(/[=:].*$/, '');
        if (!host.hasPackage(name)) missing.push(name);
      }
      continue;
    }
    const pip = /^(?:pip3?|python3?\s+-m\s+pip|uv\s+pip)\s+install\s+(.*)$/.exec(command);
    if (pip) {
      for (const word of pip[1].split(/\s+/)) {
        if (!word || INSTALL_FLAGS.test(word)) continue;
        if (/[/]|\.txt$|\.whl$/.test(word)) return { missing, refusal: `RUN ${command}` };
        const name = word.replace(/^["']|["']$/g, '').replace(/[<>=!~[;].*$/, '');
        if (name && !host.hasPythonPackage(name)) missing.push(`${name} (Python)`);
      }
      continue;
    }
    return { missing, refusal: `RUN ${command}` };
  }
  return { missing };
}

/**
 * Why this task cannot run on this host without a container engine, in words for the user, or
 * undefined when it can. Checked before a run starts so that nothing is half done.
 */
export function taskRefusal(task: HarborTask, host: TaskHost): string | undefined {
  const name = `Task ${task.name}`;
  const underHarbor = 'run it under Harbor with a container engine, or give it an environment that only copies files and installs what this machine has';
  const top = task.workdir.split('/').filter(Boolean)[0];
  if (!top || SYSTEM_FOLDERS.has(top)) return `${name}'s WORKDIR ${task.workdir} would put the workspace over a system folder inside the sandbox: give it a folder of its own (e.g. /app).`;
  if (!host.sandbox)
    return `${name} cannot be verified here: its verifier needs the command sandbox to place /tests and the workspace where the task expects them, and ${host.sandboxReason ?? 'there is none'}.`;
  if (task.environment.dockerImage) return `${name} needs the container image ${task.environment.dockerImage} ([environment] docker_image): ${underHarbor}.`;
  if (task.hasCompose) return `${name} needs several containers (environment/docker-compose): ${underHarbor}.`;
  if (task.environment.gpus > host.gpus) return `${name} needs ${task.environment.gpus} GPU(s) and this machine has ${host.gpus}.`;
  const missing: string[] = [];
  for (const line of task.runLines) {
    if (/^(COPY|ADD)\s/.test(line)) return `${name} copies from another build stage (${line}): ${underHarbor}.`;
    const needs = runLineNeeds(line, host);
    if (needs.refusal) return `${name}'s Dockerfile runs \`${needs.refusal.slice(0, 160)}\`, which needs a container engine: ${underHarbor}.`;
    missing.push(...needs.missing);
  }
  if (missing.length)
    return `${name} needs ${[...new Set(missing)].join(', ')} (installed by its Dockerfile), which this machine lacks: install ${missing.length > 1 ? 'them' : 'it'} here, or run the task under Harbor.`;
  for (const copy of task.copies) {
    const source = path.resolve(task.dir, 'environment', copy.from);
    if (/^[a-z]+:\/\//i.test(copy.from)) return `${name}'s Dockerfile downloads ${copy.from}: ${underHarbor}.`;
    if (!isInside(source, path.join(task.dir, 'environment'))) return `${name}'s Dockerfile copies ${copy.from}, outside its build context (environment/).`;
    if (!existsSync(source)) return `${name}'s Dockerfile copies ${copy.from}, which is not in environment/.`;
    if (!isInside(copy.to.replace(/\/$/, '') || '/', task.workdir))
      return `${name}'s Dockerfile copies ${copy.from} to ${copy.to}, outside its WORKDIR ${task.workdir}: only the WORKDIR becomes the workspace here; ${underHarbor}.`;
  }
  return undefined;
}

async function copyInto(source: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.cp(source, target, { recursive: true, force: true, errorOnExist: false, verbatimSymlinks: true });
}

/**
 * Fills `workspace` with what the task's Dockerfile copies into its WORKDIR (COPY/ADD of the
 * build context, in order), so that the agent starts where it would start in the container.
 * Call after taskRefusal said nothing.
 */
export async function prepareTaskWorkspace(task: HarborTask, workspace: string): Promise<{ files: number }> {
  await fs.mkdir(workspace, { recursive: true });
  const context = path.join(task.dir, 'environment');
  for (const copy of task.copies) {
    const source = path.resolve(context, copy.from);
    const intoFolder = copy.to.endsWith('/') || task.copies.filter((other) => other.to === copy.to).length > 1;
    const relative = path.posix.relative(task.workdir, copy.to.replace(/\/$/, '') || '/');
    const dest = path.join(workspace, ...relative.split('/').filter(Boolean));
    if (statSync(source).isDirectory()) {
      // Docker copies a folder's contents, not the folder itself.
      for (const entry of await fs.readdir(source)) await copyInto(path.join(source, entry), path.join(dest, entry));
    } else {
      await copyInto(source, intoFolder || relative === '' ? path.join(dest, path.basename(source)) : dest);
    }
  }
  let files = 0;
  const count = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await count(path.join(dir, entry.name));
      else files++;
    }
  };
  await count(workspace);
  return { files };
}

/** The task folders under `dir`: itself when it is a task, else its sub-folders that are (sorted by name). */
export function findTaskDirs(dir: string): string[] {
  const root = path.resolve(dir);
  if (existsSync(path.join(root, 'task.toml'))) return [root];
  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch (error) {
    throw new TaskError(`Cannot read ${dir}: ${(error as Error).message}`);
  }
  const found = entries.map((entry) => path.join(root, entry)).filter((entry) => existsSync(path.join(entry, 'task.toml')));
  if (!found.length) throw new TaskError(`${dir} holds no task: a task folder has task.toml, instruction.md and tests/test.sh (Harbor's layout).`);
  return found;
}

/** `--shard I/N`: the tasks of shard I (1-based) when the sorted tasks are dealt out to N machines. */
export function shardOf<T>(items: readonly T[], shard: { index: number; count: number } | undefined): T[] {
  if (!shard) return [...items];
  return items.filter((_, position) => position % shard.count === shard.index - 1);
}

/** Parses `I/N` (1 ≤ I ≤ N). */
export function parseShard(text: string): { index: number; count: number } {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || count < 1 || index < 1 || index > count) throw new TaskError(`--shard takes I/N with 1 ≤ I ≤ N, e.g. 2/4 (got "${text}").`);
  return { index, count };
}
