/**
 * A full disk stops a run cleanly: against a real, small file system (a 4 MiB tmpfs that
 * bubblewrap mounts for the CLI), the dataset fills up mid-run. Every event line that was written
 * is whole, run.json is closed and says the disk is full and what to do, and once space is freed
 * `apollo run --resume` goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEventLines } from '../../src/core/dataset/store';
import type { RunManifest } from '../../src/core/dataset/events';
import { DatasetStore, DiskFullError, SPACE_RESERVE_BYTES } from '../../src/core/dataset/store';
import { type ScriptedReply, startScriptedModelServer } from '../fixtures/scriptedModelServer';
import { makeWorkspace, tempDir } from '../fixtures/workspace';

const builtCli = path.resolve(__dirname, '../../../dist/cli.js');
const BWRAP = '/usr/bin/bwrap';

function bwrapWithSize(): string | undefined {
  if (process.platform !== 'linux' || !existsSync(BWRAP)) return 'needs bubblewrap on Linux';
  const probe = spawnSync(BWRAP, ['--bind', '/', '/', '--dev', '/dev', '--size', '65536', '--tmpfs', '/mnt', '--', '/bin/true']);
  return probe.status === 0 ? undefined : `bwrap cannot mount a sized tmpfs here: ${probe.stderr.toString().trim()}`;
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Text that does not compress: each step's file is as big in the shadow store as in the event. */
function noise(seed: number, bytes: number): string {
  let state = seed * 2654435761 + 1;
  let out = '';
  while (out.length < bytes) {
    state = (state * 1103515245 + 12345) % 2147483648;
    out += state.toString(36);
  }
  return out.slice(0, bytes);
}

function checkWhole(dataset: string, runId: string) {
  const file = path.join(dataset, 'runs', runId, 'events.jsonl');
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'), 'the last line is whole');
  const { events, problems } = parseEventLines(text, file);
  assert.deepEqual(problems, [], 'every line parses');
  for (const line of text.split('\n').filter(Boolean)) JSON.parse(line);
  const leftovers = readdirSync(path.join(dataset, 'runs', runId)).filter((name) => name.endsWith('.tmp'));
  assert.deepEqual(leftovers, [], 'no half-written temporary file left');
  return { events, manifest: JSON.parse(readFileSync(path.join(dataset, 'runs', runId, 'run.json'), 'utf8')) as RunManifest };
}

test('a write that finds the disk full leaves nothing torn and says so', async () => {
  const data = tempDir('apollo-dataset-');
  try {
    const store = new DatasetStore(data.dir);
    const writer = await store.createRun({
      id: '20260101-000000-0000cccc',
      task: 't',
      workspace: '/w',
      model: 'm',
      baseUrl: '',
      status: 'running',
      steps: 0,
      createdAt: 'x',
      updatedAt: 'x',
      tokens: { promptTokens: 0, completionTokens: 0 },
    });
    await writer.reserveSpace();
    assert.equal((await fs.stat(path.join(store.runDir(writer.runId), '.reserve'))).size, SPACE_RESERVE_BYTES);
    await writer.releaseReserve();
    assert.equal(existsSync(path.join(store.runDir(writer.runId), '.reserve')), false);
    assert.equal(
      new DiskFullError('/d', Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })).message,
      'The disk holding the dataset /d is full (ENOSPC: no space left on device, write).',
    );
  } finally {
    data.cleanup();
  }
});

test(
  'a full disk stops the run cleanly: whole lines, run.json closed naming the disk, and --resume goes on once space is freed',
  { skip: (!existsSync(builtCli) && 'run npm run build first') || bwrapWithSize() },
  async () => {
    const ws = makeWorkspace({ 'README.md': '# demo\n' });
    const host = tempDir('apollo-fulldisk-');
    const mount = path.join(host.dir, 'small');
    await fs.mkdir(mount);
    let phase: 'fill' | 'finish' = 'fill';
    let served = 0;
    // Until the disk is full: steps that each write 150 KB (recorded in the event and the shadow store).
    const reply = (): ScriptedReply => {
      served++;
      if (phase === 'finish') return { toolCall: { name: 'finish', arguments: { summary: 'done after the resume' } } };
      return { toolCall: { name: 'write_file', arguments: { path: `big-${served}.txt`, content: noise(served, 150_000) } } };
    };
    const server = await startScriptedModelServer([], { fallback: reply as unknown as ScriptedReply, keepRequests: false });
    const dataset = path.join(mount, 'dataset');
    const out = (name: string) => path.join(host.dir, name);
    const cli = `"${process.execPath}" "${builtCli}"`;
    const common = `--dataset "${dataset}" --base-url ${server.baseUrl} --model m --sandbox off`;
    // One mount namespace for both runs: the small file system lives as long as this script.
    const script = [
      'set -u',
      `head -c 2500000 /dev/zero > "${mount}/filler"`,
      `${cli} run --workspace "${ws.dir}" --task "Write big files" --max-steps 40 ${common} > "${out('run1.out')}" 2> "${out('run1.err')}"; echo $? > "${out('run1.code')}"`,
      `cp -a "${dataset}" "${out('after-full')}"`,
      `touch "${out('phase1')}"`,
      `while [ ! -e "${out('go')}" ]; do sleep 0.05; done`,
      `rm "${mount}/filler"`,
      `${cli} run --resume "$(head -n 1 "${out('run1.out')}")" ${common} > "${out('run2.out')}" 2> "${out('run2.err')}"; echo $? > "${out('run2.code')}"`,
      `cp -a "${dataset}" "${out('after-resume')}"`,
    ].join('\n');
    const child = spawn(BWRAP, ['--bind', '/', '/', '--dev', '/dev', '--size', String(4 * 1024 * 1024), '--tmpfs', mount, '--die-with-parent', '--', '/bin/bash', '-c', script], {
      env: { ...process.env, OPENAI_API_KEY: 'k-0123456789' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exited = new Promise((resolve) => child.on('close', resolve));
    try {
      await until('the first run to stop', () => existsSync(out('phase1')), 120_000);
      const run1 = readFileSync(out('run1.out'), 'utf8');
      const runId = run1.split('\n')[0];
      assert.match(runId, /^\d{8}-\d{6}-[0-9a-f]{8}$/, readFileSync(out('run1.err'), 'utf8'));
      assert.equal(readFileSync(out('run1.code'), 'utf8').trim(), '1', 'the CLI says the run did not finish');
      const stderr = readFileSync(out('run1.err'), 'utf8');
      assert.match(stderr, /run \S+ stopped after \d+ step\(s\): The disk holding the dataset .* is full/);

      const full = checkWhole(out('after-full'), runId);
      assert.equal(full.manifest.status, 'stopped', 'run.json is closed, not left "running"');
      assert.equal(full.manifest.resumable, 'disk_full', 'and says it can go on, so the panel offers to resume it');
      assert.match(full.manifest.error ?? '', /disk holding the dataset .* is full.*Free some space .*apollo run --resume/);
      const steps = full.events.filter((event) => event.type === 'step').length;
      assert.ok(steps >= 1 && steps < 20, `the disk filled after a few steps (${steps})`);
      assert.equal(full.manifest.steps, steps);
      assert.ok(
        full.events.some((event) => event.type === 'notice' && /is full/.test(event.message)),
        'the record says why it stopped',
      );
      assert.equal(
        full.events.some((event) => event.type === 'run_ended'),
        false,
        'not ended: it can be resumed',
      );
      assert.equal(existsSync(path.join(out('after-full'), 'runs', runId, '.reserve')), false, 'the reserve was spent on the final state');

      phase = 'finish';
      await fs.writeFile(out('go'), '');
      await exited;
      assert.equal(readFileSync(out('run2.code'), 'utf8').trim(), '0', readFileSync(out('run2.err'), 'utf8'));
      assert.match(readFileSync(out('run2.out'), 'utf8'), /finished after \d+ step\(s\): done after the resume/);
      const resumed = checkWhole(out('after-resume'), runId);
      assert.equal(resumed.manifest.status, 'finished');
      assert.equal(resumed.manifest.error, undefined);
      assert.equal(resumed.manifest.resumable, undefined);
      assert.ok(resumed.events.some((event) => event.type === 'run_state' && event.state === 'resumed'));
      assert.equal(resumed.events.filter((event) => event.type === 'run_ended').length, 1);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await server.close();
      ws.cleanup();
      host.cleanup();
    }
  },
);
