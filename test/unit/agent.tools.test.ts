import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { capText, ToolRunner } from '../../src/core/agent/tools';
import { WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { tempDir } from '../fixtures/workspace';
import { until } from '../fixtures/poll';

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

test('edit_file replaces one exact, unique occurrence and refuses anything else', async () => {
  const tmp = tempDir();
  try {
    await fs.writeFile(path.join(tmp.dir, 'a.py'), 'x = 1\ny = 1\nx = 1\n');
    const tools = new ToolRunner({ workspace: tmp.dir, guard: new WorkspaceGuard(tmp.dir, []) });
    const missing = await tools.run(call('edit_file', { path: 'a.py', old_text: 'z = 1', new_text: 'z = 2' }));
    assert.equal(missing.isError, true);
    assert.match(missing.observation, /not found in a\.py; nothing was changed/);
    const twice = await tools.run(call('edit_file', { path: 'a.py', old_text: 'x = 1', new_text: 'x = 2' }));
    assert.match(twice.observation, /occurs 2 times in a\.py; nothing was changed/);
    assert.equal(await fs.readFile(path.join(tmp.dir, 'a.py'), 'utf8'), 'x = 1\ny = 1\nx = 1\n');
    const ok = await tools.run(call('edit_file', { path: 'a.py', old_text: 'y = 1', new_text: 'y = 2' }));
    assert.deepEqual(ok, { observation: 'Edited a.py at line 2.', isError: false });
    assert.equal(await fs.readFile(path.join(tmp.dir, 'a.py'), 'utf8'), 'x = 1\ny = 2\nx = 1\n');
  } finally {
    tmp.cleanup();
  }
});

test('read_file reads line ranges and says where a long file was cut', async () => {
  const tmp = tempDir();
  try {
    await fs.writeFile(path.join(tmp.dir, 'lines.txt'), Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join('\n'));
    const tools = new ToolRunner({ workspace: tmp.dir, guard: new WorkspaceGuard(tmp.dir, []), maxObservationChars: 100 });
    assert.equal((await tools.run(call('read_file', { path: 'lines.txt', start_line: 3, end_line: 4 }))).observation, '[lines.txt (lines 3-4 of 100)]\nline 3\nline 4');
    assert.match((await tools.run(call('read_file', { path: 'lines.txt' }))).observation, /\[Cut at 100 of \d+ characters: about \d+ lines shown\. Read further with start_line\/end_line\.\]$/);
    assert.match((await tools.run(call('read_file', { path: 'lines.txt', start_line: 500 }))).observation, /has 100 lines; start_line 500 is past the end/);
    assert.match((await tools.run(call('read_file', { path: 'lines.txt', start_line: 0 }))).observation, /"start_line" must be a line number from 1/);
  } finally {
    tmp.cleanup();
  }
});

test('search honours .gitignore and never looks into the dataset folder', async () => {
  const tmp = tempDir();
  try {
    await fs.mkdir(path.join(tmp.dir, 'src'));
    await fs.mkdir(path.join(tmp.dir, 'build'));
    await fs.mkdir(path.join(tmp.dir, '.apollo', 'dataset'), { recursive: true });
    await fs.writeFile(path.join(tmp.dir, '.gitignore'), 'build/\n');
    await fs.writeFile(path.join(tmp.dir, '.apollo', '.gitignore'), '*\n');
    await fs.writeFile(path.join(tmp.dir, 'src', 'main.ts'), 'const needle = 1;\n');
    await fs.writeFile(path.join(tmp.dir, 'build', 'main.js'), 'const needle = 1;\n');
    await fs.writeFile(path.join(tmp.dir, '.apollo', 'dataset', 'events.jsonl'), 'needle\n');
    const tools = new ToolRunner({ workspace: tmp.dir, guard: new WorkspaceGuard(tmp.dir, [path.join(tmp.dir, '.apollo', 'dataset')]) });
    assert.equal((await tools.run(call('search', { pattern: 'need+le' }))).observation, 'src/main.ts:1:const needle = 1;');
    assert.equal((await tools.run(call('search', { pattern: 'NEEDLE', ignore_case: true, path: 'src' }))).observation, 'src/main.ts:1:const needle = 1;');
    assert.equal((await tools.run(call('search', { pattern: 'absent' }))).observation, 'No match for /absent/.');
    assert.match((await tools.run(call('search', { pattern: '(' }))).observation, /search failed/);
    assert.match((await tools.run(call('search', { pattern: 'x', path: '.apollo/dataset' }))).observation, /dataset folder/);
  } finally {
    tmp.cleanup();
  }
});

test('background jobs: start, read new output, send input, idle time, kill', async () => {
  const tmp = tempDir();
  const logged: string[] = [];
  const tools = new ToolRunner({ workspace: tmp.dir, guard: new WorkspaceGuard(tmp.dir, []), onJobOutput: (job, text) => logged.push(`${job}:${text}`) });
  try {
    assert.match((await tools.run(call('job_start', { name: 'echo', command: 'echo ready; while read line; do echo "got $line"; done' }))).observation, /started/);
    /** Reads the job until a read holds `text`; that read. */
    const readUntil = (text: string) =>
      until(`the job to print "${text}"`, async () => {
        const read = (await tools.run(call('job_read', { name: 'echo' }))).observation;
        return read.includes(text) && read;
      });
    assert.match(await readUntil('ready'), /^\[job "echo": running, idle for \d+ s\]\nready\n$/);
    assert.match((await tools.run(call('job_read', { name: 'echo' }))).observation, /\(no new output\)$/);
    await tools.run(call('job_send', { name: 'echo', input: 'hello\n' }));
    assert.match(await readUntil('got hello'), /got hello/);
    assert.match((await tools.run(call('job_start', { name: 'echo', command: 'true' }))).observation, /still running/);
    assert.match((await tools.run(call('job_kill', { name: 'echo' }))).observation, /Job "echo" ended \(killed by SIGTERM\)/);
    assert.match((await tools.run(call('job_send', { name: 'echo', input: 'x' }))).observation, /has ended/);
    assert.match((await tools.run(call('job_read', { name: 'nope' }))).observation, /No job named "nope"/);
    assert.match((await tools.run(call('job_start', { name: 'bad name!', command: 'true' }))).observation, /job name/);
    assert.ok(logged.join('').includes('echo:got hello'));
  } finally {
    await tools.jobs.killAll();
    tmp.cleanup();
  }
});

test('a long command output shows head and tail; the full output is kept elsewhere', async () => {
  const tmp = tempDir();
  try {
    const kept = new Map<string, string>();
    const tools = new ToolRunner({
      workspace: tmp.dir,
      guard: new WorkspaceGuard(tmp.dir, []),
      maxObservationChars: 200,
      keepFullOutput: async (name, text) => {
        kept.set(name, text);
        return `outputs/${name}`;
      },
    });
    const result = await tools.run(call('run_command', { command: 'seq 1 5000' }), { step: 7 });
    assert.match(result.observation, /^1\n2\n/);
    assert.match(result.observation, /5000\n\[exit code 0\]\n\[Full output \(\d+ characters\) kept in the dataset: outputs\/step-7-output\.txt\]$/);
    assert.equal(result.fullOutput, 'outputs/step-7-output.txt');
    assert.equal(kept.get('step-7-output.txt')?.split('\n').length, 5001);
  } finally {
    tmp.cleanup();
  }
});
