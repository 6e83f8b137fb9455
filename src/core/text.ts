/**
 * How Apollo writes a count and the gist of a text, the same in the CLI, the editor's messages,
 * the rules' reasons and the panel (which reaches this file through src/protocol.ts: it is pure,
 * with no Node import, so that it bundles for the browser).
 */

const integer = new Intl.NumberFormat('en-US');

/** "1 step", "1,234 steps"; `many` for nouns whose plural is not `one` + "s". */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${integer.format(count)} ${count === 1 ? one : many}`;
}

/** The first line of `text` that is not blank, trimmed, cut to `max` characters with an ellipsis. */
export function firstLine(text: string, max = Infinity): string {
  const line =
    text
      .split('\n')
      .find((candidate) => candidate.trim() !== '')
      ?.trim() ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
