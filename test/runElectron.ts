/**
 * Runs the integration suite in desktop VS Code through @vscode/test-electron (which downloads
 * VS Code on first use). On machines without a display or that download, `npm run test:vscode`
 * runs the same suite in code-server instead.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const temp = mkdtempSync(path.join(os.tmpdir(), 'apollo-electron-'));
  const workspace = path.join(temp, 'workspace');
  cpSync(path.join(root, 'demo'), workspace, { recursive: true });
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Apollo Test', '-c', 'user.email=test@example.com', ...args], { cwd: workspace });
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '-m', 'demo');
  try {
    await runTests({
      version: '1.100.3',
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'out', 'test', 'integration', 'index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
    });
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
