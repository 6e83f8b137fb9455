/**
 * DOM helpers for the panel. Every text from the model or the workspace goes through
 * textContent (or an attribute), never through innerHTML.
 */

/** A toolkit control: its value and disabled state are properties (they work before the toolkit upgrades it, too). */
export type ToolkitControl = HTMLElement & { value: string; disabled: boolean };

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K];
export function el(tag: string, className?: string, text?: string): HTMLElement;
export function el(tag: string, className?: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Sets the text only when it changed (recycled rows are refilled often). */
export function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

export function setTitle(node: HTMLElement, title: string): void {
  if (title) {
    if (node.title !== title) node.title = title;
  } else if (node.hasAttribute('title')) {
    node.removeAttribute('title');
  }
}

export function setDisabled(node: ToolkitControl, disabled: boolean): void {
  if (node.disabled !== disabled) node.disabled = disabled;
}

/**
 * A toolkit button named by its text. A disabled button does nothing; the toolkit's inner
 * <button> gives Tab, focus ring, Enter and Space.
 */
export function vsButton(label: string, onClick: () => void, appearance: 'primary' | 'secondary' | 'icon' = 'secondary', className?: string): ToolkitControl {
  const node = el('vscode-button', className) as ToolkitControl;
  node.textContent = label;
  node.setAttribute('appearance', appearance);
  node.addEventListener('click', (event) => {
    event.stopPropagation();
    if (!node.disabled) onClick();
  });
  return node;
}

/**
 * A toolkit button with a short visible label and a longer accessible name (which contains the
 * label, and shows as its tooltip): for the timeline's rows, where four full names do not fit a
 * sidebar's width on one line.
 */
export function vsShortButton(shortLabel: string, name: string, onClick: () => void): ToolkitControl {
  const node = vsButton(shortLabel, onClick);
  node.setAttribute('aria-label', name);
  node.title = name;
  return node;
}

/** A toolkit dropdown named by aria-label. */
export function vsDropdown(name: string, options: readonly (readonly [value: string, label: string])[], className?: string, selected?: string): ToolkitControl {
  const node = el('vscode-dropdown', className) as ToolkitControl;
  node.setAttribute('aria-label', name);
  for (const [value, label] of options) {
    const option = el('vscode-option', undefined, label);
    option.setAttribute('value', value);
    if (value === selected) option.setAttribute('selected', '');
    node.append(option);
  }
  return node;
}

/** A toolkit text field or area, named by its label slot (its text content). */
export function vsTextBox(kind: 'field' | 'area', name: string, placeholder: string, className?: string): ToolkitControl {
  const node = el(kind === 'field' ? 'vscode-text-field' : 'vscode-text-area', className) as ToolkitControl;
  node.textContent = name;
  node.setAttribute('placeholder', placeholder);
  return node;
}

/** True when a key press is meant for a text input (so single-key shortcuts stay out of its way). */
export function isTyping(event: Event): boolean {
  for (const target of event.composedPath()) {
    if (!(target instanceof HTMLElement)) continue;
    const tag = target.tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable) return true;
    if (tag === 'VSCODE-TEXT-FIELD' || tag === 'VSCODE-TEXT-AREA' || tag === 'VSCODE-DROPDOWN') return true;
  }
  return false;
}
