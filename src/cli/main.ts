/**
 * `apollo`: the headless CLI on the same engine as the extension.
 * Exit status: 0 run finished or hit its step limit, 1 run failed or stopped (or a command
 * failed), 2 usage error.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetEvent, HintKind, LabelAxis, LabelValue } from '../core/dataset/events';
import { HINT_KINDS, LABEL_AXES, LABEL_VALUES } from '../core/dataset/events';
import { newHintId } from '../core/dataset/ids';
import { DatasetError, DatasetStore, defaultDatasetPath } from '../core/dataset/store';
import { ConfigError, DEFAULT_MAX_STEPS, RunSession } from '../core/session/runSession';
import { collectGarbage, formatGarbageReport } from '../core/session/gc';
import { rewindRun } from '../core/session/rewind';
import { adoptRefusal, adoptRun, AdoptPreview, previewAdopt } from '../core/session/adopt';
import { datasetStats, formatStats } from '../core/session/stats';
import { EXPORT_FORMATS, ExportFormat, exportDataset, formatExportSummary } from '../core/export/exportDataset';
import { ExportError } from '../core/export/output';
import { formatValidationReport, validateDataset } from '../core/dataset/validate';
import { relabelRuns } from '../core/supervision/relabel';
import { formatMergeReport, mergeDatasets } from '../core/dataset/merge';
import { MASK_POLICIES, MaskPolicy } from '../core/supervision/labels';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Called with a stop function while a run goes on, so Ctrl+C can end it cleanly. */
  onInterrupt?: (stop: () => void) => () => void;
}

class UsageError extends Error {}

const USAGE = `apollo — run, steer and record coding agents

Usage:
  apollo run --workspace DIR --task TEXT [--model ID] [--base-url URL] [--dataset DIR] [--max-steps N] [--context-budget TOKENS]
             [--exclude PATTERN]... [--max-file-size-mb N] [--judge [--judge-model ID] [--judge-base-url URL]]
             [--sandbox auto|off] [--no-network] [--allow-command PATTERN]... [--show-secrets-to-model]
  apollo run --resume ID [--dataset DIR] [--workspace DIR] [--judge …]   continue an interrupted run from its last step
  apollo hint --run ID [--dataset DIR] [--kind knowledge|strategy|correction] [--now] TEXT
  apollo stats [--dataset DIR] [--json] [--policy not-bad|good-only|all]
  apollo export --format openai|hf|atif|sharegpt|pairs --out PATH [--dataset DIR] [--branches main|all]
                [--policy not-bad|good-only|all] [--min-quality 0..1] [--run ID]... [--hints user|omit]
  apollo validate [--dataset DIR]                              check every run; exit 1 if any error
  apollo relabel [--dataset DIR] [--run ID]...                 re-run the quality rules over finished runs
  apollo merge SRC... --into DIR                               bring the runs of other dataset folders into one (idempotent)
  apollo rewind --run ID --to-step N [--dataset DIR] [--force]  workspace back to before step N; resume goes on from there
  apollo adopt --run ID [--dataset DIR] [--force] [--dry-run]  apply a sampled run's changes to the workspace it was sampled from
               (--dry-run: only list them; --force: overwrite your own changes to the files the run changed)
  apollo gc [--dataset DIR]                                    reclaim the snapshot space of deleted runs
  apollo label --run ID --step N --label good|bad|neutral [--dataset DIR] [--axis decision|execution] [--reason TEXT]

The model endpoint also comes from OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL.
Commands run in a bubblewrap sandbox where it works (--sandbox off turns it off; --no-network cuts
the network inside it). Without one, commands the policy flags (sudo, writes outside the workspace,
git push, curl | sh, …) are refused unless an --allow-command pattern (a command prefix, /regex/ or
rule:<id>) allows them. Secrets (the API key, secret-looking variables' values, known token shapes)
never reach the dataset; the model does not see them either unless --show-secrets-to-model.
--judge scores every step (decision and execution) with an LLM judge in the background; it uses the
run's endpoint and model unless --judge-base-url / --judge-model (or APOLLO_JUDGE_BASE_URL,
APOLLO_JUDGE_MODEL, APOLLO_JUDGE_API_KEY) name another.
--dataset defaults to .apollo/dataset under the workspace (run) or the current folder (other commands).
Masks: --policy not-bad (default) trains on every step not labelled bad, good-only only on steps
labelled good, all on everything. A step's label is its latest human label, else the judge's, else
the rules'. --min-quality leaves out trajectories whose share of steps not labelled bad is lower.
Snapshots follow .gitignore and leave out dependency folders and caches (node_modules/, .venv/,
__pycache__/, target/, …) and files over 10 MB; each --exclude adds a gitignore-style pattern, and
--exclude '!target/' takes a default back.
`;

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** Parses a command's options strictly; undefined when --help printed the usage instead. */
function parseCommand<const O extends OptionSpec>(args: string[], options: O, io: CliIo, allowPositionals = false) {
  const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean' } } as O & { help: { type: 'boolean' } }, strict: true, allowPositionals });
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout(USAGE);
    return undefined;
  }
  return parsed;
}

const now = () => new Date().toISOString();

function describeStep(event: Extract<DatasetEvent, { type: 'step' }>): string {
  const tool = event.action?.name ?? '(no tool call)';
  let detail = '';
  if (event.action) {
    try {
      const args = JSON.parse(event.action.arguments) as Record<string, unknown>;
      detail = String(args.path ?? args.command ?? args.summary ?? '').replace(/\s+/g, ' ').slice(0, 80);
    } catch {
      detail = '(invalid arguments)';
    }
  }
  const added = event.grounding.files.reduce((sum, file) => sum + file.additions, 0);
  const removed = event.grounding.files.reduce((sum, file) => sum + file.deletions, 0);
  const diff = event.grounding.files.length ? `  ${event.grounding.files.length} file(s) +${added} -${removed}` : '';
  return `step ${event.step} ${tool} ${detail}${diff}${event.isError ? '  [error]' : ''}`.replace(/ +$/, '');
}

async function commandRun(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      workspace: { type: 'string' },
      task: { type: 'string' },
      model: { type: 'string' },
      'base-url': { type: 'string' },
      dataset: { type: 'string' },
      'max-steps': { type: 'string' },
      'context-budget': { type: 'string' },
      exclude: { type: 'string', multiple: true },
      'max-file-size-mb': { type: 'string' },
      resume: { type: 'string' },
      judge: { type: 'boolean' },
      'judge-model': { type: 'string' },
      'judge-base-url': { type: 'string' },
      sandbox: { type: 'string' },
      'no-network': { type: 'boolean' },
      'allow-command': { type: 'string', multiple: true },
      'show-secrets-to-model': { type: 'boolean' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  const maxSteps = values['max-steps'] === undefined ? undefined : Number(values['max-steps']);
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) throw new UsageError('--max-steps takes a whole number of at least 1.');
  const contextBudget = values['context-budget'] === undefined ? undefined : Number(values['context-budget']);
  if (contextBudget !== undefined && !Number.isInteger(contextBudget)) throw new UsageError('--context-budget takes a whole number of tokens.');
  const maxFileMb = values['max-file-size-mb'] === undefined ? undefined : Number(values['max-file-size-mb']);
  if (maxFileMb !== undefined && !(maxFileMb > 0)) throw new UsageError('--max-file-size-mb takes a size in megabytes greater than 0.');
  const grounding = { exclude: values.exclude, maxFileBytes: maxFileMb === undefined ? undefined : Math.round(maxFileMb * 1024 * 1024) };
  if (!values.judge && (values['judge-model'] !== undefined || values['judge-base-url'] !== undefined)) {
    throw new UsageError('--judge-model and --judge-base-url go with --judge.');
  }
  /** The judge's endpoint: its own flags and variables, else the run's (resolved once the run's own is known). */
  const judgeFor = (run: { baseUrl: string; model: string }) =>
    values.judge
      ? {
          baseUrl: values['judge-base-url'] ?? io.env.APOLLO_JUDGE_BASE_URL ?? run.baseUrl,
          model: values['judge-model'] ?? io.env.APOLLO_JUDGE_MODEL ?? run.model,
          apiKey: io.env.APOLLO_JUDGE_API_KEY ?? io.env.OPENAI_API_KEY ?? '',
        }
      : undefined;
  if (values.sandbox !== undefined && values.sandbox !== 'auto' && values.sandbox !== 'off') throw new UsageError('--sandbox takes auto or off.');
  const sandbox = { mode: (values.sandbox ?? 'auto') as 'auto' | 'off', network: !values['no-network'], allow: values['allow-command'] ?? [] };
  const log = (line: string) => io.stderr(`${line}\n`);
  let session: RunSession;
  if (values.resume !== undefined) {
    if (values.task !== undefined) throw new UsageError('--resume continues a run with its own task; leave out --task.');
    const datasetDir = values.dataset
      ? path.resolve(io.cwd, values.dataset)
      : defaultDatasetPath(path.resolve(io.cwd, values.workspace ?? '.'));
    const recorded = values.judge ? await new DatasetStore(datasetDir).readManifest(values.resume) : undefined;
    session = await RunSession.resume({
      datasetDir,
      runId: values.resume,
      apiKey: io.env.OPENAI_API_KEY ?? '',
      baseUrl: values['base-url'] ?? undefined,
      model: values.model ?? undefined,
      maxSteps,
      contextBudget,
      grounding,
      judge: recorded && judgeFor({ baseUrl: values['base-url'] ?? recorded.baseUrl, model: values.model ?? recorded.model }),
      sandbox,
      secretsToModel: values['show-secrets-to-model'] ?? false,
      log,
    });
  } else {
    if (!values.workspace) throw new UsageError('apollo run needs --workspace DIR.');
    if (values.task === undefined) throw new UsageError('apollo run needs --task TEXT.');
    const workspace = path.resolve(io.cwd, values.workspace);
    const endpoint = { model: values.model ?? io.env.OPENAI_MODEL ?? '', baseUrl: values['base-url'] ?? io.env.OPENAI_BASE_URL ?? '' };
    session = await RunSession.start({
      workspace,
      datasetDir: values.dataset ? path.resolve(io.cwd, values.dataset) : defaultDatasetPath(workspace),
      task: values.task,
      ...endpoint,
      apiKey: io.env.OPENAI_API_KEY ?? '',
      maxSteps: maxSteps ?? DEFAULT_MAX_STEPS,
      contextBudget,
      grounding,
      judge: judgeFor(endpoint),
      sandbox,
      secretsToModel: values['show-secrets-to-model'] ?? false,
      log,
    });
  }
  io.stdout(`${session.runId}\n`);
  const subscription = session.onEvent((event) => {
    if (event.type === 'step') io.stdout(`${describeStep(event)}\n`);
    else if (event.type === 'hint_delivered') io.stdout(`hint ${event.hintId} delivered at step ${event.step}\n`);
    else if (event.type === 'hint_queued') io.stdout(`hint ${event.hintId} queued (${event.kind}): ${event.text.replace(/\s+/g, ' ').slice(0, 80)}\n`);
    else if (event.type === 'summary') io.stdout(`context summarized before step ${event.step} (${event.tokensBefore} -> ${event.tokensAfter} tokens)\n`);
    else if (event.type === 'judge_usage' && event.error) io.stderr(`judge: ${event.error} (steps ${event.steps.join(', ')} stay unjudged; the run goes on)\n`);
    else if (event.type === 'model_retry') io.stderr(`model request failed (attempt ${event.attempt}): ${event.error}; retrying in ${Math.round(event.waitMs / 1000)} s\n`);
    else if (event.type === 'external_change') {
      io.stderr(`warning: the workspace changed outside the agent before step ${event.step}: ${event.grounding.files.map((file) => file.path).join(', ')}\n`);
    } else if (event.type === 'run_state' && event.state === 'paused' && event.reason) {
      io.stderr(`PAUSED: ${event.reason}\nSend a hint to continue: apollo hint --run ${session.runId} "…" (or Ctrl+C to stop).\n`);
    }
  });
  const release = io.onInterrupt?.(() => void session.stop());
  const ended = await session.done;
  release?.();
  subscription.dispose();
  const why = ended.error ? `: ${ended.error}` : ended.summary ? `: ${ended.summary}` : '';
  const line = `run ${session.runId} ${ended.status} after ${ended.steps} step(s)${why}\n`;
  if (ended.status === 'finished' || ended.status === 'max_steps') {
    io.stdout(line);
    return 0;
  }
  io.stderr(line);
  return 1;
}

function datasetFrom(value: string | undefined, io: CliIo): DatasetStore {
  return new DatasetStore(value ? path.resolve(io.cwd, value) : defaultDatasetPath(io.cwd));
}

async function commandHint(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, kind: { type: 'string' }, now: { type: 'boolean' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.run) throw new UsageError('apollo hint needs --run ID.');
  const text = positionals.join(' ');
  if (text.trim() === '') throw new UsageError('apollo hint needs the hint text: apollo hint --run ID "what the agent should know".');
  const kind = (values.kind ?? 'knowledge') as HintKind;
  if (!HINT_KINDS.includes(kind)) throw new UsageError(`--kind takes ${HINT_KINDS.join(', ')}.`);
  const store = datasetFrom(values.dataset, io);
  const manifest = await store.readManifest(values.run);
  if (manifest.status !== 'running' && manifest.status !== 'paused') {
    throw new DatasetError(`Run ${values.run} has ended (${manifest.status}); a hint can no longer reach it.`);
  }
  const hintId = newHintId();
  await store.queueHintFile(values.run, { hintId, text, kind, source: 'cli', time: now(), urgency: values.now ? 'now' : 'next' });
  io.stdout(`${hintId}\n`);
  return 0;
}

async function commandLabel(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      run: { type: 'string' },
      step: { type: 'string' },
      label: { type: 'string' },
      axis: { type: 'string' },
      reason: { type: 'string' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo label needs --run ID.');
  const step = Number(values.step);
  if (!Number.isInteger(step) || step < 1) throw new UsageError('apollo label needs --step N (a step number from 1).');
  const label = values.label as LabelValue;
  if (!LABEL_VALUES.includes(label)) throw new UsageError(`--label takes ${LABEL_VALUES.join(', ')}.`);
  const axis = values.axis as LabelAxis | undefined;
  if (axis !== undefined && !LABEL_AXES.includes(axis)) throw new UsageError(`--axis takes ${LABEL_AXES.join(', ')}.`);
  const store = datasetFrom(values.dataset, io);
  const { events } = await store.readEvents(values.run);
  const steps = events.filter((event) => event.type === 'step').length;
  if (step > steps) throw new DatasetError(`Run ${values.run} has no step ${step} (it has ${steps}).`);
  await store.appendEvent(values.run, {
    type: 'label',
    time: now(),
    step,
    label,
    source: 'human',
    ...(axis ? { axis } : {}),
    ...(values.reason ? { reason: values.reason } : {}),
  });
  io.stdout(`labelled step ${step} of run ${values.run} ${label}\n`);
  return 0;
}

function maskPolicy(value: string | undefined): MaskPolicy | undefined {
  if (value !== undefined && !MASK_POLICIES.includes(value as MaskPolicy)) throw new UsageError(`--policy takes ${MASK_POLICIES.join(', ')}.`);
  return value as MaskPolicy | undefined;
}

async function commandStats(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, json: { type: 'boolean' }, policy: { type: 'string' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  const store = datasetFrom(values.dataset, io);
  const stats = await datasetStats(store, maskPolicy(values.policy));
  io.stdout(values.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
  return 0;
}

async function commandRewind(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, 'to-step': { type: 'string' }, force: { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo rewind needs --run ID.');
  const toStep = Number(values['to-step']);
  if (!Number.isInteger(toStep) || toStep < 1) throw new UsageError('apollo rewind needs --to-step N, a step number of at least 1.');
  const store = datasetFrom(values.dataset, io);
  const { event, overwritten } = await rewindRun({ datasetDir: store.root, runId: values.run, toStep, force: values.force });
  if (overwritten.length) io.stderr(`warning: overwrote changes made since the last step (kept in the dataset): ${overwritten.join(', ')}\n`);
  const files = event.files.map((file) => `  ${file.status.padEnd(9)} ${file.path}`).join('\n');
  io.stdout(`rewound run ${values.run} to before step ${toStep}: ${event.files.length} file(s) restored${files ? `\n${files}` : ''}\n`);
  io.stdout(`new branch ${event.branch}; continue with: apollo run --resume ${values.run}\n`);
  return 0;
}

function describeAdopt(preview: AdoptPreview): string {
  const conflicts = new Set(preview.conflicts);
  const upToDate = new Set(preview.upToDate);
  const blocked = new Map(preview.blocked.map((entry) => [entry.path, entry.reason]));
  const lines = [
    `run ${preview.runId}${preview.taskId ? ` (task ${preview.taskId})` : ''}, ${preview.status}: ${preview.files.length} file(s) changed from snapshot ${preview.base.slice(0, 12)} to ${preview.final.slice(0, 12)}, into ${preview.workspace}`,
    ...preview.files.map((file) => {
      const note = conflicts.has(file.path) ? '  [changed in the workspace too]' : upToDate.has(file.path) ? '  [already so]' : blocked.has(file.path) ? `  [blocked: ${blocked.get(file.path)}]` : '';
      return `  ${file.status.padEnd(10)} ${file.path}${note}`;
    }),
  ];
  if (preview.conflicts.length) lines.push(`conflicts (changed in the workspace too): ${preview.conflicts.join(', ')}`);
  if (preview.adoptedAt) lines.push(`adopted before, at ${preview.adoptedAt}`);
  return lines.join('\n') + '\n';
}

async function commandAdopt(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string' }, force: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo adopt needs --run ID.');
  const store = datasetFrom(values.dataset, io);
  if (values['dry-run']) {
    const preview = await previewAdopt(store.root, values.run);
    io.stdout(describeAdopt(preview));
    io.stdout('dry run: nothing written\n');
    const refusal = adoptRefusal(preview, { overwrite: values.force });
    if (refusal) {
      io.stderr(`apollo: ${refusal.message.replace(/ Nothing was written\.?/, '')}\n`);
      return 1;
    }
    return 0;
  }
  const result = await adoptRun(store.root, values.run, { overwrite: values.force });
  io.stdout(describeAdopt(result.preview));
  if (result.overwritten.length) io.stderr(`warning: overwrote your changes to ${result.overwritten.join(', ')}\n`);
  io.stdout(
    result.event
      ? `adopted run ${values.run}: ${result.written.length} file(s) written or removed in ${result.preview.workspace}\n`
      : `run ${values.run} was adopted before and ${result.preview.workspace} already holds its changes; nothing written\n`,
  );
  return 0;
}

async function commandExport(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      branches: { type: 'string' },
      policy: { type: 'string' },
      'min-quality': { type: 'string' },
      run: { type: 'string', multiple: true },
      hints: { type: 'string' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  const format = values.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`apollo export needs --format ${EXPORT_FORMATS.join('|')}.`);
  if (!values.out) throw new UsageError('apollo export needs --out PATH (a file for openai, sharegpt and pairs; a new folder for hf and atif).');
  if (values.branches !== undefined && values.branches !== 'main' && values.branches !== 'all') throw new UsageError('--branches takes main or all.');
  if (values.hints !== undefined && values.hints !== 'user' && values.hints !== 'omit') throw new UsageError('--hints takes user or omit.');
  const minQuality = values['min-quality'] === undefined ? undefined : Number(values['min-quality']);
  if (minQuality !== undefined && !(minQuality >= 0 && minQuality <= 1)) throw new UsageError('--min-quality takes a share between 0 and 1, e.g. 0.8.');
  const store = datasetFrom(values.dataset, io);
  let lastReport = 0;
  const summary = await exportDataset(store, {
    format,
    out: path.resolve(io.cwd, values.out),
    branches: values.branches as 'main' | 'all' | undefined,
    policy: maskPolicy(values.policy),
    minQuality,
    runs: values.run,
    hints: values.hints !== 'omit',
    onProgress: ({ runsDone, runsTotal, records }) => {
      if (Date.now() - lastReport < 1000 && runsDone < runsTotal) return;
      lastReport = Date.now();
      io.stderr(`exported ${runsDone}/${runsTotal} run(s), ${records} record(s)\n`);
    },
  });
  io.stdout(formatExportSummary(summary));
  return summary.skipped.length ? 1 : 0;
}

async function commandValidate(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' } }, io);
  if (!parsed) return 0;
  const report = await validateDataset(datasetFrom(parsed.values.dataset, io));
  io.stdout(formatValidationReport(report));
  return report.errors ? 1 : 0;
}

async function commandRelabel(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, run: { type: 'string', multiple: true } }, io);
  if (!parsed) return 0;
  const results = await relabelRuns(datasetFrom(parsed.values.dataset, io), { runs: parsed.values.run });
  for (const result of results) {
    if (result.skipped) io.stdout(`${result.runId}: skipped, ${result.skipped}\n`);
    else io.stdout(`${result.runId}: ${result.flagged} new rule label(s), ${result.cleared} taken back\n`);
  }
  return 0;
}

async function commandMerge(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { into: { type: 'string' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (!values.into) throw new UsageError('apollo merge needs --into DIR, the dataset folder to merge into.');
  if (!positionals.length) throw new UsageError('apollo merge needs the dataset folders to merge: apollo merge A B --into C.');
  const into = path.resolve(io.cwd, values.into);
  const report = await mergeDatasets(positionals.map((source) => path.resolve(io.cwd, source)), into);
  io.stdout(formatMergeReport(report, into));
  return report.conflicts.length ? 1 : 0;
}

async function commandGc(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  io.stdout(formatGarbageReport(await collectGarbage(datasetFrom(values.dataset, io).root)));
  return 0;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await commandRun(rest, io);
      case 'hint':
        return await commandHint(rest, io);
      case 'label':
        return await commandLabel(rest, io);
      case 'stats':
        return await commandStats(rest, io);
      case 'gc':
        return await commandGc(rest, io);
      case 'rewind':
        return await commandRewind(rest, io);
      case 'adopt':
        return await commandAdopt(rest, io);
      case 'export':
        return await commandExport(rest, io);
      case 'validate':
        return await commandValidate(rest, io);
      case 'relabel':
        return await commandRelabel(rest, io);
      case 'merge':
        return await commandMerge(rest, io);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}".`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.stderr(`apollo: ${(error as Error).message}\nRun "apollo --help" for usage.\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof DatasetError || error instanceof ExportError) {
      io.stderr(`apollo: ${error.message}\n`);
      return 1;
    }
    io.stderr(`apollo: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

if (require.main === module) {
  const io: CliIo = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    onInterrupt: (stop) => {
      const handler = () => {
        process.stderr.write('Stopping the run…\n');
        stop();
      };
      process.on('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
  };
  void main(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
  });
}
