/**
 * "Export Dataset…" as the editor runs it (runExportCommand): what the request leaves open is
 * asked, the export reports its progress and can be cancelled, and the result, a cancel or a
 * failure is said. The editor's UI is fakes; the dataset and the export are real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetStore } from '../../src/core/dataset/store';
import { type ExportUi, runExportCommand } from '../../src/core/export/exportCommand';
import type { PickItem, PickOptions } from '../../src/core/ui';
import { runStarted, step, writeRun } from '../fixtures/trajectories';

let root: string;
let datasetDir: string;
let workspace: string;

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'apollo-export-command-'));
  datasetDir = path.join(root, 'dataset');
  workspace = path.join(root, 'workspace');
  await fs.mkdir(workspace);
  const store = new DatasetStore(datasetDir);
  await writeRun(store, 'run-a', [runStarted('run-a'), step(1), step(2, { tool: 'finish', args: { summary: 'done' } })]);
  await writeRun(store, 'run-b', [runStarted('run-b'), step(1)]);
});

after(() => rmSync(root, { recursive: true, force: true }));

/** The editor's UI, answering with `answers` and recording what it was asked and shown. */
function fakeUi(answers: { pick?: (items: readonly PickItem[], options: PickOptions) => PickItem | undefined; folder?: string; file?: string; button?: string; cancel?: boolean } = {}) {
  const seen = { picks: [] as string[], dialogs: [] as string[], progress: [] as [string, number | undefined][], said: [] as string[], revealed: [] as string[], titles: [] as string[] };
  const notify =
    (level: string) =>
    async (message: string, ...items: string[]) => (seen.said.push(`${level}: ${message}${items.length ? ` [${items.join(', ')}]` : ''}`), answers.button);
  const ui: ExportUi = {
    showQuickPick: async <T extends PickItem>(items: readonly T[], options: PickOptions) => {
      seen.picks.push(`${options.title}: ${items.map((item) => item.label).join(', ')}`);
      return answers.pick?.(items, options) as T | undefined;
    },
    showFolderDialog: async (title, openLabel, defaultFolder) => (seen.dialogs.push(`folder: ${title} [${openLabel}] in ${defaultFolder}`), answers.folder),
    showSaveDialog: async (title, defaultFile, filters) => (seen.dialogs.push(`save: ${title} as ${defaultFile} ${JSON.stringify(filters)}`), answers.file),
    withCancellableProgress: (title, task) => {
      seen.titles.push(title);
      let cancel: (() => void) | undefined;
      return task(
        (message, increment) => {
          seen.progress.push([message, increment]);
          if (answers.cancel) cancel?.();
        },
        (listener) => (cancel = listener),
      );
    },
    showInformationMessage: notify('info'),
    showWarningMessage: notify('warning'),
    showErrorMessage: notify('error'),
    revealFile: async (file) => void seen.revealed.push(file),
  };
  const log = {
    lines: [] as string[],
    info: (line: string) => void log.lines.push(`info ${line}`),
    warn: (line: string) => void log.lines.push(`warn ${line}`),
    error: (line: string) => void log.lines.push(`error ${line}`),
  };
  return { ui, seen, log };
}

const byLabel = (label: string) => (items: readonly PickItem[]) => items.find((item) => item.label === label);

test('nothing settled: format, branches and file are asked, the progress goes to 100 %, and the result offers to reveal the file', async () => {
  const file = path.join(root, 'train.jsonl');
  const answers = { openai: byLabel('openai'), main: byLabel('Main line only') };
  const { ui, seen, log } = fakeUi({ pick: (items, options) => (options.title?.includes('(1/3)') ? answers.openai(items) : answers.main(items)), file, button: 'Reveal' });
  const summary = await runExportCommand(ui, log, { datasetDir, workspace, policy: 'not-bad' });
  assert.equal(summary?.records, 2);
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2);
  assert.match(seen.picks[0], /^Apollo: Export Dataset \(1\/3\): format: openai, hf, /);
  assert.equal(seen.picks[1], 'Apollo: Export Dataset (2/3): which branches: Main line only, Main line and abandoned branches');
  assert.match(
    seen.dialogs[0],
    new RegExp(`^save: Apollo: Export Dataset \\(3/3\\): save as as ${workspace.replace(/[\\.]/g, '\\$&')}/apollo-openai-\\d{8}-\\d{6}\\.jsonl \\{"JSON Lines":\\["jsonl"\\]\\}$`),
  );
  assert.deepEqual(seen.titles, ['Apollo: exporting openai']);
  assert.deepEqual(
    seen.progress.map(([message]) => message),
    ['1 of 2 run(s), 1 record(s)', '2 of 2 run(s), 2 record(s)'],
  );
  assert.equal(
    seen.progress.reduce((total, [, increment]) => total + (increment ?? 0), 0),
    100,
  );
  assert.deepEqual(seen.said, ['info: Apollo: exported 2 openai record(s) from 2 run(s): 3 step(s) trained, 0 masked (not-bad). [Reveal]']);
  assert.deepEqual(seen.revealed, [file]);
  assert.deepEqual(log.lines, []);
});

test('a folder format is created in the folder chosen; a request that settles everything asks nothing', async () => {
  const parent = mkdtempSync(path.join(root, 'parent-'));
  const { ui, seen, log } = fakeUi({ pick: byLabel('hf'), folder: parent });
  const summary = await runExportCommand(ui, log, { datasetDir, workspace, policy: 'not-bad', request: { branches: 'all' } });
  assert.match(seen.dialogs[0], /^folder: Apollo: Export Dataset \(3\/3\): the folder "apollo-hf-\d{8}-\d{6}" is created in the folder you choose \[Export Here\] in /);
  assert.equal(path.dirname(summary!.out), parent);
  assert.ok(existsSync(path.join(summary!.out, 'README.md')));
  assert.equal(seen.picks.length, 1, 'the branches were settled');

  const settled = fakeUi();
  const out = path.join('exports', 'settled.jsonl');
  await fs.mkdir(path.join(workspace, 'exports'));
  const again = await runExportCommand(settled.ui, settled.log, { datasetDir, workspace, policy: 'all', request: { format: 'sharegpt', out, minQuality: 0 } });
  assert.equal(again?.out, path.join(workspace, out), settled.seen.said.join('\n'));
  assert.deepEqual([settled.seen.picks, settled.seen.dialogs], [[], []]);
  assert.equal(settled.seen.revealed.length, 0, 'Reveal was not chosen');
});

test('a dismissed question exports nothing; a request that is not an object is no request', async () => {
  const { ui, seen, log } = fakeUi();
  assert.equal(await runExportCommand(ui, log, { datasetDir, workspace, policy: 'not-bad', request: 'openai' }), undefined);
  assert.equal(seen.picks.length, 1);
  const noFile = fakeUi({ pick: (items) => items[0] });
  assert.equal(await runExportCommand(noFile.ui, noFile.log, { datasetDir, workspace, policy: 'not-bad' }), undefined);
  assert.equal(noFile.seen.dialogs.length, 1);
  assert.deepEqual([seen.titles, noFile.seen.titles, noFile.seen.said], [[], [], []]);
});

test('a cancelled export says nothing was written; a failing one says why and logs it; the warnings go to the log', async () => {
  const file = path.join(root, 'cancelled.jsonl');
  const cancelled = fakeUi({ cancel: true });
  assert.equal(await runExportCommand(cancelled.ui, cancelled.log, { datasetDir, workspace, policy: 'not-bad', request: { format: 'openai', out: file } }), undefined);
  assert.deepEqual(cancelled.seen.said, ['info: Apollo: The export was cancelled; nothing was written.']);
  assert.equal(existsSync(file), false);

  const empty = mkdtempSync(path.join(root, 'empty-'));
  const failing = fakeUi();
  assert.equal(await runExportCommand(failing.ui, failing.log, { datasetDir: empty, workspace, policy: 'not-bad', request: { format: 'openai', out: file } }), undefined);
  assert.deepEqual(failing.seen.said, [`error: Apollo: The dataset ${empty} has no runs to export.`]);
  assert.deepEqual(failing.log.lines, [`error Export failed: The dataset ${empty} has no runs to export.`]);

  const corrupt = new DatasetStore(mkdtempSync(path.join(root, 'corrupt-')));
  await writeRun(corrupt, 'run-corrupt', [runStarted('run-corrupt'), step(1)]);
  await fs.appendFile(path.join(corrupt.runDir('run-corrupt'), 'events.jsonl'), '{"type":"step", broken\n');
  const warned = fakeUi();
  await runExportCommand(warned.ui, warned.log, { datasetDir: corrupt.root, workspace, policy: 'not-bad', request: { format: 'openai', out: path.join(root, 'corrupt.jsonl') } });
  assert.match(warned.log.lines.join('\n'), /^warn Export: .*run-corrupt.*events\.jsonl line 3: not valid JSON/);
});
