import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GitShell, GitShellError } from '../../src/core/grounding/gitShell';
import { gitEnvironment } from '../../src/core/grounding/gitEnvironment';
import { tempDir } from '../fixtures/workspace';

const posix = process.platform !== 'win32';

/** A shell of its own and a temporary folder for one test, both gone afterwards. */
async function withShell(prefix: string, work: (shell: GitShell, folder: string) => Promise<void>): Promise<void> {
  const shell = new GitShell();
  const folder = tempDir(prefix);
  try {
    await work(shell, folder.dir);
  } finally {
    shell.dispose();
    folder.cleanup();
  }
}

test('the git shell passes arguments and folders to git byte for byte', { skip: !posix }, () =>
  withShell("apollo shell 'quoted' $(x)-", async (shell, folder) => {
    const words = ["it's", 'two words', '$(touch pwned)', '`id`', 'new\nline', '-starts-with-dash', '', '\\back\\slash', '*'];
    // rev-parse --sq-quote writes its arguments back, quoted for a shell.
    const expected = execFileSync('git', ['rev-parse', '--sq-quote', ...words], { encoding: 'utf8' });
    assert.equal(await shell.run(folder, ['rev-parse', '--sq-quote', ...words], gitEnvironment()), expected);
    // The folder is the command's own, whatever its name.
    execFileSync('git', ['init', '-q'], { cwd: folder });
    assert.equal((await shell.run(folder, ['rev-parse', '--show-toplevel'], gitEnvironment())).trim(), execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: folder, encoding: 'utf8' }).trim());
    assert.equal(shell.commands, 2);
  }));

test('a command\'s environment is its own: set and unset variables do not reach the next command', { skip: !posix }, () =>
  withShell('apollo-home-', async (shell, home) => {
    writeFileSync(path.join(home, '.gitconfig'), '[apollo]\n\tshelltest = from the command\n');
    const ask = (env: Record<string, string>) => shell.run(home, ['config', '--global', 'apollo.shelltest'], env);
    assert.equal(await ask(gitEnvironment({ HOME: home, XDG_CONFIG_HOME: path.join(home, 'none') })), 'from the command\n');
    // The next command runs with the shell's own environment again: the setting is not found.
    await assert.rejects(ask(gitEnvironment()), (error: unknown) => error instanceof GitShellError && error.exitCode === 1);
    // A variable left out of a command's environment is unset for it.
    const withoutHome = gitEnvironment();
    delete withoutHome.HOME;
    delete withoutHome.XDG_CONFIG_HOME;
    await assert.rejects(ask(withoutHome), (error: unknown) => error instanceof GitShellError && /HOME/.test(error.message));
    // A name the shell cannot set is refused before anything runs.
    await assert.rejects(shell.run(home, ['--version'], { ...gitEnvironment(), 'BAD-NAME': 'x' }), /cannot be set/);
    assert.match(await shell.run(home, ['--version'], gitEnvironment()), /^git version/);
  }));

test('a failing command rejects with git\'s message and exit code, and the shell goes on', { skip: !posix }, () =>
  withShell('apollo-shell-', async (shell, folder) => {
    await assert.rejects(shell.run(folder, ['rev-parse', 'HEAD'], { ...gitEnvironment(), GIT_CEILING_DIRECTORIES: path.dirname(folder) }), (error: unknown) => {
      assert.ok(error instanceof GitShellError);
      assert.equal(error.exitCode, 128);
      assert.match(error.message, /not a git repository/);
      return true;
    });
    assert.match(await shell.run(folder, ['--version'], gitEnvironment()), /^git version/);
    // Its folder for output, removed by a cleaner of temporary folders, is made again.
    rmSync((shell as unknown as { folder: string }).folder, { recursive: true });
    assert.match(await shell.run(folder, ['--version'], gitEnvironment()), /^git version/);
  }));

test('a shell that ends fails the command it was running, and the next command starts another', { skip: !posix }, () =>
  withShell('apollo-shell-', async (shell, folder) => {
    // A command that takes a while: an alias running the shell's sleep.
    const slow = shell.run(folder, ['-c', 'alias.wait=!sleep 2', 'wait'], gitEnvironment());
    await new Promise((resolve) => setTimeout(resolve, 200));
    shell.dispose();
    await assert.rejects(slow, /stopped/);
    assert.match(await shell.run(folder, ['--version'], gitEnvironment()), /^git version/);
    // Commands queued behind one another run in turn.
    const all = await Promise.all([1, 2, 3].map((n) => shell.run(folder, ['rev-parse', '--sq-quote', String(n)], gitEnvironment())));
    assert.deepEqual(all, [" '1'\n", " '2'\n", " '3'\n"]);
  }));

test('an idle git shell does not keep the process alive', { skip: !posix }, () => {
  const module = path.join(__dirname, '../../src/core/grounding/gitShell.js');
  const script = `const { GitShell } = require(${JSON.stringify(module)});
GitShell.shared().run(process.cwd(), ['--version'], process.env).then((out) => console.log(out.trim()));`;
  const output = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.match(output, /^git version/);
});
