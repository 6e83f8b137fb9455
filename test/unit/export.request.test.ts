import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { exportReport, exportTarget, settleExport } from '../../src/core/export/request';

test('an export request settles what it gives, and nothing of the wrong type', () => {
  const workspace = path.resolve('/projects/demo');
  assert.deepEqual(settleExport(undefined, workspace), {});
  assert.deepEqual(settleExport({ format: 'openai', out: 'out/train.jsonl', minQuality: 0.5, hints: false }, workspace), {
    format: 'openai',
    branches: 'main',
    out: path.join(workspace, 'out', 'train.jsonl'),
    minQuality: 0.5,
    hints: false,
  });
  assert.deepEqual(
    settleExport({ format: 'word', branches: 'some', out: 7, minQuality: 'high', hints: 'no' }, workspace),
    { branches: 'main' },
    'a target given (even unusable) means nobody is asked about branches',
  );
  assert.deepEqual(settleExport({ format: 'hf', branches: 'all' }, workspace), { format: 'hf', branches: 'all' });
});

test('the proposed target is a folder for folder formats and a .jsonl file otherwise, named by format and time', () => {
  const now = new Date('2026-03-04T05:06:07Z');
  assert.deepEqual(exportTarget('openai', now), { name: 'apollo-openai-20260304-050607', folder: false, extension: 'jsonl' });
  assert.deepEqual(exportTarget('hf', now), { name: 'apollo-hf-20260304-050607', folder: true, extension: 'jsonl' });
});

test('the report says what was exported, and warns when records were left out', () => {
  const summary = { records: 12, runs: 3, trainedSteps: 20, maskedSteps: 4, policy: 'not-bad' as const, skipped: [] };
  assert.deepEqual(exportReport(summary, 'openai'), { message: 'Apollo: exported 12 openai record(s) from 3 run(s): 20 step(s) trained, 4 masked (not-bad).', warning: false });
  const left = exportReport({ ...summary, skipped: [{ id: 'r1', problems: ['bad'] }] }, 'openai');
  assert.equal(left.warning, true);
  assert.match(left.message, /1 left out because they failed validation \(see the Apollo log\)\.$/);
});
