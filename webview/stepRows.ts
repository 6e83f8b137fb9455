/**
 * The timeline's rows: one <li> per step, recycled by the virtual list. A row has a fixed
 * structure — note lines, the `#N tool args` head, the observation line, the meta line (diff
 * stat and label badges) and the four buttons — and every line is one line high (long text is
 * ellipsized, the full text is in its title), so a row's height is known from its note count.
 * Probe rows of the same structure, hidden outside the list, give those heights for the
 * panel's current width and font.
 */
import type { TimelineStep } from '../src/protocol';
import { el, setDisabled, setText, setTitle, type ToolkitControl, vsButton, vsDropdown, vsShortButton, vsTextBox } from './dom';
import { diffStat, latestBadges } from './format';
import { mixedOf, type StepNote, type TimelineData } from './timelineData';
import type { RowMetrics, VirtualListSource, VirtualRow } from './virtualList';

export interface StepRow extends VirtualRow {
  node: HTMLLIElement;
  step: number;
  head: HTMLElement;
  num: HTMLElement;
  tool: HTMLElement;
  args: HTMLElement;
  tags: HTMLElement;
  observation: HTMLElement;
  diff: HTMLElement;
  badges: HTMLElement;
  rewind: ToolkitControl;
  notes: HTMLElement[];
  notesKey: string;
  badgesKey: string;
  tagsKey: string;
}

export interface RowActions {
  label(row: StepRow, label: 'good' | 'bad'): void;
  rewind(step: number): void;
  openDiff(step: number): void;
  showStep(step: number): void;
}

export interface RowView {
  readOnly(): boolean;
  selectedStep(): number | undefined;
  /** The step whose reason form is open, and the form's node. */
  form(): { step: number; node: HTMLElement } | undefined;
}

/** The optional reason form shown after "Mark good" / "Mark bad". */
export interface ReasonFormParts {
  node: HTMLElement;
  field: ToolkitControl;
  axis: ToolkitControl;
}

export function buildReasonForm(onSave: () => void, onSkip: () => void): ReasonFormParts {
  const node = el('div', 'reason-form');
  const field = vsTextBox('field', 'Reason', 'Why? (optional)', 'reason');
  field.setAttribute('maxlength', '2000');
  const axis = vsDropdown(
    'Axis',
    [
      ['', 'Both axes'],
      ['decision', 'Decision'],
      ['execution', 'Execution'],
    ],
    'axis',
  );
  // Opening upwards keeps the list inside the row and the timeline's scroll area.
  axis.setAttribute('position', 'above');
  field.addEventListener('keydown', (event) => {
    const key = event.key;
    if (key === 'Enter') onSave();
    if (key === 'Escape') {
      event.stopPropagation();
      onSkip();
    }
  });
  node.append(field, axis, vsButton('Save reason', onSave), vsButton('Skip', onSkip));
  return { node, field, axis };
}

export class StepRows implements VirtualListSource<StepRow> {
  private readonly probes: { plain: StepRow; note: StepRow; form: StepRow };

  constructor(
    private readonly data: TimelineData,
    private readonly view: RowView,
    private readonly actions: RowActions,
    private readonly measureHost: HTMLElement,
    private readonly list: HTMLElement,
    onMetricsChange: () => void,
  ) {
    const probe = (notes: number, form: boolean) => {
      const row = this.createRow();
      row.node.removeAttribute('role');
      row.node.removeAttribute('tabindex');
      for (let i = 0; i < notes; i++) row.node.insertBefore(el('div', 'note', 'probe'), row.head);
      setText(row.num, '#0');
      setText(row.tool, 'probe');
      setText(row.observation, 'probe');
      setText(row.diff, 'no changes');
      row.badges.append(el('span', 'badge neutral', 'probe'));
      if (form)
        row.node.append(
          buildReasonForm(
            () => undefined,
            () => undefined,
          ).node,
        );
      measureHost.append(row.node);
      return row;
    };
    this.probes = { plain: probe(0, false), note: probe(1, false), form: probe(0, true) };
    const observer = new ResizeObserver(() => onMetricsChange());
    for (const row of Object.values(this.probes)) observer.observe(row.node);
  }

  count(): number {
    return this.data.count;
  }

  noteCount(index: number): number {
    return this.data.noteCount(index);
  }

  measure(): RowMetrics {
    const height = (row: StepRow) => row.node.getBoundingClientRect().height;
    const base = height(this.probes.plain);
    const gap = parseFloat(getComputedStyle(this.list).getPropertyValue('--row-gap')) || 6;
    return {
      base,
      note: Math.max(0, height(this.probes.note) - base),
      form: Math.max(0, height(this.probes.form) - base),
      gap,
    };
  }

  createRow(): StepRow {
    const node = el('li', 'step');
    node.setAttribute('role', 'listitem');
    node.tabIndex = 0;
    const head = el('div', 'step-head');
    const num = el('span', 'step-number');
    const tool = el('span', 'tool');
    const args = el('span', 'args');
    const tags = el('span', 'tags');
    head.append(num, tool, args, tags);
    const observation = el('div', 'observation');
    const meta = el('div', 'meta');
    const diff = el('span', 'diffstat');
    const badges = el('span', 'badges');
    meta.append(diff, badges);
    const row: StepRow = {
      node,
      index: -1,
      dirty: true,
      top: -1,
      height: -1,
      setSize: -1,
      step: 0,
      head,
      num,
      tool,
      args,
      tags,
      observation,
      diff,
      badges,
      rewind: undefined as unknown as ToolkitControl,
      notes: [],
      notesKey: '',
      badgesKey: '',
      tagsKey: '',
    };
    const actions = el('div', 'actions');
    // Accessible names (a contract): "Mark good", "Mark bad", "Rewind to here", "Open diff".
    row.rewind = vsShortButton('Rewind', 'Rewind to here', () => this.actions.rewind(row.step));
    actions.append(
      vsShortButton('Good', 'Mark good', () => this.actions.label(row, 'good')),
      vsShortButton('Bad', 'Mark bad', () => this.actions.label(row, 'bad')),
      row.rewind,
      vsShortButton('Diff', 'Open diff', () => this.actions.openDiff(row.step)),
    );
    head.addEventListener('click', () => this.actions.showStep(row.step));
    node.append(head, observation, meta, actions);
    return row;
  }

  releaseRow(row: StepRow): void {
    const form = this.view.form();
    if (form && form.node.parentNode === row.node) form.node.remove();
  }

  fillRow(row: StepRow, index: number): void {
    const step = this.data.steps[index];
    const { node } = row;
    row.step = step.step;
    node.dataset.step = String(step.step);
    node.setAttribute('aria-posinset', String(index + 1));
    const flagged = this.data.flagsOf(step.step).length > 0;
    node.setAttribute('aria-label', rowLabel(step, flagged));
    node.classList.toggle('error', step.isError);
    node.classList.toggle('abandoned', !!step.abandoned);
    node.classList.toggle('flagged', flagged);
    const selected = this.view.selectedStep() === step.step;
    node.classList.toggle('selected', selected);
    if (selected) node.setAttribute('aria-current', 'true');
    else node.removeAttribute('aria-current');

    this.fillNotes(row, this.data.notesOf(index));

    setText(row.num, `#${step.step}`);
    setText(row.tool, step.tool ?? '(no tool call)');
    setText(row.args, step.args);
    setTitle(row.args, step.args);
    const tags = [step.abandoned ? 'abandoned' : '', step.isError ? 'error' : '', mixedOf(step).length ? 'mixed' : ''].filter(Boolean);
    const tagsKey = tags.join(' ');
    if (tagsKey !== row.tagsKey) {
      row.tagsKey = tagsKey;
      row.tags.replaceChildren(...tags.map((tag) => el('span', `tag ${tag}`, tag)));
    }
    setText(row.observation, step.observation || '(no output)');
    setTitle(row.observation, step.observation);
    setText(row.diff, diffStat(step.diff));

    const badges = latestBadges(step.labels);
    const badgesKey = badges.map((badge) => `${badge.label}|${badge.source}|${badge.axis ?? ''}|${badge.reason ?? ''}`).join('\n');
    if (badgesKey !== row.badgesKey) {
      row.badgesKey = badgesKey;
      row.badges.replaceChildren(
        ...badges.map((badge) => {
          const node = el('span', `badge ${badge.label}`);
          if (badge.axis) node.append(el('span', 'axis', `${badge.axis}: `));
          node.append(`${badge.label} · ${badge.source}`);
          if (badge.reason) node.title = badge.reason;
          return node;
        }),
      );
    }
    setDisabled(row.rewind, this.view.readOnly());

    const form = this.view.form();
    if (form && form.step === step.step) {
      if (form.node.parentNode !== node) node.append(form.node);
      node.classList.add('has-form');
    } else {
      if (form && form.node.parentNode === node) form.node.remove();
      node.classList.remove('has-form');
    }
  }

  private fillNotes(row: StepRow, notes: StepNote[]): void {
    const key = notes.map((note) => `${note.kind}\u0000${note.title}`).join('\u0001');
    if (key === row.notesKey) return;
    row.notesKey = key;
    for (const node of row.notes) node.remove();
    row.notes = notes.map((note) => {
      const node = el('div', `note ${note.kind}`, note.text);
      node.title = note.title;
      row.node.insertBefore(node, row.head);
      return node;
    });
  }
}

function rowLabel(step: TimelineStep, flagged: boolean): string {
  const parts = [`Step ${step.step}: ${step.tool ?? 'no tool call'}${step.args ? ` ${step.args}` : ''}`];
  if (step.isError) parts.push('error');
  if (step.abandoned) parts.push('abandoned');
  const mixed = mixedOf(step);
  if (mixed.length) parts.push(`mixed: you saved ${mixed.join(', ')} during this action`);
  if (flagged) parts.push('needs attention');
  return parts.join(', ');
}
