/** `apollo label`: a label on a recorded step. */
import type { LabelAxis, LabelValue } from '../../core/dataset/events';
import { LABEL_AXES, LABEL_VALUES } from '../../core/dataset/events';
import { labelStep, recordedRun } from '../../core/session/labelStep';
import type { CliIo } from '../io';
import { UsageError, parseCommand, datasetFrom } from '../options';

export async function commandLabel(args: string[], io: CliIo): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      run: { type: 'string' },
      step: { type: 'string' },
      label: { type: 'string' },
      axis: { type: 'string' },
      reason: { type: 'string' },
    },
    io,
  );
  if (!parsed) return 0;
  const { values } = parsed;
  if (!values.run) throw new UsageError('apollo label needs --run ID.');
  const step = Number(values.step);
  if (!Number.isInteger(step) || step < 1) throw new UsageError('apollo label needs --step N (a step number from 1).');
  const label = values.label as LabelValue;
  if (!LABEL_VALUES.includes(label)) throw new UsageError(`--label takes ${LABEL_VALUES.join(', ')}.`);
  const axis = values.axis as LabelAxis | undefined;
  if (axis !== undefined && !LABEL_AXES.includes(axis)) throw new UsageError(`--axis takes ${LABEL_AXES.join(', ')}.`);
  await labelStep(recordedRun(datasetFrom(values.dataset, io, values.run), values.run), { step, label, ...(axis ? { axis } : {}), ...(values.reason ? { reason: values.reason } : {}) });
  io.stdout(`labelled step ${step} of run ${values.run} ${label}\n`);
  return 0;
}
