import * as assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { ApolloApi } from '../../src/extension';
import type { ChatMessage } from '../../src/core/agent/modelClient';
import { ModelError } from '../../src/core/agent/modelClient';
import type { DatasetEvent, RunStartedEvent, StepEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { RunSession } from '../../src/core/session/runSession';
import { toLmTools } from '../../src/core/agent/languageModelChat';
import { LanguageModelClient, readResponseStream, toLanguageModelMessages } from '../../src/vscode/languageModelClient';
import type { HostToWebview } from '../../src/protocol';
import { startScriptedModelServer, type ScriptedModelServer } from '../fixtures/scriptedModelServer';
import { EXTENSION_ID, until as untilWithin } from './helpers';

/** Runs on a language model take a little longer to start here. */
const until = <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000) => untilWithin(what, probe, timeoutMs);

interface ReceivedRequest {
  messages: vscode.LanguageModelChatMessage[];
  options: vscode.LanguageModelChatRequestOptions | undefined;
  token: vscode.CancellationToken | undefined;
}

/** One reply: the parts the stream yields, then optionally an error that breaks the stream. */
type ScriptedTurn = { parts: unknown[]; breakWith?: Error } | { reject: Error } | { waitForCancel: true };

/**
 * A language model as VS Code hands one out, scripted: the parts it streams are the API's own
 * part classes, so the adapter sees what it would see from a real model.
 */
class ScriptedChat implements vscode.LanguageModelChat {
  readonly id = 'scripted-lm-1';
  readonly name = 'Scripted LM';
  readonly vendor = 'apollo-test';
  readonly family = 'scripted';
  readonly version = '1.0';
  readonly maxInputTokens = 64_000;
  readonly requests: ReceivedRequest[] = [];

  constructor(private readonly script: ScriptedTurn[]) {}

  countTokens(text: string | vscode.LanguageModelChatMessage): Thenable<number> {
    return Promise.resolve(Math.ceil((typeof text === 'string' ? text : JSON.stringify(text.content)).length / 4));
  }

  sendRequest(messages: vscode.LanguageModelChatMessage[], options?: vscode.LanguageModelChatRequestOptions, token?: vscode.CancellationToken): Thenable<vscode.LanguageModelChatResponse> {
    this.requests.push({ messages, options, token });
    const turn = this.script[this.requests.length - 1] ?? { parts: [new vscode.LanguageModelToolCallPart(`call-extra-${this.requests.length}`, 'finish', { summary: 'out of script' })] };
    if ('reject' in turn) return Promise.reject(turn.reject);
    if ('waitForCancel' in turn) {
      return new Promise((_resolve, reject) => {
        if (token?.isCancellationRequested) reject(new vscode.CancellationError());
        token?.onCancellationRequested(() => reject(new vscode.CancellationError()));
      });
    }
    const stream = (async function* () {
      for (const part of turn.parts) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield part;
      }
      if (turn.breakWith) throw turn.breakWith;
    })();
    const text = (async function* () {
      for (const part of turn.parts) if (part instanceof vscode.LanguageModelTextPart) yield part.value;
    })();
    return Promise.resolve({ stream, text });
  }
}

async function tempWorkspace(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'apollo-it-lm-'));
  await fs.writeFile(path.join(dir, 'README.md'), '# A small project\n');
  return dir;
}

describe("VS Code's language models as the agent's model", function () {
  let api: ApolloApi;
  const temps: string[] = [];

  before(async () => {
    const extension = vscode.extensions.getExtension<ApolloApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded`);
    api = await extension.activate();
  });

  after(async () => {
    for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
  });

  it('maps OpenAI-shaped messages and tools to the API and reads a stream back into a turn', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a coding agent.' },
      { role: 'user', content: 'Write two files.' },
      {
        role: 'assistant',
        content: 'Both at once.',
        tool_calls: [
          { id: 'a', type: 'function', function: { name: 'write_file', arguments: '{"path":"a.txt","content":"A"}' } },
          { id: 'b', type: 'function', function: { name: 'write_file', arguments: '{"path":"b.txt"' } },
        ],
      },
      { role: 'tool', tool_call_id: 'a', content: 'wrote a.txt' },
      { role: 'tool', tool_call_id: 'b', content: 'bad arguments' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Hint: ' },
          { type: 'text', text: 'check b.txt' },
        ],
      },
    ];
    const mapped = toLanguageModelMessages(messages);
    assert.deepEqual(
      mapped.map((message) => message.role),
      [
        vscode.LanguageModelChatMessageRole.User,
        vscode.LanguageModelChatMessageRole.User,
        vscode.LanguageModelChatMessageRole.Assistant,
        vscode.LanguageModelChatMessageRole.User,
        vscode.LanguageModelChatMessageRole.User,
      ],
      'system becomes a user message; the two tool results share one user message',
    );
    const texts = (message: vscode.LanguageModelChatMessage) =>
      message.content
        .filter((part) => part instanceof vscode.LanguageModelTextPart)
        .map((part) => part.value)
        .join('');
    assert.equal(texts(mapped[0]), 'You are a coding agent.');
    assert.equal(texts(mapped[4]), 'Hint: check b.txt');
    const assistant = mapped[2].content;
    assert.ok(assistant[0] instanceof vscode.LanguageModelTextPart && assistant[0].value === 'Both at once.');
    const calls = assistant.filter((part): part is vscode.LanguageModelToolCallPart => part instanceof vscode.LanguageModelToolCallPart);
    assert.deepEqual(
      calls.map((call) => [call.callId, call.name, call.input]),
      [
        ['a', 'write_file', { path: 'a.txt', content: 'A' }],
        ['b', 'write_file', {}],
      ],
    );
    const results = mapped[3].content.filter((part): part is vscode.LanguageModelToolResultPart => part instanceof vscode.LanguageModelToolResultPart);
    assert.deepEqual(
      results.map((part) => [part.callId, (part.content[0] as vscode.LanguageModelTextPart).value]),
      [
        ['a', 'wrote a.txt'],
        ['b', 'bad arguments'],
      ],
    );
    assert.ok(results.every((part) => part.content[0] instanceof vscode.LanguageModelTextPart));

    const schema = { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] };
    assert.deepEqual(toLmTools([{ type: 'function', function: { name: 'read_file', description: 'Read a file', parameters: schema } }]), [
      { name: 'read_file', description: 'Read a file', inputSchema: schema },
    ]);

    async function* parts() {
      yield new vscode.LanguageModelTextPart('Reading ');
      yield new vscode.LanguageModelTextPart('it.');
      yield { unknown: 'part' };
      yield new vscode.LanguageModelToolCallPart('c1', 'read_file', { path: 'x' });
    }
    assert.deepEqual(await readResponseStream(parts()), { content: 'Reading it.', toolCalls: [{ id: 'c1', name: 'read_file', arguments: '{"path":"x"}' }], finishReason: 'tool_calls' });
  });

  it('runs an agent on a language model: the tool call is carried out, its result goes back by call id, and the run records provider vscode-lm', async () => {
    const workspace = await tempWorkspace();
    const datasetDir = await fs.mkdtemp(path.join(os.tmpdir(), 'apollo-it-lm-dataset-'));
    temps.push(workspace, datasetDir);
    const chat = new ScriptedChat([
      {
        parts: [
          new vscode.LanguageModelTextPart('I will write the greeting.'),
          new vscode.LanguageModelToolCallPart('call-write-1', 'write_file', { path: 'greeting.txt', content: 'hello from a VS Code model\n' }),
        ],
      },
      { parts: [new vscode.LanguageModelToolCallPart('call-finish-2', 'finish', { summary: 'wrote greeting.txt' })] },
    ]);
    const session = await RunSession.start({
      workspace,
      datasetDir,
      task: 'Write greeting.txt',
      model: '',
      baseUrl: '',
      apiKey: '',
      client: new LanguageModelClient(chat),
      maxSteps: 5,
      grounding: { watch: false },
    });
    const store = new DatasetStore(datasetDir);
    const events = async () => (await store.readEvents(session.runId)).events;
    const ended = await until('the run to end', async () => (await events()).find((event) => event.type === 'run_ended'));
    assert.ok(ended.type === 'run_ended');
    assert.equal(ended.status, 'finished', ended.error);
    assert.equal(await fs.readFile(path.join(workspace, 'greeting.txt'), 'utf8'), 'hello from a VS Code model\n');

    const all: DatasetEvent[] = await events();
    const started = all.find((event): event is RunStartedEvent => event.type === 'run_started')!;
    assert.equal(started.provider, 'vscode-lm');
    assert.equal(started.model, 'scripted-lm-1');
    assert.equal(started.baseUrl, '');
    const steps = all.filter((event): event is StepEvent => event.type === 'step');
    assert.equal(steps[0].assistant.content, 'I will write the greeting.');
    assert.deepEqual(steps[0].action && [steps[0].action.id, steps[0].action.name, JSON.parse(steps[0].action.arguments)], [
      'call-write-1',
      'write_file',
      { path: 'greeting.txt', content: 'hello from a VS Code model\n' },
    ]);
    assert.equal(steps[0].usage, undefined, 'the API gives no token counts and none are invented');
    assert.equal(steps[0].assistant.reasoning, undefined);

    assert.equal(chat.requests.length, 2);
    const [first, second] = chat.requests;
    assert.equal(first.messages[0].role, vscode.LanguageModelChatMessageRole.User, 'the system prompt goes as a user message');
    assert.ok(first.messages[0].content[0] instanceof vscode.LanguageModelTextPart && first.messages[0].content[0].value === started.systemPrompt);
    assert.ok(
      first.messages.some((message) => message.content.some((part) => part instanceof vscode.LanguageModelTextPart && part.value.includes('Write greeting.txt'))),
      'the task is in the first request',
    );
    assert.ok(first.options?.tools?.some((tool) => tool.name === 'write_file' && typeof tool.inputSchema === 'object'));
    assert.equal(first.options?.toolMode, vscode.LanguageModelChatToolMode.Auto);
    assert.ok(first.options?.justification);
    assert.equal(first.options?.modelOptions, undefined, 'nothing model-specific is sent');

    const callIndex = second.messages.findIndex(
      (message) => message.role === vscode.LanguageModelChatMessageRole.Assistant && message.content.some((part) => part instanceof vscode.LanguageModelToolCallPart && part.callId === 'call-write-1'),
    );
    assert.ok(callIndex > 0, 'the second request carries the first call');
    const call = second.messages[callIndex].content.find((part): part is vscode.LanguageModelToolCallPart => part instanceof vscode.LanguageModelToolCallPart)!;
    assert.deepEqual([call.name, call.input], ['write_file', { path: 'greeting.txt', content: 'hello from a VS Code model\n' }]);
    const resultMessage = second.messages[callIndex + 1];
    assert.equal(resultMessage.role, vscode.LanguageModelChatMessageRole.User);
    const result = resultMessage.content.find((part): part is vscode.LanguageModelToolResultPart => part instanceof vscode.LanguageModelToolResultPart);
    assert.ok(result, 'the tool result follows the call in a user message');
    assert.equal(result.callId, 'call-write-1');
    assert.ok(result.content[0] instanceof vscode.LanguageModelTextPart && result.content[0].value === steps[0].observation);
  });

  it('turns the API failures into model errors that say what to do, and cancels a request when the run aborts it', async () => {
    const fails = async (turn: ScriptedTurn, signal?: AbortSignal) => {
      const client = new LanguageModelClient(new ScriptedChat([turn]));
      return client.complete({ messages: [{ role: 'user', content: 'hi' }], signal }).then(
        () => assert.fail('the request should fail'),
        (error: unknown) => {
          assert.ok(error instanceof ModelError, String(error));
          return error;
        },
      );
    };
    const consent = await fails({ reject: vscode.LanguageModelError.NoPermissions('consent refused') });
    assert.equal(consent.kind, 'auth');
    assert.equal(consent.retryable, false);
    assert.match(consent.message, /Allow Apollo/);
    const gone = await fails({ reject: vscode.LanguageModelError.NotFound('no such model') });
    assert.deepEqual([gone.kind, gone.retryable], ['http', false]);
    assert.match(gone.message, /apollo\.model/);
    const blocked = await fails({ reject: vscode.LanguageModelError.Blocked('quota') });
    assert.deepEqual([blocked.kind, blocked.retryable], ['http', false]);
    const broken = await fails({ parts: [new vscode.LanguageModelTextPart('half a rep')], breakWith: new Error('connection reset') });
    assert.deepEqual([broken.kind, broken.retryable], ['protocol', true]);
    assert.match(broken.message, /connection reset/);

    const controller = new AbortController();
    const pending = fails({ waitForCancel: true }, controller.signal);
    setTimeout(() => controller.abort(), 20);
    assert.equal((await pending).kind, 'aborted');

    assert.equal(await new LanguageModelClient(new ScriptedChat([])).contextWindow(), 64_000);
  });

  it('declares the provider and request settings with the scopes a workspace cannot override', () => {
    const properties = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON.contributes.configuration.properties;
    assert.equal(properties['apollo.provider'].scope, 'application');
    assert.deepEqual(properties['apollo.provider'].enum, ['openai-compatible', 'vscode-lm']);
    assert.equal(properties['apollo.provider'].default, 'openai-compatible');
    assert.equal(properties['apollo.request.extra'].scope, 'machine');
    assert.deepEqual(properties['apollo.reasoning.keepInContext'].enum, ['auto', 'always', 'never']);
    assert.equal(properties['apollo.reasoning.keepInContext'].enumDescriptions.length, 3);
    const config = vscode.workspace.getConfiguration('apollo');
    assert.equal(config.get('provider'), 'openai-compatible');
    for (const key of ['request.temperature', 'request.topP', 'request.seed', 'request.maxOutputTokens']) assert.equal(config.get(key), null, `${key} is unset`);
    assert.deepEqual(config.get('request.extra'), {});
    assert.equal(config.get('reasoning.keepInContext'), 'auto');

    const steps = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON.contributes.walkthroughs[0].steps as { id: string; when?: string; description: string }[];
    const offer = steps.find((step) => step.id === 'vscodeModels');
    assert.equal(offer?.when, 'apollo.hasChatModels', 'offered only when VS Code has models');
    assert.match(offer.description, /\(command:apollo\.useVsCodeModels\)/);
    assert.ok(
      steps.some((step) => step.id === 'endpoint'),
      'the endpoint step remains',
    );
  });

  describe('starting runs from the settings', () => {
    const posted: HostToWebview[] = [];
    let subscription: vscode.Disposable | undefined;
    const originalKey = process.env.OPENAI_API_KEY;
    const update = async (values: Record<string, unknown>) => {
      const config = vscode.workspace.getConfiguration('apollo');
      for (const [key, value] of Object.entries(values)) await config.update(key, value, vscode.ConfigurationTarget.Global);
    };

    before(() => {
      subscription = api.panel.onDidPost((message) => posted.push(message));
      process.env.OPENAI_API_KEY = 'integration-test-key';
    });
    let server: ScriptedModelServer | undefined;
    afterEach(async () => {
      for (const session of api.sessions()) await session.stop();
      await server?.close();
      server = undefined;
      posted.length = 0;
      await update({
        provider: undefined,
        baseUrl: undefined,
        model: undefined,
        'request.temperature': undefined,
        'request.seed': undefined,
        'request.topP': undefined,
        'request.extra': undefined,
        'reasoning.keepInContext': undefined,
      });
    });
    after(() => {
      subscription?.dispose();
      process.env.OPENAI_API_KEY = originalKey;
    });

    const errorNotice = () => until('an error notice', () => posted.find((message) => message.type === 'notice' && message.level === 'error'));

    it('sends and records the request settings that are set, and leaves the unset ones to the server', async () => {
      server = await startScriptedModelServer([{ toolCall: { name: 'finish', arguments: { summary: 'nothing to do' } } }]);
      await update({ baseUrl: server.baseUrl, model: 'scripted-model', 'request.temperature': 0.2, 'request.seed': 7, 'request.topP': null, 'request.extra': {}, 'reasoning.keepInContext': 'never' });
      const runId = await vscode.commands.executeCommand<string>('apollo.startRun', 'Sample with settings');
      assert.ok(runId, 'the run started');
      const session = api.sessions().find((candidate) => candidate.runId === runId)!;
      assert.equal((await session.done).status, 'finished');
      const started = (await session.store.readEvents(runId)).events.find((event): event is RunStartedEvent => event.type === 'run_started')!;
      assert.deepEqual(started.sampling, { temperature: 0.2, seed: 7 });
      assert.equal(started.reasoningInContext, 'never');
      assert.equal(started.provider, 'openai-compatible');
      const body = server.requests[0].body;
      assert.deepEqual([body.temperature, body.seed, 'top_p' in body], [0.2, 7, false]);
    });

    it('a bad request setting names the setting and starts nothing', async () => {
      await update({ baseUrl: 'http://127.0.0.1:9/v1', model: 'any', 'request.temperature': 5 });
      const before = api.sessions().length;
      assert.equal(await vscode.commands.executeCommand('apollo.startRun', 'Never starts'), undefined);
      const notice = await errorNotice();
      assert.ok(notice.type === 'notice');
      assert.match(notice.message, /apollo\.request\.temperature/);
      assert.equal(api.sessions().length, before);
    });

    it('on vscode-lm with no language models, says so and starts nothing (and asks for no key)', async function () {
      if ((await vscode.lm.selectChatModels()).length) this.skip();
      await update({ provider: 'vscode-lm', baseUrl: undefined });
      const before = api.sessions().length;
      assert.equal(await vscode.commands.executeCommand('apollo.startRun', 'Never starts either'), undefined);
      const notice = await errorNotice();
      assert.ok(notice.type === 'notice');
      assert.match(notice.message, /no language models/);
      assert.match(notice.message, /apollo\.provider/);
      assert.doesNotMatch(notice.message, /API key|apollo\.baseUrl/);
      assert.equal(api.sessions().length, before);
      // The walkthrough's command says there are none and leaves the provider alone.
      await update({ provider: undefined });
      assert.equal(await vscode.commands.executeCommand('apollo.useVsCodeModels'), 0);
      assert.equal(vscode.workspace.getConfiguration('apollo').get('provider'), 'openai-compatible');
    });
  });

  it('selects a model registered through the real provider API, where VS Code has it', async function () {
    const lm = vscode.lm as unknown as { registerLanguageModelChatProvider?: (vendor: string, provider: unknown) => vscode.Disposable };
    if (typeof lm.registerLanguageModelChatProvider !== 'function') {
      console.log(`Skipped: VS Code ${vscode.version} has no final lm.registerLanguageModelChatProvider (from 1.104); the adapter was driven by a stub LanguageModelChat instead.`);
      this.skip();
    }
    const info = { id: 'apollo-test-registered', name: 'Registered Test Model', family: 'apollo-test', version: '1', maxInputTokens: 8000, maxOutputTokens: 1000, capabilities: { toolCalling: true } };
    let registration: vscode.Disposable;
    try {
      registration = lm.registerLanguageModelChatProvider('apollo-test', {
        provideLanguageModelChatInformation: () => [info],
        provideLanguageModelChatResponse: async (_model: unknown, _messages: unknown, _options: unknown, progress: vscode.Progress<unknown>) => {
          progress.report(new vscode.LanguageModelToolCallPart('registered-1', 'finish', { summary: 'done' }));
        },
        provideTokenCount: async () => 1,
      });
    } catch (error) {
      console.log(`Skipped: registering a test provider failed (${(error as Error).message}); a vendor must be declared in a manifest.`);
      this.skip();
    }
    try {
      const models = await until('the registered model', async () => (await vscode.lm.selectChatModels({ id: info.id })).find((model) => model.id === info.id));
      const turn = await new LanguageModelClient(models).complete({ messages: [{ role: 'user', content: 'finish' }] });
      assert.deepEqual(
        turn.toolCalls.map((call) => [call.id, call.name]),
        [['registered-1', 'finish']],
      );
    } finally {
      registration!.dispose();
    }
  });
});
