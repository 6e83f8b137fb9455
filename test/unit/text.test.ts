import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as events from '../../src/core/dataset/events';
import * as text from '../../src/core/text';
import * as protocol from '../../src/protocol';

test('plural writes the count with separators and the noun in the right number', () => {
  assert.equal(text.plural(1, 'step'), '1 step');
  assert.equal(text.plural(0, 'step'), '0 steps');
  assert.equal(text.plural(1234, 'minute'), '1,234 minutes');
  assert.equal(text.plural(2, 'entry', 'entries'), '2 entries');
});

test('firstLine gives the first line that is not blank, trimmed, cut with an ellipsis', () => {
  assert.equal(text.firstLine('  fix the build  \nthen the tests'), 'fix the build');
  assert.equal(text.firstLine('\n\n   \n  second\nthird'), 'second');
  assert.equal(text.firstLine(''), '');
  assert.equal(text.firstLine('x'.repeat(100), 80), `${'x'.repeat(79)}…`);
  assert.equal(text.firstLine('x'.repeat(80), 80), 'x'.repeat(80));
});

test('the protocol speaks the core vocabulary: the same lists and helpers, not copies', () => {
  assert.equal(protocol.HINT_KINDS, events.HINT_KINDS);
  assert.equal(protocol.HINT_URGENCIES, events.HINT_URGENCIES);
  assert.equal(protocol.LABEL_AXES, events.LABEL_AXES);
  assert.equal(protocol.LABEL_VALUES, events.LABEL_VALUES);
  assert.equal(protocol.plural, text.plural);
  assert.equal(protocol.firstLine, text.firstLine);
  // The host's validator accepts exactly the core's kinds and axes.
  for (const kind of events.HINT_KINDS) assert.equal(protocol.parseWebviewMessage({ type: 'sendHint', text: 't', kind })?.type, 'sendHint');
  assert.equal(protocol.parseWebviewMessage({ type: 'sendHint', text: 't', kind: 'gossip' }), undefined);
  for (const axis of events.LABEL_AXES) assert.deepEqual(protocol.parseWebviewMessage({ type: 'labelStep', step: 1, label: 'bad', axis }), { type: 'labelStep', step: 1, label: 'bad', axis });
  assert.equal(protocol.parseWebviewMessage({ type: 'labelStep', step: 1, label: 'bad', axis: 'style' }), undefined);
});
