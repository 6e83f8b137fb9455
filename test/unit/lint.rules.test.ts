/**
 * The lint rules that guard the house rules must keep firing: each test here writes a few small
 * files that break one rule (and files that keep it), lints them with the project's own
 * configuration, and expects exactly that rule's error. A rule that stops working (a renamed
 * option, a plugin that changed its defaults, a path pattern that no longer matches) fails here
 * instead of passing silently in `npm run lint`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ESLint } from 'eslint';
import { tempDir } from '../fixtures/workspace';

const repo = path.resolve(__dirname, '../../..');

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((cleanup) => cleanup()));

/** Writes `files` (path relative to the folder → content) into a fresh folder laid out like the checkout. */
function fixtureTree(files: Record<string, string>): string {
  const { dir: root, cleanup } = tempDir('apollo-lint-');
  cleanups.push(cleanup);
  for (const [relative, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    writeFileSync(path.join(root, relative), content);
  }
  return root;
}

// ---- ESLint: the code rules, type-aware, on a tiny program of fixture files ----

/** Lints fixture files with eslint.config.mjs, their types from a tsconfig of their own (fast: no project load). */
async function eslintFixture(files: Record<string, string>): Promise<{ file: string; rule: string | null; message: string }[]> {
  const root = fixtureTree({
    'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', lib: ['ES2022'], types: [], noEmit: true }, include: ['src/**/*.ts', 'webview/**/*.ts'] }),
    ...files,
  });
  const eslint = new ESLint({
    cwd: root,
    overrideConfigFile: path.join(repo, 'eslint.config.mjs'),
    overrideConfig: { languageOptions: { parserOptions: { project: ['./tsconfig.json'], tsconfigRootDir: root } } },
  });
  const results = await eslint.lintFiles(Object.keys(files).filter((file) => file.endsWith('.ts')));
  return results.flatMap((result) => result.messages.map((m) => ({ file: path.relative(root, result.filePath), rule: m.ruleId, message: m.message })));
}

function rulesOf(messages: { file: string; rule: string | null }[], file: string): (string | null)[] {
  return messages.filter((m) => m.file === file).map((m) => m.rule);
}

test('eslint: a promise neither awaited nor handled is an error (no-floating-promises)', async () => {
  const messages = await eslintFixture({
    'src/core/floating.ts': 'async function save(): Promise<void> {}\nexport function run(): void {\n  save();\n}\n',
    'src/core/handled.ts': 'async function save(): Promise<void> {}\nexport async function run(): Promise<void> {\n  await save();\n  void save();\n  save().catch(() => undefined);\n}\n',
  });
  assert.deepEqual(rulesOf(messages, 'src/core/floating.ts'), ['@typescript-eslint/no-floating-promises'], JSON.stringify(messages));
  assert.deepEqual(rulesOf(messages, 'src/core/handled.ts'), [], JSON.stringify(messages));
});

test('eslint: an async callback where a void one is expected is an error (no-misused-promises)', async () => {
  const messages = await eslintFixture({
    'src/core/misused.ts':
      "import { EventEmitter } from 'node:events';\nexport function listen(emitter: { on(name: string, listener: () => void): void }): void {\n  emitter.on('end', async () => {\n    await Promise.resolve();\n  });\n}\nexport { EventEmitter };\n",
  });
  assert.ok(rulesOf(messages, 'src/core/misused.ts').includes('@typescript-eslint/no-misused-promises'), JSON.stringify(messages));
});

test('eslint: a type imported as a value is an error (consistent-type-imports)', async () => {
  const messages = await eslintFixture({
    'src/core/shapes.ts': 'export interface Shape {\n  sides: number;\n}\n',
    'src/core/user.ts': "import { Shape } from './shapes';\nexport const square: Shape = { sides: 4 };\n",
    'src/core/typed.ts': "import type { Shape } from './shapes';\nexport const triangle: Shape = { sides: 3 };\n",
  });
  assert.deepEqual(rulesOf(messages, 'src/core/user.ts'), ['@typescript-eslint/consistent-type-imports'], JSON.stringify(messages));
  assert.deepEqual(rulesOf(messages, 'src/core/typed.ts'), [], JSON.stringify(messages));
});

test('eslint: a switch over a union that forgets a member is an error (switch-exhaustiveness-check)', async () => {
  const messages = await eslintFixture({
    'src/core/kinds.ts':
      "export type Kind = 'a' | 'b' | 'c';\nexport function name(kind: Kind): string {\n  switch (kind) {\n    case 'a':\n      return 'A';\n    case 'b':\n      return 'B';\n  }\n  return '?';\n}\nexport function all(kind: Kind): string {\n  switch (kind) {\n    case 'a':\n    case 'b':\n    case 'c':\n      return kind;\n  }\n}\n",
  });
  assert.deepEqual(rulesOf(messages, 'src/core/kinds.ts'), ['@typescript-eslint/switch-exhaustiveness-check'], JSON.stringify(messages));
});

test("eslint: 'vscode' imported from src/core or src/cli is an error, from src/vscode it is not", async () => {
  const code = "import * as vscode from 'vscode';\nexport const api: unknown = vscode;\n";
  const messages = await eslintFixture({ 'src/core/agent/ui.ts': code, 'src/cli/ui.ts': code, 'src/vscode/ui.ts': code });
  assert.ok(rulesOf(messages, 'src/core/agent/ui.ts').includes('no-restricted-imports'), JSON.stringify(messages));
  assert.ok(rulesOf(messages, 'src/cli/ui.ts').includes('no-restricted-imports'), JSON.stringify(messages));
  assert.ok(!rulesOf(messages, 'src/vscode/ui.ts').includes('no-restricted-imports'), JSON.stringify(messages));
});

// ---- dependency-cruiser: the layer order and the cycles ----

interface Violation {
  rule: string;
  from: string;
  to: string;
}

/** Runs dependency-cruiser with .dependency-cruiser.cjs over a fixture tree; its violations. */
async function cruiseFixture(files: Record<string, string>): Promise<Violation[]> {
  const root = fixtureTree({ 'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true, module: 'commonjs' } }), ...files });
  const cli = path.join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const roots = ['src', 'webview'].filter((dir) => Object.keys(files).some((file) => file.startsWith(`${dir}/`)));
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, [cli, '--config', path.join(repo, '.dependency-cruiser.cjs'), '--output-type', 'json', ...roots], { cwd: root, maxBuffer: 16 << 20 }));
  } catch (error) {
    // It exits non-zero when it finds violations; the report is still on stdout.
    stdout = (error as { stdout?: string }).stdout ?? '';
    if (!stdout) throw error;
  }
  const report = JSON.parse(stdout) as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
  return report.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

function has(violations: Violation[], rule: string, from: string, to?: string): boolean {
  return violations.some((v) => v.rule === rule && v.from === from && (to === undefined || v.to === to));
}

test('layers: each core layer imports only the layers below it and the shared files at the root', async () => {
  const violations = await cruiseFixture({
    'src/core/paths.ts': 'export const sep = "/";\n',
    'src/core/text.ts': "import { runOf } from './dataset/store';\nexport const t = runOf;\n",
    'src/core/dataset/store.ts': "import { sep } from '../paths';\nexport const runOf = sep;\n",
    'src/core/dataset/upward.ts': "import { loop } from '../agent/loop';\nexport const u = loop;\n",
    'src/core/grounding/snap.ts': "import { runOf } from '../dataset/store';\nexport const s = runOf;\n",
    'src/core/agent/loop.ts': "import { s } from '../grounding/snap';\nimport type { Judge } from '../supervision/judge';\nexport const loop = s;\nexport type J = Judge;\n",
    'src/core/supervision/judge.ts': "import { loop } from '../agent/loop';\nexport type Judge = typeof loop;\n",
    'src/core/export/writer.ts': "import { start } from '../session/run';\nexport const w = start;\n",
    'src/core/session/run.ts': "import { runOf } from '../dataset/store';\nimport { s } from '../grounding/snap';\nimport { sep } from '../paths';\nexport const start = runOf + s + sep;\n",
  });
  assert.ok(has(violations, 'core-dataset-imports-only-below', 'src/core/dataset/upward.ts', 'src/core/agent/loop.ts'), JSON.stringify(violations));
  // A type-only import upward breaks the order as much as a value import.
  assert.ok(has(violations, 'core-agent-imports-only-below', 'src/core/agent/loop.ts', 'src/core/supervision/judge.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'core-export-imports-only-below', 'src/core/export/writer.ts', 'src/core/session/run.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'core-root-is-bottom', 'src/core/text.ts', 'src/core/dataset/store.ts'), JSON.stringify(violations));
  // Downward imports are what the layers are for.
  for (const allowed of ['src/core/session/run.ts', 'src/core/grounding/snap.ts', 'src/core/supervision/judge.ts', 'src/core/dataset/store.ts']) {
    assert.ok(!violations.some((v) => v.from === allowed && v.rule !== 'no-cycle'), `${allowed}: ${JSON.stringify(violations)}`);
  }
});

test('layers: every core layer is refused the one just above it, and takes the one just below', async () => {
  const layers = ['dataset', 'grounding', 'agent', 'supervision', 'export', 'session'];
  const files: Record<string, string> = {};
  layers.forEach((layer, index) => {
    files[`src/core/${layer}/leaf.ts`] = `export const ${layer} = 1;\n`;
    if (index + 1 < layers.length) files[`src/core/${layer}/up.ts`] = `import { ${layers[index + 1]} } from '../${layers[index + 1]}/leaf';\nexport const up = ${layers[index + 1]};\n`;
    if (index > 0) files[`src/core/${layer}/down.ts`] = `import { ${layers[index - 1]} } from '../${layers[index - 1]}/leaf';\nexport const down = ${layers[index - 1]};\n`;
  });
  const violations = await cruiseFixture(files);
  for (const [index, layer] of layers.slice(0, -1).entries()) {
    assert.ok(has(violations, `core-${layer}-imports-only-below`, `src/core/${layer}/up.ts`, `src/core/${layers[index + 1]}/leaf.ts`), `${layer}: ${JSON.stringify(violations)}`);
  }
  assert.deepEqual(
    violations.filter((v) => v.from.endsWith('/down.ts')),
    [],
  );
});

test("layers: src/core never imports 'vscode' nor what is above it; src/cli never imports 'vscode'", async () => {
  const violations = await cruiseFixture({
    'src/core/agent/ui.ts': "import * as vscode from 'vscode';\nexport const v = vscode;\n",
    'src/core/session/host.ts': "import { show } from '../../vscode/panel';\nimport type { HostToWebview } from '../../protocol';\nexport const h = show;\nexport type M = HostToWebview;\n",
    'src/vscode/panel.ts': "import * as vscode from 'vscode';\nexport const show = vscode;\n",
    'src/protocol.ts': 'export type HostToWebview = { type: "init" };\n',
    'src/cli/main.ts': "import * as vscode from 'vscode';\nimport { show } from '../vscode/panel';\nexport const m = [vscode, show];\n",
  });
  assert.ok(has(violations, 'core-no-vscode', 'src/core/agent/ui.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'core-not-above', 'src/core/session/host.ts', 'src/vscode/panel.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'core-not-above', 'src/core/session/host.ts', 'src/protocol.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'cli-no-vscode', 'src/cli/main.ts', 'vscode'), JSON.stringify(violations));
  assert.ok(has(violations, 'cli-no-vscode', 'src/cli/main.ts', 'src/vscode/panel.ts'), JSON.stringify(violations));
  assert.ok(!violations.some((v) => v.from === 'src/vscode/panel.ts'), JSON.stringify(violations));
});

test('layers: an import cycle is an error, a cycle of type-only imports too', async () => {
  const violations = await cruiseFixture({
    'src/core/export/table.ts': "import { write } from './writer';\nexport const formats = [write];\n",
    'src/core/export/writer.ts': "import { formats } from './table';\nexport const write = () => formats.length;\n",
    'src/core/dataset/types.ts': "import type { Row } from './rows';\nexport interface Event { row?: Row }\n",
    'src/core/dataset/rows.ts': "import type { Event } from './types';\nexport interface Row { event?: Event }\n",
    'webview/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
    'webview/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
    'webview/leaf.ts': "import { a } from './a';\nexport const leaf = a;\n",
  });
  assert.ok(has(violations, 'no-cycle', 'src/core/export/table.ts') || has(violations, 'no-cycle', 'src/core/export/writer.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'no-cycle', 'src/core/dataset/types.ts') || has(violations, 'no-cycle', 'src/core/dataset/rows.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'no-cycle', 'webview/a.ts') || has(violations, 'no-cycle', 'webview/b.ts'), JSON.stringify(violations));
  assert.ok(!has(violations, 'no-cycle', 'webview/leaf.ts'), JSON.stringify(violations));
});

test('layers: webview/ imports only src/protocol.ts, its own files and the UI toolkit', async () => {
  const violations = await cruiseFixture({
    'src/protocol.ts': "import type { HintKind } from './core/dataset/events';\nexport type Kind = HintKind;\n",
    'src/core/dataset/events.ts': "export type HintKind = 'knowledge';\n",
    'webview/main.ts': "import type { Kind } from '../src/protocol';\nimport { fmt } from './format';\nexport const k: Kind | string = fmt;\n",
    'webview/format.ts': "export const fmt = 'x';\n",
    'webview/past.ts': "import type { HintKind } from '../src/core/dataset/events';\nexport type K = HintKind;\n",
    'webview/node.ts': "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
    'webview/typo.ts': "import { fmt } from './fromat';\nexport const t = fmt;\n",
  });
  assert.ok(has(violations, 'webview-only-protocol', 'webview/past.ts', 'src/core/dataset/events.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'webview-no-node', 'webview/node.ts'), JSON.stringify(violations));
  assert.ok(has(violations, 'not-to-unresolvable', 'webview/typo.ts'), JSON.stringify(violations));
  assert.ok(!violations.some((v) => v.from === 'webview/main.ts' || v.from === 'webview/format.ts' || v.from === 'src/protocol.ts'), JSON.stringify(violations));
});

test('layers: src/protocol.ts, bundled into the webview, takes only from the core: no Node built-ins, no packages', async () => {
  const violations = await cruiseFixture({
    'src/protocol.ts': "import { HINT_KINDS } from './core/dataset/events';\nimport { readFileSync } from 'node:fs';\nexport const kinds = HINT_KINDS;\nexport const r = readFileSync;\n",
    'src/core/dataset/events.ts': "export const HINT_KINDS = ['knowledge'];\n",
  });
  assert.ok(
    has(violations, 'protocol-types-and-constants-only', 'src/protocol.ts', 'node:fs') || has(violations, 'protocol-types-and-constants-only', 'src/protocol.ts', 'fs'),
    JSON.stringify(violations),
  );
  assert.ok(!has(violations, 'protocol-types-and-constants-only', 'src/protocol.ts', 'src/core/dataset/events.ts'), JSON.stringify(violations));
});
