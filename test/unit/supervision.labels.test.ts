/** Effective labels (human > judge > rule, per axis, latest per source), loss masks and source tiers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelEvent } from '../../src/core/dataset/events';
import { type EffectiveLabel, LabelBook, MASK_POLICIES, maskOf, tierOf } from '../../src/core/supervision/labels';
import { label } from '../fixtures/trajectories';

function bookOf(...labels: LabelEvent[]): LabelBook {
  const book = new LabelBook();
  for (const event of labels) book.add(event);
  return book;
}

test('an unlabelled step has no effective label', () => {
  const book = bookOf(label(2, 'bad', 'human'));
  assert.equal(book.effective(1), undefined);
  assert.deepEqual(book.labelsOf(1), []);
  assert.equal(book.latestBySource(1).size, 0);
});

test('precedence: a judge outranks the rules, a human outranks the judge, and a later human label overrides an earlier one', () => {
  const book = new LabelBook();
  book.add(label(1, 'bad', 'rule:command_failed', { axis: 'execution', reason: 'the command failed (exit code 1)' }));
  assert.deepEqual(book.effective(1), {
    label: 'bad',
    tier: 'rule',
    sources: ['rule:command_failed'],
    axes: { execution: 'bad' },
    reasons: ['the command failed (exit code 1)'],
  });

  book.add(label(1, 'good', 'judge:gpt-4.1', { reason: 'the failure was expected: it reproduces the bug' }));
  assert.deepEqual(book.effective(1), {
    label: 'good',
    tier: 'judge',
    sources: ['judge:gpt-4.1'],
    axes: { decision: 'good', execution: 'good' },
    reasons: ['the failure was expected: it reproduces the bug'],
  });

  book.add(label(1, 'bad', 'human', { reason: 'should have read the test first' }));
  assert.deepEqual(book.effective(1), {
    label: 'bad',
    tier: 'human',
    sources: ['human'],
    axes: { decision: 'bad', execution: 'bad' },
    reasons: ['should have read the test first'],
  });

  book.add(label(1, 'good', 'human'));
  const last = book.effective(1);
  assert.equal(last?.label, 'good');
  assert.equal(last?.tier, 'human');
  assert.deepEqual(last?.reasons, [], 'the earlier human reason no longer carries the verdict');
  assert.equal(book.labelsOf(1).length, 4, 'every label is kept, oldest first');
  assert.deepEqual(
    book.labelsOf(1).map((event) => event.source),
    ['rule:command_failed', 'judge:gpt-4.1', 'human', 'human'],
  );
});

test('precedence does not depend on the order labels arrive in: a rule label after a human one does not win', () => {
  const book = bookOf(label(1, 'good', 'human'), label(1, 'bad', 'judge:gpt'), label(1, 'bad', 'rule:loop', { axis: 'decision' }));
  assert.equal(book.effective(1)?.label, 'good');
  assert.equal(book.effective(1)?.tier, 'human');
});

test('the highest tier decides even when it only says neutral', () => {
  const book = bookOf(label(1, 'bad', 'rule:destructive', { axis: 'decision' }), label(1, 'neutral', 'human:alice'));
  assert.equal(book.effective(1)?.label, 'neutral');
  assert.equal(book.effective(1)?.tier, 'human');
  assert.deepEqual(book.effective(1)?.sources, ['human:alice']);
});

test('per axis: a bad execution label stays bad when a good decision label follows', () => {
  const book = bookOf(label(1, 'bad', 'human', { axis: 'execution', reason: 'typo in the command' }), label(1, 'good', 'human', { axis: 'decision', reason: 'right idea' }));
  assert.deepEqual(book.effective(1), {
    label: 'bad',
    tier: 'human',
    sources: ['human'],
    axes: { execution: 'bad', decision: 'good' },
    reasons: ['typo in the command'],
  });
  assert.deepEqual([...(book.latestBySource(1).get('human') ?? [])].sort(), [
    ['decision', 'good'],
    ['execution', 'bad'],
  ]);
});

test('per axis: a label without an axis, after an axis-specific bad one, speaks for both axes', () => {
  const book = bookOf(label(1, 'bad', 'human', { axis: 'execution' }), label(1, 'good', 'human', { reason: 'fine after all' }));
  assert.deepEqual(book.effective(1), {
    label: 'good',
    tier: 'human',
    sources: ['human'],
    axes: { decision: 'good', execution: 'good' },
    reasons: ['fine after all'],
  });
  // And the reverse: an axis-specific label after an axis-less one changes only its axis.
  book.add(label(1, 'neutral', 'human', { axis: 'decision' }));
  assert.deepEqual(book.effective(1)?.axes, { decision: 'neutral', execution: 'good' });
  assert.equal(book.effective(1)?.label, 'good');
});

test('within a tier: bad if any source says bad, and only the sources and reasons carrying the verdict are reported', () => {
  const book = bookOf(
    label(1, 'bad', 'rule:loop', { axis: 'decision', reason: 'repeats step 3' }),
    label(1, 'bad', 'rule:command_failed', { axis: 'execution', reason: 'the command failed (exit code 2)' }),
    label(1, 'neutral', 'rule:no_op', { axis: 'decision', reason: 'no longer flagged by rule:no_op' }),
  );
  assert.deepEqual(book.effective(1), {
    label: 'bad',
    tier: 'rule',
    sources: ['rule:command_failed', 'rule:loop'],
    axes: { decision: 'bad', execution: 'bad' },
    reasons: ['repeats step 3', 'the command failed (exit code 2)'],
  });

  const judges = bookOf(label(2, 'good', 'judge:a', { reason: 'a likes it' }), label(2, 'bad', 'judge:b', { reason: 'b does not' }));
  assert.deepEqual(judges.effective(2)?.sources, ['judge:b']);
  assert.deepEqual(judges.effective(2)?.reasons, ['b does not']);
  assert.equal(judges.effective(2)?.label, 'bad');

  const agreeing = bookOf(label(3, 'good', 'judge:a', { reason: 'clean' }), label(3, 'good', 'judge:b', { reason: 'clean' }), label(3, 'neutral', 'judge:c'));
  assert.deepEqual(agreeing.effective(3)?.sources, ['judge:a', 'judge:b']);
  assert.deepEqual(agreeing.effective(3)?.reasons, ['clean'], 'the same reason is reported once');
  assert.equal(agreeing.effective(3)?.label, 'good');
});

test('a rule verdict taken back with neutral leaves the step neutral among the rules', () => {
  const book = bookOf(label(1, 'bad', 'rule:loop', { axis: 'decision', reason: 'repeats step 1' }), label(1, 'neutral', 'rule:loop', { axis: 'decision', reason: 'no longer flagged by rule:loop' }));
  assert.equal(book.effective(1)?.label, 'neutral');
  assert.deepEqual(book.effective(1)?.axes, { decision: 'neutral' });
});

test('labels of one step do not leak into another', () => {
  const book = bookOf(label(1, 'bad', 'human'), label(3, 'good', 'rule:x'), label(2, 'good', 'judge:j'));
  assert.equal(book.effective(1)?.label, 'bad');
  assert.equal(book.effective(2)?.label, 'good');
  assert.equal(book.effective(2)?.tier, 'judge');
  assert.equal(book.effective(3)?.tier, 'rule');
  assert.deepEqual(book.labelledSteps(), [1, 2, 3]);
});

test('labels from unknown sources are ignored', () => {
  const unknown = bookOf(label(1, 'bad', 'someone'), label(1, 'bad', 'judge'), label(1, 'bad', 'humans'), label(1, 'bad', 'rules:loop'));
  assert.equal(unknown.effective(1), undefined);

  const mixed = bookOf(label(1, 'bad', 'annotator-bot'), label(1, 'good', 'rule:custom', { reason: 'ok' }));
  assert.deepEqual(mixed.effective(1), { label: 'good', tier: 'rule', sources: ['rule:custom'], axes: { decision: 'good', execution: 'good' }, reasons: ['ok'] });
});

function effective(value: EffectiveLabel['label']): EffectiveLabel {
  return { label: value, tier: 'human', sources: ['human'], axes: {}, reasons: [] };
}

test('maskOf: not-bad trains on everything but bad, unlabelled included', () => {
  assert.equal(maskOf(effective('bad'), 'not-bad'), 0);
  assert.equal(maskOf(effective('good'), 'not-bad'), 1);
  assert.equal(maskOf(effective('neutral'), 'not-bad'), 1);
  assert.equal(maskOf(undefined, 'not-bad'), 1);
});

test('maskOf: good-only trains only on good, not on neutral or unlabelled', () => {
  assert.equal(maskOf(effective('bad'), 'good-only'), 0);
  assert.equal(maskOf(effective('good'), 'good-only'), 1);
  assert.equal(maskOf(effective('neutral'), 'good-only'), 0);
  assert.equal(maskOf(undefined, 'good-only'), 0);
});

test('maskOf: all trains on every step, bad included', () => {
  assert.equal(maskOf(effective('bad'), 'all'), 1);
  assert.equal(maskOf(effective('good'), 'all'), 1);
  assert.equal(maskOf(effective('neutral'), 'all'), 1);
  assert.equal(maskOf(undefined, 'all'), 1);
});

test('maskOf follows the effective label of a book, not the latest label added', () => {
  const book = bookOf(label(1, 'bad', 'human'), label(1, 'good', 'rule:x'));
  assert.deepEqual(
    MASK_POLICIES.map((policy) => [policy, maskOf(book.effective(1), policy)]),
    [
      ['not-bad', 0],
      ['good-only', 0],
      ['all', 1],
    ],
  );
});

test('tierOf names the kind of source, and nothing for a source Apollo does not know', () => {
  const cases: Array<[string, ReturnType<typeof tierOf>]> = [
    ['human', 'human'],
    ['human:alice', 'human'],
    ['judge:gpt-4.1', 'judge'],
    ['rule:command_failed', 'rule'],
    ['rule:loop', 'rule'],
    ['judge', undefined],
    ['rule', undefined],
    ['humans', undefined],
    ['Human', undefined],
    ['', undefined],
    ['model:gpt', undefined],
  ];
  for (const [source, tier] of cases) assert.equal(tierOf(source), tier, source);
});
