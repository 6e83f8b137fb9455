/**
 * `apollo validate`: checks every run of a dataset and reports each problem with its file and
 * line, then carries on. A truncated last line (a crash mid-write) is a warning, not an error:
 * readers skip it and the run resumes past it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findSecretShapes } from './redaction';
import type { DatasetStore } from './store';

export interface ValidationProblem {
  severity: 'error' | 'warning';
  runId: string;
  file: string;
  line?: number;
  message: string;
}

export interface ValidationReport {
  runs: number;
  events: number;
  errors: number;
  warnings: number;
  problems: ValidationProblem[];
}

export async function validateDataset(store: DatasetStore, onRun?: (runId: string) => void): Promise<ValidationReport> {
  const report: ValidationReport = { runs: 0, events: 0, errors: 0, warnings: 0, problems: [] };
  const add = (problem: ValidationProblem) => {
    report.problems.push(problem);
    if (problem.severity === 'error') report.errors++;
    else report.warnings++;
  };
  for (const runId of (await store.runIds()).sort()) {
    onRun?.(runId);
    report.runs++;
    const dir = store.runDir(runId);
    const manifestFile = path.join(dir, 'run.json');
    const eventsFile = path.join(dir, 'events.jsonl');
    let manifestSteps: number | undefined;
    try {
      manifestSteps = (await store.readManifest(runId)).steps;
    } catch (error) {
      add({ severity: 'error', runId, file: manifestFile, message: (error as Error).message });
      continue;
    }
    let text: string;
    try {
      text = await fs.readFile(eventsFile, 'utf8');
    } catch (error) {
      add({ severity: 'error', runId, file: eventsFile, message: `cannot be read: ${(error as Error).message}` });
      continue;
    }
    const { events, problems } = await store.readEventLines(runId);
    for (const problem of problems) {
      add({ severity: problem.truncated ? 'warning' : 'error', runId, file: eventsFile, line: problem.line, message: `${problem.message}; readers skip this line` });
    }
    report.events += events.length;
    for (const problem of await secretShapeProblems(runId, dir, text)) add(problem);

    const first = events[0];
    if (first?.type !== 'run_started') add({ severity: 'error', runId, file: eventsFile, line: 1, message: 'the first event is not run_started' });
    else if (first.runId !== runId) add({ severity: 'error', runId, file: eventsFile, line: 1, message: `run_started names run ${first.runId}, not the folder's ${runId}` });
    const steps = new Set<number>();
    const hints = new Set<string>();
    let lastStep = 0;
    for (const event of events) {
      switch (event.type) {
        case 'step':
          if (steps.has(event.step)) add({ severity: 'error', runId, file: eventsFile, message: `step ${event.step} is recorded twice` });
          else if (event.step < lastStep) add({ severity: 'error', runId, file: eventsFile, message: `step ${event.step} comes after step ${lastStep}` });
          steps.add(event.step);
          lastStep = Math.max(lastStep, event.step);
          break;
        case 'label':
          if (!steps.has(event.step)) add({ severity: 'error', runId, file: eventsFile, message: `a label (${event.source}) refers to step ${event.step}, which is not recorded before it` });
          break;
        case 'hint_queued':
          hints.add(event.hintId);
          break;
        case 'hint_delivered':
          if (!hints.has(event.hintId)) add({ severity: 'error', runId, file: eventsFile, message: `hint ${event.hintId} is delivered at step ${event.step} but was never queued` });
          break;
        case 'hint_undelivered':
          if (!hints.has(event.hintId)) add({ severity: 'error', runId, file: eventsFile, message: `hint ${event.hintId} is recorded as undelivered but was never queued` });
          break;
        case 'rewind':
          if (event.toStep > lastStep) add({ severity: 'error', runId, file: eventsFile, message: `a rewind to step ${event.toStep} comes before that step was recorded` });
          break;
        default:
          // The other events have no order to check here.
          break;
      }
    }
    if (manifestSteps !== lastStep) {
      add({ severity: 'warning', runId, file: manifestFile, message: `the manifest counts ${manifestSteps} step(s), the events ${lastStep}; resuming the run corrects it` });
    }
  }
  return report;
}

/** The text files kept beside a run's events (a command's full output, a job's log, the manifest). */
const RUN_TEXT_FILE = /\.(?:json|jsonl|txt|log)$/;

/** One error per secret shape found, with the file, the line and the rule, in the events and every text file of the run. */
async function secretShapeProblems(runId: string, dir: string, eventsText: string): Promise<ValidationProblem[]> {
  const problems: ValidationProblem[] = [];
  const scan = (file: string, text: string) => {
    text.split('\n').forEach((line, index) => {
      for (const kind of findSecretShapes(line)) {
        problems.push({ severity: 'error', runId, file, line: index + 1, message: `holds a secret shape (${kind}); redact it before sharing the dataset` });
      }
    });
  };
  scan(path.join(dir, 'events.jsonl'), eventsText);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names.sort()) {
    if (name === 'events.jsonl' || !RUN_TEXT_FILE.test(name)) continue;
    const file = path.join(dir, name);
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) scan(file, text);
  }
  return problems;
}

export function formatValidationReport(report: ValidationReport): string {
  const lines = report.problems.map((problem) => `${problem.severity}: ${problem.file}${problem.line ? `:${problem.line}` : ''}: ${problem.message}`);
  lines.push(`${report.runs} run(s), ${report.events} event(s) checked: ${report.errors} error(s), ${report.warnings} warning(s)`);
  return lines.join('\n') + '\n';
}
