import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { unifiedDiff } from '../../src/core/grounding/lineDiff';
import { tempDir } from '../fixtures/workspace';
import { random, VOCABULARY } from '../fixtures/random';

/** Lines git's hunk headers treat specially: long names (cut at 80 bytes, in a character), bytes that are not UTF-8, CR. */
const AWKWARD = ['f' + 'a'.repeat(78) + '\u00e9\u00e9 tail', 'caf\u00e9 ' + 'x'.repeat(90) + '  ', 'name\r', '$var = 1', '_under'];

function lines(rand: ReturnType<typeof random>, count: number, words = VOCABULARY): string[] {
  return Array.from({ length: count }, () => (rand.next() < 0.6 ? rand.pick(words) : `line ${rand.below(50)}`));
}

/** git's own hunks for two buffers, with no configuration of the user's. */
function gitHunks(dir: string, a: Buffer, b: Buffer): string {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GIT_'))), GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
  writeFileSync(path.join(dir, 'a'), a);
  writeFileSync(path.join(dir, 'b'), b);
  let output: string;
  try {
    output = execFileSync('git', ['diff', '--no-index', '--no-color', 'a', 'b'], { cwd: dir, env, encoding: 'latin1', maxBuffer: 1 << 26 });
  } catch (error) {
    output = (error as { stdout: string }).stdout;
  }
  const at = output.indexOf('\n@@');
  return at < 0 ? '' : output.slice(at + 1);
}

test('the line diff gives git\'s hunks on large, repetitive changes', () => {
  const rand = random(7);
  const dir = tempDir('apollo-diff-');
  try {
    // Large inputs with many edits reach the search's cost limits and its heuristic splits.
    for (let round = 0; round < 12; round++) {
      const before = lines(rand, round < 4 ? 3000 : 200);
      const after = [...before];
      for (let edits = round < 4 ? 600 : 10; edits > 0; edits--) {
        const at = rand.below(after.length + 1);
        if (rand.next() < 0.5) after.splice(at, 0, ...lines(rand, 1 + rand.below(5)));
        else after.splice(at, 1 + rand.below(4));
      }
      const [a, b] = [Buffer.from(before.join('\n') + '\n'), Buffer.from(after.join('\n'))];
      assert.equal(Buffer.concat(unifiedDiff(a, b).chunks).toString('latin1'), gitHunks(dir.dir, a, b), `round ${round}`);
    }
  } finally {
    dir.cleanup();
  }
});

test('hunk headers, missing final newlines and bytes that are not UTF-8 come out as git writes them', () => {
  const rand = random(11);
  const dir = tempDir('apollo-diff-');
  const words = [...AWKWARD, ...VOCABULARY];
  try {
    for (let round = 0; round < 40; round++) {
      const before = lines(rand, rand.below(60), words);
      const after = [...before];
      for (let edits = 1 + rand.below(5); edits > 0; edits--) {
        const at = rand.below(after.length + 1);
        const choice = rand.below(3);
        if (choice === 0) after.splice(at, 0, ...lines(rand, 1 + rand.below(4), words));
        else if (choice === 1) after.splice(at, 1 + rand.below(3));
        else after[at] = rand.pick(words);
      }
      const encode = (text: string[]) => Buffer.from(text.join('\n') + (rand.next() < 0.7 && text.length ? '\n' : ''), rand.next() < 0.5 ? 'latin1' : 'utf8');
      const [a, b] = [encode(before), encode(after)];
      const diff = unifiedDiff(a, b);
      const expected = gitHunks(dir.dir, a, b);
      assert.equal(Buffer.concat(diff.chunks).toString('latin1'), expected, `round ${round}`);
      assert.equal(diff.additions, (expected.match(/^\+/gm) ?? []).length);
      assert.equal(diff.deletions, (expected.match(/^-/gm) ?? []).length);
    }
  } finally {
    dir.cleanup();
  }
});

