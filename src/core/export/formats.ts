/**
 * The table of export formats: each format's writer, its description and whether it writes a
 * folder. Adding a format is one entry here (and its name in types.ts).
 */
import { openAtifWriter } from './atif';
import { openHfWriter } from './hf';
import { openLlamaFactoryWriter } from './llamafactory';
import { openOpenAiWriter } from './openai';
import { openPairsWriter } from './pairs';
import { openShareGptWriter } from './sharegpt';
import { openTrlWriter } from './trl';
import type { ExportFormat, FormatWriter, WriterContext } from './types';

export const FORMAT_DESCRIPTIONS: Record<ExportFormat, string> = {
  openai: 'OpenAI chat fine-tuning JSONL, one context a line (runs are cut at each compaction), weight 0|1 on each assistant message',
  hf: 'Hugging Face dataset folder (README.md card + data/*.jsonl), one context a row, per-message weight and axolotl training flag',
  trl: "Hugging Face dataset folder of prompt-completion rows, one per trained assistant turn: TRL's SFTTrainer puts loss on exactly those turns",
  llamafactory: 'LLaMA-Factory folder (dataset_info.json + data/train.jsonl), one sharegpt row per trained turn, ending with it: train with mask_history: true',
  atif: 'Agent Trajectory Interchange Format v1.7 (Harbor), one JSON file per trajectory',
  sharegpt: 'LLaMA-Factory sharegpt JSONL with function_call / observation turns, whole trajectories (carries no mask)',
  pairs: 'preference pairs where two trajectories part (rewinds, sampled runs of one task): prompt / chosen / rejected assistant turns in chat form (JSONL)',
};

/** Formats that write a folder; the others write one file. */
export const FOLDER_FORMATS: readonly ExportFormat[] = ['hf', 'trl', 'llamafactory', 'atif'];

/** Opens the writer of each format. */
export const OPENERS: Record<ExportFormat, (context: WriterContext) => Promise<FormatWriter>> = {
  openai: openOpenAiWriter,
  hf: openHfWriter,
  trl: openTrlWriter,
  llamafactory: openLlamaFactoryWriter,
  atif: openAtifWriter,
  sharegpt: openShareGptWriter,
  pairs: openPairsWriter,
};
