// The trainer tier: records a dataset with real `apollo` runs against the scripted model server,
// exports it in every training format, and feeds the exports to the trainers' own Python code
// (datasets, transformers' chat templates, TRL's SFTTrainer) in a virtual environment kept in
// .venv-trainers/ (created when missing, reused while it satisfies test/trainers/requirements.txt).
// Needs `npm run build` and `npm run compile-tests` first (`npm test` does both).
// Without python3 it prints why it skipped and exits 0.
//
// Environment: TRAINERS_VENV puts the virtual environment elsewhere (CI keeps it in a cache);
// TRAINERS_TORCH_INDEX (default the PyTorch CPU index) is where torch comes from;
// TRAINERS_NODE_MODULES overrides the node_modules folder the tokenizer packages are read from.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VENV = process.env.TRAINERS_VENV ? path.resolve(process.env.TRAINERS_VENV) : path.join(ROOT, '.venv-trainers');
const REQUIREMENTS = path.join(ROOT, 'test', 'trainers', 'requirements.txt');
const STAMP = path.join(VENV, 'apollo-requirements.txt');
const CHECKS = ['check_datasets.py', 'check_templates.py', 'check_trl.py'];
const FORMATS = { openai: 'openai.jsonl', hf: 'hf', trl: 'trl', llamafactory: 'llamafactory', sharegpt: 'sharegpt.jsonl', pairs: 'pairs.jsonl' };
const TORCH_INDEX = process.env.TRAINERS_TORCH_INDEX || 'https://download.pytorch.org/whl/cpu';
/**
 * A failed connection costs pip five retries with back-off per package: where an index cannot be
 * reached (a machine with only a local index) that alone takes minutes, so one retry is enough.
 */
const PIP_FLAGS = ['--retries', process.env.TRAINERS_PIP_RETRIES || '1', '--timeout', '20'];
const IMPORTS = 'import datasets, pyarrow, transformers, trl, torch, jinja2, accelerate';

const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

function run(command, args, options = {}) {
  return spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
}

function must(command, args, options = {}) {
  const result = run(command, args, { stdio: 'inherit', ...options });
  if (result.status !== 0) throw new Error(`${path.basename(command)} ${args.join(' ')} exited ${result.status ?? result.signal}`);
}

const python = run('python3', ['--version']);
if (python.error || python.status !== 0) {
  console.log(`trainer tier skipped: python3 is not installed (${python.error?.code ?? `exit ${python.status}`}); install python3 and python3-venv to run it.`);
  process.exit(0);
}

const cli = path.join(ROOT, 'dist', 'cli.js');
const recorder = path.join(ROOT, 'out', 'test', 'trainers', 'recordDataset.js');
if (!existsSync(cli) || !existsSync(recorder)) {
  console.error('Build first: npm run build && npm run compile-tests');
  process.exit(1);
}

const venvPython = path.join(VENV, 'bin', 'python');

/** The venv is reused when it was set up from these very requirements and its packages import. */
function venvReady() {
  if (!existsSync(venvPython) || !existsSync(STAMP)) return false;
  if (readFileSync(STAMP, 'utf8') !== readFileSync(REQUIREMENTS, 'utf8')) return false;
  return run(venvPython, ['-c', IMPORTS]).status === 0;
}

function setUpVenv() {
  const started = Date.now();
  // Built afresh: a venv of other requirements or of a python3 since replaced is not patched up.
  // (pip's download cache makes the rebuild cheap.)
  if (existsSync(VENV) && readdirSync(VENV).length && !existsSync(path.join(VENV, 'pyvenv.cfg'))) {
    throw new Error(`${VENV} is not a virtual environment; it is left alone: point TRAINERS_VENV elsewhere.`);
  }
  rmSync(VENV, { recursive: true, force: true });
  const created = run('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  if (created.status !== 0) {
    rmSync(VENV, { recursive: true, force: true });
    throw new Error('python3 -m venv failed: install the python3-venv package (Debian/Ubuntu) and run again.');
  }
  const pip = [venvPython, '-m', 'pip'];
  // CPU torch first, from the CPU index in place of the default one (whose Linux torch brings
  // CUDA, gigabytes the tier has no use for); the requirements then find torch satisfied.
  must(pip[0], [...pip.slice(1), 'install', ...PIP_FLAGS, '--index-url', TORCH_INDEX, 'torch']);
  must(pip[0], [...pip.slice(1), 'install', ...PIP_FLAGS, '-r', REQUIREMENTS]);
  writeFileSync(STAMP, readFileSync(REQUIREMENTS, 'utf8'));
  console.log(`trainer tier: virtual environment ready in ${seconds(started)}`);
}

const tierStarted = Date.now();
if (venvReady()) console.log(`trainer tier: reusing ${VENV}`);
else {
  console.log(`trainer tier: setting up ${VENV} from ${path.relative(ROOT, REQUIREMENTS)}`);
  try {
    setUpVenv();
  } catch (error) {
    console.error(`trainer tier: ${error.message}`);
    process.exit(1);
  }
}

const temp = mkdtempSync(path.join(os.tmpdir(), 'apollo-trainers-'));
const dataset = path.join(temp, 'dataset');
const exports = path.join(temp, 'exports');
mkdirSync(exports);
let failed = false;
try {
  const recordStarted = Date.now();
  const recorded = run(process.execPath, [recorder, dataset], { cwd: ROOT });
  if (recorded.status !== 0) throw new Error(`recording the dataset failed:\n${recorded.stderr}`);
  writeFileSync(path.join(exports, 'runs.json'), recorded.stdout);
  console.log(`trainer tier: recorded ${Object.values(JSON.parse(recorded.stdout)).flat().length} runs in ${seconds(recordStarted)}`);

  const summary = {};
  for (const [format, out] of Object.entries(FORMATS)) {
    const result = run(process.execPath, [cli, 'export', '--dataset', dataset, '--format', format, '--out', path.join(exports, out)], { cwd: ROOT });
    const records = Number(/^exported (\d+) /.exec(result.stdout)?.[1] ?? NaN);
    summary[format] = { exitCode: result.status, records: Number.isNaN(records) ? null : records, stdout: result.stdout, stderr: result.stderr };
    console.log(`export ${format}: ${result.status === 0 ? `${records} record(s)` : `exit ${result.status}: ${result.stderr.trim().split('\n')[0]}`}`);
  }
  writeFileSync(path.join(exports, 'summary.json'), JSON.stringify(summary, null, 2));

  const env = {
    ...process.env,
    APOLLO_EXPORTS: exports,
    APOLLO_TOKENIZERS: process.env.TRAINERS_NODE_MODULES || path.join(ROOT, 'node_modules'),
    HF_HOME: path.join(temp, 'hf-home'),
    HF_HUB_OFFLINE: '1',
    HF_DATASETS_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    TOKENIZERS_PARALLELISM: 'false',
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  };
  for (const check of CHECKS) {
    const started = Date.now();
    console.log(`\n== ${check}`);
    const result = run(venvPython, [path.join(ROOT, 'test', 'trainers', check)], { cwd: path.join(ROOT, 'test', 'trainers'), env, stdio: 'inherit' });
    console.log(`== ${check}: ${result.status === 0 ? 'passed' : `FAILED (exit ${result.status ?? result.signal})`} in ${seconds(started)}`);
    if (result.status !== 0) failed = true;
  }
} catch (error) {
  console.error(`trainer tier: ${error.message}`);
  failed = true;
} finally {
  if (failed) console.log(`\ntrainer tier: the dataset and exports are kept in ${temp}`);
  else rmSync(temp, { recursive: true, force: true });
}
console.log(`trainer tier: ${failed ? 'FAILED' : 'passed'} in ${seconds(tierStarted)}`);
process.exit(failed ? 1 : 0);
