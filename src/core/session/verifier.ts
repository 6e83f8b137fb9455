/**
 * A Harbor task's verifier (tests/test.sh), or its oracle (solution/solve.sh), run on a workspace
 * the way Harbor runs it in the task's container: `bash /tests/test.sh` with the workspace at the
 * task's WORKDIR, the tests read-only at /tests, and /logs/verifier writable — here inside the
 * command sandbox (sandbox.ts), with those paths bound in place, under the task's timeout.
 *
 * Rewards as Harbor reads them (its Verifier): /logs/verifier/reward.txt holds one number, which
 * becomes {"reward": n}; otherwise /logs/verifier/reward.json holds an object of named numbers.
 * reward.txt wins when both exist. A verifier that writes neither, writes something else, exits
 * on a signal or overruns its timeout gives no reward, and the outcome says why.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SandboxInfo } from '../agent/sandbox';
import { wrapCommand } from '../agent/sandbox';
import type { Redactor } from '../dataset/redaction';
import type { HarborTask } from './harborTask';

/** What the verifier's output keeps, from its end (where test summaries are). */
export const VERIFIER_OUTPUT_CHARS = 8_000;

/** After the timeout, how long the sandbox gets to end before the outcome is returned anyway. */
const KILL_GRACE_MS = 5_000;

export interface VerifierOutcome {
  /** The named rewards; undefined when the verifier gave none (then `error` says why). */
  rewards?: Record<string, number>;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** The end of its output (stdout and stderr interleaved), redacted when a redactor is given. */
  output: string;
  error?: string;
}

export interface RunVerifierOptions {
  task: HarborTask;
  /** The folder placed at the task's WORKDIR. */
  workspace: string;
  /** A host folder placed at /logs/verifier (created; emptied of old reward files first). */
  logsDir: string;
  sandbox: SandboxInfo;
  /** 'verifier' runs tests/test.sh; 'oracle' runs solution/solve.sh (then no reward is read). */
  script?: 'verifier' | 'oracle';
  /** Default the task's [verifier] timeout_sec. */
  timeoutMs?: number;
  home?: string;
  cacheDir?: string;
  redactor?: Redactor;
  signal?: AbortSignal;
}

/** Reads the rewards Harbor's way (see the module comment). */
export async function readRewards(logsDir: string): Promise<{ rewards?: Record<string, number>; error?: string }> {
  const textFile = path.join(logsDir, 'reward.txt');
  const jsonFile = path.join(logsDir, 'reward.json');
  if (existsSync(textFile)) {
    const text = (await fs.readFile(textFile, 'utf8')).trim();
    const value = Number(text);
    if (!text || !Number.isFinite(value)) return { error: `reward.txt holds ${JSON.stringify(text.slice(0, 80))}, not a number.` };
    return { rewards: { reward: value } };
  }
  if (existsSync(jsonFile)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(jsonFile, 'utf8'));
    } catch (error) {
      return { error: `reward.json is not valid JSON: ${(error as Error).message}` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { error: 'reward.json must hold an object of named numbers, e.g. {"reward": 1}.' };
    const rewards: Record<string, number> = {};
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value === 'boolean') rewards[key] = value ? 1 : 0;
      else if (typeof value === 'number' && Number.isFinite(value)) rewards[key] = value;
      else return { error: `reward.json: "${key}" is ${JSON.stringify(value)?.slice(0, 40)}, not a number (Harbor reads numbers only).` };
    }
    if (!Object.keys(rewards).length) return { error: 'reward.json holds no reward.' };
    return { rewards };
  }
  return { error: 'the verifier wrote no reward (neither /logs/verifier/reward.txt nor reward.json).' };
}

/** Runs the task's verifier (or oracle) on `workspace` in the sandbox. Never throws for the script's own failures. */
export async function runVerifier(options: RunVerifierOptions): Promise<VerifierOutcome> {
  const { task } = options;
  const script = options.script ?? 'verifier';
  const started = Date.now();
  await fs.mkdir(options.logsDir, { recursive: true });
  for (const name of ['reward.txt', 'reward.json']) await fs.rm(path.join(options.logsDir, name), { force: true });
  const agentLogs = path.join(options.logsDir, '..', 'agent');
  await fs.mkdir(agentLogs, { recursive: true });
  const command = script === 'oracle' ? 'bash /solution/solve.sh' : 'bash /tests/test.sh';
  const placements = [
    { source: options.workspace, dest: task.workdir, writable: true },
    { source: path.join(task.dir, 'tests'), dest: '/tests', writable: false },
    { source: options.logsDir, dest: '/logs/verifier', writable: true },
    { source: agentLogs, dest: '/logs/agent', writable: true },
    ...(script === 'oracle' ? [{ source: path.join(task.dir, 'solution'), dest: '/solution', writable: false }] : []),
  ];
  const launch = wrapCommand(options.sandbox, {
    workspace: options.workspace,
    command,
    network: task.environment.allowInternet,
    home: options.home ?? os.homedir(),
    cacheDir: options.cacheDir,
    placements,
    chdir: task.workdir,
    setEnv: { ...task.env, ...task.verifier.env },
  });
  const timeoutMs = options.timeoutMs ?? task.verifier.timeoutSec * 1000;
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; timedOut: boolean; error?: string }>((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(launch.file, launch.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > VERIFIER_OUTPUT_CHARS * 2) output = output.slice(-VERIFIER_OUTPUT_CHARS);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const finish = (value: { code: number | null; signal: NodeJS.Signals | null; error?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ ...value, output, timedOut });
    };
    let grace: NodeJS.Timeout | undefined;
    // The sandbox has its own PID namespace: killing bwrap ends everything the script started.
    const kill = () => {
      child.kill('SIGKILL');
      grace = setTimeout(() => finish({ code: null, signal: 'SIGKILL' }), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    const onAbort = () => kill();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => finish({ code: null, signal: null, error: error.message }));
    child.on('close', (code, signal) => finish({ code, signal }));
  });
  const durationMs = Date.now() - started;
  const tail = result.output.length > VERIFIER_OUTPUT_CHARS ? `[…]${result.output.slice(-VERIFIER_OUTPUT_CHARS)}` : result.output;
  const output = options.redactor ? options.redactor.redact(tail) : tail;
  const base = { exitCode: result.code, timedOut: result.timedOut, durationMs, output };
  const label = script === 'oracle' ? 'solution/solve.sh' : 'tests/test.sh';
  if (result.error) return { ...base, error: `${label} could not start: ${result.error}` };
  if (result.timedOut) return { ...base, error: `${label} ran past its timeout (${Math.round(timeoutMs / 1000)} s, [verifier] timeout_sec) and was stopped.` };
  if (options.signal?.aborted) return { ...base, error: `${label} was stopped.` };
  if (script === 'oracle') return result.code === 0 ? base : { ...base, error: `${label} exited with ${result.code ?? result.signal}.` };
  const read = await readRewards(options.logsDir);
  if (read.rewards) return { ...base, rewards: read.rewards };
  return { ...base, error: `${label} exited with ${result.code ?? result.signal}: ${read.error}` };
}
