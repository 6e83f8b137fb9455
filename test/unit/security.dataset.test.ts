/**
 * The dataset and the shadow store stay out of the agent's reach even when the user keeps the
 * dataset inside the workspace: against the real bubblewrap sandbox, commands try to rename,
 * remove, replace or link their way to it, then a second run looks for what the first one did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, promises as fs, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { detectSandbox } from '../../src/core/agent/sandbox';
import type { DatasetEvent, StepEvent } from '../../src/core/dataset/events';
import { DatasetStore } from '../../src/core/dataset/store';
import { SHADOW_FOLDER } from '../../src/core/grounding/shadowStore';
import { ConfigError } from '../../src/core/session/errors';
import { RunSession } from '../../src/core/session/runSession';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { folderOutsideTmp, git, makeWorkspace } from '../fixtures/workspace';

const FORGED = '{"type":"label","time":"2026-01-01T00:00:00.000Z","step":1,"label":"good","source":"human","reason":"forged"}';

async function runCommands(workspace: string, datasetDir: string, task: string, commands: string[]) {
  const server = await startScriptedModelServer([
    ...commands.map((command) => ({ toolCall: { name: 'run_command', arguments: { command } } })),
    { toolCall: { name: 'finish', arguments: { summary: 'done' } } },
  ]);
  try {
    const session = await RunSession.start({ workspace, datasetDir, task, model: 'm', baseUrl: server.baseUrl, apiKey: 'k-0123456789', maxSteps: commands.length + 2 });
    const ended = await session.done;
    const events = await session.events();
    return { runId: session.runId, ended, events, steps: events.filter((event): event is StepEvent => event.type === 'step'), sandbox: await session.sandboxStatus };
  } finally {
    await server.close();
  }
}

const observations = (steps: StepEvent[]) => steps.map((step) => step.observation).join('\n');

function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else found.push(full);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

test('a dataset kept inside the workspace cannot be renamed, removed, replaced or linked to from a command; a second run finds it whole', async (t) => {
  const sandbox = await detectSandbox();
  if (sandbox.kind !== 'bwrap') return t.skip(`no sandbox here: ${sandbox.reason}`);
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  mkdirSync(folderOutsideTmp('.security-tests'), { recursive: true });
  const outside = mkdtempSync(path.join(folderOutsideTmp('.security-tests'), 'outside-'));
  const marker = path.join(outside, 'marker');
  const datasetDir = path.join(ws.dir, '.apollo', 'dataset');
  const secretTask = `task-secret-${process.pid}`;
  const hook = `printf '#!/bin/sh\\ntouch ${marker}\\n'`;
  try {
    const first = await runCommands(ws.dir, datasetDir, secretTask, [
      'mv .apollo .apollo-m',
      'mv .apollo/dataset .apollo/dataset-old',
      'rm -rf .apollo; ls -A .apollo',
      `rm -rf .apollo/dataset && ln -s ${outside} .apollo/dataset`,
      'ln -s .apollo/dataset ds-link; ls -A ds-link/; cat ds-link/runs/*/events.jsonl',
      'ln .apollo/dataset/runs/*/events.jsonl hard.jsonl; ln .apollo/dataset/runs/*/run.json hard.json',
      `for f in .apollo/dataset/runs/*/events.jsonl; do echo '${FORGED}' >> "$f"; done; echo '${FORGED}' >> .apollo/dataset/runs/x/events.jsonl`,
      `mkdir -p .apollo/dataset/${SHADOW_FOLDER}/hooks; for d in .apollo/dataset/${SHADOW_FOLDER}/*.git; do ${hook} > "$d/hooks/post-commit"; done; ${hook} > .apollo/dataset/${SHADOW_FOLDER}/hooks/pre-commit`,
      `echo escaped > ${marker}`,
    ]);
    assert.equal(first.sandbox.active, true);
    assert.equal(first.ended.status, 'finished');
    const seen = observations(first.steps);
    assert.doesNotMatch(seen, new RegExp(secretTask), 'nothing of the record was read');
    assert.match(first.steps[0].observation, /busy/i, 'the rename was refused');
    assert.equal(existsSync(path.join(ws.dir, '.apollo-m')), false);
    assert.ok(lstatSync(path.join(ws.dir, '.apollo')).isDirectory());
    assert.ok(lstatSync(datasetDir).isDirectory(), 'the dataset is still a folder, not a link');
    assert.equal(existsSync(path.join(ws.dir, '.apollo', 'dataset-old')), false);
    assert.equal(existsSync(path.join(ws.dir, 'hard.jsonl')), false);
    assert.equal(existsSync(path.join(ws.dir, 'hard.json')), false);

    // The second run: what the first run's commands did would show here.
    const second = await runCommands(ws.dir, datasetDir, 'Look around', [
      'ls -A .apollo-m .apollo .apollo/dataset; cat .apollo-m/dataset/runs/*/events.jsonl',
      `for f in .apollo-m/dataset/runs/*/events.jsonl ds-link/runs/*/events.jsonl; do echo '${FORGED}' >> "$f"; done`,
      `for d in .apollo-m/dataset/${SHADOW_FOLDER}/*.git; do ${hook} > "$d/hooks/post-commit"; done`,
    ]);
    assert.equal(second.ended.status, 'finished');
    assert.doesNotMatch(observations(second.steps), new RegExp(secretTask), 'the first run stays unreadable');

    const store = new DatasetStore(datasetDir);
    for (const runId of [first.runId, second.runId]) {
      const { events, problems } = await store.readEvents(runId);
      assert.deepEqual(problems, []);
      const labels = events.filter((event): event is Extract<DatasetEvent, { type: 'label' }> => event.type === 'label');
      assert.deepEqual(
        labels.filter((label) => label.source === 'human'),
        [],
        `no forged human label in run ${runId}`,
      );
      assert.doesNotMatch(readFileSync(path.join(store.runDir(runId), 'events.jsonl'), 'utf8'), /"reason":"forged"/);
    }
    const planted = filesUnder(path.join(datasetDir, SHADOW_FOLDER)).filter((file) => /hooks/.test(file) && readFileSync(file, 'utf8').includes(marker));
    assert.deepEqual(planted, [], 'no hook planted in the shadow store');
    // The store still works as git: snapshots of the second run were taken after the attempts.
    assert.ok(second.steps.every((step) => step.grounding.before && step.grounding.after));
    assert.equal(existsSync(marker), false, 'nothing was written outside');
    assert.deepEqual(readdirSync(outside), []);
    assert.equal(git(ws.dir, 'status', '--porcelain', '--', '.apollo'), '', 'the dataset stays out of git status');
  } finally {
    ws.cleanup();
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a run refuses a dataset reached through a symbolic link inside the workspace, and writes nothing through it', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  mkdirSync(folderOutsideTmp('.security-tests'), { recursive: true });
  const elsewhere = mkdtempSync(path.join(folderOutsideTmp('.security-tests'), 'elsewhere-'));
  try {
    // As a command could have left it: .apollo swapped for a link to a folder of its choosing.
    await fs.symlink(elsewhere, path.join(ws.dir, '.apollo'));
    await assert.rejects(
      RunSession.start({ workspace: ws.dir, datasetDir: path.join(ws.dir, '.apollo', 'dataset'), task: 't', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /reached through the symbolic link .*\.apollo .*inside the workspace.*Remove the link.*Nothing was recorded/);
        return true;
      },
    );
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing was created through the link');
    // The same folder given by its real path is the user's choice: accepted.
    const session = await RunSession.start({ workspace: ws.dir, datasetDir: path.join(elsewhere, 'dataset'), task: 't', model: 'm', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k', maxSteps: 1 });
    await session.stop();
  } finally {
    ws.cleanup();
    rmSync(elsewhere, { recursive: true, force: true });
  }
});
