import test from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/session/errors';
import { validateRunOptions, validateSampling, type RunOptions } from '../../src/core/session/runSession';

const base = { workspace: '/w', datasetDir: '/d', task: 'Fix it', baseUrl: 'http://127.0.0.1:1/v1', model: 'm', apiKey: 'k' } as RunOptions;

function actionOf(run: () => void): unknown {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    return error.action;
  }
  assert.fail('nothing was refused');
}

test('a refused run says what fixes it: the setting to open, or the command to run', () => {
  assert.deepEqual(
    actionOf(() => validateRunOptions({ ...base, baseUrl: '' })),
    { label: 'Open Settings', setting: 'apollo.baseUrl' },
  );
  assert.deepEqual(
    actionOf(() => validateRunOptions({ ...base, baseUrl: 'ftp://x' })),
    { label: 'Open Settings', setting: 'apollo.baseUrl' },
  );
  assert.deepEqual(
    actionOf(() => validateRunOptions({ ...base, model: '' })),
    { label: 'Open Settings', setting: 'apollo.model' },
  );
  assert.deepEqual(
    actionOf(() => validateRunOptions({ ...base, apiKey: '' })),
    { label: 'Set API Key', command: 'apollo.setApiKey' },
  );
  assert.deepEqual(
    actionOf(() => validateRunOptions({ ...base, maxSteps: 0 })),
    { label: 'Open Settings', setting: 'apollo.maxSteps' },
  );
  assert.deepEqual(
    actionOf(() => validateSampling({ temperature: 3 })),
    { label: 'Open Settings', setting: 'apollo.request.temperature' },
  );
  assert.deepEqual(
    actionOf(() => validateSampling({ extra: { model: 'x' } })),
    { label: 'Open Settings', setting: 'apollo.request.extra' },
  );
  assert.equal(
    actionOf(() => validateRunOptions({ ...base, task: ' ' })),
    undefined,
    'an empty task has no setting to open',
  );
});
