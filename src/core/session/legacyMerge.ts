/**
 * Runs recorded by earlier versions in `<workspace>/.apollo/dataset` (the old default) are never
 * lost nor silently ignored: when the dataset in use does not hold them, the window says so once
 * and offers to bring them over (a merge: nothing is removed from the old folder).
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { formatMergeReport, mergeDatasets } from '../dataset/merge';
import type { Log, Notifications } from '../ui';
import { legacyRunsLeft } from './datasetLocation';

const BRING = 'Bring Them Over';

export async function offerLegacyMerge(workspace: string, datasetDir: string, ui: Notifications, log: Pick<Log, 'info'>): Promise<void> {
  let real = path.resolve(workspace);
  try {
    real = realpathSync(real);
  } catch {
    return;
  }
  const left = legacyRunsLeft(real, datasetDir);
  if (!left) return;
  const message =
    `Apollo: ${left.runs.length} run(s) of this workspace are in ${left.dir}, where earlier versions kept the dataset. ` +
    `Datasets now live outside the workspace, this one in ${datasetDir}. Bring them over? Nothing is removed.`;
  log.info(`${message} (From a terminal: apollo merge ${left.dir} --into ${datasetDir})`);
  if ((await ui.showInformationMessage(message, BRING)) !== BRING) return;
  try {
    const report = await mergeDatasets([left.dir], datasetDir);
    const summary = formatMergeReport(report, datasetDir).trim();
    log.info(summary);
    void ui.showInformationMessage(`Apollo: ${summary.split('\n')[0]}`);
  } catch (error) {
    void ui.showErrorMessage(`Apollo: the runs could not be brought over: ${(error as Error).message}. From a terminal: apollo merge ${left.dir} --into ${datasetDir}`);
  }
}
