/**
 * Who changed what, in a real VS Code: a document saved in an editor while an action runs marks
 * that step mixed, naming the file; a file edited while the model thinks is an external change
 * of that step, outside its action's diff. The panel hears of both.
 */
import * as assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { ApolloApi } from '../../src/extension';
import type { DatasetEvent, ExternalChangeEvent, StepEvent } from '../../src/core/dataset/events';
import type { HostToWebview } from '../../src/protocol';
import { ReplyGate, type ScriptedModelServer, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { EXTENSION_ID, workspaceDir, until, configure } from './helpers';

async function readEvents(api: ApolloApi, runId: string): Promise<DatasetEvent[]> {
  const file = path.join((await api.datasetDir())!, 'runs', runId, 'events.jsonl');
  return (await fs.readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DatasetEvent);
}

/** A command that says it started, then waits (polling, bounded) until the test lets it end. */
const WAITING_COMMAND = 'touch attribution-started.flag; for i in $(seq 600); do [ -e attribution-go.flag ] && break; sleep 0.05; done; echo done';

describe('Apollo attribution of changes', function () {
  let api: ApolloApi;
  let server: ScriptedModelServer | undefined;
  const posted: HostToWebview[] = [];
  const originalKey = process.env.OPENAI_API_KEY;
  const created = ['saved-in-editor.txt', 'edited-while-thinking.txt', 'agent-wrote.txt', 'attribution-started.flag', 'attribution-go.flag'];

  before(async () => {
    const extension = vscode.extensions.getExtension<ApolloApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded`);
    api = await extension.activate();
    api.panel.onDidPost((message) => posted.push(message));
    process.env.OPENAI_API_KEY = 'integration-test-key';
  });

  after(async () => {
    for (const session of api.sessions()) await session.stop();
    await server?.close();
    await configure({ baseUrl: undefined, model: undefined });
    process.env.OPENAI_API_KEY = originalKey;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    for (const name of created) await fs.rm(path.join(workspaceDir(), name), { force: true });
  });

  it('an editor save during an action marks the step mixed with the file; an edit while the model thinks is an external change of the next step', async () => {
    const workspace = workspaceDir();
    const savedFile = path.join(workspace, 'saved-in-editor.txt');
    await fs.writeFile(savedFile, 'as it was\n');
    const thinking = new ReplyGate();
    server = await startScriptedModelServer([
      { toolCall: { name: 'run_command', arguments: { command: WAITING_COMMAND } } },
      { toolCall: { name: 'write_file', arguments: { path: 'agent-wrote.txt', content: 'agent\n' } }, gate: thinking },
      { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
    ]);
    await configure({ baseUrl: server.baseUrl, model: 'scripted-model' });
    const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Attribute the changes');
    assert.ok(runId, 'the run started');

    // Step 1's command runs: the user edits a document and saves it from the editor meanwhile.
    await until('the command to start', () => existsSync(path.join(workspace, 'attribution-started.flag')));
    const document = await vscode.workspace.openTextDocument(vscode.Uri.file(savedFile));
    await vscode.window.showTextDocument(document);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(document.uri, new vscode.Position(1, 0), 'saved from the editor\n');
    assert.ok(await vscode.workspace.applyEdit(edit));
    assert.ok(await document.save(), 'the editor saved the document');
    await fs.writeFile(path.join(workspace, 'attribution-go.flag'), '');

    // Step 2's reply is held: the user edits a file while the model thinks.
    await until('the second request to reach the model', () => thinking.reached);
    await fs.writeFile(path.join(workspace, 'edited-while-thinking.txt'), 'the user, while the model thought\n');
    thinking.open();
    assert.equal((await api.currentSession()!.done).status, 'finished');

    const events = await readEvents(api, runId);
    const steps = events.filter((event): event is StepEvent => event.type === 'step');
    assert.deepEqual(steps[0].grounding.mixed, { files: ['saved-in-editor.txt'] }, 'step 1 is mixed and names the saved file');
    assert.ok(steps[0].grounding.files.some((file) => file.path === 'saved-in-editor.txt'));
    const external = events.filter((event): event is ExternalChangeEvent => event.type === 'external_change');
    assert.deepEqual(
      external.map((event) => [event.step, event.phase, event.grounding.files.map((file) => file.path)]),
      [[2, 'during_request', ['edited-while-thinking.txt']]],
    );
    assert.deepEqual(
      steps[1].grounding.files.map((file) => file.path),
      ['agent-wrote.txt'],
      "the edit made while the model thought is not the agent's",
    );
    assert.equal(steps[1].grounding.mixed, undefined);

    const added = posted.find((message) => message.type === 'stepAdded' && message.step.step === 1);
    assert.ok(added?.type === 'stepAdded');
    assert.deepEqual(added.step.mixed, ['saved-in-editor.txt']);
    assert.ok(
      posted.some(
        (message) => message.type === 'timelineNote' && message.note.kind === 'external' && message.note.step === 2 && message.note.text === 'Changed outside the agent: edited-while-thinking.txt',
      ),
    );
  });
});
