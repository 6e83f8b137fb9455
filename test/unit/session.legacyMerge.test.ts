/**
 * Runs left in `<workspace>/.apollo/dataset` by earlier versions (offerLegacyMerge): offered once,
 * merged when accepted (the old folder keeps them), left alone when dismissed, a failure said with
 * the command that does it by hand. Real datasets, fake notifications.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DatasetStore } from '../../src/core/dataset/store';
import { offerLegacyMerge } from '../../src/core/session/legacyMerge';
import { runStarted, step, writeRun } from '../fixtures/trajectories';
import { tempDir } from '../fixtures/workspace';

/** A workspace holding one run in the old place, and a dataset elsewhere. */
async function oldRuns(t: { after(fn: () => void): void }) {
  const root = tempDir('apollo-legacy-');
  t.after(root.cleanup);
  const workspace = realpathSync(root.dir);
  const legacy = path.join(workspace, '.apollo', 'dataset');
  await writeRun(new DatasetStore(legacy), 'run-old', [runStarted('run-old'), step(1)]);
  const elsewhere = tempDir('apollo-legacy-into-');
  t.after(elsewhere.cleanup);
  return { workspace, legacy, datasetDir: path.join(elsewhere.dir, 'dataset') };
}

function notifications(answer?: string) {
  const said: string[] = [];
  const log: string[] = [];
  const say =
    (level: string) =>
    async (message: string, ...items: string[]) => (said.push(`${level}: ${message}${items.length ? ` [${items.join(', ')}]` : ''}`), answer);
  return { said, log, ui: { showInformationMessage: say('info'), showWarningMessage: say('warning'), showErrorMessage: say('error') }, logger: { info: (line: string) => void log.push(line) } };
}

test('runs left where earlier versions kept the dataset are offered, and brought over when accepted; the old folder keeps them', async (t) => {
  const { workspace, legacy, datasetDir } = await oldRuns(t);
  const { said, log, ui, logger } = notifications('Bring Them Over');
  await offerLegacyMerge(workspace, datasetDir, ui, logger);
  const offer = `Apollo: 1 run(s) of this workspace are in ${legacy}, where earlier versions kept the dataset. Datasets now live outside the workspace, this one in ${datasetDir}. Bring them over? Nothing is removed.`;
  assert.deepEqual(said, [`info: ${offer} [Bring Them Over]`, `info: Apollo: merged into ${datasetDir}: 1 run(s) copied, 0 brought up to date, 0 already there; 0 snapshot file(s) copied`]);
  assert.equal(log[0], `${offer} (From a terminal: apollo merge ${legacy} --into ${datasetDir})`);
  assert.ok(existsSync(path.join(datasetDir, 'runs', 'run-old', 'run.json')));
  assert.ok(existsSync(path.join(legacy, 'runs', 'run-old', 'run.json')));

  const again = notifications('Bring Them Over');
  await offerLegacyMerge(workspace, datasetDir, again.ui, again.logger);
  assert.deepEqual(again.said, [], 'once brought over, nothing is left to offer');
});

test('a dismissed offer merges nothing; a failed merge says how to do it by hand; no old runs, or no workspace, say nothing', async (t) => {
  const { workspace, legacy, datasetDir } = await oldRuns(t);
  const dismissed = notifications();
  await offerLegacyMerge(workspace, datasetDir, dismissed.ui, dismissed.logger);
  assert.equal(dismissed.said.length, 1);
  assert.equal(existsSync(datasetDir), false);

  const blocked = path.join(workspace, 'a-file');
  writeFileSync(blocked, 'not a folder');
  const failing = notifications('Bring Them Over');
  await offerLegacyMerge(workspace, blocked, failing.ui, failing.logger);
  assert.match(
    failing.said[1],
    new RegExp(`^error: Apollo: the runs could not be brought over: .*\\. From a terminal: apollo merge ${legacy.replace(/[.]/g, '\\.')} --into ${blocked.replace(/[.]/g, '\\.')}$`),
  );

  const quiet = notifications('Bring Them Over');
  await offerLegacyMerge(workspace, legacy, quiet.ui, quiet.logger);
  await offerLegacyMerge(path.join(workspace, 'missing'), datasetDir, quiet.ui, quiet.logger);
  assert.deepEqual([quiet.said, quiet.log], [[], []]);
});
