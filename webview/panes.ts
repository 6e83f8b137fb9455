/**
 * The panes that open below the timeline: a step's detail, and the confirmation of a rewind.
 * Model and workspace text goes in with textContent only.
 */
import { type AdoptPreviewView, plural, type RewindPreviewView, type StepDetail } from '../src/protocol';
import { el, vsButton } from './dom';
import { formatInteger, oneLine } from './format';

/** The patch shown in the pane; longer ones are cut (the diff editor shows them whole). */
export const MAX_PATCH_CHARS = 50_000;
const MAX_TEXT_CHARS = 100_000;
const MAX_LISTED_FILES = 200;

function capped(text: string, max: number): { text: string; cut: boolean } {
  return text.length > max ? { text: text.slice(0, max), cut: true } : { text, cut: false };
}

function section(title: string, ...content: Node[]): HTMLElement {
  const node = el('div', 'detail-section');
  node.append(el('h3', 'detail-heading', title), ...content);
  return node;
}

/** A long text in a <pre>, cut at `max` characters with a line saying so. */
function cappedPre(text: string, max: number, className: string, empty: string): Node[] {
  const shown = capped(text, max);
  const nodes: Node[] = [el('pre', className, shown.text || empty)];
  if (shown.cut) nodes.push(el('p', 'muted', `Showing the first ${formatInteger(max)} of ${formatInteger(text.length)} characters.`));
  return nodes;
}

/** The model's reasoning, collapsed until the annotator opens it. */
function reasoningDisclosure(reasoning: string): HTMLElement {
  const node = el('details', 'detail-section reasoning');
  node.setAttribute('aria-label', 'Reasoning');
  const summary = el('summary', 'detail-heading reasoning-summary', 'Reasoning');
  node.append(summary, ...cappedPre(reasoning, MAX_TEXT_CHARS, 'code reasoning-text', ''));
  return node;
}

export interface DetailActions {
  openDiff(step: number): void;
  openFullOutput(step: number): void;
  close(): void;
}

export class StepDetailPane {
  readonly node = el('section', 'detail');
  private readonly heading = el('h2', 'detail-title');
  private readonly body = el('div', 'detail-body');
  private readonly buttons = el('div', 'detail-buttons');
  step: number | undefined;

  constructor(private readonly actions: DetailActions) {
    this.node.setAttribute('aria-label', 'Step detail');
    this.node.hidden = true;
    this.heading.tabIndex = -1;
    const top = el('div', 'pane-top');
    top.append(
      this.heading,
      vsButton('Close', () => this.actions.close(), 'secondary', 'close'),
    );
    this.node.append(top, this.buttons, this.body);
    this.node.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.actions.close();
      }
    });
  }

  get open(): boolean {
    return !this.node.hidden;
  }

  loading(step: number): void {
    this.step = step;
    this.node.hidden = false;
    this.heading.textContent = `Step ${step}`;
    this.buttons.replaceChildren();
    this.body.replaceChildren(el('p', 'muted', `Loading step ${step}…`));
  }

  show(detail: StepDetail): void {
    this.step = detail.step;
    this.node.hidden = false;
    const more = Array.isArray(detail.moreActions) ? detail.moreActions : [];
    const skipped = Array.isArray(detail.skipped) ? detail.skipped : [];
    this.heading.textContent = `Step ${detail.step} · ${detail.tool ?? 'no tool call'}${more.length ? ` +${more.length}` : ''}${detail.isError ? ' · error' : ''}`;
    const buttons: HTMLElement[] = [vsButton('Open diff', () => this.actions.openDiff(detail.step))];
    if (detail.hasFullOutput) buttons.push(vsButton('Open full output', () => this.actions.openFullOutput(detail.step)));
    this.buttons.replaceChildren(...buttons);

    const parts: HTMLElement[] = [];
    const thought = el('div', 'thought', detail.thought.trim() || '(no thought: the model went straight to the action)');
    parts.push(section('Thought', thought));
    if (typeof detail.reasoning === 'string' && detail.reasoning.trim()) parts.push(reasoningDisclosure(detail.reasoning));
    if (detail.truncated) parts.push(el('p', 'muted truncated-note', 'The reply was cut by the output limit while a tool call was being written; that call was not run.'));
    parts.push(section('Arguments', el('pre', 'code', detail.tool ? detail.arguments || '(none)' : '(no tool call)')));

    const observationParts = cappedPre(detail.observation, MAX_TEXT_CHARS, `code${detail.isError ? ' error' : ''}`, '(no output)');
    if (detail.hasFullOutput) observationParts.push(el('p', 'muted', 'The observation shows the head and tail of a longer output; Open full output shows all of it.'));
    parts.push(section('Observation', ...observationParts));

    if (more.length) {
      const list = el('ol', 'more-actions');
      list.setAttribute('aria-label', 'Further actions');
      more.forEach((action, index) => {
        const item = el('li', `more-action${action.isError ? ' error' : ''}`);
        item.append(
          el('div', 'more-action-head', `${index + 2}. ${action.tool}${action.isError ? ' · error' : ''}`),
          el('pre', 'code', action.arguments || '(none)'),
          ...cappedPre(action.observation, MAX_TEXT_CHARS, `code${action.isError ? ' error' : ''}`, '(no output)'),
        );
        list.append(item);
      });
      parts.push(section(`Further actions (${formatInteger(more.length)})`, list));
    }
    if (skipped.length) {
      const list = el('ul', 'skipped-calls');
      list.setAttribute('aria-label', 'Calls not run');
      for (const call of skipped) {
        const item = el('li', 'skipped-call');
        item.append(el('span', 'skipped-tool', call.tool), el('span', 'skipped-reason', capped(oneLine(call.reason), 2000).text));
        item.title = call.reason;
        list.append(item);
      }
      parts.push(section(`Not run (${formatInteger(skipped.length)})`, list));
    }

    const mixed = Array.isArray(detail.mixed) ? detail.mixed.filter((file) => typeof file === 'string') : [];
    if (mixed.length) {
      parts.push(el('p', 'mixed-note', `Mixed: you saved ${mixed.join(', ')} in an editor while this action ran, so the changes below may hold your edits as well as the agent's.`));
    }
    if (detail.files.length) {
      const list = el('ul', 'files');
      list.setAttribute('aria-label', 'Changed files');
      for (const file of detail.files.slice(0, MAX_LISTED_FILES)) {
        const item = el('li', `file ${file.status}`);
        item.append(el('span', 'file-status', file.status), el('span', 'file-path', file.path));
        item.append(el('span', 'file-stat', file.binary ? 'binary' : `+${formatInteger(file.additions)} −${formatInteger(file.deletions)}`));
        item.title = file.path;
        list.append(item);
      }
      const more = detail.files.length > MAX_LISTED_FILES ? [el('p', 'muted', `and ${plural(detail.files.length - MAX_LISTED_FILES, 'more file')}`)] : [];
      parts.push(section(`Changed files (${formatInteger(detail.files.length)})`, list, ...more));
      const patch = capped(detail.patch, MAX_PATCH_CHARS);
      const patchParts: Node[] = [el('pre', 'code patch', patch.text || '(no textual changes)')];
      if (patch.cut)
        patchParts.push(el('p', 'muted', `Patch shortened: the first ${formatInteger(MAX_PATCH_CHARS)} of ${formatInteger(detail.patch.length)} characters. Open diff shows every change.`));
      else if (detail.patchTruncated) patchParts.push(el('p', 'muted', 'The recorded patch was cut where it grew too large. Open diff shows every change.'));
      parts.push(section('Patch', ...patchParts));
    } else {
      parts.push(section('Changed files', el('p', 'muted', 'No changes on disk.')));
    }
    this.body.replaceChildren(...parts);
    this.body.scrollTop = 0;
    this.node.scrollTop = 0;
  }

  focus(): void {
    this.heading.focus();
  }

  close(): void {
    this.node.hidden = true;
    this.step = undefined;
    this.body.replaceChildren();
    this.buttons.replaceChildren();
  }
}

export interface RewindActions {
  confirm(step: number): void;
  cancel(): void;
}

/** What "Rewind to here" would change, asked before anything is written. */
/** A titled list of paths (the first 50), or nothing when there are none. */
function fileSection(title: string, paths: string[], className: string): HTMLElement | undefined {
  if (!paths.length) return undefined;
  const list = el('ul', `files ${className}`);
  list.setAttribute('aria-label', title);
  for (const path of paths.slice(0, 50)) {
    const item = el('li', 'file', path);
    item.title = path;
    list.append(item);
  }
  const more = paths.length > 50 ? [el('p', 'muted', `and ${plural(paths.length - 50, 'more file')}`)] : [];
  return section(`${title} (${formatInteger(paths.length)})`, list, ...more);
}

/**
 * A pane that asks before something is written to disk: a heading, what would change, and a
 * confirm and a cancel button; Escape cancels.
 */
abstract class ConfirmPane {
  readonly node: HTMLElement;
  protected readonly heading = el('h2', 'detail-title');
  protected readonly body = el('div', 'detail-body');
  protected readonly confirmButton: HTMLElement;

  constructor(
    className: string,
    name: string,
    confirmLabel: string,
    onConfirm: () => void,
    private readonly onCancel: () => void,
  ) {
    this.node = el('section', className);
    this.node.setAttribute('aria-label', name);
    this.node.hidden = true;
    this.heading.tabIndex = -1;
    const buttons = el('div', 'detail-buttons');
    this.confirmButton = vsButton(confirmLabel, onConfirm, 'primary');
    buttons.append(
      this.confirmButton,
      vsButton('Cancel', () => this.onCancel()),
    );
    this.node.append(this.heading, this.body, buttons);
    this.node.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.onCancel();
      }
    });
  }

  get open(): boolean {
    return !this.node.hidden;
  }

  focus(): void {
    this.heading.focus();
  }

  close(): void {
    this.node.hidden = true;
    this.body.replaceChildren();
  }
}

export class RewindPane extends ConfirmPane {
  step: number | undefined;

  constructor(actions: RewindActions) {
    super(
      'rewind-confirm',
      'Rewind preview',
      'Confirm rewind',
      () => this.step !== undefined && actions.confirm(this.step),
      () => actions.cancel(),
    );
  }

  waiting(step: number): void {
    this.step = step;
    this.node.hidden = false;
    this.heading.textContent = `Rewind the workspace to before step ${step}?`;
    this.body.replaceChildren(el('p', 'muted', 'Working out what would change on disk…'));
  }

  show(preview: RewindPreviewView): void {
    this.step = preview.step;
    this.node.hidden = false;
    this.heading.textContent = `Rewind the workspace to before step ${preview.step}?`;
    const parts: HTMLElement[] = [];
    if (!preview.written.length && !preview.removed.length) parts.push(el('p', undefined, 'No file changes on disk: the workspace already matches.'));
    if (preview.written.length) parts.push(fileSection('Written back', preview.written, 'written')!);
    if (preview.removed.length) parts.push(fileSection('Removed', preview.removed, 'removed')!);
    if (preview.userEdits.length) {
      const warning = fileSection('Your own edits, overwritten', preview.userEdits, 'user-edits')!;
      warning.classList.add('warning');
      warning.append(el('p', 'muted', 'They stay recorded in the dataset.'));
      parts.push(warning);
    }
    if (preview.stopsRun) parts.push(el('p', 'warning-text', 'The run stops first.'));
    parts.push(el('p', 'muted', `Steps from ${preview.step} on stay in the dataset as an abandoned branch; resume to go on from here.`));
    this.body.replaceChildren(...parts);
  }

  close(): void {
    super.close();
    this.step = undefined;
  }
}

export interface AdoptActions {
  confirm(runId: string, overwrite: boolean): void;
  cancel(): void;
}

/** What adopting a sampled run writes into the workspace; the multi-diff editor shows the lines. */
export class AdoptPane extends ConfirmPane {
  private preview: AdoptPreviewView | undefined;

  constructor(actions: AdoptActions) {
    super(
      'rewind-confirm adopt-confirm',
      'Adopt preview',
      'Confirm adopt',
      () => this.preview && actions.confirm(this.preview.runId, this.preview.conflicts.length > 0),
      () => actions.cancel(),
    );
  }

  show(preview: AdoptPreviewView): void {
    this.preview = preview;
    this.node.hidden = false;
    this.heading.textContent = `Adopt the changes of ${preview.name} into your workspace?`;
    const overwrite = preview.conflicts.length > 0;
    const label = overwrite ? 'Adopt and overwrite my changes' : 'Confirm adopt';
    this.confirmButton.textContent = label;
    this.confirmButton.setAttribute('aria-label', label);
    const parts = [fileSection('Written', preview.written, 'written'), fileSection('Removed', preview.removed, 'removed')].filter((part): part is HTMLElement => !!part);
    const conflicts = fileSection('Changed by you too, overwritten', preview.conflicts, 'user-edits');
    if (conflicts) {
      conflicts.classList.add('warning');
      parts.push(conflicts);
    } else {
      parts.push(el('p', 'muted', 'None of these files has changes of your own.'));
    }
    parts.push(el('p', 'muted', "The diff editor shows each file: yours now on the left, the run's on the right. The adoption is recorded in the run."));
    this.body.replaceChildren(...parts);
  }

  close(): void {
    super.close();
    this.preview = undefined;
  }
}
