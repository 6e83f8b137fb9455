/**
 * What the diff editor shows (diffView.ts): a step's files one by one or all at once, the run to
 * adopt against the workspace as it is, and the snapshot files' contents read back from a real
 * shadow store. The pick list and notifications are fakes.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FileChange, Grounding } from '../../src/core/dataset/events';
import type { AdoptPreview } from '../../src/core/session/adopt';
import { adoptPreviewDiff, type DiffSide, SnapshotFiles, snapshotRef, stepDiff } from '../../src/core/session/diffView';
import type { PickItem } from '../../src/core/ui';
import { storeFor } from '../fixtures/shadow';
import { makeWorkspace } from '../fixtures/workspace';

/** A pick list answering with `choose`, and notifications, recording what was shown. */
function fakeUi(choose: (items: readonly PickItem[]) => PickItem | undefined = () => undefined) {
  const seen = { picks: [] as { title?: string; labels: string[] }[], said: [] as string[] };
  return {
    seen,
    ui: {
      showQuickPick: async <T extends PickItem>(items: readonly T[], options: { title?: string }) => {
        seen.picks.push({ title: options.title, labels: items.map((item) => `${item.label} | ${item.description}`) });
        return choose(items) as T | undefined;
      },
      showInformationMessage: async (message: string) => void seen.said.push(message),
    },
  };
}

const change = (file: string, extra: Partial<FileChange> = {}): FileChange => ({ path: file, status: 'modified', additions: 2, deletions: 1, binary: false, ...extra });
const shadow = { workspace: '/projects/demo', storeDir: '/data/store' };
const sha = (digit: string) => digit.repeat(40);

test('a step that changed one file opens its diff; one that changed none says so', async () => {
  const grounding: Grounding = { before: sha('a'), after: sha('b'), files: [change('src/new.ts', { oldPath: 'src/old.ts', status: 'renamed' })], patch: '' };
  const { ui, seen } = fakeUi();
  assert.deepEqual(await stepDiff(3, grounding, shadow, ui), {
    kind: 'diff',
    left: snapshotRef({ workspace: shadow.workspace, store: shadow.storeDir, snapshot: sha('a') }, 'src/old.ts', 'before'),
    right: snapshotRef({ workspace: shadow.workspace, store: shadow.storeDir, snapshot: sha('b') }, 'src/new.ts', 'after'),
    title: 'src/new.ts (step 3)',
  });
  assert.deepEqual(seen.picks, []);
  assert.equal(await stepDiff(4, { ...grounding, files: [] }, shadow, ui), undefined);
  assert.deepEqual(seen.said, ['Step 4 changed no files.']);
  assert.deepEqual(snapshotRef({ workspace: '/w', store: '/s', snapshot: sha('c') }, 'a b.txt', 'after'), { path: '/a b.txt', query: `workspace=%2Fw&store=%2Fs&snapshot=${sha('c')}&side=after` });
});

test('several files: the pick list offers all of them in one multi-file diff, or one', async () => {
  const grounding: Grounding = { before: sha('a'), after: sha('b'), files: [change('a.ts'), change('logo.png', { status: 'added', binary: true })], patch: '' };
  const all = fakeUi((items) => items[0]);
  const view = await stepDiff(7, grounding, shadow, all.ui);
  assert.deepEqual(all.seen.picks, [
    { title: 'Files changed by step 7', labels: ['$(diff-multiple) All 2 files | in one multi-file diff editor', 'a.ts | modified  +2 −1', 'logo.png | added, binary'] },
  ]);
  assert.equal(view?.kind, 'changes');
  assert.equal(view.title, 'Step 7');
  assert.deepEqual(
    view.resources.map(([file, left, right]) => [file, (left as { path: string }).path, (right as { path: string }).path]),
    [
      ['/projects/demo/a.ts', '/a.ts', '/a.ts'],
      ['/projects/demo/logo.png', '/logo.png', '/logo.png'],
    ],
  );
  const one = await stepDiff(7, grounding, shadow, fakeUi((items) => items[2]).ui);
  assert.equal(one?.kind === 'diff' && one.title, 'logo.png (step 7)');
  assert.equal(await stepDiff(7, grounding, shadow, fakeUi().ui), undefined, 'a dismissed pick opens nothing');
});

test("the snapshot files are read back from the shadow store; what is not a snapshot's reads as empty", async (t) => {
  const ws = makeWorkspace({ 'a.txt': 'one\n' });
  t.after(ws.cleanup);
  const { shadow: store, cleanup } = await storeFor(ws.dir);
  t.after(cleanup);
  const before = await store.snapshot();
  await fs.writeFile(path.join(ws.dir, 'a.txt'), 'two\n');
  await fs.writeFile(path.join(ws.dir, 'b.txt'), 'new\n');
  const grounding = await store.ground(before, await store.snapshot());
  const at = { workspace: ws.dir, storeDir: store.storeDir };
  const view = await stepDiff(1, grounding, at, fakeUi((items) => items.find((item) => item.label === 'a.txt')).ui);
  assert.ok(view?.kind === 'diff');
  const files = new SnapshotFiles();
  assert.deepEqual([await files.read(view.left as { path: string; query: string }), await files.read(view.right as { path: string; query: string })], ['one\n', 'two\n']);
  const query = { workspace: ws.dir, store: store.storeDir };
  assert.equal(await files.read(snapshotRef({ ...query, snapshot: before }, 'b.txt', 'before')), '', 'not in that snapshot');
  assert.equal(await files.read(snapshotRef({ ...query, snapshot: 'HEAD' }, 'a.txt', 'before')), '', 'not a snapshot id');
});

test("adopting a run compares your file as it is now, or the base snapshot's (empty) where there is none, with the run's", async (t) => {
  const ws = makeWorkspace({ 'kept.txt': 'mine\n' });
  t.after(ws.cleanup);
  const preview = {
    runId: 'run-1',
    workspace: ws.dir,
    base: sha('a'),
    final: sha('b'),
    originStore: '/data/origin',
    runStore: '/data/run',
    files: [change('kept.txt'), change('gone.txt', { status: 'added' })],
  } as AdoptPreview;
  const view = await adoptPreviewDiff(preview);
  assert.equal(view.kind === 'changes' && view.title, 'Adopt run run-1');
  const expected: [string, DiffSide, DiffSide][] = [
    [path.join(ws.dir, 'kept.txt'), { file: path.join(ws.dir, 'kept.txt') }, snapshotRef({ workspace: ws.dir, store: '/data/run', snapshot: sha('b') }, 'kept.txt', 'after')],
    [
      path.join(ws.dir, 'gone.txt'),
      snapshotRef({ workspace: ws.dir, store: '/data/origin', snapshot: sha('a') }, 'gone.txt', 'before'),
      snapshotRef({ workspace: ws.dir, store: '/data/run', snapshot: sha('b') }, 'gone.txt', 'after'),
    ],
  ];
  assert.deepEqual(view.kind === 'changes' && view.resources, expected);
});
