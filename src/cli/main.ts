/**
 * `apollo`: the headless CLI on the same engine as the extension.
 * Exit status: 0 run finished or hit its step limit or budget (sample: every run did), 1 a run
 * failed or stopped (or a command failed), 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetEvent, HintKind, LabelAxis, LabelValue, ReasoningInContext, RunEndedEvent, SamplingOptions, ToolCallRecord } from '../core/dataset/events';
import { HINT_KINDS, LABEL_AXES, LABEL_VALUES, REASONING_IN_CONTEXT } from '../core/dataset/events';
import { newHintId } from '../core/dataset/ids';
import { DatasetError, DatasetStore } from '../core/dataset/store';
import { cliApolloHome, legacyNotice, resolveDataset, workspaceDataset } from './datasets';
import { ConfigError, DEFAULT_MAX_STEPS, Disposable, RunSession, validateSampling } from '../core/session/runSession';
import { startSampling } from '../core/session/sample';
import { findTaskDirs, parseShard, shardOf } from '../core/session/harborTask';
import { startTaskSuite, uncleanRuns } from '../core/session/taskSuite';
import { collectGarbage, formatGarbageReport, formatWorkingCopyReport, removeEndedWorkingCopies } from '../core/session/gc';
import { rewindRun } from '../core/session/rewind';
import { adoptRefusal, adoptRun, AdoptPreview, previewAdopt } from '../core/session/adopt';
import { compareByHints, datasetStats, formatHintComparison, formatStats } from '../core/session/stats';
import { EXPORT_FORMATS, ExportFormat, exportDataset, formatExportSummary } from '../core/export/exportDataset';
import { ExportError } from '../core/export/output';
import { formatValidationReport, validateDataset } from '../core/dataset/validate';
import { relabelRuns } from '../core/supervision/relabel';
import { labelStep, recordedRun } from '../core/session/labelStep';
import { formatMergeReport, mergeDatasets } from '../core/dataset/merge';
import { MASK_POLICIES, MaskPolicy } from '../core/supervision/labels';
import { formatImportReport, importAtif } from '../core/session/importAtif';
import { checkTaskSolvable, describeReward, loadRunnableTask, taskPrompt, taskSandbox, taskSourceOf, taskWorkspace, verifyRun } from '../core/session/taskRuns';

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
             [--max-minutes M] [--max-tokens T] [--exclude PATTERN]... [--max-file-size-mb N]
             [--judge [--judge-model ID] [--judge-base-url URL]]
             [--sandbox auto|off] [--no-network] [--allow-command PATTERN]... [--show-secrets-to-model]
             [--temperature T] [--top-p P] [--seed S] [--max-output-tokens N] [--request-extra JSON|@FILE]
             [--keep-reasoning auto|always|never] [--verbose]
  apollo run --resume ID [--dataset DIR] [--workspace DIR] [--judge …] [--temperature T …]
                                                               continue an interrupted run from its last step
  apollo run --task-dir DIR [--workspace DIR] [--no-hints] [and the other options of apollo run]
                                                               a task in Harbor's layout (instruction.md, task.toml,
                                                               tests/test.sh); its verifier's reward is recorded
  apollo sample --task-dir DIR... --n K [--concurrency C] [--shard I/N] [--no-hints] [and the options below]
                                                               K runs of each task of a suite, each verified
  apollo verify --run ID [--dataset DIR]                       run a task run's verifier again on its workspace
  apollo verify --task-dir DIR --oracle                        check a task with its solution/solve.sh
  apollo import --format atif SRC... [--dataset DIR]           bring ATIF trajectories (e.g. from Harbor) in to label them
  apollo sample --workspace DIR --task TEXT --n N [--concurrency K] [--runs-dir DIR] [--dataset DIR]
             [--max-steps N] [--max-minutes M] [--max-tokens T] [--seed S [--same-seed]]
             [and the other options of apollo run]
                                                               N runs of one task, each in its own working copy;
                                                               prints each run's id as it starts
  apollo hint --run ID [--dataset DIR] [--kind knowledge|strategy|correction] [--now] TEXT
  apollo stats [--dataset DIR] [--json] [--policy not-bad|good-only|all] [--by hints [--success-threshold R]]
  apollo export --format openai|hf|trl|llamafactory|atif|sharegpt|pairs --out PATH [--dataset DIR] [--branches main|all]
                [--policy not-bad|good-only|all] [--min-quality 0..1] [--min-reward R] [--run ID]... [--hints user|omit]
                [--whole-trajectories] [--allow-empty]
                                                               one row per context the model saw (cut at each
                                                               compaction; --whole-trajectories: one per trajectory);
                                                               exits 1 when nothing comes out unless --allow-empty
  apollo validate [--dataset DIR]                              check every run; exit 1 if any error
  apollo relabel [--dataset DIR] [--run ID]...                 re-run the quality rules over finished runs
  apollo merge SRC... --into DIR                               bring the runs of other dataset folders into one (idempotent)
  apollo rewind --run ID --to-step N [--dataset DIR] [--force]  workspace back to before step N; resume goes on from there
  apollo adopt --run ID [--dataset DIR] [--force] [--dry-run]  apply a sampled run's changes to the workspace it was sampled from
               (--dry-run: only list them; --force: overwrite your own changes to the files the run changed)
  apollo gc [--dataset DIR] [--working-copies]                 reclaim the snapshot space of deleted runs
                                                               (--working-copies: also remove the working copies
                                                               of samplings whose runs have all ended)
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
Datasets live outside the workspace, where the agent's commands cannot reach them: --dataset defaults to
$APOLLO_HOME/datasets/<workspace>-<hash> (APOLLO_HOME defaults to ~/.apollo), one per workspace. run and
sample use the --workspace's; a command given --run or --resume ID finds the run in any of them; the others
use the dataset of the workspace they are run in (the current folder or one above it). Runs recorded by
earlier versions in <workspace>/.apollo/dataset stay there: apollo merge <workspace>/.apollo/dataset --into DIR.
Sampling (sent with every model request, recorded in the run): --temperature (0 to 2), --top-p (above 0,
at most 1), --seed (a whole number), --max-output-tokens (the reply's limit), --request-extra (a JSON
object of server-specific fields merged into each request, e.g. '{"chat_template_kwargs":
{"enable_thinking":false}}', or @file.json). With --resume they replace the recorded values one by
one. apollo sample gives its runs seeds S, S+1, … S+N-1 unless --same-seed. --keep-reasoning: whether
earlier turns' reasoning goes back to the model (auto: when the model is known to want it).
--verbose prints each step's reasoning and every further action of a step.
Budgets: a run stops after the step in flight once it has been going --max-minutes (paused time not
counted) or used --max-tokens (prompt plus completion); it ends with status budget. --max-steps
(default 50) ends it with status max_steps.
apollo sample snapshots the workspace once (uncommitted changes included; .gitignored files,
dependency folders and files over the size limit left out) and makes N working copies of it in
--runs-dir/<task id>/ (default $APOLLO_HOME/runs), each with its own .git when the workspace is a git
repository. The workspace itself is not touched. Runs go on --concurrency at a time (default all);
they share a task id in the dataset. Steps and errors go to stderr; hint one run with apollo hint.
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

type StepEvent = Extract<DatasetEvent, { type: 'step' }>;

/** A tool call in a few words: its name and its main argument. */
function describeAction(action: ToolCallRecord | null): string {
  const tool = action?.name ?? '(no tool call)';
  let detail = '';
  if (action) {
    try {
      const args = JSON.parse(action.arguments) as Record<string, unknown>;
      // Only a string names the action; a model can send an object where a path belongs.
      const main = [args.path, args.command, args.summary].find((value) => typeof value === 'string') ?? '';
      detail = main.replace(/\s+/g, ' ').slice(0, 80);
    } catch {
      detail = '(invalid arguments)';
    }
  }
  return `${tool} ${detail}`;
}

function describeDiff(grounding: StepEvent['grounding']): string {
  const added = grounding.files.reduce((sum, file) => sum + file.additions, 0);
  const removed = grounding.files.reduce((sum, file) => sum + file.deletions, 0);
  return grounding.files.length ? `  ${grounding.files.length} file(s) +${added} -${removed}` : '';
}

/** How much of a step's reasoning --verbose prints. */
export const REASONING_SHOWN = 2000;

/**
 * A step in one line; with `verbose`, followed by its reasoning (indented, cut at
 * REASONING_SHOWN characters) and its further actions, one line each.
 */
export function describeStep(event: StepEvent, verbose = false): string {
  const line = `step ${event.step} ${describeAction(event.action)}${describeDiff(event.grounding)}${event.isError ? '  [error]' : ''}`.replace(/ +$/, '');
  if (!verbose) return line;
  const lines = [line];
  const reasoning = event.assistant.reasoning?.trim();
  if (reasoning) {
    const shown = reasoning.length > REASONING_SHOWN ? `${reasoning.slice(0, REASONING_SHOWN)} […]` : reasoning;
    lines.push('    reasoning:', ...shown.split(/\r?\n/).map((text) => `      ${text}`.replace(/ +$/, '')));
  }
  if (event.assistant.truncated) lines.push('    (the reply was cut by the output limit)');
  for (const more of event.moreActions ?? []) {
    lines.push(`    + ${describeAction(more.action)}${describeDiff(more.grounding)}${more.isError ? '  [error]' : ''}`.replace(/ +$/, ''));
  }
  return lines.join('\n');
}

const WINDOW_SOURCES: Record<Extract<DatasetEvent, { type: 'context_window' }>['source'], string> = {
  server: 'from the server',
  setting: 'from the settings',
  default: 'a cautious default',
  refusal: 'the server refused a longer prompt',
};

/** The context window in one line: its size, where that came from, and the prompt budget worked to. */
export function describeContextWindow(event: Extract<DatasetEvent, { type: 'context_window' }>): string {
  const size = event.windowTokens !== undefined ? `${event.windowTokens} tokens` : 'not known';
  return `context window ${size} (${event.detail ?? WINDOW_SOURCES[event.source] ?? event.source}); prompt budget ${event.budgetTokens}`;
}

/** The options `apollo run` and `apollo sample` share: endpoint, limits and budgets, grounding, judge, sandbox. */
const SESSION_FLAGS = {
  model: { type: 'string' },
  'base-url': { type: 'string' },
  dataset: { type: 'string' },
  'max-steps': { type: 'string' },
  'max-minutes': { type: 'string' },
  'max-tokens': { type: 'string' },
  'context-budget': { type: 'string' },
  exclude: { type: 'string', multiple: true },
  'max-file-size-mb': { type: 'string' },
  judge: { type: 'boolean' },
  'judge-model': { type: 'string' },
  'judge-base-url': { type: 'string' },
  sandbox: { type: 'string' },
  'no-network': { type: 'boolean' },
  'allow-command': { type: 'string', multiple: true },
  'show-secrets-to-model': { type: 'boolean' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  'max-output-tokens': { type: 'string' },
  'request-extra': { type: 'string' },
  'keep-reasoning': { type: 'string' },
  verbose: { type: 'boolean' },
  'no-hints': { type: 'boolean' },
} as const;

interface SessionFlagValues {
  model?: string;
  'base-url'?: string;
  'max-steps'?: string;
  'max-minutes'?: string;
  'max-tokens'?: string;
  'context-budget'?: string;
  exclude?: string[];
  'max-file-size-mb'?: string;
  judge?: boolean;
  'judge-model'?: string;
  'judge-base-url'?: string;
  sandbox?: string;
  'no-network'?: boolean;
  'allow-command'?: string[];
  'show-secrets-to-model'?: boolean;
  temperature?: string;
  'top-p'?: string;
  seed?: string;
  'max-output-tokens'?: string;
  'request-extra'?: string;
  'keep-reasoning'?: string;
  verbose?: boolean;
  'no-hints'?: boolean;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const WHOLE = /^\d+$/;

/** A number flag, read strictly: "0.7" and "1e-1" yes, "", "0x1", "warm" no. */
function numberFlag(value: string | undefined, flag: string, what: string, whole = false): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!(whole ? WHOLE : DECIMAL).test(text)) throw new UsageError(`${flag} takes ${what} (got "${value}").`);
  const number = Number(text);
  if (!Number.isFinite(number) || (whole && !Number.isSafeInteger(number))) throw new UsageError(`${flag} takes ${what} (got "${value}").`);
  return number;
}

/** --request-extra: a JSON object given inline or as @path/to/file.json (relative to the current folder). */
function requestExtraFlag(value: string | undefined, cwd: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let text = value;
  let where = '--request-extra';
  if (value.startsWith('@')) {
    const file = path.resolve(cwd, value.slice(1));
    where = `--request-extra ${value} (${file})`;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${where}: cannot read the file: ${(error as Error).message}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not valid JSON: ${(error as Error).message}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${where} must be a JSON object, e.g. '{"chat_template_kwargs": {"enable_thinking": false}}'.`);
  }
  return parsed as Record<string, unknown>;
}

/** The sampling flags given (only those), checked with the engine's own rules. */
function samplingFlags(values: SessionFlagValues, cwd: string): SamplingOptions | undefined {
  const sampling: SamplingOptions = {};
  const temperature = numberFlag(values.temperature, '--temperature', 'a number from 0 to 2, e.g. 0.7');
  if (temperature !== undefined) sampling.temperature = temperature;
  const topP = numberFlag(values['top-p'], '--top-p', 'a number above 0 and at most 1, e.g. 0.95');
  if (topP !== undefined) sampling.topP = topP;
  const seed = numberFlag(values.seed, '--seed', 'a whole number, 0 or more', true);
  if (seed !== undefined) sampling.seed = seed;
  const maxOutputTokens = numberFlag(values['max-output-tokens'], '--max-output-tokens', 'a whole number of tokens, at least 1', true);
  if (maxOutputTokens !== undefined) sampling.maxOutputTokens = maxOutputTokens;
  const extra = requestExtraFlag(values['request-extra'], cwd);
  if (extra !== undefined) sampling.extra = extra;
  if (!Object.keys(sampling).length) return undefined;
  try {
    validateSampling(sampling);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  return sampling;
}

/** Reads the shared options; usage errors are thrown before anything runs. */
function sessionFlags(values: SessionFlagValues, io: CliIo) {
  const maxSteps = values['max-steps'] === undefined ? undefined : Number(values['max-steps']);
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) throw new UsageError('--max-steps takes a whole number of at least 1.');
  const maxMinutes = values['max-minutes'] === undefined ? undefined : Number(values['max-minutes']);
  if (maxMinutes !== undefined && !(Number.isFinite(maxMinutes) && maxMinutes > 0)) throw new UsageError('--max-minutes takes a number of minutes greater than 0.');
  const maxTokens = values['max-tokens'] === undefined ? undefined : Number(values['max-tokens']);
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1)) throw new UsageError('--max-tokens takes a whole number of at least 1.');
  const budget = maxMinutes !== undefined || maxTokens !== undefined ? { ...(maxMinutes !== undefined ? { maxMinutes } : {}), ...(maxTokens !== undefined ? { maxTokens } : {}) } : undefined;
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
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- needed: in the object literal the narrowed mode would widen to string
  const sandbox = { mode: (values.sandbox ?? 'auto') as 'auto' | 'off', network: !values['no-network'], allow: values['allow-command'] ?? [] };
  const keepReasoning = values['keep-reasoning'] as ReasoningInContext | undefined;
  if (keepReasoning !== undefined && !REASONING_IN_CONTEXT.includes(keepReasoning)) throw new UsageError(`--keep-reasoning takes ${REASONING_IN_CONTEXT.join(', ')}.`);
  const sampling = samplingFlags(values, io.cwd);
  /** The run's endpoint: flags, then the standard variables. */
  const endpoint = { model: values.model ?? io.env.OPENAI_MODEL ?? '', baseUrl: values['base-url'] ?? io.env.OPENAI_BASE_URL ?? '' };
  return {
    maxSteps,
    budget,
    contextBudget,
    grounding,
    judgeFor,
    sandbox,
    secretsToModel: values['show-secrets-to-model'] ?? false,
    sampling,
    reasoningInContext: keepReasoning,
    verbose: values.verbose ?? false,
    hintsDisabled: values['no-hints'] ?? false,
    endpoint,
    apiKey: io.env.OPENAI_API_KEY ?? '',
  };
}

/** The sampling a run recorded when it started; flags given to --resume replace its values one by one. */
async function recordedSampling(datasetDir: string, runId: string): Promise<SamplingOptions | undefined> {
  const { events } = await new DatasetStore(datasetDir).readEvents(runId);
  const started = events.find((event) => event.type === 'run_started');
  return started?.type === 'run_started' ? started.sampling : undefined;
}

/** Statuses a run ends with that count as success: it stopped where it was meant to. */
const CLEAN_ENDS = new Set(['finished', 'max_steps', 'budget']);

function endLine(runId: string, ended: RunEndedEvent): string {
  const why = ended.error ? `: ${ended.error}` : ended.summary ? `: ${ended.summary}` : '';
  return `run ${runId} ${ended.status} after ${ended.steps} step(s)${why}\n`;
}

async function commandRun(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { ...SESSION_FLAGS, workspace: { type: 'string' }, task: { type: 'string' }, resume: { type: 'string' }, 'task-dir': { type: 'string' }, 'runs-dir': { type: 'string' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  const flags = sessionFlags(values, io);
  if (values['task-dir'] !== undefined) {
    if (values.task !== undefined || values.resume !== undefined) throw new UsageError('--task-dir gives the task (its instruction.md): leave out --task and --resume.');
    return commandRunTask(values['task-dir'], values, flags, io);
  }
  if (values['runs-dir'] !== undefined) throw new UsageError('--runs-dir goes with --task-dir (apollo run) or apollo sample.');
  const { maxSteps, budget, contextBudget, grounding, judgeFor, sandbox, secretsToModel } = flags;
  const log = (line: string) => io.stderr(`${line}\n`);
  let session: RunSession;
  if (values.resume !== undefined) {
    if (values.task !== undefined) throw new UsageError('--resume continues a run with its own task; leave out --task.');
    const datasetDir = resolveDataset({ dataset: values.dataset, runId: values.resume, workspace: values.workspace, cwd: io.cwd, env: io.env });
    const recorded = values.judge ? await new DatasetStore(datasetDir).readManifest(values.resume) : undefined;
    session = await RunSession.resume({
      datasetDir,
      runId: values.resume,
      apiKey: flags.apiKey,
      baseUrl: values['base-url'] ?? undefined,
      model: values.model ?? undefined,
      maxSteps,
      budget,
      contextBudget,
      grounding,
      judge: recorded && judgeFor({ baseUrl: values['base-url'] ?? recorded.baseUrl, model: values.model ?? recorded.model }),
      sandbox,
      secretsToModel,
      sampling: flags.sampling && { ...(await recordedSampling(datasetDir, values.resume)), ...flags.sampling },
      reasoningInContext: flags.reasoningInContext,
      log,
    });
  } else {
    if (!values.workspace) throw new UsageError('apollo run needs --workspace DIR.');
    if (values.task === undefined) throw new UsageError('apollo run needs --task TEXT.');
    const workspace = path.resolve(io.cwd, values.workspace);
    session = await RunSession.start({
      workspace,
      datasetDir: datasetForNewRuns(values.dataset, workspace, io),
      task: values.task,
      ...flags.endpoint,
      apiKey: flags.apiKey,
      maxSteps: maxSteps ?? DEFAULT_MAX_STEPS,
      budget,
      contextBudget,
      grounding,
      judge: judgeFor(flags.endpoint),
      sandbox,
      secretsToModel,
      sampling: flags.sampling,
      reasoningInContext: flags.reasoningInContext,
      hintsDisabled: flags.hintsDisabled,
      log,
    });
  }
  return followRun(session, flags, io);
}

/** Prints a run's id, then its steps as they come, and returns the exit status its end gives. */
async function followRun(session: RunSession, flags: { verbose: boolean }, io: CliIo, afterEnd?: (ended: RunEndedEvent) => Promise<void>): Promise<number> {
  io.stdout(`${session.runId}\n`);
  const subscription = session.onEvent((event) => {
    if (event.type === 'step') io.stdout(`${describeStep(event, flags.verbose)}\n`);
    else if (event.type === 'context_window') io.stdout(`${describeContextWindow(event)}\n`);
    else if (event.type === 'hint_delivered') io.stdout(`hint ${event.hintId} delivered at step ${event.step}\n`);
    else if (event.type === 'hint_queued') io.stdout(`hint ${event.hintId} queued (${event.kind}): ${event.text.replace(/\s+/g, ' ').slice(0, 80)}\n`);
    else if (event.type === 'summary') io.stdout(`context summarized before step ${event.step} (${event.tokensBefore} -> ${event.tokensAfter} tokens)\n`);
    else describeTrouble(event, session.runId, io);
  });
  const release = io.onInterrupt?.(() => void session.stop());
  const ended = await session.done;
  release?.();
  subscription.dispose();
  const line = endLine(session.runId, ended);
  const clean = CLEAN_ENDS.has(ended.status);
  if (clean) io.stdout(line);
  else io.stderr(line);
  await afterEnd?.(ended);
  return clean ? 0 : 1;
}

type SessionFlags = ReturnType<typeof sessionFlags>;

/** Where task runs record by default: one dataset (under APOLLO_HOME) for the suite the task folders belong to. */
function suiteDatasetDir(values: { dataset?: string }, taskDirs: string[], io: CliIo): string {
  if (values.dataset) return path.resolve(io.cwd, values.dataset);
  const parents = [...new Set(taskDirs.map((dir) => path.dirname(path.resolve(io.cwd, dir))))];
  return workspaceDataset(parents.length === 1 ? parents[0] : io.cwd, io.env);
}

function runsDirFrom(value: string | undefined, io: CliIo): string {
  return value ? path.resolve(io.cwd, value) : path.join(cliApolloHome(io.env), 'runs');
}

/** `apollo run --task-dir DIR`: one run of a task in Harbor's layout, then its verifier. */
async function commandRunTask(taskDir: string, values: { workspace?: string; dataset?: string; 'runs-dir'?: string }, flags: SessionFlags, io: CliIo): Promise<number> {
  const { task, sandbox: sandboxInfo } = await loadRunnableTask(path.resolve(io.cwd, taskDir));
  const { workspace, fresh, files } = await taskWorkspace(task, runsDirFrom(values['runs-dir'], io), values.workspace && path.resolve(io.cwd, values.workspace));
  if (fresh) io.stderr(`task ${task.name}: a fresh working copy with the environment's ${files} file(s) in ${workspace}\n`);
  const session = await RunSession.start({
    workspace,
    datasetDir: suiteDatasetDir(values, [taskDir], io),
    task: taskPrompt(task),
    taskSource: taskSourceOf(task),
    ...flags.endpoint,
    apiKey: flags.apiKey,
    maxSteps: flags.maxSteps ?? DEFAULT_MAX_STEPS,
    budget: flags.budget ?? (task.agent.timeoutSec ? { maxMinutes: task.agent.timeoutSec / 60 } : undefined),
    contextBudget: flags.contextBudget,
    grounding: flags.grounding,
    judge: flags.judgeFor(flags.endpoint),
    sandbox: taskSandbox(task, flags.sandbox),
    secretsToModel: flags.secretsToModel,
    sampling: flags.sampling,
    reasoningInContext: flags.reasoningInContext,
    hintsDisabled: flags.hintsDisabled,
    log: (line) => io.stderr(`${line}\n`),
  }).catch(async (error: Error) => {
    // Nothing was recorded: the fresh working copy goes too.
    if (fresh) await rm(workspace, { recursive: true, force: true });
    throw error;
  });
  return followRun(session, flags, io, async (ended) => {
    if (ended.status === 'stopped') {
      io.stderr(`not verified: the run was stopped (verify it later with apollo verify --run ${session.runId})\n`);
      return;
    }
    io.stderr(`verifying ${task.name} (tests/test.sh, timeout ${task.verifier.timeoutSec} s)…\n`);
    const reward = await verifyRun({ datasetDir: session.store.root, runId: session.runId, sandbox: sandboxInfo });
    io.stdout(`${describeReward(reward)}\n`);
  });
}

/** `apollo import --format atif SRC… [--dataset DIR]`: ATIF trajectories (files or folders) become runs. */
async function commandImport(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, format: { type: 'string' } }, io, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (values.format !== 'atif') throw new UsageError('apollo import needs --format atif (the format Harbor writes its trajectories in).');
  if (!positionals.length) throw new UsageError('apollo import needs the ATIF files or folders to bring in.');
  const report = await importAtif(datasetFrom(values.dataset, io), positionals.map((source) => path.resolve(io.cwd, source)));
  io.stdout(formatImportReport(report));
  return report.failed.length ? 1 : 0;
}

/** `apollo verify --run ID` (again, on the run's workspace) or `apollo verify --task-dir DIR --oracle`. */
async function commandVerify(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { run: { type: 'string' }, dataset: { type: 'string' }, 'task-dir': { type: 'string' }, oracle: { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  let reward;
  if (values.oracle) {
    if (!values['task-dir'] || values.run) throw new UsageError('apollo verify --oracle takes --task-dir DIR (the solution runs on a fresh copy of the task), not --run.');
    reward = await checkTaskSolvable({ taskDir: path.resolve(io.cwd, values['task-dir']) });
  } else {
    if (!values.run) throw new UsageError('apollo verify needs --run ID (or --task-dir DIR --oracle to check a task with its solution).');
    if (values['task-dir']) throw new UsageError('apollo verify --run uses the task the run was given; leave out --task-dir.');
    reward = await verifyRun({ datasetDir: datasetFrom(values.dataset, io).root, runId: values.run });
  }
  io.stdout(`${describeReward(reward)}\n`);
  if (reward.error) io.stderr(reward.output ? `${reward.output.trimEnd()}\n` : '');
  return reward.error ? 1 : 0;
}

/** What goes wrong during a run, said on stderr. */
export function describeTrouble(event: DatasetEvent, runId: string, io: CliIo, prefix = ''): void {
  if (event.type === 'judge_usage' && event.error) io.stderr(`${prefix}judge: ${event.error} (steps ${event.steps.join(', ')} stay unjudged; the run goes on)\n`);
  else if (event.type === 'model_retry') io.stderr(`${prefix}model request failed (attempt ${event.attempt}): ${event.error}; retrying in ${Math.round(event.waitMs / 1000)} s\n`);
  else if (event.type === 'external_change') {
    const when = event.phase === 'during_request' ? `while the model answered step ${event.step}` : `before step ${event.step}`;
    io.stderr(`${prefix}warning: the workspace changed outside the agent ${when}: ${event.grounding.files.map((file) => file.path).join(', ')} (recorded apart, not in the step's diff)\n`);
  } else if (event.type === 'hint_undelivered') {
    io.stderr(`${prefix}hint ${event.hintId} not delivered: ${event.reason}\n`);
  } else if (event.type === 'notice') {
    io.stderr(`${prefix}note: ${event.step !== undefined ? `step ${event.step}: ` : ''}${event.message}\n`);
  } else if (event.type === 'run_state' && event.state === 'paused' && event.reason) {
    io.stderr(`${prefix}PAUSED: ${event.reason}\nSend a hint to continue: apollo hint --run ${runId} "…" (or Ctrl+C to stop).\n`);
  }
}

async function commandSample(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      ...SESSION_FLAGS,
      workspace: { type: 'string' },
      task: { type: 'string' },
      n: { type: 'string' },
      concurrency: { type: 'string' },
      'runs-dir': { type: 'string' },
      'same-seed': { type: 'boolean' },
      'task-dir': { type: 'string', multiple: true },
      shard: { type: 'string' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  if (values['task-dir']?.length) {
    if (values.task !== undefined) throw new UsageError('--task-dir gives the tasks (their instruction.md): leave out --task.');
    return commandSampleTasks(values['task-dir'], values, io);
  }
  if (values.shard !== undefined) throw new UsageError('--shard goes with --task-dir (it deals a suite\'s tasks out to machines).');
  if (!values.workspace) throw new UsageError('apollo sample needs --workspace DIR.');
  if (values.task === undefined) throw new UsageError('apollo sample needs --task TEXT.');
  const n = Number(values.n);
  if (values.n === undefined || !Number.isInteger(n) || n < 1) throw new UsageError('apollo sample needs --n N, a whole number of runs of at least 1.');
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw new UsageError('--concurrency takes a whole number of at least 1.');
  const flags = sessionFlags(values, io);
  if (values['same-seed'] && flags.sampling?.seed === undefined) throw new UsageError('--same-seed goes with --seed S.');
  const workspace = path.resolve(io.cwd, values.workspace);
  const runsDir = values['runs-dir'] ? path.resolve(io.cwd, values['runs-dir']) : path.join(cliApolloHome(io.env), 'runs');
  const sampling = await startSampling({
    workspace,
    datasetDir: datasetForNewRuns(values.dataset, workspace, io),
    task: values.task,
    ...flags.endpoint,
    apiKey: flags.apiKey,
    maxSteps: flags.maxSteps ?? DEFAULT_MAX_STEPS,
    budget: flags.budget,
    contextBudget: flags.contextBudget,
    grounding: flags.grounding,
    judge: flags.judgeFor(flags.endpoint),
    sandbox: flags.sandbox,
    secretsToModel: flags.secretsToModel,
    sampling: flags.sampling,
    reasoningInContext: flags.reasoningInContext,
    sameSeed: values['same-seed'],
    n,
    concurrency,
    runsDir,
    log: (line) => io.stderr(`${line}\n`),
  });
  io.stderr(`task ${sampling.taskId}: ${n} run(s) of a snapshot of ${sampling.workspace} (${sampling.baseSnapshot.slice(0, 12)}), working copies in ${sampling.copiesDir}\n`);
  const subscriptions: Disposable[] = [];
  sampling.onRunStarted((session) => {
    io.stdout(`${session.runId}\n`);
    subscriptions.push(
      session.onEvent((event) => {
        if (event.type === 'step') io.stderr(`${session.runId} ${describeStep(event, flags.verbose)}\n`);
        else if (event.type === 'context_window') io.stderr(`${session.runId} ${describeContextWindow(event)}\n`);
        else describeTrouble(event, session.runId, io, `${session.runId} `);
      }),
    );
  });
  sampling.onRunChanged((run) => {
    if (run.state === 'ended' && run.ended && run.runId) io.stderr(endLine(run.runId, run.ended));
    else if (run.state === 'failed' && !run.cancelled) io.stderr(`${run.error}\n`);
  });
  const release = io.onInterrupt?.(() => void sampling.stop());
  const results = await sampling.done;
  release?.();
  for (const subscription of subscriptions) subscription.dispose();
  const clean = results.filter((result) => result.ended && CLEAN_ENDS.has(result.ended.status)).length;
  const cancelled = results.filter((result) => result.cancelled).length;
  io.stderr(`${clean} of ${results.length} run(s) ended cleanly${cancelled ? `, ${cancelled} not started` : ''}; working copies in ${sampling.copiesDir}\n`);
  return clean === results.length ? 0 : 1;
}

/**
 * `apollo sample --task-dir DIR… --n K`: K runs of each task of a suite (DIR is a task, or a folder
 * of tasks), each in its own working copy of the task's environment, verified as it ends.
 */
async function commandSampleTasks(
  dirs: string[],
  values: SessionFlagValues & { workspace?: string; dataset?: string; n?: string; concurrency?: string; 'runs-dir'?: string; 'same-seed'?: boolean; shard?: string },
  io: CliIo,
): Promise<number> {
  const n = Number(values.n);
  if (values.n === undefined || !Number.isInteger(n) || n < 1) throw new UsageError('apollo sample needs --n N, a whole number of runs of each task, at least 1.');
  const concurrency = values.concurrency === undefined ? n : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency takes a whole number of at least 1.');
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  const flags = sessionFlags(values, io);
  const taskDirs = shardOf(dirs.flatMap((dir) => findTaskDirs(path.resolve(io.cwd, dir))), shard);
  if (!taskDirs.length) throw new UsageError(`shard ${values.shard} holds no task: there are fewer tasks than shards.`);
  const datasetDir = suiteDatasetDir(values, dirs, io);
  io.stderr(`${taskDirs.length} task(s)${shard ? ` (shard ${shard.index}/${shard.count})` : ''}, ${n} run(s) each, ${concurrency} at a time; dataset ${datasetDir}\n`);
  const stops: (() => void)[] = [];
  const release = io.onInterrupt?.(() => stops.forEach((stop) => stop()));
  const suite = await startTaskSuite({
    taskDirs,
    n,
    limit: concurrency,
    datasetDir,
    runsDir: runsDirFrom(values['runs-dir'], io),
    workspace: values.workspace && path.resolve(io.cwd, values.workspace),
    run: {
      ...flags.endpoint,
      apiKey: flags.apiKey,
      maxSteps: flags.maxSteps ?? DEFAULT_MAX_STEPS,
      budget: flags.budget,
      contextBudget: flags.contextBudget,
      grounding: flags.grounding,
      judge: flags.judgeFor(flags.endpoint),
      sandbox: flags.sandbox,
      secretsToModel: flags.secretsToModel,
      sampling: flags.sampling,
      reasoningInContext: flags.reasoningInContext,
      hintsDisabled: flags.hintsDisabled,
      sameSeed: values['same-seed'],
    },
    events: {
      refused: (_dir, reason) => io.stderr(`refused: ${reason}\n`),
      runStarted: (_run, session) => io.stdout(`${session.runId}\n`),
      runFailed: (run, error, cancelled) => (cancelled ? undefined : io.stderr(`${run.task.name}: ${error}\n`)),
      runEnded: (run, ended) => io.stderr(`${run.task.name} ${endLine(run.runId ?? '', ended)}`),
      rewarded: (run, reward) => io.stderr(`${run.runId} ${describeReward(reward)}\n`),
      verifyFailed: (run, error) => io.stderr(`${run.runId}: the verifier could not run: ${error}\n`),
    },
    log: (line) => io.stderr(`${line}\n`),
  });
  stops.push(() => void suite.stop());
  const result = await suite.done;
  release?.();
  const refused = result.refused.length;
  io.stderr(`done: ${taskDirs.length - refused} task(s) sampled${refused ? `, ${refused} refused` : ''}; compare with: apollo stats --dataset ${datasetDir} --by hints\n`);
  return refused || uncleanRuns(result).length ? 1 : 0;
}

/** --dataset, else the dataset holding the run (any of APOLLO_HOME's), else the current workspace's. */
function datasetFrom(value: string | undefined, io: CliIo, runId?: string): DatasetStore {
  return new DatasetStore(resolveDataset({ dataset: value, runId, cwd: io.cwd, env: io.env, note: io.stderr }));
}

/** --dataset, else the workspace's own dataset under APOLLO_HOME; says so when older runs sit in the workspace. */
function datasetForNewRuns(value: string | undefined, workspace: string, io: CliIo): string {
  if (value) return path.resolve(io.cwd, value);
  const dataset = workspaceDataset(workspace, io.env);
  const notice = legacyNotice(workspace, dataset);
  if (notice) io.stderr(notice);
  return dataset;
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
  const store = datasetFrom(values.dataset, io, values.run);
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
  await labelStep(recordedRun(datasetFrom(values.dataset, io, values.run), values.run), { step, label, ...(axis ? { axis } : {}), ...(values.reason ? { reason: values.reason } : {}) });
  io.stdout(`labelled step ${step} of run ${values.run} ${label}\n`);
  return 0;
}

function maskPolicy(value: string | undefined): MaskPolicy | undefined {
  if (value !== undefined && !MASK_POLICIES.includes(value as MaskPolicy)) throw new UsageError(`--policy takes ${MASK_POLICIES.join(', ')}.`);
  return value as MaskPolicy | undefined;
}

async function commandStats(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(args, { dataset: { type: 'string' }, json: { type: 'boolean' }, policy: { type: 'string' }, by: { type: 'string' }, 'success-threshold': { type: 'string' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  if (values.by !== undefined && values.by !== 'hints') throw new UsageError('--by takes hints (runs that received hints against runs that did not).');
  const threshold = numberFlag(values['success-threshold'], '--success-threshold', 'a reward, e.g. 1 or 0.5');
  if (threshold !== undefined && values.by !== 'hints') throw new UsageError('--success-threshold goes with --by hints.');
  const store = datasetFrom(values.dataset, io);
  const stats = await datasetStats(store, maskPolicy(values.policy));
  if (values.by === 'hints') {
    const comparison = compareByHints(stats.perRun, threshold);
    io.stdout(values.json ? `${JSON.stringify(comparison, null, 2)}\n` : formatHintComparison(comparison));
    return 0;
  }
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
  const store = datasetFrom(values.dataset, io, values.run);
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
  const store = datasetFrom(values.dataset, io, values.run);
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
      'min-reward': { type: 'string' },
      run: { type: 'string', multiple: true },
      hints: { type: 'string' },
      'whole-trajectories': { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  const format = values.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`apollo export needs --format ${EXPORT_FORMATS.join('|')}.`);
  if (!values.out) throw new UsageError('apollo export needs --out PATH (a file for openai, sharegpt and pairs; a new folder for hf, trl, llamafactory and atif).');
  if (values.branches !== undefined && values.branches !== 'main' && values.branches !== 'all') throw new UsageError('--branches takes main or all.');
  if (values.hints !== undefined && values.hints !== 'user' && values.hints !== 'omit') throw new UsageError('--hints takes user or omit.');
  const minQuality = values['min-quality'] === undefined ? undefined : Number(values['min-quality']);
  if (minQuality !== undefined && !(minQuality >= 0 && minQuality <= 1)) throw new UsageError('--min-quality takes a share between 0 and 1, e.g. 0.8.');
  const minReward = numberFlag(values['min-reward'], '--min-reward', 'a number, e.g. 1 for solved tasks');
  const store = datasetFrom(values.dataset, io);
  let lastReport = 0;
  const summary = await exportDataset(store, {
    format,
    out: path.resolve(io.cwd, values.out),
    branches: values.branches as 'main' | 'all' | undefined,
    policy: maskPolicy(values.policy),
    minQuality,
    minReward,
    runs: values.run,
    hints: values.hints !== 'omit',
    wholeTrajectories: values['whole-trajectories'] ?? false,
    allowEmpty: values['allow-empty'] ?? false,
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
  const parsed = parseCommand(args, { dataset: { type: 'string' }, 'working-copies': { type: 'boolean' } }, io);
  if (!parsed) return 0;
  const { values } = parsed;
  const root = datasetFrom(values.dataset, io).root;
  if (values['working-copies']) io.stdout(formatWorkingCopyReport(await removeEndedWorkingCopies(root)));
  io.stdout(formatGarbageReport(await collectGarbage(root)));
  return 0;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await commandRun(rest, io);
      case 'sample':
        return await commandSample(rest, io);
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
      case 'verify':
        return await commandVerify(rest, io);
      case 'import':
        return await commandImport(rest, io);
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
