import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { capText, ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { tempDir } from '../fixtures/workspace';

function call(name: string, args: unknown) {
  return { id: 'c1', name, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
}

test('file tools, commands and refusals give clear observations', async () => {
  const tmp = tempDir();
  try {
    const dataset = path.join(tmp.dir, '.apollo', 'dataset');
    await fs.mkdir(dataset, { recursive: true });
    const tools = new ToolRunner({ workspace: tmp.dir, guard: new WorkspaceGuard(tmp.dir, [dataset]), maxObservationChars: 200 });

    assert.deepEqual(await tools.run(call('write_file', { path: 'dir/a.txt', content: 'hello\n' })), { observation: 'Wrote 6 bytes to dir/a.txt.', isError: false });
    assert.equal((await tools.run(call('read_file', { path: 'dir/a.txt' }))).observation, 'hello\n');
    const listing = await tools.run(call('list_dir', {}));
    assert.equal(listing.observation, 'dir/'); // the dataset folder is hidden
    const command = await tools.run(call('run_command', { command: 'echo out; echo err 1>&2; exit 3' }));
    assert.equal(command.isError, true);
    assert.match(command.observation, /out\nerr\n\[exit code 3\]/);
    const slow = await tools.run(call('run_command', { command: 'sleep 5', timeout_seconds: 0.3 }));
    assert.match(slow.observation, /Timed out after 0 s/);
    const long = await tools.run(call('run_command', { command: 'seq 1 2000' }));
    assert.match(long.observation, /characters omitted/);
    assert.match(long.observation, /2000\n/);

    assert.match((await tools.run(call('read_file', '{"path": "a.txt"'))).observation, /not a valid JSON object/);
    assert.match((await tools.run(call('write_file', { path: 'x' }))).observation, /needs "content"/);
    assert.match((await tools.run(call('delete_everything', {}))).observation, /Unknown tool "delete_everything"/);
    assert.match((await tools.run(call('read_file', { path: '../../etc/passwd' }))).observation, /outside the workspace/);
    assert.match((await tools.run(call('write_file', { path: '.apollo/dataset/x', content: '' }))).observation, /dataset folder/);
    assert.match((await tools.run(call('read_file', { path: 'missing.txt' }))).observation, /No such file/);
    assert.deepEqual((await tools.run(call('finish', { summary: 'ok' }))).finished, { summary: 'ok' });
  } finally {
    tmp.cleanup();
  }
});

test('capText keeps head and tail', () => {
  assert.equal(capText('short', 10), 'short');
  const capped = capText('a'.repeat(50) + 'b'.repeat(50), 20);
  assert.match(capped, /^a{10}\n\[… 80 characters omitted …\]\nb{10}$/);
});
