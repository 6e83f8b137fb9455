/**
 * Engine benchmark: a simulated 5,000-step run (`--steps N` to change) against the scripted
 * model server with zero latency. Grounding is replaced by a stand-in that does nothing, so the
 * figures are the engine's own per-step cost: the model round trip through the `openai` client,
 * the tool, context management, writing and flushing the events and the manifest.
 * `--shadow`: real grounding instead (the watcher-fed shadow store), to see what the snapshots
 * of a step cost when the workspace barely changes.
 * Prints figures; asserts nothing. Run with `npm run bench`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Grounder } from '../src/core/agent/loop';
import type { Grounding } from '../src/core/dataset/events';
import { RunSession } from '../src/core/session/runSession';
import { ShadowStore } from '../src/core/grounding/shadowStore';
import { WorkspaceWatcher } from '../src/core/grounding/watcher';

const steps = Number(process.argv[process.argv.indexOf('--steps') + 1]) || 5000;
const realGrounding = process.argv.includes('--shadow');
const contextBudget = 32_000;
const gc = (globalThis as { gc?: () => void }).gc;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const ms = (value: number) => `${value.toFixed(2)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function memory() {
  gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

/** Grounding that costs nothing (or the real one, with --shadow), timing when the loop asks for snapshots. */
class TimingGrounder implements Grounder {
  readonly snapshots: number[] = [];
  /** How long each snapshot call took, in call order. */
  readonly snapshotMs: number[] = [];
  constructor(private readonly inner?: Grounder) {}
  async snapshot(): Promise<string> {
    const started = performance.now();
    this.snapshots.push(started);
    const id = this.inner ? await this.inner.snapshot() : '0000000000000000000000000000000000000000';
    this.snapshotMs.push(performance.now() - started);
    return id;
  }
  async ground(before: string, after: string): Promise<Grounding> {
    return this.inner ? this.inner.ground(before, after) : { before, after, files: [], patch: '' };
  }
}

async function startModelServer(): Promise<{ baseUrl: string; stop(): void }> {
  const child = spawn(process.execPath, [path.join(__dirname, 'modelServer.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the model server exited (${code})`)));
  });
  return { baseUrl: line.trim(), stop: () => child.kill('SIGTERM') };
}

function makeWorkspace(): string {
  const workspace = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-'));
  mkdirSync(path.join(workspace, 'src'));
  const body = Array.from({ length: 200 }, (_, i) => `def convert_${i}(value):\n    return value * ${i} + 32\n`).join('\n');
  writeFileSync(path.join(workspace, 'src', 'module.py'), body);
  for (let i = 0; i < 30; i++) writeFileSync(path.join(workspace, 'src', `helper_${i}.py`), `def convert(x):\n    return x + ${i}\n`);
  return workspace;
}

async function main(): Promise<void> {
  const workspace = makeWorkspace();
  const server = await startModelServer();
  const storeDir = mkdtempSync(path.join(os.tmpdir(), 'apollo-bench-store-'));
  const watcher = realGrounding ? new WorkspaceWatcher(workspace) : undefined;
  const shadow = watcher ? new ShadowStore({ workspace, storeDir: path.join(storeDir, 'shadow.git'), changes: watcher }) : undefined;
  if (shadow) {
    await shadow.init();
    await watcher!.start();
  }
  const grounder = new TimingGrounder(shadow);
  const groundingMs: number[] = [];
  const stepTimes: number[] = [];
  const modelMs: number[] = [];
  const toolMs: number[] = [];
  /** How many snapshots had been taken when each step was recorded: a step's own are those since the step before. */
  const snapshotsAtStep: number[] = [];
  const memoryAt = new Map<number, ReturnType<typeof memory>>();
  let summaries = 0;
  try {
    const startedAt = performance.now();
    const session = await RunSession.start({
      workspace,
      datasetDir: '.apollo/dataset',
      task: 'Fix every convert function in src/.',
      model: 'bench-model',
      baseUrl: server.baseUrl,
      apiKey: 'bench',
      maxSteps: steps,
      contextBudget,
      engine: { grounder, inboxPollMs: 60_000 },
    });
    session.onEvent((event) => {
      if (event.type === 'summary') summaries++;
      if (event.type !== 'step') return;
      stepTimes.push(performance.now());
      snapshotsAtStep.push(grounder.snapshots.length);
      modelMs.push(event.modelMs ?? 0);
      toolMs.push(event.toolMs ?? 0);
      groundingMs.push(event.groundingMs ?? 0);
      if (event.step === 100 || event.step % 1000 === 0 || event.step === steps) memoryAt.set(event.step, memory());
      if (event.step % 500 === 0) process.stderr.write(`  step ${event.step}\n`);
    });
    const ended = await session.done;
    const total = performance.now() - startedAt;
    if (ended.status !== 'max_steps') throw new Error(`the run ended ${ended.status}: ${ended.error ?? ''}`);

    // A step's snapshots: the first when its request was sent, the last after its action.
    const wall: number[] = [];
    const snapshotTime: number[] = [];
    const bookkeeping: number[] = [];
    const requestAndTool: number[] = [];
    for (let i = 0; i < stepTimes.length; i++) {
      const previous = i === 0 ? startedAt : stepTimes[i - 1];
      const [before, after] = [grounder.snapshots[i === 0 ? 0 : snapshotsAtStep[i - 1]], grounder.snapshots[snapshotsAtStep[i] - 1]];
      wall.push(stepTimes[i] - previous);
      snapshotTime.push(grounder.snapshotMs.slice(i === 0 ? 0 : snapshotsAtStep[i - 1], snapshotsAtStep[i]).reduce((sum, value) => sum + value, 0));
      requestAndTool.push(after - before);
      bookkeeping.push(stepTimes[i] - previous - (after - before));
    }
    const early = wall.slice(0, 100);
    const late = wall.slice(-100);
    const at100 = memoryAt.get(100)!;
    const atEnd = memoryAt.get(steps)!;

    const rows: [string, string][] = [
      ['steps', `${stepTimes.length} (${summaries} context summaries, budget ${contextBudget} tokens)`],
      ['wall time', `${(total / 1000).toFixed(1)} s`],
      [`per-step engine overhead, ${realGrounding ? 'with shadow-store grounding' : 'excl. grounding'}: p50 / p99`, `${ms(percentile(wall, 50))} / ${ms(percentile(wall, 99))}`],
      ['  snapshots per step', (grounder.snapshots.length / stepTimes.length).toFixed(2)],
      ['  of which in snapshot calls, per step: p50 / p99', `${ms(percentile(snapshotTime, 50))} / ${ms(percentile(snapshotTime, 99))}`],
      ['  of which grounding (event groundingMs): p50 / p99', `${percentile(groundingMs, 50)} ms / ${percentile(groundingMs, 99)} ms`],
      ['  of which model round trip (event modelMs): p50 / p99', `${percentile(modelMs, 50)} ms / ${percentile(modelMs, 99)} ms`],
      ['  of which tool (event toolMs): p50 / p99', `${percentile(toolMs, 50)} ms / ${percentile(toolMs, 99)} ms`],
      ['  bookkeeping outside request+tool: p50 / p99', `${ms(percentile(bookkeeping, 50))} / ${ms(percentile(bookkeeping, 99))}`],
      ['per-step p50, steps 1-100 vs last 100', `${ms(percentile(early, 50))} vs ${ms(percentile(late, 50))}`],
      [`resident memory at step 100 / ${steps}`, `${mb(at100.rss)} / ${mb(atEnd.rss)} (growth ${mb(atEnd.rss - at100.rss)})`],
      [`JS heap at step 100 / ${steps}`, `${mb(at100.heap)} / ${mb(atEnd.heap)}${gc ? ' (after gc)' : ''}`],
      ['resident memory by step', [...memoryAt].map(([step, usage]) => `${step}: ${mb(usage.rss)}`).join(', ')],
      [`external memory at step 100 / ${steps}`, `${mb(at100.external)} / ${mb(atEnd.external)}`],
      [`V8 heap reserved at step 100 / ${steps}`, `${mb(at100.heapTotal)} / ${mb(atEnd.heapTotal)}`],
    ];
    console.log(`engine benchmark (${os.cpus().length}x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${os.platform()})`);
    for (const [name, value] of rows) console.log(`  ${name.padEnd(56)} ${value}`);
  } finally {
    server.stop();
    watcher?.dispose();
    rmSync(workspace, { recursive: true, force: true });
    rmSync(storeDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
