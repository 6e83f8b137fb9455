import { FakeInputBox, replace, restoreAll, until } from '../fixtures/vscodeSeam';
import test from 'node:test';
import assert from 'node:assert/strict';
import * as commands from '../../src/vscode/vscodeApis/commands';
import * as window from '../../src/vscode/vscodeApis/window';
import * as workspace from '../../src/vscode/vscodeApis/workspace';
import { RunController } from '../../src/vscode/runController';
import { runTaskSuite } from '../../src/vscode/taskSuiteCommand';
import { ConfigError, MANAGE_TRUST, openSetting, SET_API_KEY, USE_ENDPOINT } from '../../src/core/session/errors';
import type { HostToWebview } from '../../src/protocol';

/** A controller whose VS Code is fakes: what it shows, runs and writes is recorded. */
function controller(options: { choose?: (message: string, items: string[]) => string | undefined; trusted?: boolean; folder?: string } = {}) {
  const shown: { message: string; items: string[] }[] = [];
  const ran: unknown[][] = [];
  const written: [string, unknown][] = [];
  const posted: HostToWebview[] = [];
  replace(window, 'createStatusBarItem', (() => ({ show() {}, hide() {}, dispose() {} })) as unknown as typeof window.createStatusBarItem);
  replace(commands, 'setContext', async () => undefined);
  replace(window, 'showErrorMessage', async (message: string, ...items: string[]) => {
    shown.push({ message, items });
    return options.choose?.(message, items);
  });
  replace(commands, 'executeCommand', (async (...args: unknown[]) => void ran.push(args)) as typeof commands.executeCommand);
  replace(commands, 'openSettings', async (query: string) => void ran.push(['openSettings', query]));
  replace(workspace, 'updateUserSetting', async (key: string, value: unknown) => void written.push([key, value]));
  replace(workspace, 'isTrusted', () => options.trusted ?? true);
  replace(workspace, 'firstFolder', () => (options.folder ? { path: options.folder, onDisk: true } : undefined));
  const log = { info() {}, warn() {}, error() {} };
  const run = new RunController({} as never, log as never);
  run.attachPanel({ post: (message) => posted.push(message) });
  return { run, shown, ran, written, posted };
}

test('report() offers the fix the error carries, and runs it when chosen', async (t) => {
  t.after(restoreAll);
  const cases = [
    { action: openSetting('apollo.baseUrl'), button: 'Open Settings', ran: [['openSettings', 'apollo.baseUrl']], written: [] },
    { action: SET_API_KEY, button: 'Set API Key', ran: [['apollo.setApiKey']], written: [] },
    { action: MANAGE_TRUST, button: 'Manage Workspace Trust', ran: [['workbench.trust.manage']], written: [] },
    { action: USE_ENDPOINT, button: 'Use an OpenAI-Compatible Endpoint', ran: [['openSettings', 'apollo.baseUrl']], written: [['apollo.provider', 'openai-compatible']] },
  ];
  for (const expected of cases) {
    const { run, shown, ran, written, posted } = controller({ choose: (_message, items) => items[0] });
    run.report(new ConfigError('Something to fix.', expected.action));
    await until(`the fix "${expected.button}"`, () => ran.length > 0);
    assert.deepEqual(shown, [{ message: 'Something to fix.', items: [expected.button] }]);
    assert.deepEqual(ran, expected.ran);
    assert.deepEqual(written, expected.written);
    assert.deepEqual(posted, [{ type: 'notice', level: 'error', message: 'Something to fix.' }]);
    restoreAll();
  }
});

test('report() reads no buttons out of the text, and a dismissed notification runs nothing', async (t) => {
  t.after(restoreAll);
  const { run, shown, ran } = controller({ choose: () => undefined });
  run.report(new Error('No API key: run "Apollo: Set API Key"; see apollo.baseUrl in an untrusted folder.'));
  run.report(new ConfigError('Set apollo.model.', openSetting('apollo.model')));
  await until('both notifications', () => shown.length === 2);
  assert.deepEqual(
    shown.map((entry) => entry.items),
    [[], ['Open Settings']],
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(ran, []);
});

test('the workspace preamble: an untrusted folder offers trust, no folder says to open one', async (t) => {
  t.after(restoreAll);
  let { run, shown } = controller({ trusted: false, folder: '/nowhere' });
  assert.equal(await run.startRun('Fix it'), undefined);
  assert.deepEqual(shown, [{ message: 'Apollo does not start runs in an untrusted workspace: the agent edits files and runs commands. Trust this folder first.', items: ['Manage Workspace Trust'] }]);
  restoreAll();
  ({ run, shown } = controller({ trusted: true }));
  await run.sampleRuns('Fix it', 2);
  await run.resume();
  assert.deepEqual(
    shown.map((entry) => entry.message),
    ['Open a folder first: sampled runs work in copies of a workspace folder.', 'Open a folder first: runs are recorded in the workspace.'],
  );
});

/** The controller with its hint delivery recorded instead of sent to a run. */
function hintController() {
  const box = new FakeInputBox();
  const picks: unknown[] = [];
  const sent: unknown[][] = [];
  const parts = controller();
  replace(window, 'createInputBox', (() => box) as unknown as typeof window.createInputBox);
  replace(window, 'inputButton', ((icon: string, tooltip: string) => ({ icon, tooltip })) as unknown as typeof window.inputButton);
  parts.run.injectHint = async (...args: unknown[]) => {
    sent.push(args);
    return 'hint-1';
  };
  return { ...parts, box, picks, sent };
}

test('Inject Hint asks once: typed prefixes set the kind and urgency, the prompt says what Enter sends', async (t) => {
  t.after(restoreAll);
  const { run, box, sent } = hintController();
  const answer = run.injectHintCommand();
  await until('the input box', () => box.visible);
  assert.equal(box.title, 'Apollo: Inject Hint');
  assert.match(box.placeholder ?? '', /"strategy:" or "correction:".*"!" or "now:"/);
  assert.match(box.prompt ?? '', /Type the hint/);
  box.type('strategy: ! read the parser first');
  assert.match(box.prompt ?? '', /^A strategy hint .*delivered now/);
  box.type('  ');
  box.accept();
  assert.match(box.validationMessage ?? '', /Type the hint/, 'an empty hint is not sent');
  assert.equal(box.disposed, false);
  box.type('strategy: ! read the parser first');
  box.accept();
  assert.equal(await answer, 'hint-1');
  assert.deepEqual(sent, [['read the parser first', 'strategy', 'now', undefined]]);
  assert.equal(box.disposed, true);
});

test('Inject Hint: Options… offers the kind and urgency, and the box comes back with the hint as typed', async (t) => {
  t.after(restoreAll);
  const { run, box, sent } = hintController();
  let offered: { label: string }[] = [];
  replace(window, 'showQuickPick', (async (items: readonly { label: string }[]) => {
    box.hide(); // VS Code hides the input box while another quick input shows
    offered = [...items];
    return items.find((item) => item.label === 'correction, now');
  }) as typeof window.showQuickPick);
  const answer = run.injectHintCommand(undefined, undefined, undefined, 'run-7');
  await until('the input box', () => box.visible);
  box.type('stop editing the tests');
  box.press(box.buttons[0]);
  await until('the box again after the pick', () => offered.length && box.visible);
  assert.equal(offered.length, 6);
  assert.equal(offered[0].label, 'knowledge', 'the current choice first');
  assert.equal(box.value, 'stop editing the tests');
  assert.match(box.prompt ?? '', /^A correction hint .*delivered now/);
  box.accept();
  await answer;
  assert.deepEqual(sent, [['stop editing the tests', 'correction', 'now', 'run-7']]);
});

test('Inject Hint: Escape sends nothing; a text given by a caller is sent without asking', async (t) => {
  t.after(restoreAll);
  const { run, box, sent } = hintController();
  const answer = run.injectHintCommand();
  await until('the input box', () => box.visible);
  box.type('half a thought');
  box.hide();
  assert.equal(await answer, undefined);
  assert.deepEqual(sent, []);
  assert.equal(await run.injectHintCommand('Use the fixtures', 'correction', 'now', 'run-2'), 'hint-1');
  assert.equal(await run.injectHintCommand('Unknown kind', 'opinion', 'later'), 'hint-1');
  assert.deepEqual(sent, [
    ['Use the fixtures', 'correction', 'now', 'run-2'],
    ['Unknown kind', 'knowledge', 'next', undefined],
  ]);
});

test('a hint with no run going says so, with nothing to click', async (t) => {
  t.after(restoreAll);
  const { run, shown } = controller();
  assert.equal(await run.injectHint('hello'), undefined);
  assert.deepEqual(shown, [{ message: 'No run is going: start one with "Apollo: Start Run".', items: [] }]);
});

test('Run Task Suite keeps to the workspace preamble: untrusted or no folder, nothing is asked and nothing runs', async (t) => {
  t.after(restoreAll);
  let { run, shown } = controller({ trusted: false, folder: '/nowhere' });
  let asked = 0;
  replace(window, 'showFolderDialog', async () => void asked++);
  assert.equal(await runTaskSuite(run), undefined);
  assert.deepEqual(shown, [
    { message: 'Apollo does not run task suites in an untrusted workspace: each agent edits files and runs commands. Trust this folder first.', items: ['Manage Workspace Trust'] },
  ]);
  restoreAll();
  ({ run, shown } = controller({ trusted: true }));
  replace(window, 'showFolderDialog', async () => void asked++);
  assert.equal(await runTaskSuite(run, '/suite', 1), undefined);
  assert.deepEqual(
    shown.map((entry) => entry.message),
    ['Open a folder first: the runs of a suite are recorded in the dataset of a workspace folder.'],
  );
  assert.equal(asked, 0);
});
