import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunSession } from '../../src/core/session/runSession';
import { defaultDatasetPath } from '../../src/core/dataset/store';
import type { StepEvent } from '../../src/core/dataset/events';
import { detectSandbox } from '../../src/core/agent/sandbox';
import { type CliIo, main } from '../../src/cli/main';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

async function runCommands(commands: string[], options: Partial<Parameters<typeof RunSession.start>[0]> = {}) {
  const ws = makeWorkspace();
  const server = await startScriptedModelServer([
    ...commands.map((command) => ({ toolCall: { name: 'run_command', arguments: { command } } })),
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  try {
    const logs: string[] = [];
    const session = await RunSession.start({
      workspace: ws.dir,
      datasetDir: defaultDatasetPath(ws.dir),
      task: 't',
      model: 'm',
      baseUrl: server.baseUrl,
      apiKey: 'k-0123456789',
      log: (line) => logs.push(line),
      ...options,
    });
    await session.done;
    const steps = (await session.events()).filter((event): event is StepEvent => event.type === 'step');
    return { steps, logs, status: await session.sandboxStatus, ws };
  } finally {
    await server.close();
    ws.cleanup();
  }
}

test('a run sandboxes its commands by default where bubblewrap works: a write to the home folder does not happen', async (t) => {
  const sandbox = await detectSandbox();
  if (sandbox.kind !== 'bwrap') return t.skip(`no sandbox here: ${sandbox.reason}`);
  const marker = path.join(os.homedir(), `apollo-escape-${process.pid}`);
  const { steps, logs, status } = await runCommands([`echo escaped > ${marker}; echo inside > inside.txt`]);
  assert.equal(status.active, true);
  assert.equal(existsSync(marker), false, 'nothing was written outside the workspace');
  assert.deepEqual(
    steps[0].grounding.files.map((file) => file.path),
    ['inside.txt'],
    'the workspace stays writable',
  );
  assert.ok(
    logs.some((line) => line === status.description),
    'the run says once how commands are contained',
  );
});

test('without a sandbox, flagged commands wait for the annotator, and are refused when no one can answer', async () => {
  const asked: string[] = [];
  const answered = await runCommands(['sudo true', 'git push origin main'], {
    sandbox: { mode: 'off', network: true },
    approveCommand: async (request) => {
      asked.push(`${request.rule}: ${request.command}`);
      return request.rule === 'elevate' ? 'deny' : 'allow';
    },
  });
  assert.deepEqual(asked, ['elevate: sudo true', 'publish: git push origin main']);
  assert.match(answered.steps[0].observation, /refused|not run/i);
  assert.equal(answered.status.active, false);
  assert.ok(answered.logs.some((line) => line.startsWith('warning: ') && /sandbox is off/.test(line)));

  const unattended = await runCommands(['sudo true'], { sandbox: { mode: 'off', network: true } });
  assert.match(unattended.steps[0].observation, /^Refused, not run \(command policy, rule "elevate"\)/);
  assert.equal(unattended.steps[0].isError, true);
});

test('apollo run takes --sandbox, --no-network and --allow-command, and refuses a bad --sandbox', async () => {
  const err: string[] = [];
  const io: CliIo = { stdout: () => undefined, stderr: (text) => err.push(text), env: {}, cwd: process.cwd() };
  assert.equal(await main(['run', '--workspace', '.', '--task', 't', '--sandbox', 'maybe'], io), 2);
  assert.match(err.join(''), /--sandbox takes auto or off/);
});
