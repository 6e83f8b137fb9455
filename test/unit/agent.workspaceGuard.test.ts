import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PathRefusedError, WorkspaceGuard } from '../../src/core/agent/workspaceGuard';
import { tempDir } from '../fixtures/workspace';

test('refuses paths outside the workspace, into the dataset folder and through symlinks', async () => {
  const root = tempDir();
  try {
    const workspace = path.join(root.dir, 'ws');
    const outside = path.join(root.dir, 'outside');
    const dataset = path.join(workspace, '.apollo', 'dataset');
    await fs.mkdir(dataset, { recursive: true });
    await fs.mkdir(outside);
    await fs.mkdir(path.join(workspace, 'src'));
    await fs.symlink(outside, path.join(workspace, 'link-out'));
    await fs.symlink(path.join(workspace, 'src'), path.join(workspace, 'link-in'));
    const guard = new WorkspaceGuard(workspace, [dataset]);
    const real = await fs.realpath(workspace);

    assert.equal(await guard.resolve('src/new.ts', 'write'), path.join(real, 'src', 'new.ts'));
    assert.equal(await guard.resolve('link-in/x.ts', 'write'), path.join(real, 'src', 'x.ts'));
    assert.equal(await guard.resolve('deep/missing/file.txt', 'write'), path.join(real, 'deep', 'missing', 'file.txt'));
    for (const bad of ['../outside/x', outside, '/etc/passwd', 'link-out/secret', 'link-out', 'src/../../outside/x']) {
      await assert.rejects(guard.resolve(bad, 'read'), PathRefusedError, bad);
    }
    await assert.rejects(guard.resolve('.apollo/dataset/runs/x/events.jsonl', 'read'), /dataset folder/);
    await assert.rejects(guard.resolve(path.join(dataset, 'x'), 'write'), /dataset folder/);
    await assert.rejects(guard.resolve('.git/config', 'write'), /\.git/);
    await assert.rejects(guard.resolve('', 'read'), /empty/);
  } finally {
    root.cleanup();
  }
});
