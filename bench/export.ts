/**
 * Export benchmark: a generated dataset of 1,000 runs × 300 steps (`APOLLO_BENCH_RUNS`,
 * `APOLLO_BENCH_STEPS` or `--runs N`, `--steps N` to change) exported in every format with
 * `branches: 'all'`: wall time, records, output bytes and peak memory. Then the openai and hf
 * exports of the first 10 %, 30 % and all of the runs side by side, to show whether memory grows
 * with the dataset.
 *
 * The dataset is written straight to `runs/<id>/run.json` and `runs/<id>/events.jsonl` (the
 * store's appendEvent flushes every line) from a seeded generator, so every run is the same
 * from one bench run to the next. Each export runs in a fresh Node process, so one export's heap
 * and resident memory do not carry over into the next; memory is sampled every 20 ms and after
 * every run the export finishes, and reported as the peak above what the process held just
 * before the export (after gc). `APOLLO_BENCH_DIR` picks the folder the temporary dataset goes
 * in (default: the system's temporary folder); everything is deleted at the end.
 * Runs compact their context every 30 to 50 steps, as a 32k-token budget makes them, so the
 * formats that cut at compactions see real segments. `--formats openai,trl` picks formats.
 * Prints figures; asserts nothing. Run with `npm run bench:export`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemPrompt } from '../src/core/agent/prompt';
import { TOOL_DEFINITIONS } from '../src/core/agent/tools';
import type { DatasetEvent, FileChange, Grounding, HintKind, LabelEvent, RunManifest, StepEvent, ToolCallRecord } from '../src/core/dataset/events';
import { validateEvent } from '../src/core/dataset/events';
import { DatasetStore, folderBytes, parseEventLines } from '../src/core/dataset/store';
import { EXPORT_FORMATS, type ExportFormat, exportDataset, FOLDER_FORMATS } from '../src/core/export/exportDataset';
import { pairsOf } from '../src/core/export/pairs';
import { buildRunTree, trajectoriesOf } from '../src/core/export/trajectory';
import { DEFAULT_MASK_POLICY } from '../src/core/supervision/labels';
import { random } from '../test/fixtures/random';

const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const gc = (globalThis as { gc?: () => void }).gc;
const SEED = 20261128;
const SAMPLE_MS = 20;

// ---------------------------------------------------------------------------------------------
// A seeded generator of realistic runs.

/** The tests' reproducible random source, with what the generator needs on top. */
function prng(seed: number) {
  const { next } = random(seed);
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
    hex: (length: number) => {
      let out = '';
      while (out.length < length)
        out += Math.floor(next() * 0x100000000)
          .toString(16)
          .padStart(8, '0');
      return out.slice(0, length);
    },
  };
}
type Random = ReturnType<typeof prng>;

const WORDS = (
  'the a of to in for with on by from value values result results config parser reader writer cache index ' +
  'request response session token tokens batch model loss step steps epoch learning rate schedule dataset ' +
  'loader sample samples label labels mask weight weights gradient optimizer checkpoint metric metrics ' +
  'test tests failing passing error errors missing expected actual returns raises handle handles empty ' +
  'list dict string number path file files folder module function class method argument default option ' +
  'check checks update fix fixes add remove rename move split merge parse convert format encode decode ' +
  'because since so then now first next before after again still only also instead'
).split(' ');
const IDENTS = (
  'value result config parser reader writer cache index request response session tokens batch model loss ' +
  'step epoch lr schedule dataset loader sample label mask weight grad optimizer ckpt metric item items ' +
  'path name data text line lines count total offset size limit key keys record records row rows'
).split(' ');
const DIRS = ['src', 'src/data', 'src/train', 'src/utils', 'tests', 'scripts', 'configs'];
const COMMANDS = [
  'python -m pytest -q',
  'python -m pytest -q -x tests/test_{f}.py',
  'ruff check src',
  'python scripts/{f}.py --dry-run',
  'make lint',
  'python -m mypy src',
  'git status --short',
  'python -c "import {f}"',
];
const MODELS = ['qwen2.5-coder-32b-instruct', 'gpt-4.1', 'llama-3.3-70b-instruct'];
const HINT_KINDS_USED: HintKind[] = ['knowledge', 'strategy', 'correction'];

/** Pools of lines the texts are cut from: fast to assemble, varied enough to look real. */
class TextPools {
  readonly code: string[] = [];
  readonly prose: string[] = [];
  readonly log: string[] = [];
  readonly files: string[] = [];

  constructor(private readonly r: Random) {
    const ident = () => (r.chance(0.5) ? `${r.pick(IDENTS)}_${r.pick(IDENTS)}` : r.pick(IDENTS));
    const sentence = (min: number, max: number) => {
      const words = Array.from({ length: r.int(min, max) }, () => r.pick(WORDS));
      return words[0][0].toUpperCase() + words.join(' ').slice(1) + '.';
    };
    for (let i = 0; i < 400; i++) this.files.push(`${r.pick(DIRS)}/${ident()}${r.chance(0.1) ? '.toml' : '.py'}`);
    const templates = [
      () => `def ${ident()}(${ident()}, ${ident()}=${r.int(0, 64)}):`,
      () => `    ${ident()} = ${ident()}(${ident()}, ${r.int(0, 1000)})`,
      () => `    return ${ident()} * ${r.int(1, 99)} + ${ident()}`,
      () => `    if ${ident()} is None or len(${ident()}) > ${r.int(1, 4096)}:`,
      () => `        raise ValueError(f"${sentence(3, 8).slice(0, -1)}: {${ident()}!r}")`,
      () => `    for ${ident()} in ${ident()}.${ident()}():`,
      () => `        ${ident()}.append(${ident()}[${r.int(0, 9)}])`,
      () => `# ${sentence(4, 12)}`,
      () => `class ${r.pick(IDENTS)[0].toUpperCase()}${ident().slice(1)}:`,
      () => `from ${r.pick(DIRS).replace(/\//g, '.')} import ${ident()}, ${ident()}`,
      () => `    self.${ident()} = ${ident()}`,
      () => '',
    ];
    for (let i = 0; i < 4000; i++) this.code.push(r.pick(templates)());
    for (let i = 0; i < 1000; i++) this.prose.push(sentence(6, 18));
    const logs = [
      () => `${r.pick(this.files)}::test_${ident()} PASSED`,
      () => `${r.pick(this.files)}::test_${ident()} FAILED`,
      () => `E       AssertionError: assert ${r.int(0, 999)} == ${r.int(0, 999)}`,
      () => `E       KeyError: '${ident()}'`,
      () => `${r.pick(this.files)}:${r.int(1, 400)}: in ${ident()}`,
      () => `    ${ident()} = ${ident()}(${ident()})`,
      () => `${r.pick(this.files)}:${r.int(1, 400)}:${r.int(1, 80)}: F841 local variable '${ident()}' is assigned to but never used`,
      () => `INFO ${ident()}: ${sentence(4, 10)}`,
      () => `WARNING ${ident()}: ${sentence(4, 10)}`,
    ];
    for (let i = 0; i < 1000; i++) this.log.push(r.pick(logs)());
  }

  /** Lines from `pool` joined until the text is about `length` characters. */
  text(pool: string[], length: number): string {
    const lines: string[] = [];
    let size = 0;
    let at = this.r.int(0, pool.length - 1);
    while (size < length) {
      // Runs of consecutive lines, like a file read from somewhere in the middle.
      if (this.r.chance(0.2)) at = this.r.int(0, pool.length - 1);
      const line = pool[at++ % pool.length];
      lines.push(line);
      size += line.length + 1;
    }
    return lines.join('\n');
  }

  sentences(length: number): string {
    return this.text(this.prose, length).replace(/\n/g, ' ');
  }
}

/** A unified diff of one file, about `length` characters, with its change record. */
function filePatch(r: Random, pools: TextPools, file: string, length: number, status: 'added' | 'modified'): { change: FileChange; patch: string } {
  const removed = status === 'added' ? [] : pools.text(pools.code, length * 0.35).split('\n');
  const added = pools.text(pools.code, status === 'added' ? length : length * 0.5).split('\n');
  const header = status === 'added' ? `new file mode 100644\nindex 0000000..${r.hex(7)}\n--- /dev/null\n+++ b/${file}` : `index ${r.hex(7)}..${r.hex(7)} 100644\n--- a/${file}\n+++ b/${file}`;
  const start = status === 'added' ? 0 : r.int(1, 300);
  const context = status === 'added' ? [] : pools.text(pools.code, 120).split('\n');
  const hunk = `@@ -${start},${removed.length + context.length} +${start ? start : 1},${added.length + context.length} @@ def ${r.pick(IDENTS)}(`;
  const body = [...context.map((line) => ` ${line}`), ...removed.map((line) => `-${line}`), ...added.map((line) => `+${line}`)].join('\n');
  return {
    change: { path: file, status, additions: added.length, deletions: removed.length, binary: false },
    patch: `diff --git a/${file} b/${file}\n${header}\n${hunk}\n${body}\n`,
  };
}

interface RunSpec {
  id: string;
  index: number;
  steps: number;
}

interface GeneratedRun {
  events: DatasetEvent[];
  manifest: RunManifest;
  rewound: boolean;
}

/** One run: `steps` step events (numbered in the order they happened), hints, labels, maybe a rewind. */
function generateRun(spec: RunSpec, pools: TextPools): GeneratedRun {
  const r = prng(SEED + spec.index * 7919);
  let clock = Date.parse('2026-06-01T08:00:00Z') + spec.index * 3_600_000;
  const time = (seconds = 0) => new Date((clock += seconds * 1000)).toISOString();
  const model = r.pick(MODELS);
  const workspace = `/home/dev/projects/${r.pick(IDENTS)}-${r.pick(IDENTS)}`;
  const task = pools.sentences(r.int(120, 260));
  const events: DatasetEvent[] = [];
  const started = time();
  events.push({
    type: 'run_started',
    time: started,
    version: 1,
    runId: spec.id,
    task,
    workspace,
    model,
    baseUrl: 'http://127.0.0.1:8000/v1',
    maxSteps: spec.steps,
    systemPrompt: systemPrompt({ workspace, maxSteps: spec.steps }),
    tools: TOOL_DEFINITIONS,
  });

  // Some servers number tool calls per response (call_0, call_1, …), so ids repeat across steps.
  const perResponseIds = r.chance(0.25);
  let snapshot = r.hex(40);
  let promptTokens = 0;
  let completionTokens = 0;
  const reviewLabels: LabelEvent[] = [];
  /** The rewind, if this run has one: after step `after`, back to step `toStep`. */
  let rewind: { after: number; toStep: number } | undefined;
  if (spec.steps >= 40 && r.chance(0.1)) {
    const after = r.int(Math.floor(spec.steps * 0.2), Math.floor(spec.steps * 0.9));
    rewind = { after, toStep: after - r.int(0, 7) };
  }
  let branch: { id: string; last: number } | undefined;
  const changedByStep = new Map<number, FileChange[]>();
  const hintAt = new Set(Array.from({ length: r.int(1, 5) }, () => r.int(2, spec.steps)));

  const queueHint = (step: number, kind: HintKind, text: string) => {
    const hintId = `h-${r.hex(12)}`;
    events.push({ type: 'hint_queued', time: time(r.int(1, 20)), hintId, text, kind, source: r.pick(['panel', 'command', 'cli']), urgency: 'next' });
    events.push({ type: 'hint_delivered', time: time(1), hintId, step });
  };

  // Compactions as a 32k-token budget makes them: every 30 to 50 steps of this size, keeping a few recent steps.
  let compactAt = r.int(30, 50);
  for (let number = 1; number <= spec.steps; number++) {
    if (hintAt.has(number)) queueHint(number, r.pick(HINT_KINDS_USED), pools.sentences(r.int(60, 220)));
    if (number === compactAt) {
      events.push({
        type: 'summary',
        time: time(r.int(5, 20)),
        step: number,
        keptFromStep: number - r.int(4, 12),
        text: pools.sentences(r.int(1200, 2400)),
        tokensBefore: r.int(25_000, 27_000),
        tokensAfter: r.int(8_000, 12_000),
      });
      compactAt = number + r.int(30, 50);
    }
    const last = number === spec.steps;
    const toolRoll = r.next();
    const tool = last
      ? 'finish'
      : toolRoll < 0.02
        ? null
        : toolRoll < 0.3
          ? 'read_file'
          : toolRoll < 0.48
            ? 'write_file'
            : toolRoll < 0.58
              ? 'edit_file'
              : toolRoll < 0.8
                ? 'run_command'
                : toolRoll < 0.9
                  ? 'search'
                  : 'list_dir';
    const file = r.pick(pools.files);
    let args: Record<string, unknown> = {};
    let observation = '';
    let isError = false;
    let changes: FileChange[] = [];
    let patch = '';
    let failedCommand = false;
    switch (tool) {
      case 'read_file':
        args = r.chance(0.3) ? { path: file, start_line: r.int(1, 200), end_line: r.int(201, 400) } : { path: file };
        observation = pools.text(pools.code, r.int(1000, 2000));
        break;
      case 'write_file': {
        const content = pools.text(pools.code, r.int(800, 1300));
        args = { path: file, content };
        observation = `Wrote ${Buffer.byteLength(content)} bytes to ${file}.`;
        const diff = filePatch(r, pools, file, r.int(700, 1300), r.chance(0.25) ? 'added' : 'modified');
        changes = [diff.change];
        patch = diff.patch;
        break;
      }
      case 'edit_file': {
        args = { path: file, search: pools.text(pools.code, r.int(80, 300)), replace: pools.text(pools.code, r.int(80, 400)) };
        observation = `Replaced 1 occurrence in ${file}.`;
        const diff = filePatch(r, pools, file, r.int(500, 1100), 'modified');
        changes = [diff.change];
        patch = diff.patch;
        break;
      }
      case 'run_command': {
        args = { command: r.pick(COMMANDS).replace('{f}', r.pick(IDENTS)) };
        failedCommand = r.chance(0.45);
        observation = `${pools.text(pools.log, r.int(900, 1900))}\n[exit code ${failedCommand ? r.pick([1, 1, 2, 127]) : 0}]`;
        isError = failedCommand;
        if (r.chance(0.15)) {
          // A formatter or a generator: one or two files changed by the command.
          for (let i = 0, count = r.int(1, 2); i < count; i++) {
            const diff = filePatch(r, pools, r.pick(pools.files), r.int(300, 600), 'modified');
            changes.push(diff.change);
            patch += diff.patch;
          }
        }
        break;
      }
      case 'search':
        args = { pattern: `${r.pick(IDENTS)}_${r.pick(IDENTS)}`, path: r.pick(DIRS) };
        observation = Array.from({ length: r.int(6, 14) }, () => `${r.pick(pools.files)}:${r.int(1, 400)}:${r.pick(pools.code)}`).join('\n');
        break;
      case 'list_dir':
        args = { path: r.pick(DIRS) };
        observation = Array.from({ length: r.int(10, 40) }, () => path.basename(r.pick(pools.files))).join('\n');
        break;
      case 'finish':
        args = { summary: pools.sentences(r.int(150, 400)) };
        observation = 'The run is finished.';
        break;
      case null:
        // No tool call: a plain answer.
        break;
    }
    const callId = (extra = 0) => (perResponseIds ? `call_${extra}` : `call_${r.hex(24)}`);
    const action: ToolCallRecord | null = tool === null ? null : { id: callId(), name: tool, arguments: JSON.stringify(args) };
    const extra = action && r.chance(0.03) ? [{ id: callId(1), name: 'list_dir', arguments: JSON.stringify({ path: r.pick(DIRS) }) }] : [];
    const before = snapshot;
    if (changes.length) snapshot = r.hex(40);
    const grounding: Grounding = { before, after: snapshot, files: changes, patch };
    const usage = { promptTokens: Math.min(2_000 + number * 900, 30_000) + r.int(0, 1500), completionTokens: r.int(40, tool === 'write_file' ? 700 : 300) };
    promptTokens += usage.promptTokens;
    completionTokens += usage.completionTokens;
    const step: StepEvent = {
      type: 'step',
      time: time(r.int(2, 40)),
      step: number,
      assistant: { content: pools.sentences(r.int(140, 280)), toolCalls: action ? [action, ...extra] : [] },
      action,
      observation,
      isError,
      ...(extra.length
        ? { skippedToolCalls: extra.map((call) => ({ id: call.id, content: 'Not executed: only one action runs per step. Call it again in the next step if it is still needed.' })) }
        : {}),
      grounding,
      usage,
      modelMs: r.int(400, 6000),
      toolMs: tool === 'run_command' ? r.int(200, 20_000) : r.int(0, 30),
      groundingMs: r.int(20, 200),
      ...(branch ? { branch: branch.id, parentStep: branch.last } : {}),
    };
    events.push(step);
    if (branch) branch.last = number;
    changedByStep.set(number, changes);
    if (failedCommand) {
      events.push({
        type: 'label',
        time: time(),
        step: number,
        label: 'bad',
        axis: 'execution',
        source: 'rule:command_failed',
        reason: `the command failed (${/\[(exit code -?\d+)\]$/.exec(observation)![1]})`,
      });
    }
    if (r.chance(0.04)) {
      events.push({
        type: 'label',
        time: time(r.int(1, 5)),
        step: number,
        label: r.chance(0.8) ? 'good' : 'bad',
        axis: 'decision',
        source: 'human',
        ...(r.chance(0.5) ? { reason: pools.sentences(r.int(40, 120)) } : {}),
      });
    }
    if (r.chance(0.03)) reviewLabels.push({ type: 'label', time: '', step: number, label: r.pick(['good', 'good', 'bad', 'neutral'] as const), source: 'human' });

    if (rewind && number === rewind.after) {
      // The annotator pauses, rewinds to before `toStep`, labels the abandoned step and corrects.
      const parentStep = rewind.toStep - 1;
      const files: FileChange[] = [];
      for (let s = rewind.toStep; s <= rewind.after; s++)
        for (const change of changedByStep.get(s) ?? [])
          files.push({ ...change, status: change.status === 'added' ? 'deleted' : 'modified', additions: change.deletions, deletions: change.additions });
      const restored = (events.find((event) => event.type === 'step' && event.step === rewind.toStep) as StepEvent).grounding.before;
      events.push({ type: 'run_state', time: time(r.int(1, 30)), state: 'paused' });
      const id = `b-${r.hex(8)}`;
      events.push({ type: 'rewind', time: time(r.int(5, 60)), toStep: rewind.toStep, branch: id, parentStep, snapshot: restored, files });
      events.push({ type: 'label', time: time(r.int(5, 60)), step: rewind.toStep, label: 'bad', axis: 'decision', source: 'human', reason: pools.sentences(r.int(40, 120)) });
      events.push({ type: 'run_state', time: time(r.int(1, 30)), state: 'resumed' });
      queueHint(number + 1, 'correction', pools.sentences(r.int(60, 220)));
      branch = { id, last: parentStep };
      snapshot = restored;
    }
  }
  events.push({ type: 'run_ended', time: time(r.int(1, 10)), status: 'finished', steps: spec.steps, summary: pools.sentences(r.int(100, 300)) });
  for (const label of reviewLabels) events.push({ ...label, time: time(r.int(5, 60)) });

  const manifest: RunManifest = {
    id: spec.id,
    task,
    workspace,
    model,
    baseUrl: 'http://127.0.0.1:8000/v1',
    status: 'finished',
    steps: spec.steps,
    createdAt: started,
    updatedAt: new Date(clock).toISOString(),
    endedAt: new Date(clock).toISOString(),
    tokens: { promptTokens, completionTokens },
  };
  return { events, manifest, rewound: rewind !== undefined };
}

function runId(index: number): string {
  const date = new Date(Date.parse('2026-06-01T08:00:00Z') + index * 3_600_000);
  const pad = (value: number) => String(value).padStart(2, '0');
  const stamp = `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
  return `${stamp}-${prng(SEED ^ index).hex(8)}`;
}

interface GeneratedDataset {
  ids: string[];
  bytes: number;
  events: number;
  steps: number;
  rewound: number;
  seconds: number;
}

export function generateDataset(root: string, runs: number, steps: number): GeneratedDataset {
  const startedAt = performance.now();
  const pools = new TextPools(prng(SEED));
  mkdirSync(path.join(root, 'runs'), { recursive: true });
  writeFileSync(path.join(root, '.gitignore'), '*\n');
  const result: GeneratedDataset = { ids: [], bytes: 0, events: 0, steps: 0, rewound: 0, seconds: 0 };
  let checkedRewind = false;
  for (let index = 0; index < runs; index++) {
    const id = runId(index);
    const run = generateRun({ id, index, steps }, pools);
    const dir = path.join(root, 'runs', id);
    mkdirSync(dir);
    const text = run.events.map((event) => JSON.stringify(event)).join('\n') + '\n';
    writeFileSync(path.join(dir, 'run.json'), JSON.stringify(run.manifest, null, 2) + '\n');
    writeFileSync(path.join(dir, 'events.jsonl'), text);
    if (index === 0) {
      // Well-formed: every event of the first run passes the store's own check, and reads back whole.
      for (const event of run.events) validateEvent(JSON.parse(JSON.stringify(event)));
      const parsed = parseEventLines(text, 'events.jsonl');
      if (parsed.problems.length || parsed.events.length !== run.events.length) throw new Error(`the generated run ${id} does not read back: ${parsed.problems.map((p) => p.message).join('; ')}`);
    }
    if (run.rewound && !checkedRewind) {
      // The numbering is right when the rewind leaves exactly one abandoned branch and one pair.
      validateEvent(run.events.find((event) => event.type === 'rewind'));
      const tree = buildRunTree(run.events)!;
      const trajectories = trajectoriesOf(tree, { branches: 'all', policy: DEFAULT_MASK_POLICY });
      const pairs = pairsOf(tree, { format: 'pairs', out: '', branches: 'all', policy: DEFAULT_MASK_POLICY, minQuality: 0, hints: true, wholeTrajectories: false, allowEmpty: false });
      if (trajectories.length !== 2 || pairs.length !== 1) throw new Error(`the generated rewound run ${id} gives ${trajectories.length} trajectories and ${pairs.length} pairs, not 2 and 1`);
      checkedRewind = true;
    }
    result.ids.push(id);
    result.bytes += Buffer.byteLength(text);
    result.events += run.events.length;
    result.steps += steps;
    if (run.rewound) result.rewound++;
    if ((index + 1) % 100 === 0) process.stderr.write(`  generated ${index + 1}/${runs} runs\n`);
  }
  result.seconds = (performance.now() - startedAt) / 1000;
  return result;
}

// ---------------------------------------------------------------------------------------------
// One export, measured in its own process.

/** `read`: the baseline every format pays, reading each run and building its trajectories, with no writer. */
type JobFormat = ExportFormat | 'read';

interface Job {
  dataset: string;
  format: JobFormat;
  out: string;
  /** Export the first `runs` runs in id order. */
  runs: number;
}

interface Measurement {
  format: JobFormat;
  runs: number;
  seconds: number;
  records: number;
  trajectories: number;
  abandoned: number;
  skipped: number;
  warnings: number;
  bytes: number;
  samples: number;
  baseRss: number;
  baseHeap: number;
  /** Peak sampled minus the value just before the export (after gc). */
  peakRss: number;
  peakHeap: number;
  /** The process's resident-memory high-water mark (kernel figure), absolute. */
  maxRss: number;
  /** Heap still in use after the export and a gc, above the value before it. */
  retainedHeap: number;
  /** Live heap (after a gc) above the value before the export, when 10 %, 20 %, … 100 % of the runs were done (the run just done still held). */
  liveHeap: number[];
}

/** Reads every run and builds its trajectories as the export does, and writes nothing. */
async function readOnly(
  store: DatasetStore,
  runs: string[],
  onProgress: (progress: { runsDone: number; runsTotal: number }) => void,
): Promise<{ records: number; trajectories: number; abandonedTrajectories: number; skipped: unknown[]; warnings: unknown[] }> {
  let trajectories = 0;
  let abandoned = 0;
  for (const [index, runId] of [...runs].sort().entries()) {
    const { events } = await store.readEvents(runId);
    const tree = buildRunTree(events);
    if (!tree) continue;
    for (const trajectory of trajectoriesOf(tree, { branches: 'all', policy: DEFAULT_MASK_POLICY })) {
      trajectories++;
      if (trajectory.abandoned) abandoned++;
    }
    onProgress({ runsDone: index + 1, runsTotal: runs.length });
  }
  return { records: 0, trajectories, abandonedTrajectories: abandoned, skipped: [], warnings: [] };
}

export async function measureExport(job: Job): Promise<Measurement> {
  const store = new DatasetStore(job.dataset);
  const runs = (await store.runIds()).sort().slice(0, job.runs);
  gc?.();
  gc?.();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed;
  let samples = 0;
  const sample = () => {
    const usage = process.memoryUsage();
    samples++;
    if (usage.rss > peakRss) peakRss = usage.rss;
    if (usage.heapUsed > peakHeap) peakHeap = usage.heapUsed;
  };
  const liveHeap: number[] = [];
  const checkpoints = new Set(Array.from({ length: 10 }, (_, i) => Math.max(1, Math.round((runs.length * (i + 1)) / 10))));
  const onProgress = ({ runsDone }: { runsDone: number }) => {
    sample();
    if (checkpoints.has(runsDone) && gc) {
      checkpoints.delete(runsDone);
      gc();
      liveHeap.push(process.memoryUsage().heapUsed - base.heapUsed);
    }
  };
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  const startedAt = performance.now();
  let summary;
  try {
    summary = job.format === 'read' ? await readOnly(store, runs, onProgress) : await exportDataset(store, { format: job.format, out: job.out, branches: 'all', runs, onProgress });
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - startedAt) / 1000;
  sample();
  gc?.();
  gc?.();
  const after = process.memoryUsage();
  const bytes = job.format === 'read' ? 0 : FOLDER_FORMATS.includes(job.format) ? await folderBytes(job.out) : statSync(job.out).size;
  return {
    format: job.format,
    runs: runs.length,
    seconds,
    records: summary.records,
    trajectories: summary.trajectories,
    abandoned: summary.abandonedTrajectories,
    skipped: summary.skipped.length,
    warnings: summary.warnings.length,
    bytes,
    samples,
    baseRss: base.rss,
    baseHeap: base.heapUsed,
    peakRss: peakRss - base.rss,
    peakHeap: peakHeap - base.heapUsed,
    maxRss: process.resourceUsage().maxRSS * 1024,
    retainedHeap: after.heapUsed - base.heapUsed,
    liveHeap,
  };
}

/** The export process running now, stopped if the bench is interrupted. */
let running: ChildProcess | undefined;

/** Runs one export in a fresh `node --expose-gc` process and removes its output. */
function runChild(job: Job): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', __filename, '--child', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    running = child;
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      running = undefined;
      rmSync(job.out, { recursive: true, force: true });
      if (code !== 0) return reject(new Error(`the ${job.format} export of ${job.runs} runs failed (${signal ?? `exit ${code}`})`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Measurement);
      } catch (error) {
        reject(error);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Report.

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const size = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GB` : mb(bytes));
const int = (value: number) => value.toLocaleString('en-US');

function table(head: string[], rows: string[][]): string {
  const widths = head.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => '  ' + cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function machine(dir: string): string {
  const cpus = os.cpus();
  let filesystem: string;
  try {
    filesystem = execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trim().split('\n').pop()!.split(/\s+/)[1];
  } catch {
    filesystem = 'unknown file system';
  }
  return `${cpus.length}x ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GB RAM, ${filesystem} at ${dir}, ${os.type()} ${os.release()}, node ${process.version}`;
}

async function main(): Promise<void> {
  const runs = Number(arg('--runs') ?? process.env.APOLLO_BENCH_RUNS ?? 1000);
  const steps = Number(arg('--steps') ?? process.env.APOLLO_BENCH_STEPS ?? 300);
  if (!(runs >= 1 && steps >= 2)) throw new Error('--runs must be at least 1 and --steps at least 2');
  const parent = process.env.APOLLO_BENCH_DIR ?? os.tmpdir();
  const root = mkdtempSync(path.join(parent, 'apollo-bench-export-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    running?.kill('SIGKILL');
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    console.log(`export benchmark (${machine(parent)})`);
    console.log(
      `  load average at the start: ${os
        .loadavg()
        .map((load) => load.toFixed(2))
        .join(', ')}`,
    );
    const dataset = path.join(root, 'dataset');
    const generated = generateDataset(dataset, runs, steps);
    console.log(
      `  dataset: ${int(runs)} runs x ${steps} steps (${int(generated.steps)} steps, ${int(generated.events)} events, ${generated.rewound} runs rewound once), ` +
        `${size(generated.bytes)} of events.jsonl (${(generated.bytes / generated.steps / 1024).toFixed(2)} KiB per step), generated in ${generated.seconds.toFixed(1)} s`,
    );
    console.log('  every export: branches all, mask policy not-bad, hints on; one fresh process each; the dataset is in the page cache\n');

    const outDir = path.join(root, 'out');
    mkdirSync(outDir);
    const target = (format: JobFormat, count: number) => path.join(outDir, (FOLDER_FORMATS as readonly JobFormat[]).includes(format) ? `${format}-${count}` : `${format}-${count}.jsonl`);

    const byFormat: Measurement[] = [];
    const only = arg('--formats')?.split(',');
    for (const format of ['read', ...EXPORT_FORMATS].filter((format) => !only || only.includes(format)) as JobFormat[]) {
      const result = await runChild({ dataset, format, out: target(format, runs), runs });
      // The rows of trl and llamafactory repeat their context: gigabytes at this size, so each output goes once measured.
      rmSync(target(format, runs), { recursive: true, force: true });
      process.stderr.write(`  ${format}: ${result.seconds.toFixed(1)} s, peak heap +${mb(result.peakHeap)}, peak rss +${mb(result.peakRss)}\n`);
      byFormat.push(result);
    }
    console.log(`every format, ${int(runs)} runs:`);
    console.log(
      table(
        ['format', 'wall time', 'runs/s', 'records', 'trajectories (abandoned)', 'output', 'peak heap', 'peak RSS', 'max RSS', 'heap left after gc', 'skipped'],
        byFormat.map((m) => [
          m.format === 'read' ? 'read only' : m.format,
          `${m.seconds.toFixed(1)} s`,
          (m.runs / m.seconds).toFixed(1),
          m.format === 'read' ? '-' : int(m.records),
          `${int(m.trajectories)} (${int(m.abandoned)})`,
          m.format === 'read' ? '-' : size(m.bytes),
          `+${mb(m.peakHeap)}`,
          `+${mb(m.peakRss)}`,
          mb(m.maxRss),
          `${m.retainedHeap >= 0 ? '+' : ''}${mb(m.retainedHeap)}`,
          String(m.skipped),
        ]),
      ),
    );
    const base = byFormat.find((m) => m.format === 'openai') ?? byFormat[0];
    console.log('  read only: reading each run and building its trajectories, the part every format shares; no writer');
    console.log('  peak heap / peak RSS: highest sample above the value just before the export (after gc); max RSS: the process high-water mark');
    console.log(`  before each export: heap ${mb(base.baseHeap)}, RSS ${mb(base.baseRss)} (openai's process); ${SAMPLE_MS} ms sampling, ${int(base.samples)} samples in openai's export`);
    console.log('  live heap after gc when 10 %, 20 %, ... 100 % of the runs were done, MB above the start (it still holds the run just done):');
    for (const m of byFormat) console.log(`    ${(m.format === 'read' ? 'read only' : m.format).padEnd(9)} ${m.liveHeap.map((value) => (value / 1024 / 1024).toFixed(1)).join(', ')}`);
    console.log('');

    // Growth: the same exports on the first 10 %, 30 % and all of the runs.
    const sizes = [...new Set([Math.max(1, Math.round(runs * 0.1)), Math.max(1, Math.round(runs * 0.3)), runs])];
    const growth = new Map<ExportFormat, Measurement[]>();
    for (const format of ['openai', 'hf'] as ExportFormat[]) {
      const results: Measurement[] = [];
      for (const count of sizes) {
        const result = await runChild({ dataset, format, out: target(format, count), runs: count });
        rmSync(target(format, count), { recursive: true, force: true });
        process.stderr.write(`  ${format} x ${count}: ${result.seconds.toFixed(1)} s, peak heap +${mb(result.peakHeap)}, peak rss +${mb(result.peakRss)}\n`);
        results.push(result);
      }
      growth.set(format, results);
    }
    console.log(`memory as the dataset grows (fresh runs of each size, ${sizes.map(int).join(' / ')} runs):`);
    console.log(
      table(
        ['format', ...sizes.map((count) => `${int(count)} runs`)],
        [...growth].flatMap(([format, results]) => [
          [`${format} wall time`, ...results.map((m) => `${m.seconds.toFixed(1)} s`)],
          [`${format} output`, ...results.map((m) => size(m.bytes))],
          [`${format} peak heap`, ...results.map((m) => `+${mb(m.peakHeap)}`)],
          [`${format} peak RSS`, ...results.map((m) => `+${mb(m.peakRss)}`)],
          [`${format} max RSS`, ...results.map((m) => mb(m.maxRss))],
          [`${format} live heap after gc, end`, ...results.map((m) => `+${mb(m.liveHeap[m.liveHeap.length - 1] ?? 0)}`)],
          [`${format} heap left after gc`, ...results.map((m) => `${m.retainedHeap >= 0 ? '+' : ''}${mb(m.retainedHeap)}`)],
        ]),
      ),
    );
    console.log(
      `  load average at the end: ${os
        .loadavg()
        .map((load) => load.toFixed(2))
        .join(', ')}`,
    );
  } finally {
    cleanup();
  }
}

if (require.main !== module) {
  // Imported (to generate a dataset or measure one export by hand): nothing runs.
} else if (process.argv.includes('--child')) {
  measureExport(JSON.parse(arg('--child')!) as Job)
    .then((result) => process.stdout.write(JSON.stringify(result) + '\n'))
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
