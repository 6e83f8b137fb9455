/**
 * Names that begin with two dots (`..notes`, `..cache/x`) are ordinary names inside the workspace:
 * the file tools use them, and `apollo rewind` over a run that made them goes all the way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RunSession } from '../../src/core/session/runSession';
import { defaultDatasetPath } from '../../src/core/dataset/store';
import type { StepEvent } from '../../src/core/dataset/events';
import { main } from '../../src/cli/main';
import { isInside } from '../../src/core/paths';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace } from '../fixtures/workspace';

test('isInside: a name beginning with ".." is inside; only a ".." component leads out', () => {
  assert.equal(isInside('/ws/..notes', '/ws'), true);
  assert.equal(isInside('/ws/..dir/x', '/ws'), true);
  assert.equal(isInside('/ws/...', '/ws'), true);
  assert.equal(isInside('/ws', '/ws'), true);
  assert.equal(isInside('/', '/ws'), false);
  assert.equal(isInside('/other', '/ws'), false);
  assert.equal(isInside('/ws/../x', '/ws'), false);
  assert.equal(isInside('/wsx', '/ws'), false);
});

test('apollo rewind over a run that made "..notes" and "..cache/x" restores the workspace and completes', async () => {
  const ws = makeWorkspace({ 'README.md': '# demo\n' });
  const server = await startScriptedModelServer([
    { toolCall: { name: 'write_file', arguments: { path: 'a.txt', content: 'a\n' } } },
    { toolCall: { name: 'write_file', arguments: { path: '..notes', content: 'notes\n' } } },
    { toolCall: { name: 'run_command', arguments: { command: 'mkdir -p ..cache && echo x > ..cache/x && echo more >> ..notes' } } },
    { toolCall: { name: 'read_file', arguments: { path: '..notes' } } },
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  try {
    const datasetDir = defaultDatasetPath(ws.dir);
    const session = await RunSession.start({ workspace: ws.dir, datasetDir, task: 'Take notes', model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: 10 });
    assert.equal((await session.done).status, 'finished');
    const steps = (await session.events()).filter((event): event is StepEvent => event.type === 'step');
    assert.equal(steps[1].observation, 'Wrote 6 bytes to ..notes.');
    assert.equal(steps[3].observation, 'notes\nmore\n');
    assert.deepEqual(steps[2].grounding.files.map((file) => file.path).sort(), ['..cache/x', '..notes']);

    const out: string[] = [];
    const err: string[] = [];
    const io = { cwd: ws.dir, env: {}, stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text) };
    assert.equal(await main(['rewind', '--dataset', datasetDir, '--run', session.runId, '--to-step', '2'], io), 0, err.join(''));
    assert.equal(await fs.readFile(path.join(ws.dir, 'a.txt'), 'utf8'), 'a\n');
    await assert.rejects(fs.access(path.join(ws.dir, '..notes')), 'the file made at step 2 is gone');
    await assert.rejects(fs.access(path.join(ws.dir, '..cache')), 'and the folder made at step 3');
  } finally {
    await server.close();
    ws.cleanup();
  }
});
