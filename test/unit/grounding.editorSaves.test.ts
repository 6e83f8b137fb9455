/**
 * Editor saves during an action (EditorSaves): only files inside the watched workspace count,
 * under the workspace's path or its real path, each once; the editor's save events are listened
 * to only while some action is watched. The editor's events here are a function the test calls.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EditorSaves } from '../../src/core/grounding/editorSaves';
import { tempDir } from '../fixtures/workspace';

/** An editor whose saves the test makes; how often its listeners were started and stopped is counted. */
function editor() {
  const state = { listening: 0, started: 0, stopped: 0, save: (_file: string) => assert.fail('nobody listens') as void };
  const saves = new EditorSaves((saved) => {
    state.started++;
    state.listening++;
    state.save = saved;
    return {
      dispose: () => {
        state.stopped++;
        state.listening--;
        state.save = () => undefined;
      },
    };
  });
  return { saves, state, save: (file: string) => state.save(file) };
}

test('saves inside the workspace are noted relative to it, sorted and once each; others and the folder itself are not', (t) => {
  const root = tempDir('apollo-saves-');
  t.after(root.cleanup);
  const workspace = path.join(root.dir, 'ws');
  mkdirSync(path.join(workspace, 'src'), { recursive: true });
  const { saves, state, save } = editor();
  assert.equal(state.started, 0, 'no listener before an action is watched');
  const action = saves.watch(workspace);
  assert.equal(state.listening, 1);
  save(path.join(workspace, 'src', 'b.ts'));
  save(path.join(workspace, 'a.md'));
  save(path.join(workspace, 'src', 'b.ts'));
  save(path.join(root.dir, 'elsewhere.txt'));
  save(`${workspace}-other/c.txt`);
  save(workspace);
  assert.deepEqual(action.end(), ['a.md', 'src/b.ts']);
  assert.equal(state.listening, 0, 'the listeners go with the last watch');
  assert.deepEqual(action.end(), ['a.md', 'src/b.ts'], 'ending again gives the same files');
  assert.equal(state.stopped, 1);
});

test('a workspace opened through a symbolic link: a save under either path counts', (t) => {
  const root = tempDir('apollo-saves-link-');
  t.after(root.cleanup);
  const real = path.join(root.dir, 'real');
  const link = path.join(root.dir, 'link');
  mkdirSync(real);
  symlinkSync(real, link);
  const { saves, save } = editor();
  const viaLink = saves.watch(link);
  save(path.join(real, 'x.txt'));
  save(path.join(link, 'y.txt'));
  assert.deepEqual(viaLink.end(), ['x.txt', 'y.txt']);
  const viaReal = saves.watch(real);
  // Found by its real path, so the file is there (saved, or being saved over).
  writeFileSync(path.join(real, 'z.txt'), 'z\n');
  save(path.join(link, 'z.txt'));
  assert.deepEqual(viaReal.end(), ['z.txt']);
});

test('actions watched at once each note their own saves; an ended one notes no more, and the listeners stay while one is watched', (t) => {
  const root = tempDir('apollo-saves-two-');
  t.after(root.cleanup);
  const one = path.join(root.dir, 'one');
  const two = path.join(root.dir, 'two');
  mkdirSync(one);
  mkdirSync(two);
  const { saves, state, save } = editor();
  const first = saves.watch(one);
  const second = saves.watch(two);
  const again = saves.watch(one);
  assert.equal(state.started, 1, 'one set of listeners for every watch');
  save(path.join(one, 'a.txt'));
  assert.deepEqual(first.end(), ['a.txt']);
  save(path.join(one, 'b.txt'));
  save(path.join(two, 'c.txt'));
  assert.deepEqual(first.end(), ['a.txt']);
  assert.deepEqual(again.end(), ['a.txt', 'b.txt']);
  assert.equal(state.listening, 1);
  assert.deepEqual(second.end(), ['c.txt']);
  assert.equal(state.listening, 0);
  const later = saves.watch(two);
  assert.equal(state.started, 2, 'listening starts again with the next action');
  save(path.join(two, 'd.txt'));
  assert.deepEqual(later.end(), ['d.txt']);
});
