/**
 * A virtualized list for the timeline. Only the rows in and near the viewport exist in the DOM;
 * they are recycled as the list scrolls. Every row's height is deterministic — a base height
 * plus a fixed height per note line (plus the reason form on the one row that has it open) —
 * so row offsets are prefix sums that are extended in O(1) when a step is appended, and
 * recomputed from the first changed row when a row gains a note. Nothing here rebuilds every
 * row: a new step, label or hint touches at most the rows on screen.
 *
 * DOM order of the rendered rows is always their index order (Tab order, and what assistive
 * technology and tests read), and the row holding the focus is kept even when it scrolls out.
 */

/** Heights in CSS pixels, measured from probe rows (they depend on the panel's width and font). */
export interface RowMetrics {
  /** A row with no note lines and no form. */
  base: number;
  /** Each note line adds this much. */
  note: number;
  /** The open reason form adds this much. */
  form: number;
  /** Space between rows. */
  gap: number;
}

export interface VirtualRow {
  node: HTMLElement;
  /** The index it shows; -1 while pooled. */
  index: number;
  /** Filled content is stale (the data of its index changed, or it was recycled). */
  dirty: boolean;
  top: number;
  height: number;
  setSize: number;
}

export interface VirtualListSource<R extends VirtualRow> {
  count(): number;
  /** Note lines of the row at `index`. */
  noteCount(index: number): number;
  createRow(): R;
  fillRow(row: R, index: number): void;
  /** Called with a row leaving the DOM (into the pool). */
  releaseRow?(row: R): void;
  measure(): RowMetrics;
}

const FOLLOW_SLACK = 4;

export class VirtualList<R extends VirtualRow> {
  /** offsets[i] is the top of row i; offsets[laidOut] the total height. Valid for i ≤ validTo. */
  private offsets = new Float64Array(1025);
  private notes = new Uint16Array(1024);
  private laidOut = 0;
  /** Rows the next layout lays out (the source's count when it last changed). */
  private laidOutTarget = 0;
  private validTo = 0;
  private metrics: RowMetrics | undefined;
  private readonly rendered = new Map<number, R>();
  private readonly pool: R[] = [];
  private scrollTop = 0;
  private viewport = 0;
  private frame = 0;
  private shiftedIndices = false;
  private listHeight = -1;
  /** Stick to the bottom as rows are appended (the reader is at the bottom). */
  follow = true;
  /** The row whose reason form is open, or -1. */
  private formRow = -1;
  /** Rows to render beyond the viewport, above and below, in pixels. */
  overscan = 250;
  /** Short runs render every row (cheap, and every step is in the DOM for search and tests). */
  renderAllBelow = 40;

  constructor(
    readonly scroller: HTMLElement,
    readonly list: HTMLElement,
    private readonly source: VirtualListSource<R>,
  ) {
    scroller.addEventListener(
      'scroll',
      () => {
        this.scrollTop = scroller.scrollTop;
        this.follow = this.scrollTop + this.viewport >= this.total() - FOLLOW_SLACK;
        this.schedule();
      },
      { passive: true },
    );
    new ResizeObserver((entries) => {
      const height = entries[entries.length - 1].contentRect.height;
      if (height === this.viewport) return;
      this.viewport = height;
      this.schedule();
    }).observe(scroller);
  }

  // ---- data changes ------------------------------------------------------------------------

  /** Everything changed (a new `init`): rows are refilled, offsets recomputed. */
  reset(): void {
    for (const row of this.rendered.values()) row.dirty = true;
    this.shiftedIndices = true;
    this.formRow = -1;
    this.relayoutFrom(0);
  }

  /** One row appended at the end: O(1) — its offset is the previous total; no other row changes. */
  appended(): void {
    const index = this.source.count() - 1;
    this.ensureCapacity(index + 1);
    this.notes[index] = this.source.noteCount(index);
    // Offsets up to `index` are unchanged; only the new row's end is computed.
    this.validTo = Math.min(this.validTo, index);
    this.laidOutTarget = index + 1;
    this.schedule();
  }

  /** Rows from `index` on moved (a step went in the middle): indices shift, so rendered rows are refilled. */
  shiftedFrom(index: number): void {
    for (const [at, row] of this.rendered) if (at >= index) row.dirty = true;
    this.shiftedIndices = true;
    this.relayoutFrom(index);
  }

  /** The row's note lines changed: its height, and every offset below it. */
  notesChanged(index: number): void {
    if (index < 0 || index >= this.source.count()) return;
    const count = this.source.noteCount(index);
    const row = this.rendered.get(index);
    if (row) row.dirty = true;
    if (this.notes[index] !== count) {
      this.notes[index] = count;
      this.validTo = Math.min(this.validTo, index);
    }
    this.schedule();
  }

  /** The row's content changed but not its height (a label). */
  contentChanged(index: number): void {
    const row = this.rendered.get(index);
    if (!row) return;
    row.dirty = true;
    this.schedule();
  }

  /** Every rendered row refills (e.g. the run became read-only). */
  refreshRendered(): void {
    for (const row of this.rendered.values()) row.dirty = true;
    this.schedule();
  }

  setFormRow(index: number): void {
    if (index === this.formRow) return;
    const previous = this.formRow;
    this.formRow = index;
    for (const at of [previous, index]) {
      if (at < 0 || at >= this.laidOutTarget) continue;
      this.validTo = Math.min(this.validTo, at);
      const row = this.rendered.get(at);
      if (row) row.dirty = true;
    }
    this.schedule();
  }

  get formIndex(): number {
    return this.formRow;
  }

  /** The row heights changed (width, font, the toolkit upgraded its controls): offsets are recomputed. */
  remeasure(): void {
    const metrics = this.source.measure();
    const old = this.metrics;
    if (old && old.base === metrics.base && old.note === metrics.note && old.form === metrics.form && old.gap === metrics.gap) return;
    this.metrics = metrics;
    this.validTo = 0;
    this.schedule();
  }

  // ---- geometry ----------------------------------------------------------------------------

  private relayoutFrom(index: number): void {
    const count = this.source.count();
    this.ensureCapacity(count);
    for (let i = index; i < count; i++) this.notes[i] = this.source.noteCount(i);
    this.laidOutTarget = count;
    this.validTo = Math.min(this.validTo, index);
    this.schedule();
  }

  private ensureCapacity(count: number): void {
    if (count < this.notes.length) return;
    let size = this.notes.length;
    while (size <= count) size *= 2;
    const notes = new Uint16Array(size);
    notes.set(this.notes);
    this.notes = notes;
    const offsets = new Float64Array(size + 1);
    offsets.set(this.offsets);
    this.offsets = offsets;
  }

  private rowHeight(index: number): number {
    const m = this.metrics!;
    return m.base + this.notes[index] * m.note + (index === this.formRow ? m.form : 0) + m.gap;
  }

  /** Brings the offsets up to date; keeps the row at the top of the viewport where it was when rows above it changed height. */
  private layout(): void {
    if (!this.metrics) this.metrics = this.source.measure();
    const count = this.laidOutTarget;
    if (this.validTo >= count && this.laidOut === count) return;
    let anchor = -1;
    let delta = 0;
    if (!this.follow && !this.shiftedIndices && this.scrollTop > 0 && this.laidOut > 0) {
      anchor = this.findIndex(this.scrollTop, this.laidOut);
      delta = this.scrollTop - this.offsets[anchor];
    }
    const from = Math.min(this.validTo, count);
    const offsets = this.offsets;
    for (let i = from; i < count; i++) offsets[i + 1] = offsets[i] + this.rowHeight(i);
    this.validTo = count;
    this.laidOut = count;
    if (anchor > from) this.setScrollTop(offsets[anchor] + delta);
  }

  total(): number {
    return this.laidOut ? this.offsets[this.laidOut] : 0;
  }

  /** The last row whose top is at or above `y`. */
  private findIndex(y: number, count = this.laidOut): number {
    let low = 0;
    let high = count - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.offsets[mid] <= y) low = mid;
      else high = mid - 1;
    }
    return Math.max(0, low);
  }

  private setScrollTop(value: number): void {
    const max = Math.max(0, this.total() - this.viewport);
    const clamped = Math.max(0, Math.min(value, max));
    if (this.listHeight !== this.total()) this.applyListHeight();
    if (Math.abs(this.scroller.scrollTop - clamped) >= 0.5) this.scroller.scrollTop = clamped;
    this.scrollTop = clamped;
  }

  private applyListHeight(): void {
    const total = this.total();
    if (total === this.listHeight) return;
    this.listHeight = total;
    this.list.style.height = `${total}px`;
  }

  // ---- navigation --------------------------------------------------------------------------

  /** Scrolls so that row `index` shows: at the top, centred, or just enough. */
  scrollToIndex(index: number, align: 'start' | 'center' | 'nearest', offset = 0): void {
    if (index < 0 || index >= this.source.count()) return;
    this.layout();
    this.measureViewport();
    const top = this.offsets[index];
    const height = this.offsets[index + 1] - top;
    let target = this.scrollTop;
    if (align === 'start') target = top + offset;
    else if (align === 'center') target = top - Math.max(0, (this.viewport - height) / 2);
    else if (top < this.scrollTop) target = top;
    else if (top + height > this.scrollTop + this.viewport) target = top + height - this.viewport;
    this.setScrollTop(target);
    this.follow = this.scrollTop + this.viewport >= this.total() - FOLLOW_SLACK;
  }

  scrollToBottom(): void {
    this.follow = true;
    this.schedule();
  }

  /** Scrolls row `index` into view, renders, and focuses its item. */
  focusIndex(index: number, align: 'start' | 'center' | 'nearest' = 'nearest'): boolean {
    this.scrollToIndex(index, align);
    this.render();
    const row = this.rendered.get(index);
    if (!row) return false;
    row.node.focus({ preventScroll: true });
    return true;
  }

  /** The row at the top of the viewport and how far it is scrolled past, for saving the position. */
  topAnchor(): { index: number; delta: number } | undefined {
    if (!this.laidOut) return undefined;
    const index = this.findIndex(this.scrollTop);
    return { index, delta: this.scrollTop - this.offsets[index] };
  }

  /** Index of the first row whose bottom is below the viewport's top. */
  firstVisibleIndex(): number {
    if (!this.laidOut) return 0;
    return this.findIndex(this.scrollTop);
  }

  /** Index of the last row whose top is above the viewport's bottom. */
  lastVisibleIndex(): number {
    if (!this.laidOut) return -1;
    return this.findIndex(this.scrollTop + Math.max(0, this.viewport - 1));
  }

  rowOf(index: number): R | undefined {
    return this.rendered.get(index);
  }

  indexOfNode(node: Node | null): number | undefined {
    for (const row of this.rendered.values()) if (node && row.node.contains(node)) return row.index;
    return undefined;
  }

  get renderedCount(): number {
    return this.rendered.size;
  }

  // ---- rendering ---------------------------------------------------------------------------

  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private measureViewport(): void {
    if (!this.viewport) this.viewport = this.scroller.clientHeight;
  }

  /** Reads the viewport's height now (after the layout around the list changed) and keeps row `index` in view. */
  keepInView(index: number): void {
    this.viewport = this.scroller.clientHeight;
    if (index >= 0 && index < this.source.count()) this.scrollToIndex(index, 'nearest');
    this.render();
  }

  render(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    this.layout();
    this.measureViewport();
    this.applyListHeight();
    const count = this.laidOut;
    if (this.follow) this.setScrollTop(this.total() - this.viewport);
    this.shiftedIndices = false;

    let first = 0;
    let last = -1;
    if (count && count <= this.renderAllBelow) {
      last = count - 1;
    } else if (count) {
      first = this.findIndex(this.scrollTop - this.overscan);
      last = this.findIndex(this.scrollTop + this.viewport + this.overscan);
    }
    // The row holding the focus stays, wherever it scrolled.
    const active = document.activeElement;
    let pinned = -1;
    let overlaps = false;
    for (const [index, row] of this.rendered) {
      if (index >= first && index <= last && index < count) overlaps = true;
      else if (pinned === -1 && index < count && active && active !== document.body && row.node.contains(active)) pinned = index;
    }
    const wanted: number[] = [];
    if (pinned !== -1 && pinned < first) wanted.push(pinned);
    for (let index = first; index <= last; index++) wanted.push(index);
    if (pinned !== -1 && pinned > last) wanted.push(pinned);

    if (!overlaps && pinned === -1 && this.rendered.size) {
      // A jump: none of the rows on screen stays. They are refilled where they are (their DOM
      // order is already the new order), so no node moves and the toolkit's buttons in them are
      // not disconnected and reconnected.
      const rows = [...this.rendered.values()].sort((a, b) => a.index - b.index);
      this.rendered.clear();
      rows.forEach((row, at) => {
        if (at < wanted.length) {
          row.index = wanted[at];
          row.dirty = true;
          this.rendered.set(row.index, row);
        } else {
          this.release(-1, row);
        }
      });
    } else {
      for (const [index, row] of this.rendered) {
        if (index !== pinned && !(index >= first && index <= last && index < count)) this.release(index, row);
      }
    }

    // Rendered rows are in index order in the DOM; new ones go in between, keeping that order.
    let cursor: Element | null = this.list.firstElementChild;
    for (const index of wanted) {
      let row = this.rendered.get(index);
      if (row) {
        cursor = row.node.nextElementSibling;
      } else {
        row = this.pool.pop() ?? this.source.createRow();
        row.index = index;
        row.dirty = true;
        this.rendered.set(index, row);
        this.list.insertBefore(row.node, cursor);
      }
      if (row.dirty) {
        row.dirty = false;
        this.source.fillRow(row, index);
      }
      const top = this.offsets[index];
      const height = this.offsets[index + 1] - top - this.metrics!.gap;
      if (row.top !== top) {
        row.top = top;
        row.node.style.transform = `translateY(${top}px)`;
      }
      if (row.height !== height) {
        row.height = height;
        row.node.style.height = `${height}px`;
      }
      if (row.setSize !== count) {
        row.setSize = count;
        row.node.setAttribute('aria-setsize', String(count));
      }
    }
  }

  private release(index: number, row: R): void {
    this.rendered.delete(index);
    row.node.remove();
    row.index = -1;
    row.top = -1;
    this.source.releaseRow?.(row);
    this.pool.push(row);
  }
}
