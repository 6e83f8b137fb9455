import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { ApolloApi } from '../../src/extension';
import type { DatasetEvent } from '../../src/core/dataset/events';
import type { HostToWebview } from '../../src/protocol';
import { claimFileOf } from '../../src/core/session/workspaceClaim';
import { startScriptedModelServer, type ScriptedModelServer, type ScriptedReply } from '../fixtures/scriptedModelServer';
import { EXTENSION_ID, workspaceDir, until, configure } from './helpers';

/** The dataset folder the extension records into: its storage by default, outside the workspace. */
let datasetRoot = '';

async function readEvents(runId: string): Promise<DatasetEvent[]> {
  const file = path.join(datasetRoot, 'runs', runId, 'events.jsonl');
  const text = await fs.readFile(file, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DatasetEvent);
}

describe('Apollo extension', function () {
  let api: ApolloApi;
  let server: ScriptedModelServer | undefined;
  const posted: HostToWebview[] = [];
  const originalKey = process.env.OPENAI_API_KEY;

  before(async () => {
    const extension = vscode.extensions.getExtension<ApolloApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded`);
    api = await extension.activate();
    datasetRoot = (await api.datasetDir())!;
    api.panel.onDidPost((message) => posted.push(message));
    process.env.OPENAI_API_KEY = 'integration-test-key';
  });

  afterEach(async () => {
    for (const session of api.sessions()) await session.stop();
    await server?.close();
    server = undefined;
    posted.length = 0;
    await configure({ baseUrl: undefined, model: undefined, maxSteps: undefined, runsPath: undefined, 'sample.concurrency': undefined, 'budget.maxTokens': undefined });
  });

  after(() => {
    process.env.OPENAI_API_KEY = originalKey;
  });

  async function startServer(script: ScriptedReply[]): Promise<ScriptedModelServer> {
    server = await startScriptedModelServer(script);
    await configure({ baseUrl: server.baseUrl, model: 'scripted-model' });
    return server;
  }

  it('registers every command of the contract', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const id of [
      'apollo.startRun',
      'apollo.sampleRuns',
      'apollo.adoptRun',
      'apollo.nextRunNeedingAttention',
      'apollo.injectHint',
      'apollo.pauseRun',
      'apollo.resumeRun',
      'apollo.stopRun',
      'apollo.openDataset',
      'apollo.setApiKey',
      'apollo.collectGarbage',
      'apollo.rewindRun',
      'apollo.exportDataset',
      'apollo.labelStep',
      'apollo.setJudgeApiKey',
      'apollo.nextFlaggedStep',
      'apollo.openRun',
    ]) {
      assert.ok(commands.includes(id), `${id} is registered`);
    }
  });

  it('declares the settings with their defaults', () => {
    const config = vscode.workspace.getConfiguration('apollo');
    assert.equal(config.get('baseUrl'), '');
    assert.equal(config.get('model'), '');
    assert.equal(config.get('datasetPath'), '');
    // Unset: the dataset lives outside the workspace, in the extension's storage.
    const relative = path.relative(workspaceDir(), datasetRoot);
    assert.ok(relative.startsWith('..') || path.isAbsolute(relative), `${datasetRoot} is outside the workspace`);
    assert.match(datasetRoot, /apollo-agent[^/]*\/datasets\/[^/]+-[0-9a-f]{12}$/);
    assert.equal(config.get('maxSteps'), 50);
    assert.equal(config.get('contextBudget'), 0);
    assert.deepEqual(config.get('grounding.exclude'), []);
    assert.equal(config.get('grounding.maxFileSizeMb'), 10);
    assert.equal(config.get('maskPolicy'), 'not-bad');
    assert.equal(config.get('judge.enabled'), false);
    assert.equal(config.get('judge.baseUrl'), '');
    assert.equal(config.get('judge.model'), '');
    assert.equal(config.get('judge.batchSize'), 8);
    assert.equal(config.get('runsPath'), '');
    assert.equal(config.get('sample.count'), 3);
    assert.equal(config.get('sample.concurrency'), 3);
    assert.equal(config.get('budget.maxMinutes'), 0);
    assert.equal(config.get('budget.maxTokens'), 0);
  });

  it('labels from the panel and the palette carry reason and axis, and the export command follows the mask policy setting', async () => {
    await startServer([
      { toolCall: { name: 'write_file', arguments: { path: 'labelled.txt', content: 'x\n' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'exit 1' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ]);
    const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Label me');
    assert.equal((await api.currentSession()!.done).status, 'finished');
    await api.panel.receive({ type: 'labelStep', step: 1, label: 'good', axis: 'decision', reason: 'the right file' });
    await api.panel.receive({ type: 'labelStep', step: 1, label: 'good', axis: 'tone' });
    assert.equal(await vscode.commands.executeCommand('apollo.labelStep', 3, 'neutral', undefined, 'finished before checking'), true);
    const labels = (await readEvents(runId)).filter((event) => event.type === 'label');
    assert.deepEqual(
      labels.map((event) => event.type === 'label' && [event.step, event.source, event.label, event.axis ?? null, event.reason ?? null]),
      [
        [2, 'rule:command_failed', 'bad', 'execution', 'the command failed (exit code 1)'],
        [1, 'human', 'good', 'decision', 'the right file'],
        [3, 'human', 'neutral', null, 'finished before checking'],
      ],
    );
    assert.ok(posted.some((message) => message.type === 'labelAdded' && message.step === 1 && message.badge.reason === 'the right file'));

    // Exports go to a folder of their own, outside the workspace (as the dataset does).
    const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'apollo-export-')), `export-${runId}`);
    const weights = async (policy: string) => {
      await configure({ maskPolicy: policy });
      const file = `${out}-${policy}.jsonl`;
      const summary = await vscode.commands.executeCommand<{ policy: string; records: number }>('apollo.exportDataset', { format: 'openai', out: file, branches: 'main' });
      assert.equal(summary?.policy, policy);
      const lines = (await fs.readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      const line = lines.find((candidate) => candidate.messages[1].content === 'Label me');
      return line.messages.filter((message: { role: string }) => message.role === 'assistant').map((message: { weight: number }) => message.weight);
    };
    assert.deepEqual(await weights('not-bad'), [1, 0, 1]);
    assert.deepEqual(await weights('good-only'), [1, 0, 0]);
    await configure({ maskPolicy: undefined });

    const folder = `${out}-hf`;
    await vscode.commands.executeCommand('apollo.exportDataset', { format: 'hf', out: folder });
    assert.match(await fs.readFile(path.join(folder, 'README.md'), 'utf8'), /^---\nconfigs:\n- config_name: default/);
    // A second export into the same, now non-empty folder is refused and leaves it as it was.
    assert.equal(await vscode.commands.executeCommand('apollo.exportDataset', { format: 'hf', out: folder }), undefined);
    assert.deepEqual((await fs.readdir(folder)).sort(), ['README.md', 'data']);
  });

  it('shows a step in detail, lists the runs, and opens a past run read-only where labels still land', async () => {
    await startServer([
      { content: '<script>alert("x")</script> I will write the page.', toolCall: { name: 'write_file', arguments: { path: 'page/index.html', content: '<script>alert(1)</script>\n' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'page' } } },
    ]);
    const first = await vscode.commands.executeCommand<string>('apollo.startRun', 'Write a page');
    await api.currentSession()!.done;
    await api.panel.receive({ type: 'showStep', step: 1 });
    const detail = posted.find((message) => message.type === 'stepDetail');
    assert.ok(detail?.type === 'stepDetail');
    assert.equal(detail.detail.thought, '<script>alert("x")</script> I will write the page.');
    assert.equal(detail.detail.arguments, JSON.stringify({ path: 'page/index.html', content: '<script>alert(1)</script>\n' }, null, 2));
    assert.deepEqual(
      detail.detail.files.map((file) => file.path),
      ['page/index.html'],
    );
    assert.match(detail.detail.patch, /\+<script>alert\(1\)<\/script>/);

    await startServer([{ toolCall: { name: 'finish', arguments: { summary: 'nothing to do' } } }]);
    const second = await vscode.commands.executeCommand<string>('apollo.startRun', 'Do nothing');
    await api.currentSession()!.done;
    posted.length = 0;
    await api.panel.receive({ type: 'ready' });
    const runs = posted.find((message) => message.type === 'runs');
    assert.ok(runs?.type === 'runs' && runs.runs.some((run) => run.runId === first) && runs.runs.some((run) => run.runId === second));

    await api.panel.receive({ type: 'openRun', runId: first });
    const init = posted.filter((message) => message.type === 'init').pop();
    assert.ok(init?.type === 'init' && init.run?.readOnly === true && init.run.runId === first && init.steps.length === 2);
    await api.panel.receive({ type: 'labelStep', step: 1, label: 'bad', reason: 'script injection' });
    const label = (await readEvents(first)).find((event) => event.type === 'label' && event.source === 'human');
    assert.ok(label?.type === 'label' && label.step === 1 && label.reason === 'script injection');
    assert.ok(posted.some((message) => message.type === 'labelAdded' && message.step === 1));
    const inits = posted.filter((message) => message.type === 'init').length;
    await api.panel.receive({ type: 'openRun', runId: '../escape' });
    assert.equal(posted.filter((message) => message.type === 'init').length, inits, 'a malformed run id is dropped');
    await fs.rm(path.join(workspaceDir(), 'page'), { recursive: true, force: true });
  });

  it('flags a run that needs the annotator: the attention message, the status, and the next-flag command', async () => {
    await startServer([
      { toolCall: { name: 'run_command', arguments: { command: 'exit 1' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'exit 2' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'exit 3' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'gave up' } } },
    ]);
    await configure({ 'attention.notify': false });
    try {
      await vscode.commands.executeCommand<string>('apollo.startRun', 'Fail three times');
      await api.currentSession()!.done;
      const flag = posted.find((message) => message.type === 'attention');
      assert.deepEqual(flag?.type === 'attention' && [flag.flag.step, flag.flag.kind, flag.unseen], [3, 'failures', 1]);
      await vscode.commands.executeCommand('apollo.nextFlaggedStep');
      assert.ok(posted.some((message) => message.type === 'focusNextFlag'));
    } finally {
      await configure({ 'attention.notify': undefined });
    }
  });

  it('scores steps with the LLM judge the settings name, on its own endpoint', async () => {
    const judge = await startScriptedModelServer([], {
      fallback: (request) => {
        const steps = (/Steps to judge: ([\d, ]+)/.exec(String(request.messages[1]?.content ?? ''))?.[1] ?? '').split(',').map(Number).filter(Boolean);
        return { toolCall: { name: 'record_verdicts', arguments: { verdicts: steps.map((step) => ({ step, decision: 'good', execution: 'good', reason: 'fine' })) } } };
      },
    });
    try {
      await startServer([{ toolCall: { name: 'list_dir', arguments: {} } }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
      await configure({ 'judge.enabled': true, 'judge.baseUrl': judge.baseUrl, 'judge.model': 'critic' });
      const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Judge me');
      assert.equal((await api.currentSession()!.done).status, 'finished');
      const events = await readEvents(runId);
      const judged = events.filter((event) => event.type === 'label' && event.source === 'judge:critic');
      assert.equal(judged.length, 4, 'two steps, two axes each');
      assert.ok(events.some((event) => event.type === 'judge_usage' && !event.error));
      assert.equal(judge.requests[0].body.model, 'critic');
    } finally {
      await configure({ 'judge.enabled': undefined, 'judge.baseUrl': undefined, 'judge.model': undefined });
      await judge.close();
    }
  });

  it('"Open diff" on a step that changed several files offers them all in one multi-file diff', async () => {
    await startServer([
      { toolCall: { name: 'run_command', arguments: { command: 'mkdir -p multi && echo one > multi/one.txt && echo two > multi/two.txt' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'two files' } } },
    ]);
    await vscode.commands.executeCommand<string>('apollo.startRun', 'Write two files at once');
    assert.equal((await api.currentSession()!.done).status, 'finished');
    const opening = api.panel.receive({ type: 'openDiff', step: 1 });
    // The pick list opens with "All 2 files" first; accepting it opens the multi-file diff.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await opening;
    const labels = () => vscode.window.tabGroups.all.flatMap((group) => group.tabs.map((tab) => tab.label));
    await until('the multi-file diff', () => labels().includes('Step 1 (2 files)'), 10_000).catch((error: Error) => {
      throw new Error(`${error.message}; tabs now: ${JSON.stringify(labels())}`);
    });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await fs.rm(path.join(workspaceDir(), 'multi'), { recursive: true, force: true });
  });

  it('"Rewind to here" puts the workspace back to before the step and records a new branch', async () => {
    await startServer([
      { toolCall: { name: 'write_file', arguments: { path: 'rewind/first.txt', content: 'first\n' } } },
      { toolCall: { name: 'write_file', arguments: { path: 'rewind/second.txt', content: 'second\n' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'two files' } } },
    ]);
    const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Write two files');
    assert.equal((await api.currentSession()!.done).status, 'finished');
    // The panel first shows what will change on disk; its confirmation sends the rewind.
    await api.panel.receive({ type: 'previewRewind', step: 2 });
    const preview = posted.find((message) => message.type === 'rewindPreview');
    assert.deepEqual(preview?.type === 'rewindPreview' && preview.preview, { step: 2, written: [], removed: ['rewind/second.txt'], userEdits: [], stopsRun: false });
    assert.ok(await fs.readFile(path.join(workspaceDir(), 'rewind/second.txt'), 'utf8'), 'a preview changes nothing');
    await api.panel.receive({ type: 'rewind', step: 2 });
    const events = await readEvents(runId);
    const rewind = events[events.length - 1];
    assert.equal(rewind.type, 'rewind');
    assert.ok(rewind.type === 'rewind' && rewind.toStep === 2 && rewind.parentStep === 1);
    assert.equal(await fs.readFile(path.join(workspaceDir(), 'rewind/first.txt'), 'utf8'), 'first\n');
    await assert.rejects(fs.access(path.join(workspaceDir(), 'rewind/second.txt')));
    assert.ok(posted.some((message) => message.type === 'notice' && /Rewound to before step 2: 1 file\(s\) restored/.test(message.message)));
    // A malformed rewind request from the panel is dropped, not acted on.
    await api.panel.receive({ type: 'rewind', step: 0 });
    assert.equal((await readEvents(runId)).length, events.length);
    await fs.rm(path.join(workspaceDir(), 'rewind'), { recursive: true, force: true });
  });

  it('grounds steps by the grounding settings, and the reclaim command lets go of a deleted run', async () => {
    await startServer([
      { toolCall: { name: 'run_command', arguments: { command: 'head -c 300000 /dev/urandom > model.bin && echo log > run.log && echo kept > kept.txt' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'rm model.bin run.log kept.txt' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ]);
    await configure({ 'grounding.exclude': ['*.log'], 'grounding.maxFileSizeMb': 0.1 });
    try {
      const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Make files');
      assert.equal((await api.currentSession()!.done).status, 'finished');
      const steps = (await readEvents(runId)).filter((event): event is Extract<DatasetEvent, { type: 'step' }> => event.type === 'step');
      assert.deepEqual(
        steps[0].grounding.files.map((file) => file.path),
        ['kept.txt'],
      );

      await fs.rm(path.join(datasetRoot, 'runs', runId), { recursive: true });
      const report = await vscode.commands.executeCommand<{ runs: string[] }>('apollo.collectGarbage');
      assert.ok(report?.runs.includes(runId), `the report names ${runId}`);
    } finally {
      await configure({ 'grounding.exclude': undefined, 'grounding.maxFileSizeMb': undefined });
    }
  });

  it('runs a task from the command, streams steps to the panel and records them in the dataset', async () => {
    await startServer([
      { toolCall: { name: 'write_file', arguments: { path: 'notes/plan.md', content: '# plan\n' } } },
      { toolCall: { name: 'run_command', arguments: { command: 'echo done > notes/result.txt' } } },
      { toolCall: { name: 'finish', arguments: { summary: 'planned' } } },
    ]);
    const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Write a plan');
    assert.match(runId ?? '', /^\d{8}-\d{6}-[0-9a-f]{8}$/);
    const ended = await api.currentSession()!.done;
    assert.equal(ended.status, 'finished');
    const events = await readEvents(runId);
    assert.deepEqual(
      events.map((event) => event.type),
      ['run_started', 'context_window', 'step', 'step', 'step', 'run_ended'],
    );
    const added = posted.filter((message): message is Extract<HostToWebview, { type: 'stepAdded' }> => message.type === 'stepAdded');
    assert.deepEqual(
      added.map((message) => [message.step.step, message.step.tool, message.step.args, message.step.diff.files]),
      [
        [1, 'write_file', 'notes/plan.md', 1],
        [2, 'run_command', 'echo done > notes/result.txt', 1],
        [3, 'finish', 'planned', 0],
      ],
    );
    const finalRun = posted.filter((message) => message.type === 'runUpdated').pop();
    assert.equal(finalRun?.type === 'runUpdated' && finalRun.run.status, 'finished');

    // "Open diff" shows the step's before/after snapshots in the native diff editor.
    await api.panel.receive({ type: 'openDiff', step: 1 });
    const tab = await until('the diff editor', () => {
      const active = vscode.window.tabGroups.activeTabGroup.activeTab;
      return active?.input instanceof vscode.TabInputTextDiff ? active : undefined;
    });
    assert.equal(tab.label, 'notes/plan.md (step 1)');
    const input = tab.input as vscode.TabInputTextDiff;
    assert.equal((await vscode.workspace.openTextDocument(input.original)).getText(), '');
    assert.equal((await vscode.workspace.openTextDocument(input.modified)).getText(), '# plan\n');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('delivers a hint sent from the panel in the next model request, and labels a step', async () => {
    const model = await startServer([
      { toolCall: { name: 'list_dir', arguments: {} } },
      { toolCall: { name: 'read_file', arguments: { path: 'README.md' } }, delayMs: 800 },
      { toolCall: { name: 'finish', arguments: { summary: 'ok' } } },
    ]);
    await api.panel.receive({ type: 'startRun', task: 'Explore the project' });
    await until('the second model request', () => model.requests.length >= 2);
    await api.panel.receive({ type: 'sendHint', text: 'The README explains everything', kind: 'knowledge' });
    const session = api.currentSession()!;
    assert.equal((await session.done).status, 'finished');
    const hintMessage = '[Hint from the annotator (knowledge)]: The README explains everything';
    assert.ok(model.requests[2].messages.some((message: { content: string }) => message.content === hintMessage));
    assert.ok(posted.some((message) => message.type === 'hintDelivered' && message.step === 3));

    await api.panel.receive({ type: 'labelStep', step: 2, label: 'bad' });
    const events = await readEvents(session.runId);
    const label = events.find((event) => event.type === 'label');
    assert.deepEqual(label && [label.step, label.label, label.source], [2, 'bad', 'human']);
  });

  it('an urgent hint from the panel interrupts the model request in flight', async () => {
    const model = await startServer([{ toolCall: { name: 'list_dir', arguments: {} }, delayMs: 20_000 }, { toolCall: { name: 'finish', arguments: { summary: 'ok' } } }]);
    await api.panel.receive({ type: 'startRun', task: 'Take your time' });
    await until('the first model request', () => model.requests.length >= 1);
    await api.panel.receive({ type: 'sendHint', text: 'Finish right away', kind: 'correction', urgency: 'now' });
    const session = api.currentSession()!;
    assert.equal((await session.done).status, 'finished');
    assert.ok((await session.events()).some((event) => event.type === 'request_interrupted' && event.step === 1));
    assert.ok(model.requests[1].messages.some((message: { content: string }) => message.content === '[Hint from the annotator (correction)]: Finish right away'));
  });

  it('resumes an interrupted run from its last recorded step', async () => {
    // A run that stopped without an ending, as after a crash: a finished run's record, cut before its end.
    await startServer([{ toolCall: { name: 'write_file', arguments: { path: 'first.txt', content: '1\n' } } }, { toolCall: { name: 'list_dir', arguments: {} } }]);
    const original = await vscode.commands.executeCommand<string>('apollo.startRun', 'Two steps');
    await api.currentSession()!.done;
    const runs = path.join(datasetRoot, 'runs');
    const interruptedId = `${original}-x`;
    await fs.mkdir(path.join(runs, interruptedId, 'inbox'), { recursive: true });
    const kept = (await readEvents(original)).filter((event) => event.type !== 'run_ended' && !(event.type === 'step' && event.step >= 2));
    await fs.writeFile(path.join(runs, interruptedId, 'events.jsonl'), kept.map((event) => JSON.stringify(event)).join('\n') + '\n');
    const manifest = JSON.parse(await fs.readFile(path.join(runs, original, 'run.json'), 'utf8'));
    await fs.writeFile(path.join(runs, interruptedId, 'run.json'), JSON.stringify({ ...manifest, id: interruptedId, status: 'running', steps: 1 }));

    const model = await startServer([{ toolCall: { name: 'finish', arguments: { summary: 'resumed fine' } } }]);
    await vscode.commands.executeCommand('apollo.resumeRun', interruptedId);
    const session = api.currentSession()!;
    assert.equal(session.runId, interruptedId);
    const ended = await session.done;
    assert.equal(ended.status, 'finished');
    assert.deepEqual(
      (await readEvents(interruptedId)).filter((event) => event.type === 'step').map((event) => event.type === 'step' && event.step),
      [1, 2],
    );
    // The resumed request carried step 1 in its context.
    assert.ok(model.requests[0].messages.some((message: { role: string; content: string }) => message.role === 'tool' && /Wrote 2 bytes to first\.txt/.test(message.content)));
  });

  it('drops malformed panel messages without effect', async () => {
    const before = api.currentSession();
    for (const bad of [
      null,
      'startRun',
      { type: 'startRun' },
      { type: 'startRun', task: 42 },
      { type: 'labelStep', step: -1, label: 'bad' },
      { type: 'sendHint', text: 'x', kind: 'rumour' },
      { type: 'eval', code: '1' },
    ]) {
      await api.panel.receive(bad);
    }
    assert.equal(api.currentSession(), before);
    // Nothing answers a dropped message (a refreshed runs list from an earlier run may still arrive).
    assert.deepEqual(
      posted.filter((message) => message.type !== 'runs' && message.type !== 'liveRuns').map((message) => message.type),
      [],
    );
  });

  it('refuses an empty task and a missing endpoint with messages that say what to do', async () => {
    await configure({ baseUrl: 'http://127.0.0.1:9/v1', model: 'm' });
    await api.panel.receive({ type: 'startRun', task: '   ' });
    const empty = posted.find((message) => message.type === 'notice');
    assert.match(empty?.type === 'notice' ? empty.message : '', /task is empty/);

    posted.length = 0;
    await configure({ baseUrl: undefined });
    const savedBase = process.env.OPENAI_BASE_URL;
    delete process.env.OPENAI_BASE_URL;
    try {
      await api.panel.receive({ type: 'startRun', task: 'something' });
    } finally {
      if (savedBase !== undefined) process.env.OPENAI_BASE_URL = savedBase;
    }
    const missing = posted.find((message) => message.type === 'notice');
    assert.match(missing?.type === 'notice' ? missing.message : '', /apollo\.baseUrl/);
  });

  it('refuses a run while another process runs an agent in the workspace, and starts one once that process has gone', async () => {
    const model = await startServer([{ toolCall: { name: 'finish', arguments: { summary: 'done' } } }]);
    // The CLI running an agent here: a claim naming a process that is alive (this one's parent).
    const claimFile = claimFileOf(await fs.realpath(workspaceDir()));
    await fs.mkdir(path.dirname(claimFile), { recursive: true });
    const holder = { runId: 'run-from-the-cli', purpose: 'run', pid: process.ppid, host: os.hostname(), since: new Date().toISOString() };
    await fs.writeFile(claimFile, JSON.stringify(holder) + '\n');
    const live = api.sessions().length;
    try {
      await api.panel.receive({ type: 'startRun', task: 'Finish at once' });
      const notice = await until('the refusal', () => posted.find((message) => message.type === 'notice'));
      assert.match(notice.type === 'notice' ? notice.message : '', new RegExp(`Run run-from-the-cli is going in this workspace \\(in process ${process.ppid}, `));
      assert.equal(api.sessions().length, live, 'no run was started');
      assert.equal(model.requests.length, 0);
      assert.equal(JSON.parse(await fs.readFile(claimFile, 'utf8')).runId, 'run-from-the-cli', 'the other claim stands');
    } finally {
      await fs.rm(claimFile, { force: true });
    }
    const before = api.currentSession();
    await api.panel.receive({ type: 'startRun', task: 'Finish at once' });
    const session = await until('the run', () => (api.currentSession() !== before ? api.currentSession() : undefined));
    assert.equal((await session.done).status, 'finished');
    await assert.rejects(fs.access(claimFile), 'the ended run let the workspace go');
  });

  it('stop ends a run whose model request is in flight', async () => {
    const model = await startServer([{ toolCall: { name: 'list_dir', arguments: {} }, delayMs: 30_000 }]);
    await vscode.commands.executeCommand('apollo.startRun', 'Wait forever');
    await until('the model request', () => model.requests.length >= 1);
    await vscode.commands.executeCommand('apollo.stopRun');
    assert.equal(api.currentSession()?.status, 'stopped');
  });

  describe('sampling', () => {
    /** The working copy a request came from: the system prompt names the workspace root. */
    const workspaceOf = (request: { messages: { role: string; content: string }[] }) => /The workspace root is (\S+?);/.exec(request.messages[0].content)?.[1];
    const runsPath = () => path.join(os.tmpdir(), `apollo-it-runs-${process.pid}-${Date.now()}`);

    it('samples runs in copies of their own, lists them by need, sends a hint to one run only, and adopts one from the panel', async () => {
      const hint = 'HINT-FOR-THE-FIRST-RUN';
      const seen = new Map<string, number>();
      // Each run writes a file named after its working copy, lists its folder, then finishes; the
      // first step waits so that a hint can be sent while both runs go on.
      const reply = (request: { messages: { role: string; content: string }[] }): ScriptedReply => {
        const copy = workspaceOf(request) ?? 'unknown';
        const turn = (seen.get(copy) ?? 0) + 1;
        seen.set(copy, turn);
        if (turn === 1) return { toolCall: { name: 'write_file', arguments: { path: `made-by-${path.basename(copy)}.txt`, content: 'mine\n' } }, delayMs: 1500 };
        if (turn === 2) return { toolCall: { name: 'list_dir', arguments: {} } };
        return { toolCall: { name: 'finish', arguments: { summary: 'done' } } };
      };
      const model = await startScriptedModelServer([], { fallback: reply });
      server = model;
      const runs = runsPath();
      await configure({ baseUrl: model.baseUrl, model: 'scripted-model', runsPath: runs, 'sample.concurrency': 2 });

      const started = await vscode.commands.executeCommand<{ taskId: string }>('apollo.sampleRuns', 'Write your own file', 2);
      assert.ok(started?.taskId, 'the command returns the task id');
      const ofThisSampling = () => api.sessions().filter((session) => session.shadow.workspace.startsWith(runs + path.sep));
      const sessions = await until('both runs to start', () => (ofThisSampling().length === 2 ? ofThisSampling() : undefined));
      const [first, second] = sessions;
      assert.notEqual(first.shadow.workspace, second.shadow.workspace);
      for (const session of sessions) assert.ok(session.shadow.workspace.startsWith(runs + path.sep), 'each run works in a copy under apollo.runsPath');

      // The panel shows the first run; its hint names that run and reaches it alone.
      await api.panel.receive({ type: 'sendHint', text: hint, kind: 'strategy', urgency: 'next', runId: first.runId });
      const listed = await until('the live runs list', () => [...posted].reverse().find((message) => message.type === 'liveRuns' && message.runs.length === 2));
      assert.ok(listed.type === 'liveRuns' && listed.runs.every((run) => run.sample?.taskId === started.taskId && run.sample.count === 2));
      await Promise.all(sessions.map((session) => session.done));

      const withHint = model.requests.filter((request) => JSON.stringify(request.messages).includes(hint));
      assert.ok(withHint.length > 0, 'the hint reached the run it was sent to');
      assert.ok(
        withHint.every((request) => workspaceOf(request) === first.shadow.workspace),
        'and no other run',
      );
      // Each run saw only its own file.
      for (const session of sessions) {
        const listing = (await readEvents(session.runId)).find((event) => event.type === 'step' && event.action?.name === 'list_dir');
        const observation = listing?.type === 'step' ? listing.observation : '';
        assert.match(observation, new RegExp(`made-by-${path.basename(session.shadow.workspace)}`));
        assert.equal((observation.match(/made-by-/g) ?? []).length, 1, observation);
      }
      for (const session of sessions) {
        const startedEvent = (await readEvents(session.runId))[0];
        assert.ok(startedEvent.type === 'run_started' && startedEvent.taskId === started.taskId && startedEvent.origin?.workspace === (await fs.realpath(workspaceDir())));
      }
      // The workspace itself was not touched by either run.
      assert.deepEqual(
        (await fs.readdir(workspaceDir())).filter((name) => name.startsWith('made-by-')),
        [],
      );
      const ended = api.liveRuns().filter((run) => run.sample?.taskId === started.taskId);
      assert.equal(ended.length, 2);
      assert.ok(ended.every((run) => run.need.kind === 'ended' && run.adoptable));

      // Adopt the second run from the panel: preview first, then the confirmation.
      const file = `made-by-${path.basename(second.shadow.workspace)}.txt`;
      posted.length = 0;
      await api.panel.receive({ type: 'previewAdopt', runId: second.runId });
      const preview = posted.find((message) => message.type === 'adoptPreview');
      assert.ok(preview?.type === 'adoptPreview');
      assert.deepEqual([preview.preview.written, preview.preview.removed, preview.preview.conflicts], [[file], [], []]);
      assert.equal(
        await fs.access(path.join(workspaceDir(), file)).then(
          () => true,
          () => false,
        ),
        false,
        'a preview writes nothing',
      );
      await api.panel.receive({ type: 'adoptRun', runId: second.runId, overwrite: false });
      assert.equal(await fs.readFile(path.join(workspaceDir(), file), 'utf8'), 'mine\n');
      const adopted = (await readEvents(second.runId)).find((event) => event.type === 'run_adopted');
      assert.ok(adopted?.type === 'run_adopted' && adopted.files.map((change) => change.path).join() === file);
      assert.equal(api.liveRuns().find((run) => run.runId === second.runId)?.adoptable, false);

      // The first run's file, changed by the user meanwhile, is a conflict: refused unless confirmed as such.
      const otherFile = `made-by-${path.basename(first.shadow.workspace)}.txt`;
      await fs.writeFile(path.join(workspaceDir(), otherFile), 'my own\n');
      posted.length = 0;
      await api.panel.receive({ type: 'adoptRun', runId: first.runId, overwrite: false });
      assert.match(JSON.stringify(posted.find((message) => message.type === 'notice')), /nothing was written/);
      assert.equal(await fs.readFile(path.join(workspaceDir(), otherFile), 'utf8'), 'my own\n');
      await api.panel.receive({ type: 'previewAdopt', runId: first.runId });
      const conflicted = posted.find((message) => message.type === 'adoptPreview');
      assert.ok(conflicted?.type === 'adoptPreview' && conflicted.preview.conflicts.join() === otherFile);
      await api.panel.receive({ type: 'adoptRun', runId: first.runId, overwrite: true });
      assert.equal(await fs.readFile(path.join(workspaceDir(), otherFile), 'utf8'), 'mine\n');
      for (const name of [file, otherFile]) await fs.rm(path.join(workspaceDir(), name));
      await fs.rm(runs, { recursive: true, force: true });
    });

    it('orders live runs by need and jumps to the neediest', async () => {
      // One run asks a question and waits on a long request; the other keeps working.
      const seen = new Map<string, number>();
      const reply = (request: { messages: { role: string; content: string }[] }): ScriptedReply => {
        const copy = workspaceOf(request) ?? 'unknown';
        const turn = (seen.get(copy) ?? 0) + 1;
        seen.set(copy, turn);
        const asks = copy.endsWith(`${path.sep}2`);
        if (turn === 1) return asks ? { content: 'Which database should I use?' } : { toolCall: { name: 'list_dir', arguments: {} } };
        return { toolCall: { name: 'list_dir', arguments: {} }, delayMs: 30_000 };
      };
      const model = await startScriptedModelServer([], { fallback: reply });
      server = model;
      const runs = runsPath();
      await configure({ baseUrl: model.baseUrl, model: 'scripted-model', runsPath: runs, 'attention.notify': false });
      try {
        const started = await vscode.commands.executeCommand<{ taskId: string }>('apollo.sampleRuns', 'Ask or work', 2);
        const ofThisSampling = () => api.liveRuns().filter((run) => run.sample?.taskId === started?.taskId);
        const top = await until('the question to reach the top', () => {
          const listed = ofThisSampling();
          return listed.length === 2 && api.liveRuns()[0].need.kind === 'question' ? api.liveRuns()[0] : undefined;
        });
        assert.equal(top.sample?.index, 2);
        assert.equal(ofThisSampling()[1].need.kind, 'running');
        const jumped = await vscode.commands.executeCommand<string>('apollo.nextRunNeedingAttention');
        assert.equal(jumped, top.runId);
        assert.equal(api.currentSession()?.runId, top.runId, 'the panel now shows that run');
        // Looking at it counts as seen: the question no longer ranks first.
        assert.equal(api.liveRuns().find((run) => run.runId === top.runId)?.unseen, 0);
      } finally {
        await configure({ 'attention.notify': undefined });
        for (const session of api.sessions()) await session.stop();
        await fs.rm(runs, { recursive: true, force: true });
      }
    });

    it('refuses a sampling with nothing to do, and a runs folder inside the workspace, with clear errors', async () => {
      await configure({ baseUrl: 'http://127.0.0.1:9/v1', model: 'm' });
      posted.length = 0;
      await api.panel.receive({ type: 'sampleRuns', task: '  ' });
      assert.match(JSON.stringify(posted.find((message) => message.type === 'notice')), /task is empty/);
      posted.length = 0;
      assert.equal(await vscode.commands.executeCommand('apollo.sampleRuns', 'x', 0), undefined);
      assert.match(JSON.stringify(posted.find((message) => message.type === 'notice')), /from 1 to 20/);
      posted.length = 0;
      await configure({ runsPath: 'copies' });
      assert.equal(await vscode.commands.executeCommand('apollo.sampleRuns', 'x', 2), undefined);
      assert.match(JSON.stringify(posted.find((message) => message.type === 'notice')), /inside the workspace/);
      assert.equal(
        await fs.access(path.join(workspaceDir(), 'copies')).then(
          () => true,
          () => false,
        ),
        false,
        'nothing was created',
      );
      assert.equal(api.sessions().filter((session) => session.isLive).length, 0);
    });
  });
});
