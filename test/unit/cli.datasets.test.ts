import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import { type CliIo, main } from '../../src/cli/main';
import { DatasetStore, defaultDatasetPath } from '../../src/core/dataset/store';
import { defaultDatasetDir, workspaceKey } from '../../src/core/paths';
import { startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { runStarted, step, writeRun } from '../fixtures/trajectories';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

function io(env: NodeJS.ProcessEnv, cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env, cwd };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

test('a workspace key is readable and stable: the folder name and a hash of the real path', () => {
  assert.match(workspaceKey('/home/dev/my app'), /^my_app-[0-9a-f]{12}$/);
  assert.equal(workspaceKey('/home/dev/my-app'), workspaceKey('/home/dev/my-app'));
  assert.notEqual(workspaceKey('/home/dev/my-app'), workspaceKey('/srv/my-app'));
  assert.match(workspaceKey('/'), /^root-[0-9a-f]{12}$/);
});

test('apollo run records outside the workspace, in $APOLLO_HOME/datasets/<key>; commands naming the run find it from anywhere', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const home = tempDir('apollo-home-');
  const elsewhere = tempDir('apollo-cwd-');
  const server = await startScriptedModelServer([{ toolCall: { name: 'list_dir', arguments: {} } }]);
  const env = { APOLLO_HOME: home.dir, OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' };
  try {
    const run = io(env, elsewhere.dir);
    assert.equal(await main(['run', '--workspace', ws.dir, '--task', 'look around'], run.io), 0, run.err());
    const runId = run.out().split('\n')[0];
    const dataset = path.join(home.dir, 'datasets', workspaceKey(realpathSync(ws.dir)));
    assert.equal(defaultDatasetDir(realpathSync(ws.dir), env), dataset);
    assert.ok(existsSync(path.join(dataset, 'runs', runId, 'events.jsonl')));
    assert.equal(existsSync(path.join(ws.dir, '.apollo')), false, 'nothing is written into the workspace');

    const label = io(env, elsewhere.dir);
    assert.equal(await main(['label', '--run', runId, '--step', '1', '--label', 'bad'], label.io), 0, label.err());
    const hint = io(env, elsewhere.dir);
    assert.equal(await main(['hint', '--run', runId, 'too late'], hint.io), 1);
    assert.match(hint.err(), /has ended/);
    // From inside the workspace (or a folder below it), the workspace's dataset is the default.
    mkdirSync(path.join(ws.dir, 'sub'));
    const stats = io(env, path.join(ws.dir, 'sub'));
    assert.equal(await main(['stats', '--json'], stats.io), 0, stats.err());
    assert.equal(JSON.parse(stats.out()).runs, 1);
    assert.deepEqual(JSON.parse(stats.out()).labelSources, { human: 1, judge: 0, rule: 0 });

    const missing = io(env, elsewhere.dir);
    assert.equal(await main(['label', '--run', '20990101-000000-deadbeef', '--step', '1', '--label', 'bad'], missing.io), 1);
    assert.match(missing.err(), new RegExp(`No run "20990101-000000-deadbeef" in the datasets under ${path.join(home.dir, 'datasets')}.*--dataset DIR`));

    const help = io(env, elsewhere.dir);
    assert.equal(await main(['--help'], help.io), 0);
    assert.match(help.out(), /Datasets live outside the workspace.*\n?.*APOLLO_HOME\/datasets/);
  } finally {
    await server.close();
    ws.cleanup();
    home.cleanup();
    elsewhere.cleanup();
  }
});

test('runs left in <workspace>/.apollo/dataset by earlier versions are named, with the merge that brings them over; after it, nothing more is said', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const home = tempDir('apollo-home-');
  const server = await startScriptedModelServer([], { fallback: { toolCall: { name: 'finish', arguments: { summary: 'done' } } } });
  const env = { APOLLO_HOME: home.dir, OPENAI_API_KEY: 'k-0123456789', OPENAI_BASE_URL: server.baseUrl, OPENAI_MODEL: 'm' };
  const legacy = defaultDatasetPath(realpathSync(ws.dir));
  try {
    await writeRun(new DatasetStore(legacy), '20250101-000000-0000aaaa', [runStarted('20250101-000000-0000aaaa'), step(1)]);
    const dataset = defaultDatasetDir(realpathSync(ws.dir), env);
    const run = io(env, ws.dir);
    assert.equal(await main(['run', '--workspace', ws.dir, '--task', 'go'], run.io), 0, run.err());
    const merge = `apollo merge ${legacy} --into ${dataset}`;
    assert.ok(run.err().includes(`note: 1 run(s) of this workspace are in ${legacy}`), run.err());
    assert.ok(run.err().includes(merge));
    const stats = io(env, ws.dir);
    assert.equal(await main(['stats', '--json'], stats.io), 0);
    assert.ok(stats.err().includes(merge), 'said by the commands that read the dataset too');
    // The old run is still found by its id.
    const label = io(env, ws.dir);
    assert.equal(await main(['label', '--run', '20250101-000000-0000aaaa', '--step', '1', '--label', 'good'], label.io), 0, label.err());

    const merged = io(env, ws.dir);
    assert.equal(await main(['merge', legacy, '--into', dataset], merged.io), 0, merged.err());
    assert.deepEqual((await new DatasetStore(dataset).runIds()).sort()[0], '20250101-000000-0000aaaa');
    assert.ok(existsSync(path.join(legacy, 'runs', '20250101-000000-0000aaaa')), 'the old folder is left as it was');
    const after = io(env, ws.dir);
    assert.equal(await main(['stats'], after.io), 0);
    assert.equal(after.err(), '');
  } finally {
    await server.close();
    ws.cleanup();
    home.cleanup();
  }
});

test('apollo run --resume finds the run in whichever dataset holds it', async () => {
  const ws = makeWorkspace({ 'a.txt': 'a\n' });
  const home = tempDir('apollo-home-');
  const env = { APOLLO_HOME: home.dir, OPENAI_API_KEY: 'k-0123456789' };
  try {
    const other = path.join(home.dir, 'datasets', 'other-workspace-000000000000');
    await writeRun(new DatasetStore(other), '20250101-000000-0000bbbb', [{ ...runStarted('20250101-000000-0000bbbb'), workspace: path.join(home.dir, 'gone') }], 'running');
    const resume = io(env, ws.dir);
    assert.equal(await main(['run', '--resume', '20250101-000000-0000bbbb'], resume.io), 1);
    // Found there: refused for its own reason (its workspace is gone), not for a missing run.
    assert.match(resume.err(), /The run's workspace .*gone no longer exists/);
    await fs.rm(other, { recursive: true });
  } finally {
    ws.cleanup();
    home.cleanup();
  }
});
