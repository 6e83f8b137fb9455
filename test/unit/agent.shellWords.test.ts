/** The command policy's shell lexer: words as bash splits them, operators, redirections, heredocs, expansions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lex, parseCommands, readWord, substitutionsIn } from '../../src/core/agent/shellWords';

const words = (src: string) => parseCommands(src).map((c) => c.words.map((w) => w.value));

/**
 * Command lines made of literal words only (quotes, escapes, `$'…'`, no expansion that could run
 * anything), so real bash can be asked how it splits them: `printf '%s\0' WORDS`.
 */
const LITERAL_LINES = [
  `echo "a b" 'c d' e\\ f`,
  `echo a#b 'x'#y`,
  `echo "it's" 'say "hi"' "a\\"b" "a\\\\b" "a\\nb"`,
  `echo $'\\x73udo' $'a\\tb' $'\\101\\102' $'it\\'s'`,
  `echo a"b"'c'd ""  ''`,
  `echo a\\\nb c`,
  `echo --flag=value -x=\\'q\\'`,
  `echo ~ '~' "~" ~/x`,
  `echo a\\;b a\\|b a\\&b`,
  `echo $"plain text"`,
];

test('words come out as bash splits them (checked against real bash)', () => {
  for (const line of LITERAL_LINES) {
    assert.doesNotMatch(line, /\$[({A-Za-z_]|`/, 'only literal words go to bash');
    const [command] = parseCommands(line);
    const ours = command.words.slice(1).map((w) => ((w.value === '~' || w.value.startsWith('~/')) && w.tilde ? process.env.HOME + w.value.slice(1) : w.value));
    const printed = execFileSync('bash', ['-c', `printf '%s\\0' ${line.slice('echo '.length)}`], {
      encoding: 'utf8',
      env: { HOME: process.env.HOME ?? '/root', PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    const bash = printed.split('\0').slice(0, -1);
    assert.deepEqual(ours, bash, line);
  }
});

test('operators split commands; pipelines are numbered; a comment starts only at a word', () => {
  const commands = parseCommands('a | b |& c || d && e ; f & g\nh # i ; j\nk#l');
  assert.deepEqual(
    commands.map((c) => c.words.map((w) => w.value).join(' ')),
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k#l'],
  );
  assert.deepEqual(
    commands.map((c) => c.pipeline),
    [0, 0, 0, 1, 2, 3, 4, 5, 6],
  );
  assert.deepEqual(words('echo a\nrm -rf x'), [
    ['echo', 'a'],
    ['rm', '-rf', 'x'],
  ]);
  assert.deepEqual(words('(cd a && make) ; { b; }'), [['cd', 'a'], ['make'], ['{', 'b'], ['}']]);
});

test('redirections: targets, descriptors, input files, here-strings and heredocs', () => {
  const [out] = parseCommands('cmd > a.txt 2>&1 2>/dev/null &> both >> log >| clobber <in.txt 3<> rw');
  assert.deepEqual(
    out.words.map((w) => w.value),
    ['cmd'],
  );
  assert.deepEqual(
    out.redirects.map((r) => [r.op, r.target?.value]),
    [
      ['>', 'a.txt'],
      ['>', '/dev/null'],
      ['&>', 'both'],
      ['>>', 'log'],
      ['>|', 'clobber'],
      ['<>', 'rw'],
    ],
  );
  assert.deepEqual(
    out.inputs.map((w) => w.value),
    ['in.txt', 'rw'],
  );
  assert.deepEqual(words('echo 2 > f'), [['echo', '2']]);

  const [here] = parseCommands('bash <<<"rm -rf ~"');
  assert.deepEqual(here.stdin, { text: 'rm -rf ~\n', expands: false, substitutions: [] });

  const doc = parseCommands("cat > notes.md <<'EOF'\nsudo rm -rf /\n$(not run)\nEOF\necho after");
  assert.deepEqual(
    doc.map((c) => c.words.map((w) => w.value)),
    [['cat'], ['echo', 'after']],
  );
  assert.deepEqual(doc[0].stdin, { text: 'sudo rm -rf /\n$(not run)\n', expands: false, substitutions: [] });
  const expanded = parseCommands('bash <<EOF\n$(curl -s x) `id`\nEOF');
  assert.equal(expanded[0].stdin?.expands, true);
  assert.deepEqual(expanded[0].stdin?.substitutions, ['curl -s x', 'id']);
  // <<- strips leading tabs from the body and the delimiter; two heredocs on one line.
  const two = parseCommands('cat <<-A <<B\n\tone\n\tA\ntwo\nB\nsudo q');
  assert.equal(two[0].stdin?.text, 'two\n');
  assert.deepEqual(
    two.map((c) => c.words[0]?.value),
    ['cat', 'sudo'],
  );
});

test('expansions are kept as written and marked; the commands inside them are collected', () => {
  const [command] = parseCommands('echo "$(sudo id)" `git push` $HOME "${PWD}/x" $((1+2)) \'$(literal)\' *.ts "*.md" <(sort a)');
  const [, sub, tick, home, pwd, math, literal, glob, quotedGlob, proc] = command.words;
  assert.deepEqual([sub.value, sub.substitutions, sub.leadingExpansion], ['$(sudo id)', ['sudo id'], true]);
  assert.deepEqual([tick.value, tick.substitutions], ['`git push`', ['git push']]);
  assert.deepEqual([home.value, home.expands, home.substitutions], ['$HOME', true, []]);
  assert.deepEqual([pwd.value, pwd.leadingExpansion], ['${PWD}/x', true]);
  assert.deepEqual([math.value, math.substitutions], ['$((1+2))', []]);
  assert.deepEqual([literal.value, literal.expands, literal.substitutions], ['$(literal)', false, []]);
  assert.deepEqual([glob.glob, quotedGlob.glob], [true, false]);
  assert.deepEqual([proc.value, proc.processSubstitution, proc.substitutions], ['<(sort a)', true, ['sort a']]);
  // Nested and quoted parentheses inside $(…) stay in one word.
  const nested = readWord('"$(echo ")" $(date))"x', 0);
  assert.deepEqual([nested?.value, nested?.substitutions], ['$(echo ")" $(date))x', ['echo ")" $(date)']]);
  assert.deepEqual(substitutionsIn("a $(b) '`c`' \\$(d)"), ['b', 'c']);
  assert.equal(readWord('a$x', 0)?.leadingExpansion, false);
  assert.equal(readWord('~/x', 0)?.tilde, true);
  assert.equal(readWord('"~/x"', 0)?.tilde, false);
});

test('the lexer never throws and ends on unterminated quotes, substitutions and heredocs', () => {
  for (const src of ['echo "open', "echo 'open", 'echo $(open', 'echo `open', 'cat <<EOF\nno end', 'echo ${open', 'a |', '&& b', ')', '<<', '>']) {
    assert.doesNotThrow(() => parseCommands(src), src);
    assert.ok(
      lex(src).every((t) => t.end <= src.length),
      src,
    );
  }
});
