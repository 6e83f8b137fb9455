/**
 * A line diff that gives the hunks git's default diff gives (`git diff-tree -p`, no options):
 *
 * - preparation: the common first and last lines are set aside, and so are lines that have no
 *   equal on the other side, or (within a run of such lines) too many equals;
 * - Myers' O(ND) algorithm, splitting at the middle snake, with the cost limits git applies to
 *   large inputs (past them it takes a good-enough split rather than the shortest script);
 * - post-processing: each group of changed lines is slid as far as it goes, lined up with a
 *   group on the other side where it can be, and otherwise placed by the indent heuristic;
 * - output: three lines of context, hunks closer than that merged, the default hunk-header
 *   function name, and "\ No newline at end of file".
 *
 * The same decisions in the same order are what make the output byte-identical to git's, so
 * the constants below are git's.
 */

/** Lines whose equals run longer than this are taken as a snake worth stopping at. */
const SNAKE_COUNT = 20;
/** Cost from which the heuristic split is tried. */
const HEURISTIC_MIN_COST = 256;
const HEURISTIC_FACTOR = 4;
const MIN_MAX_COST = 256;
const MAX_EQUAL_LIMIT = 1024;
const SCAN_WINDOW = 100;
const DISCARD_RUN_FACTOR = 4;
const LINE_MAX = 0x7fffffff;
const CONTEXT = 3;
const MAX_INDENT = 200;
const MAX_BLANKS = 20;
const MAX_SLIDING = 100;
const FUNCNAME_BYTES = 80;

/** One side of the diff: the lines of a buffer, each with its terminating newline if any. */
class Side {
  readonly starts: number[] = [];
  /** Equivalence class of each line: equal lines (byte for byte) share a class. */
  classes!: Int32Array;
  /** changed[i + 1] is 1 when line i is inserted or deleted; slots 0 and n + 1 stay 0. */
  changed!: Uint8Array;

  constructor(readonly data: Buffer) {
    let at = 0;
    while (at < data.length) {
      this.starts.push(at);
      const newline = data.indexOf(10, at);
      at = newline < 0 ? data.length : newline + 1;
    }
    this.starts.push(data.length);
  }

  get count(): number {
    return this.starts.length - 1;
  }

  line(i: number): Buffer {
    return this.data.subarray(this.starts[i], this.starts[i + 1]);
  }

  isChanged(i: number): boolean {
    return i >= -1 && i <= this.count ? this.changed[i + 1] === 1 : false;
  }

  setChanged(i: number, value: boolean): void {
    this.changed[i + 1] = value ? 1 : 0;
  }
}

/** One block of the edit script: `count1` lines at `at1` replaced by `count2` lines at `at2`. */
export interface Change {
  at1: number;
  at2: number;
  count1: number;
  count2: number;
}

/** Integer square root, roughly, as git computes it (a power of two). */
function roughSqrt(n: number): number {
  let root = 1;
  for (; n > 0; n = Math.floor(n / 4)) root *= 2;
  return root;
}

function classify(a: Side, b: Side): void {
  const ids = new Map<string, number>();
  for (const side of [a, b]) {
    side.classes = new Int32Array(side.count);
    side.changed = new Uint8Array(side.count + 2);
    for (let i = 0; i < side.count; i++) {
      const key = side.data.toString('latin1', side.starts[i], side.starts[i + 1]);
      let id = ids.get(key);
      if (id === undefined) {
        id = ids.size;
        ids.set(key, id);
      }
      side.classes[i] = id;
    }
  }
}

/** The lines that take part in the search, and the search's working state. */
interface Reduced {
  /** Index into the side's lines of each kept line. */
  index: Int32Array;
  classes: Int32Array;
  length: number;
}

/**
 * Should a line with many equals on the other side be left out of the search? Yes when it sits
 * in a run made mostly of lines without any equal there.
 */
function discardable(kinds: Uint8Array, i: number, start: number, end: number): boolean {
  if (i - start > SCAN_WINDOW) start = i - SCAN_WINDOW;
  if (end - i > SCAN_WINDOW) end = i + SCAN_WINDOW;
  let unmatchedBefore = 0;
  let crowdedBefore = 1;
  for (let r = 1; i - r >= start; r++) {
    const kind = kinds[i - r];
    if (kind === 0) unmatchedBefore++;
    else if (kind === 2) crowdedBefore++;
    else break;
  }
  if (unmatchedBefore === 0) return false;
  let unmatchedAfter = 0;
  let crowdedAfter = 1;
  for (let r = 1; i + r <= end; r++) {
    const kind = kinds[i + r];
    if (kind === 0) unmatchedAfter++;
    else if (kind === 2) crowdedAfter++;
    else break;
  }
  if (unmatchedAfter === 0) return false;
  const unmatched = unmatchedAfter + unmatchedBefore;
  const crowded = crowdedAfter + crowdedBefore;
  return crowded * DISCARD_RUN_FACTOR < crowded + unmatched;
}

/** Sets aside the common ends and the lines not worth searching; returns the rest of each side. */
function prepare(a: Side, b: Side): [Reduced, Reduced] {
  const limit = Math.min(a.count, b.count);
  let head = 0;
  while (head < limit && a.classes[head] === b.classes[head]) head++;
  let tail = 0;
  while (tail < limit - head && a.classes[a.count - 1 - tail] === b.classes[b.count - 1 - tail]) tail++;

  const occurrences = (side: Side) => {
    const counts = new Map<number, number>();
    for (const id of side.classes) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  };
  const inA = occurrences(a);
  const inB = occurrences(b);
  const reduce = (side: Side, other: Map<number, number>): Reduced => {
    const last = side.count - tail - 1;
    const cap = Math.min(roughSqrt(side.count), MAX_EQUAL_LIMIT);
    // 0: no equal on the other side; 1: some; 2: at least `cap`.
    const kinds = new Uint8Array(side.count);
    for (let i = head; i <= last; i++) {
      const equals = Math.min(other.get(side.classes[i]) ?? 0, cap);
      kinds[i] = equals === 0 ? 0 : equals >= cap ? 2 : 1;
    }
    const index: number[] = [];
    for (let i = head; i <= last; i++) {
      if (kinds[i] === 1 || (kinds[i] === 2 && !discardable(kinds, i, head, last))) index.push(i);
      else side.setChanged(i, true);
    }
    const reduced = { index: Int32Array.from(index), classes: new Int32Array(index.length), length: index.length };
    index.forEach((line, k) => (reduced.classes[k] = side.classes[line]));
    return reduced;
  };
  return [reduce(a, inB), reduce(b, inA)];
}

interface Split {
  i1: number;
  i2: number;
  minimalLow: boolean;
  minimalHigh: boolean;
}

/** The search over the kept lines: marks what is inserted and deleted. */
class Search {
  private readonly forward: Int32Array;
  private readonly backward: Int32Array;
  /** Offset of diagonal 0 in the two arrays above. */
  private readonly zero: number;
  private readonly maxCost: number;

  constructor(
    private readonly a: Reduced,
    private readonly b: Reduced,
    private readonly sideA: Side,
    private readonly sideB: Side,
  ) {
    const diagonals = a.length + b.length + 3;
    this.forward = new Int32Array(diagonals);
    this.backward = new Int32Array(diagonals);
    this.zero = b.length + 1;
    this.maxCost = Math.max(roughSqrt(diagonals), MIN_MAX_COST);
  }

  /** Compares boxes depth first, the lower half before the upper, as a recursion would. */
  run(minimal: boolean): void {
    const ha = this.a.classes;
    const hb = this.b.classes;
    const boxes: [number, number, number, number, boolean][] = [[0, this.a.length, 0, this.b.length, minimal]];
    while (boxes.length) {
      let [off1, lim1, off2, lim2, needMinimal] = boxes.pop()!;
      while (off1 < lim1 && off2 < lim2 && ha[off1] === hb[off2]) {
        off1++;
        off2++;
      }
      while (off1 < lim1 && off2 < lim2 && ha[lim1 - 1] === hb[lim2 - 1]) {
        lim1--;
        lim2--;
      }
      if (off1 === lim1) {
        for (; off2 < lim2; off2++) this.sideB.setChanged(this.b.index[off2], true);
      } else if (off2 === lim2) {
        for (; off1 < lim1; off1++) this.sideA.setChanged(this.a.index[off1], true);
      } else {
        const split = this.split(off1, lim1, off2, lim2, needMinimal);
        boxes.push([split.i1, lim1, split.i2, lim2, split.minimalHigh]);
        boxes.push([off1, split.i1, off2, split.i2, split.minimalLow]);
      }
    }
  }

  /**
   * Where the shortest edit script through the box crosses from one half to the other, found
   * from both corners at once; past the cost limits, a good-enough crossing instead.
   */
  private split(off1: number, lim1: number, off2: number, lim2: number, needMinimal: boolean): Split {
    const ha = this.a.classes;
    const hb = this.b.classes;
    const kf = this.forward;
    const kb = this.backward;
    const z = this.zero;
    const dmin = off1 - lim2;
    const dmax = lim1 - off2;
    const fmid = off1 - off2;
    const bmid = lim1 - lim2;
    const odd = ((fmid - bmid) & 1) !== 0;
    let fmin = fmid;
    let fmax = fmid;
    let bmin = bmid;
    let bmax = bmid;
    kf[z + fmid] = off1;
    kb[z + bmid] = lim1;

    for (let cost = 1; ; cost++) {
      let gotSnake = false;
      if (fmin > dmin) kf[z + --fmin - 1] = -1;
      else ++fmin;
      if (fmax < dmax) kf[z + ++fmax + 1] = -1;
      else --fmax;
      for (let d = fmax; d >= fmin; d -= 2) {
        let i1 = kf[z + d - 1] >= kf[z + d + 1] ? kf[z + d - 1] + 1 : kf[z + d + 1];
        const start = i1;
        let i2 = i1 - d;
        while (i1 < lim1 && i2 < lim2 && ha[i1] === hb[i2]) {
          i1++;
          i2++;
        }
        if (i1 - start > SNAKE_COUNT) gotSnake = true;
        kf[z + d] = i1;
        if (odd && bmin <= d && d <= bmax && kb[z + d] <= i1) return { i1, i2, minimalLow: true, minimalHigh: true };
      }

      if (bmin > dmin) kb[z + --bmin - 1] = LINE_MAX;
      else ++bmin;
      if (bmax < dmax) kb[z + ++bmax + 1] = LINE_MAX;
      else --bmax;
      for (let d = bmax; d >= bmin; d -= 2) {
        let i1 = kb[z + d - 1] < kb[z + d + 1] ? kb[z + d - 1] : kb[z + d + 1] - 1;
        const start = i1;
        let i2 = i1 - d;
        while (i1 > off1 && i2 > off2 && ha[i1 - 1] === hb[i2 - 1]) {
          i1--;
          i2--;
        }
        if (start - i1 > SNAKE_COUNT) gotSnake = true;
        kb[z + d] = i1;
        if (!odd && fmin <= d && d <= fmax && i1 <= kf[z + d]) return { i1, i2, minimalLow: true, minimalHigh: true };
      }

      if (needMinimal) continue;

      // Past a certain cost, a diagonal that got far from its corner along a long enough snake
      // is a good place to split.
      if (gotSnake && cost > HEURISTIC_MIN_COST) {
        let best = 0;
        let found: Split | undefined;
        for (let d = fmax; d >= fmin; d -= 2) {
          const distance = d > fmid ? d - fmid : fmid - d;
          const i1 = kf[z + d];
          const i2 = i1 - d;
          const value = i1 - off1 + (i2 - off2) - distance;
          if (value > HEURISTIC_FACTOR * cost && value > best && off1 + SNAKE_COUNT <= i1 && i1 < lim1 && off2 + SNAKE_COUNT <= i2 && i2 < lim2) {
            for (let k = 1; ha[i1 - k] === hb[i2 - k]; k++) {
              if (k === SNAKE_COUNT) {
                best = value;
                found = { i1, i2, minimalLow: true, minimalHigh: false };
                break;
              }
            }
          }
        }
        if (best > 0) return found!;
        best = 0;
        for (let d = bmax; d >= bmin; d -= 2) {
          const distance = d > bmid ? d - bmid : bmid - d;
          const i1 = kb[z + d];
          const i2 = i1 - d;
          const value = lim1 - i1 + (lim2 - i2) - distance;
          if (value > HEURISTIC_FACTOR * cost && value > best && off1 < i1 && i1 <= lim1 - SNAKE_COUNT && off2 < i2 && i2 <= lim2 - SNAKE_COUNT) {
            for (let k = 0; ha[i1 + k] === hb[i2 + k]; k++) {
              if (k === SNAKE_COUNT - 1) {
                best = value;
                found = { i1, i2, minimalLow: false, minimalHigh: true };
                break;
              }
            }
          }
        }
        if (best > 0) return found!;
      }

      // Too costly: take the furthest-reaching path of either direction.
      if (cost >= this.maxCost) {
        let fbest = -1;
        let fbest1 = -1;
        for (let d = fmax; d >= fmin; d -= 2) {
          let i1 = Math.min(kf[z + d], lim1);
          let i2 = i1 - d;
          if (lim2 < i2) {
            i1 = lim2 + d;
            i2 = lim2;
          }
          if (fbest < i1 + i2) {
            fbest = i1 + i2;
            fbest1 = i1;
          }
        }
        let bbest = LINE_MAX;
        let bbest1 = LINE_MAX;
        for (let d = bmax; d >= bmin; d -= 2) {
          let i1 = Math.max(off1, kb[z + d]);
          let i2 = i1 - d;
          if (i2 < off2) {
            i1 = off2 + d;
            i2 = off2;
          }
          if (i1 + i2 < bbest) {
            bbest = i1 + i2;
            bbest1 = i1;
          }
        }
        if (lim1 + lim2 - bbest < fbest - (off1 + off2)) return { i1: fbest1, i2: fbest - fbest1, minimalLow: true, minimalHigh: false };
        return { i1: bbest1, i2: bbest - bbest1, minimalLow: false, minimalHigh: true };
      }
    }
  }
}

/** Indentation of a line in columns (a tab to the next multiple of 8); -1 for a blank line. */
function indentOf(line: Buffer): number {
  let indent = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return indent;
    if (c === 32) indent += 1;
    else if (c === 9) indent += 8 - (indent % 8);
    if (indent >= MAX_INDENT) return MAX_INDENT;
  }
  return -1;
}

interface Score {
  effectiveIndent: number;
  penalty: number;
}

/** Adds the badness of splitting the side's lines just above line `split` (the indent heuristic's weights). */
function scoreSplit(side: Side, indents: (i: number) => number, split: number, score: Score): void {
  const endOfFile = split >= side.count;
  const indent = endOfFile ? -1 : indents(split);
  let preBlank = 0;
  let preIndent = -1;
  for (let i = split - 1; i >= 0; i--) {
    preIndent = indents(i);
    if (preIndent !== -1) break;
    preBlank += 1;
    if (preBlank === MAX_BLANKS) {
      preIndent = 0;
      break;
    }
  }
  let postBlank = 0;
  let postIndent = -1;
  for (let i = split + 1; i < side.count; i++) {
    postIndent = indents(i);
    if (postIndent !== -1) break;
    postBlank += 1;
    if (postBlank === MAX_BLANKS) {
      postIndent = 0;
      break;
    }
  }

  if (preIndent === -1 && preBlank === 0) score.penalty += 1; // start of file
  if (endOfFile) score.penalty += 21;
  const blanksAfter = indent === -1 ? 1 + postBlank : 0;
  const totalBlank = preBlank + blanksAfter;
  score.penalty += -30 * totalBlank;
  score.penalty += 6 * blanksAfter;
  const effective = indent !== -1 ? indent : postIndent;
  const anyBlanks = totalBlank !== 0;
  score.effectiveIndent += effective;
  if (effective === -1 || preIndent === -1) {
    // nothing more to weigh
  } else if (effective > preIndent) {
    score.penalty += anyBlanks ? 10 : -4;
  } else if (effective === preIndent) {
    // same level as the line before
  } else if (postIndent !== -1 && postIndent > effective) {
    score.penalty += anyBlanks ? 17 : 24;
  } else {
    score.penalty += anyBlanks ? 17 : 23;
  }
}

function compareScores(a: Score, b: Score): number {
  const indents = Number(a.effectiveIndent > b.effectiveIndent) - Number(a.effectiveIndent < b.effectiveIndent);
  return 60 * indents + (a.penalty - b.penalty);
}

/** A run of changed lines [start, end) of one side; empty groups sit between unchanged lines. */
interface Group {
  start: number;
  end: number;
}

/** Slides each group of changed lines of `side` to where it reads best, keeping `other` in step. */
function compact(side: Side, other: Side, indentHeuristic: boolean): void {
  const indentCache = new Int16Array(side.count).fill(-2);
  const indents = (i: number) => {
    if (indentCache[i] === -2) indentCache[i] = indentOf(side.line(i));
    return indentCache[i];
  };
  const first = (s: Side): Group => {
    const group = { start: 0, end: 0 };
    while (s.isChanged(group.end)) group.end++;
    return group;
  };
  const next = (s: Side, group: Group): boolean => {
    if (group.end === s.count) return false;
    group.start = group.end + 1;
    for (group.end = group.start; s.isChanged(group.end); group.end++);
    return true;
  };
  const previous = (s: Side, group: Group): boolean => {
    if (group.start === 0) return false;
    group.end = group.start - 1;
    for (group.start = group.end; s.isChanged(group.start - 1); group.start--);
    return true;
  };
  const slideDown = (group: Group): boolean => {
    if (group.end < side.count && side.classes[group.start] === side.classes[group.end]) {
      side.setChanged(group.start++, false);
      side.setChanged(group.end++, true);
      while (side.isChanged(group.end)) group.end++;
      return true;
    }
    return false;
  };
  const slideUp = (group: Group): boolean => {
    if (group.start > 0 && side.classes[group.start - 1] === side.classes[group.end - 1]) {
      side.setChanged(--group.start, true);
      side.setChanged(--group.end, false);
      while (side.isChanged(group.start - 1)) group.start--;
      return true;
    }
    return false;
  };
  const broken = (what: string) => new Error(`line diff: groups out of step ${what}`);

  const g = first(side);
  const go = first(other);
  for (;;) {
    if (g.end !== g.start) {
      let size: number;
      let earliestEnd: number;
      let endMatchingOther: number;
      do {
        size = g.end - g.start;
        endMatchingOther = -1;
        while (slideUp(g)) if (!previous(other, go)) throw broken('sliding up');
        earliestEnd = g.end;
        if (go.end > go.start) endMatchingOther = g.end;
        for (;;) {
          if (!slideDown(g)) break;
          if (!next(other, go)) throw broken('sliding down');
          if (go.end > go.start) endMatchingOther = g.end;
        }
      } while (size !== g.end - g.start);

      if (g.end === earliestEnd) {
        // it could not move
      } else if (endMatchingOther !== -1) {
        // Line up with the last group of the other side it can meet.
        while (go.end === go.start) {
          if (!slideUp(g)) throw broken('lining up');
          if (!previous(other, go)) throw broken('lining up');
        }
      } else if (indentHeuristic) {
        let shift = earliestEnd;
        if (g.end - size - 1 > shift) shift = g.end - size - 1;
        if (g.end - MAX_SLIDING > shift) shift = g.end - MAX_SLIDING;
        let bestShift = -1;
        let best: Score = { effectiveIndent: 0, penalty: 0 };
        for (; shift <= g.end; shift++) {
          const score = { effectiveIndent: 0, penalty: 0 };
          scoreSplit(side, indents, shift, score);
          scoreSplit(side, indents, shift - size, score);
          if (bestShift === -1 || compareScores(score, best) <= 0) {
            best = score;
            bestShift = shift;
          }
        }
        while (g.end > bestShift) {
          if (!slideUp(g)) throw broken('placing');
          if (!previous(other, go)) throw broken('placing');
        }
      }
    }
    if (!next(side, g)) break;
    if (!next(other, go)) throw broken('moving on');
  }
  if (next(other, go)) throw broken('at the end');
}

/** The edit script between two buffers, line by line, as git's diff finds it. */
export function diffLines(a: Buffer, b: Buffer, options: { indentHeuristic?: boolean } = {}): { changes: Change[]; a: Side; b: Side } {
  const sideA = new Side(a);
  const sideB = new Side(b);
  classify(sideA, sideB);
  const [reducedA, reducedB] = prepare(sideA, sideB);
  new Search(reducedA, reducedB, sideA, sideB).run(false);
  const heuristic = options.indentHeuristic ?? true;
  compact(sideA, sideB, heuristic);
  compact(sideB, sideA, heuristic);
  const changes: Change[] = [];
  for (let i1 = sideA.count, i2 = sideB.count; i1 >= 0 || i2 >= 0; i1--, i2--) {
    if (sideA.isChanged(i1 - 1) || sideB.isChanged(i2 - 1)) {
      const end1 = i1;
      const end2 = i2;
      while (sideA.isChanged(i1 - 1)) i1--;
      while (sideB.isChanged(i2 - 1)) i2--;
      changes.push({ at1: i1, at2: i2, count1: end1 - i1, count2: end2 - i2 });
    }
  }
  changes.reverse();
  return { changes, a: sideA, b: sideB };
}

const NO_NEWLINE = Buffer.from('\n\\ No newline at end of file\n');

/** The default hunk-header function name: a line that starts like an identifier, cut to 80 bytes. */
function functionName(line: Buffer): Buffer | undefined {
  const c = line[0];
  if (line.length === 0 || !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36)) return undefined;
  let length = Math.min(line.length, FUNCNAME_BYTES);
  while (length > 0 && [32, 9, 10, 13].includes(line[length - 1])) length--;
  return line.subarray(0, length);
}

/** How many bytes from the start are valid UTF-8 (git cuts a hunk header there). */
function validUtf8Length(text: Buffer): number {
  let i = 0;
  while (i < text.length) {
    const s0 = text[i];
    const rest = text.length - i;
    const cont = (k: number) => (text[i + k] & 0xc0) === 0x80;
    if (s0 < 0x80) {
      i += 1;
    } else if ((s0 & 0xe0) === 0xc0) {
      if (rest < 2 || !cont(1) || (s0 & 0xfe) === 0xc0) break;
      i += 2;
    } else if ((s0 & 0xf0) === 0xe0) {
      const s1 = text[i + 1];
      if (rest < 3 || !cont(1) || !cont(2) || (s0 === 0xe0 && (s1 & 0xe0) === 0x80) || (s0 === 0xed && (s1 & 0xe0) === 0xa0) || (s0 === 0xef && s1 === 0xbf && (text[i + 2] & 0xfe) === 0xbe)) break;
      i += 3;
    } else if ((s0 & 0xf8) === 0xf0) {
      const s1 = text[i + 1];
      if (rest < 4 || !cont(1) || !cont(2) || !cont(3) || (s0 === 0xf0 && (s1 & 0xf0) === 0x80) || (s0 === 0xf4 && s1 > 0x8f) || s0 > 0xf4) break;
      i += 4;
    } else {
      break;
    }
  }
  return i;
}

function hunkHeader(s1: number, c1: number, s2: number, c2: number, func: Buffer | undefined): Buffer {
  const range = (start: number, count: number) => `${count ? start : start - 1}${count !== 1 ? `,${count}` : ''}`;
  const head = Buffer.from(`@@ -${range(s1, c1)} +${range(s2, c2)} @@`);
  let line = head;
  if (func && func.length) {
    // git formats the header in a 128-byte buffer, the newline included.
    const room = 128 - (head.length + 1) - 1;
    line = Buffer.concat([head, Buffer.from(' '), func.subarray(0, Math.max(0, room))]);
  }
  line = line.subarray(0, validUtf8Length(line));
  return Buffer.concat([line, Buffer.from('\n')]);
}

export interface UnifiedDiff {
  /** The hunks, each line as git prints it; empty when the buffers are equal. */
  chunks: Buffer[];
  additions: number;
  deletions: number;
}

/** The unified diff of two buffers (hunks only, no file header), as `git diff-tree -p` prints it. */
export function unifiedDiff(a: Buffer, b: Buffer, options: { indentHeuristic?: boolean; suppressBlankEmpty?: boolean; countOnly?: boolean } = {}): UnifiedDiff {
  const { changes, a: sideA, b: sideB } = diffLines(a, b, options);
  const result: UnifiedDiff = { chunks: [], additions: 0, deletions: 0 };
  for (const change of changes) {
    result.additions += change.count2;
    result.deletions += change.count1;
  }
  if (options.countOnly) return result;
  const out = result.chunks;
  const emit = (side: Side, i: number, sign: string) => {
    const line = side.line(i);
    if (sign === ' ' && options.suppressBlankEmpty && line.length === 1 && line[0] === 10) {
      out.push(line);
      return;
    }
    out.push(Buffer.from(sign), line);
    if (line.length > 0 && line[line.length - 1] !== 10) out.push(NO_NEWLINE);
  };
  let previousSearch = -1;
  let func: Buffer | undefined;
  for (let first = 0; first < changes.length; ) {
    let last = first;
    while (last + 1 < changes.length && changes[last + 1].at1 - (changes[last].at1 + changes[last].count1) <= 2 * CONTEXT) last++;
    const start = changes[first];
    const end = changes[last];
    const s1 = Math.max(start.at1 - CONTEXT, 0);
    let s2 = Math.max(start.at2 - CONTEXT, 0);
    const after = Math.min(CONTEXT, sideA.count - (end.at1 + end.count1), sideB.count - (end.at2 + end.count2));
    const e1 = end.at1 + end.count1 + after;
    const e2 = end.at2 + end.count2 + after;
    // The function name: the nearest fitting line above the hunk, searched back to where the
    // last search began; found nowhere, the last hunk's name stays.
    for (let l = s1 - 1; l > previousSearch && l >= 0; l--) {
      const name = functionName(sideA.line(l));
      if (name) {
        func = name;
        break;
      }
    }
    previousSearch = s1 - 1;
    out.push(hunkHeader(s1 + 1, e1 - s1, s2 + 1, e2 - s2, func));
    for (; s2 < start.at2; s2++) emit(sideB, s2, ' ');
    let i1 = start.at1;
    let i2 = start.at2;
    for (let k = first; k <= last; k++) {
      const change = changes[k];
      for (; i1 < change.at1 && i2 < change.at2; i1++, i2++) emit(sideB, i2, ' ');
      for (let i = change.at1; i < change.at1 + change.count1; i++) emit(sideA, i, '-');
      for (let i = change.at2; i < change.at2 + change.count2; i++) emit(sideB, i, '+');
      i1 = change.at1 + change.count1;
      i2 = change.at2 + change.count2;
    }
    for (let i = end.at2 + end.count2; i < e2; i++) emit(sideB, i, ' ');
    first = last + 1;
  }
  return result;
}
