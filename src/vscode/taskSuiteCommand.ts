/** Apollo: Run Task Suite… — the flow is core/session/taskSuiteCommand.ts; it asks through VS Code's window and runs in this window's runs. */
import type { TaskSuite } from '../core/session/taskSuite';
import { runTaskSuite as runSuite } from '../core/session/taskSuiteCommand';
import type { RunController } from './runController';
import * as window from './vscodeApis/window';

export function runTaskSuite(controller: RunController, folderArgument?: string, countArgument?: number): Promise<TaskSuite | undefined> {
  return runSuite(controller.runHost(), window, folderArgument, countArgument);
}
