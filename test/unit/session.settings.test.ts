/**
 * The settings a run is started with (readApolloSettings): defaults, values checked and
 * normalised, the security settings taken from the user's value only, and the keys from the
 * secret storage; the settings come from layered plain objects as VS Code layers them.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { workspaceKey } from '../../src/core/paths';
import { API_KEY_SECRET, JUDGE_API_KEY_SECRET, readApolloSettings, readMaskPolicy, type SettingsContext, userAllowList, userSandboxMode } from '../../src/core/session/settings';
import { type Layers, settingsSource } from '../fixtures/settingsSource';
import { tempDir } from '../fixtures/workspace';

const env = { APOLLO_HOME: path.resolve('/home/someone/.apollo-test') };

function read(layers: Layers, context: Partial<SettingsContext> = {}, secrets: Record<string, string> = {}) {
  const asked: string[] = [];
  const settings = readApolloSettings(settingsSource(layers), {
    secret: async (name) => (asked.push(name), secrets[name]),
    workspace: path.resolve('/projects/demo'),
    allow: () => [],
    env,
    ...context,
  });
  return settings.then((value) => ({ settings: value, asked }));
}

test('with nothing set: the defaults, the dataset in the extension storage keyed by the workspace, and what the endpoint lacks', async (t) => {
  const workspace = tempDir('apollo-settings-');
  t.after(workspace.cleanup);
  const storage = path.resolve('/storage/apollo');
  const { settings, asked } = await read({}, { workspace: workspace.dir, storage });
  assert.equal(settings.datasetDir, path.join(storage, 'datasets', workspaceKey(realpathSync(workspace.dir))));
  assert.equal(settings.runsDir, path.join(env.APOLLO_HOME, 'runs'));
  assert.deepEqual(
    { ...settings, sandbox: { ...settings.sandbox, allow: undefined }, datasetDir: undefined, runsDir: undefined },
    {
      provider: 'openai-compatible',
      reasoningInContext: 'auto',
      maskPolicy: 'not-bad',
      secretsToModel: false,
      sandbox: { mode: 'auto', network: true, allow: undefined },
      endpoint: {
        baseUrl: '',
        model: '',
        apiKey: '',
        problem: 'No model endpoint configured: set "apollo.baseUrl" (or OPENAI_BASE_URL).',
        action: { label: 'Open Settings', setting: 'apollo.baseUrl' },
      },
      datasetDir: undefined,
      maxSteps: 50,
      contextBudget: 0,
      grounding: { exclude: [], maxFileBytes: 10 * 1024 * 1024 },
      budget: {},
      runsDir: undefined,
      sampleCount: 3,
      concurrency: 3,
    },
  );
  assert.deepEqual(asked, [API_KEY_SECRET], 'the judge key is not read while the judge is off');
  const noStorage = await read({}, { workspace: workspace.dir });
  assert.equal(noStorage.settings.datasetDir, path.join(env.APOLLO_HOME, 'datasets', workspaceKey(realpathSync(workspace.dir))), "the CLI's folder without extension storage");
});

test("a workspace's values of security settings never count; its other values do", async () => {
  const workspaceValues = {
    provider: 'vscode-lm',
    baseUrl: 'https://attacker.example/v1',
    'judge.baseUrl': 'https://attacker.example/judge',
    'sandbox.mode': 'off',
    'sandbox.network': false,
    'sandbox.allow': ['curl *'],
    'secrets.showToModel': true,
    datasetPath: '/tmp/elsewhere',
    runsPath: '/tmp/runs-elsewhere',
    'grounding.exclude': ['**'],
    'request.extra': { stream: false },
    model: 'workspace-model',
    maxSteps: 7,
    'judge.enabled': true,
  };
  const { settings } = await read({ user: { baseUrl: 'https://models.example/v1' }, workspace: workspaceValues }, {}, { [API_KEY_SECRET]: 'sk-user' });
  assert.equal(settings.provider, 'openai-compatible');
  assert.deepEqual(settings.endpoint, { baseUrl: 'https://models.example/v1', model: 'workspace-model', apiKey: 'sk-user' });
  assert.deepEqual({ mode: settings.sandbox.mode, network: settings.sandbox.network }, { mode: 'auto', network: true });
  assert.equal(settings.secretsToModel, false);
  assert.equal(settings.datasetDir.startsWith(path.join(env.APOLLO_HOME, 'datasets')), true, settings.datasetDir);
  assert.equal(settings.runsDir, path.join(env.APOLLO_HOME, 'runs'));
  assert.deepEqual(settings.grounding.exclude, []);
  assert.equal(settings.sampling, undefined);
  assert.equal(settings.maxSteps, 7);
  assert.deepEqual(settings.judge, { baseUrl: 'https://models.example/v1', model: 'workspace-model', apiKey: 'sk-user', batchSize: 8 }, "the judge defaults to the agent's endpoint");

  const folder = settingsSource({ user: { 'sandbox.allow': ['npm test', 7, 'make'] }, folder: { 'sandbox.allow': ['rm -rf /'] } });
  assert.deepEqual(userAllowList(folder), ['npm test', 'make']);
});

test('values are normalised: paths from the workspace and home, limits rounded, unknown policies and empty extras dropped', async () => {
  const workspace = path.resolve('/projects/demo');
  const { settings, asked } = await read(
    {
      defaults: { 'request.temperature': null, 'request.extra': {} },
      user: {
        datasetPath: '  ~/datasets/demo ',
        runsPath: 'copies',
        'grounding.exclude': ['dist/**', 3, null],
        'judge.baseUrl': ' https://judge.example/v1 ',
        provider: 'vscode-lm',
        'secrets.showToModel': 'yes',
      },
      workspace: {
        'grounding.maxFileSizeMb': 0.5,
        'budget.maxMinutes': -5,
        'budget.maxTokens': 1234.6,
        'sample.count': 0,
        'sample.concurrency': 2.6,
        maskPolicy: 'whatever',
        'request.seed': 42,
        'request.topP': 0.9,
        'judge.enabled': true,
        'judge.model': ' judge-1 ',
        'judge.batchSize': 3,
        'reasoning.keepInContext': 'never',
      },
    },
    {},
    { [JUDGE_API_KEY_SECRET]: 'sk-judge' },
  );
  assert.equal(settings.datasetDir, path.join(os.homedir(), 'datasets', 'demo'));
  assert.equal(settings.runsDir, path.join(workspace, 'copies'));
  assert.deepEqual(settings.grounding, { exclude: ['dist/**'], maxFileBytes: 524288 });
  assert.deepEqual(settings.budget, { maxTokens: 1235 });
  assert.deepEqual([settings.sampleCount, settings.concurrency], [1, 3]);
  assert.equal(settings.maskPolicy, 'not-bad');
  assert.deepEqual(settings.sampling, { topP: 0.9, seed: 42 });
  assert.equal(settings.provider, 'vscode-lm');
  assert.equal(settings.secretsToModel, false, 'only true itself shows secrets to the model');
  assert.equal(settings.reasoningInContext, 'never');
  assert.deepEqual(settings.judge, { baseUrl: 'https://judge.example/v1', model: 'judge-1', apiKey: 'sk-judge', batchSize: 3 });
  assert.deepEqual(asked, [API_KEY_SECRET, JUDGE_API_KEY_SECRET]);

  const extra = await read({ user: { 'request.extra': { top_k: 20 } } });
  assert.deepEqual(extra.settings.sampling, { extra: { top_k: 20 } });
  const wrong = await read({ user: { 'request.extra': 'top_k=20' } });
  assert.deepEqual(wrong.settings.sampling, { extra: 'top_k=20' }, 'left for the check at the start of a run to name');
  assert.equal(readMaskPolicy(settingsSource({ user: { maskPolicy: 'good-only' } })), 'good-only');
});

test('the endpoint falls back to the standard OpenAI variables, and the allow list is read at every check', async () => {
  let allowed = ['npm test'];
  const { settings } = await read({}, { env: { ...env, OPENAI_BASE_URL: 'http://localhost:8000/v1', OPENAI_MODEL: 'local', OPENAI_API_KEY: 'sk-env' }, allow: () => allowed });
  assert.deepEqual(settings.endpoint, { baseUrl: 'http://localhost:8000/v1', model: 'local', apiKey: 'sk-env' });
  const allow = settings.sandbox.allow as () => string[];
  assert.deepEqual(allow(), ['npm test']);
  allowed = ['npm test', 'make'];
  assert.deepEqual(allow(), ['npm test', 'make']);
});

test('the sandbox mode: apollo.sandbox.mode, else the old apollo.sandbox string of the user, else what could not be moved', async () => {
  assert.equal(userSandboxMode(settingsSource({ user: { 'sandbox.mode': 'off', sandbox: 'auto' } })), 'off');
  assert.equal(userSandboxMode(settingsSource({ user: { sandbox: 'off' } })), 'off');
  assert.equal(userSandboxMode(settingsSource({ user: { sandbox: { network: false } } })), 'auto', 'an object there is the new settings, not the old string');
  assert.equal(userSandboxMode(settingsSource({ workspace: { sandbox: 'off', 'sandbox.mode': 'off' } })), 'auto');
  assert.equal(userSandboxMode(settingsSource({}), 'off'), 'off');
  assert.equal(userSandboxMode(settingsSource({ user: { 'sandbox.mode': 'sometimes' } })), 'auto');
  const { settings } = await read({}, { legacySandboxMode: 'off' });
  assert.equal(settings.sandbox.mode, 'off');
});
