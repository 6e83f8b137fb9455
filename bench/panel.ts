/**
 * Panel benchmark: the Intervention panel (dist/webview/webview.js, media/panel.css, the toolkit) in
 * headless Chromium, on a page like the webview's (same scripts, same CSP), with a stub
 * `acquireVsCodeApi` that records what the panel posts and saves. A recorded run of 10,000
 * steps (labels, hints, summaries, a rewind branch, attention flags) is sent as `init`, then
 * live steps are appended one by one, then the timeline is scrolled to the middle.
 *
 * Measured in the page with performance.now():
 *   init → first paint   from window.postMessage(init) (cloning included) to the task that runs
 *                        after the frame that painted the rows (rAF, then a MessageChannel task);
 *   append one step      `stepAdded` + `runUpdated` (what the host sends per step) dispatched
 *                        right after a frame; work = the message handlers + that frame's script,
 *                        style, layout and paint (from the frame's first rAF callback to after
 *                        its paint), i.e. without the wait for the next vsync;
 *   scroll to the middle the frame that renders the rows there.
 * Prints figures; asserts nothing. `--screenshots DIR` also saves screenshots of a short run in
 * light, dark and high-contrast theme variables. `--steps N`, `--appends N`.
 */
import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { panelHtml } from '../src/core/session/panelPage';
import type { AttentionFlagView, HostToWebview, LabelBadge, RunView, StepDetail, TimelineHint, TimelineStep } from '../src/protocol';

const ROOT = path.resolve(__dirname, '../..');
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a real import() of an ES module: tsc turns import() into require() in CommonJS output
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;
const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const STEPS = Number(arg('--steps') ?? 10_000);
const APPENDS = Number(arg('--appends') ?? 50);
const SCREENSHOTS = arg('--screenshots');
const VIEWPORT = { width: 420, height: 900 };
const NONCE = 'bench-nonce-0123456789';

// ---- a recorded run -----------------------------------------------------------------------

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = random(42);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const WORDS =
  'the a test fails because parser config value returns expected undefined module import function error line file cache request retry timeout user order index build step patch field schema token handler'.split(
    ' ',
  );
const words = (count: number) => Array.from({ length: count }, () => pick(WORDS)).join(' ');
const FILES = [
  'src/parser.ts',
  'src/config/load.ts',
  'src/server/routes.ts',
  'tests/test_convert.py',
  'convert.py',
  'lib/cache/lru.go',
  'README.md',
  'src/components/Timeline.tsx',
  'pkg/api/handler.go',
  'scripts/build.mjs',
];
const COMMANDS = [
  'npm test -- --run parser',
  'python3 -m unittest discover -s tests',
  'go test ./pkg/... -run TestHandler',
  'git diff --stat',
  'rg -n "TODO" src',
  'npx tsc --noEmit -p .',
  'ls -la src/config',
];

function observationFor(tool: string | null, isError: boolean): string {
  if (isError) return `Error: ${words(8)} (exit code 1) at ${pick(FILES)}:${1 + Math.floor(rand() * 400)} ${words(10)}`.slice(0, 200);
  switch (tool) {
    case 'read_file':
      return `1 | import { ${pick(WORDS)} } from './${pick(WORDS)}'; 2 | export function ${pick(WORDS)}(${pick(WORDS)}: string) { 3 | return ${words(6)}…`.slice(0, 200);
    case 'run_command':
      return `Ran 42 tests in 0.${Math.floor(rand() * 900)}s. ${rand() < 0.5 ? 'OK' : `FAILED (failures=${1 + Math.floor(rand() * 3)})`} ${words(12)}`.slice(0, 200);
    case 'search':
      return `${pick(FILES)}:${Math.floor(rand() * 300)}: ${words(7)} ${pick(FILES)}:${Math.floor(rand() * 300)}: ${words(9)}`.slice(0, 200);
    default:
      return `Wrote ${100 + Math.floor(rand() * 4000)} bytes to ${pick(FILES)}. ${words(14)}`.slice(0, 200);
  }
}

function makeStep(step: number): TimelineStep {
  const roll = rand();
  const tool = roll < 0.3 ? 'read_file' : roll < 0.5 ? 'run_command' : roll < 0.65 ? 'edit_file' : roll < 0.75 ? 'write_file' : roll < 0.88 ? 'search' : roll < 0.97 ? 'list_dir' : null;
  const isError = rand() < 0.05;
  const writes = tool === 'edit_file' || tool === 'write_file';
  const labels: LabelBadge[] = [];
  if (rand() < 0.25) labels.push({ label: isError ? 'bad' : pick(['good', 'neutral'] as const), source: 'rule', reason: `rule: ${words(6)}` });
  if (rand() < 0.12) labels.push({ label: pick(['good', 'bad', 'neutral'] as const), source: 'judge', axis: pick(['decision', 'execution'] as const), reason: words(18) });
  if (rand() < 0.03) labels.push({ label: pick(['good', 'bad'] as const), source: 'human', reason: words(10) });
  const args =
    tool === 'run_command'
      ? pick(COMMANDS)
      : tool === 'search'
        ? `${pick(WORDS)}\\(.*${pick(WORDS)}`
        : tool === 'list_dir'
          ? pick(['src', 'tests', 'pkg/api', '.'])
          : tool
            ? pick(FILES)
            : `I think ${words(10)}`.slice(0, 80);
  return {
    step,
    tool,
    args,
    observation: observationFor(tool, isError),
    isError,
    diff: writes && !isError ? { files: 1 + Math.floor(rand() * 3), additions: Math.floor(rand() * 60), deletions: Math.floor(rand() * 30) } : { files: 0, additions: 0, deletions: 0 },
    labels,
  };
}

interface Fixture {
  init: Extract<HostToWebview, { type: 'init' }>;
}

function makeRun(count: number): Fixture {
  const steps: TimelineStep[] = [];
  const rewindFrom = Math.floor(count * 0.58);
  const rewindTo = rewindFrom - Math.min(200, Math.floor(count * 0.02));
  for (let n = 1; n <= count; n++) {
    const step = makeStep(n);
    if (n % 90 === 0) step.summaryBefore = { tokensBefore: 118_000 + Math.floor(rand() * 8000), tokensAfter: 9000 + Math.floor(rand() * 3000) };
    if (n >= rewindTo && n <= rewindFrom) step.abandoned = true;
    if (n > rewindFrom) step.branch = 'b-5eed0001';
    if (n === rewindFrom + 1) step.branchFrom = rewindTo - 1;
    steps.push(step);
  }
  const hints: TimelineHint[] = [];
  for (let i = 0; i < 100; i++) {
    const at = 1 + Math.floor(rand() * count);
    hints.push({
      hintId: `h${i}`,
      text: `${pick(['Look at', 'Do not touch', 'The bug is in', 'Run the tests of'])} ${pick(FILES)}: ${words(14)}`,
      kind: pick(['knowledge', 'strategy', 'correction'] as const),
      deliveredAtStep: at,
    });
  }
  hints.sort((a, b) => a.deliveredAtStep! - b.deliveredAtStep!);
  hints.push({ hintId: 'q1', text: 'Keep the public API of the parser as it is.', kind: 'strategy' });
  const attention: AttentionFlagView[] = [];
  for (let i = 0; i < 40; i++) {
    const at = 1 + Math.floor(rand() * count);
    attention.push(
      pick([
        { step: at, kind: 'failures', message: '3 failed actions in a row' },
        { step: at, kind: 'loop', message: `the same action repeats: run_command ${pick(COMMANDS)}` },
        { step: at, kind: 'no_progress', message: '15 steps without a change on disk' },
      ] as AttentionFlagView[]),
    );
  }
  attention.sort((a, b) => a.step - b.step);
  const startedAt = new Date(Date.now() - 30 * 3600_000).toISOString();
  const run: RunView = {
    runId: 'bench-run',
    task: 'Port the configuration loader to the new schema and keep every test green.\nThe old loader must keep working until v3.',
    status: 'running',
    steps: count,
    model: 'scripted-model',
    startedAt,
    tokens: count * 8_200,
    hints: hints.length,
    maskedShare: 0.12,
    redactions: 3,
    readOnly: false,
    live: true,
  };
  return { init: { type: 'init', run, steps, hints, notes: [], attention, unseen: 0 } };
}

// ---- the page -----------------------------------------------------------------------------

const THEMES: Record<string, Record<string, string>> = {
  dark: {
    '--vscode-font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif',
    '--vscode-font-size': '13px',
    '--vscode-font-weight': 'normal',
    '--vscode-editor-font-family': '"Droid Sans Mono", "DejaVu Sans Mono", monospace',
    '--vscode-editor-font-size': '14px',
    '--vscode-foreground': '#cccccc',
    '--vscode-descriptionForeground': '#9d9d9d',
    '--vscode-errorForeground': '#f85149',
    '--vscode-focusBorder': '#0078d4',
    '--vscode-sideBar-background': '#181818',
    '--vscode-editor-background': '#1f1f1f',
    '--vscode-editorWidget-background': '#202020',
    '--vscode-panel-border': '#2b2b2b',
    '--vscode-widget-border': '#313131',
    '--vscode-button-background': '#0078d4',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-hoverBackground': '#026ec1',
    '--vscode-button-border': '#ffffff12',
    '--vscode-button-secondaryBackground': '#313131',
    '--vscode-button-secondaryForeground': '#cccccc',
    '--vscode-button-secondaryHoverBackground': '#3c3c3c',
    '--vscode-input-background': '#313131',
    '--vscode-input-foreground': '#cccccc',
    '--vscode-input-border': '#3c3c3c',
    '--vscode-input-placeholderForeground': '#989898',
    '--vscode-dropdown-background': '#313131',
    '--vscode-dropdown-border': '#3c3c3c',
    '--vscode-dropdown-foreground': '#cccccc',
    '--vscode-badge-background': '#616161',
    '--vscode-badge-foreground': '#f8f8f8',
    '--vscode-textLink-foreground': '#4daafc',
    '--vscode-textBlockQuote-background': '#2b2b2b',
    '--vscode-textCodeBlock-background': '#2b2b2b',
    '--vscode-textPreformat-foreground': '#d0d0d0',
    '--vscode-list-hoverBackground': '#2a2d2e',
    '--vscode-list-activeSelectionBackground': '#04395e',
    '--vscode-list-inactiveSelectionBackground': '#37373d',
    '--vscode-editorWarning-foreground': '#cca700',
    '--vscode-inputValidation-warningBackground': '#352a05',
    '--vscode-testing-iconPassed': '#73c991',
    '--vscode-scrollbarSlider-background': '#79797966',
    '--vscode-scrollbarSlider-hoverBackground': '#646464b3',
    '--vscode-scrollbarSlider-activeBackground': '#bfbfbf66',
  },
  light: {
    '--vscode-font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif',
    '--vscode-font-size': '13px',
    '--vscode-font-weight': 'normal',
    '--vscode-editor-font-family': '"Droid Sans Mono", "DejaVu Sans Mono", monospace',
    '--vscode-editor-font-size': '14px',
    '--vscode-foreground': '#3b3b3b',
    '--vscode-descriptionForeground': '#3b3b3b',
    '--vscode-errorForeground': '#f85149',
    '--vscode-focusBorder': '#005fb8',
    '--vscode-sideBar-background': '#f8f8f8',
    '--vscode-editor-background': '#ffffff',
    '--vscode-editorWidget-background': '#f8f8f8',
    '--vscode-panel-border': '#e5e5e5',
    '--vscode-widget-border': '#e5e5e5',
    '--vscode-button-background': '#005fb8',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-hoverBackground': '#0258a8',
    '--vscode-button-border': '#0000001a',
    '--vscode-button-secondaryBackground': '#e5e5e5',
    '--vscode-button-secondaryForeground': '#3b3b3b',
    '--vscode-button-secondaryHoverBackground': '#cccccc',
    '--vscode-input-background': '#ffffff',
    '--vscode-input-foreground': '#3b3b3b',
    '--vscode-input-border': '#cecece',
    '--vscode-input-placeholderForeground': '#767676',
    '--vscode-dropdown-background': '#ffffff',
    '--vscode-dropdown-border': '#cecece',
    '--vscode-dropdown-foreground': '#3b3b3b',
    '--vscode-badge-background': '#cccccc',
    '--vscode-badge-foreground': '#3b3b3b',
    '--vscode-textLink-foreground': '#005fb8',
    '--vscode-textBlockQuote-background': '#f2f2f2',
    '--vscode-textCodeBlock-background': '#f2f2f2',
    '--vscode-textPreformat-foreground': '#3b3b3b',
    '--vscode-list-hoverBackground': '#f2f2f2',
    '--vscode-list-activeSelectionBackground': '#e8e8e8',
    '--vscode-list-inactiveSelectionBackground': '#e4e6f1',
    '--vscode-editorWarning-foreground': '#bf8803',
    '--vscode-inputValidation-warningBackground': '#f6f5d2',
    '--vscode-testing-iconPassed': '#388a34',
    '--vscode-scrollbarSlider-background': '#64646466',
    '--vscode-scrollbarSlider-hoverBackground': '#646464b3',
    '--vscode-scrollbarSlider-activeBackground': '#00000099',
  },
  hc: {
    '--vscode-font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif',
    '--vscode-font-size': '13px',
    '--vscode-font-weight': 'normal',
    '--vscode-editor-font-family': '"Droid Sans Mono", "DejaVu Sans Mono", monospace',
    '--vscode-editor-font-size': '14px',
    '--vscode-foreground': '#ffffff',
    '--vscode-descriptionForeground': '#ffffffb3',
    '--vscode-errorForeground': '#f48771',
    '--vscode-focusBorder': '#f38518',
    '--vscode-contrastBorder': '#6fc3df',
    '--vscode-contrastActiveBorder': '#f38518',
    '--vscode-sideBar-background': '#000000',
    '--vscode-editor-background': '#000000',
    '--vscode-editorWidget-background': '#0c141f',
    '--vscode-button-background': '#000000',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-border': '#6fc3df',
    '--vscode-button-secondaryForeground': '#ffffff',
    '--vscode-input-background': '#000000',
    '--vscode-input-foreground': '#ffffff',
    '--vscode-input-border': '#6fc3df',
    '--vscode-input-placeholderForeground': '#ffffffb3',
    '--vscode-dropdown-background': '#000000',
    '--vscode-dropdown-border': '#6fc3df',
    '--vscode-dropdown-foreground': '#ffffff',
    '--vscode-badge-background': '#000000',
    '--vscode-badge-foreground': '#ffffff',
    '--vscode-textLink-foreground': '#21a6ff',
    '--vscode-textBlockQuote-background': '#000000',
    '--vscode-textPreformat-foreground': '#ffd700',
    '--vscode-list-inactiveSelectionBackground': '#000000',
    '--vscode-editorWarning-foreground': '#ffd700',
    '--vscode-inputValidation-warningBackground': '#000000',
    '--vscode-testing-iconPassed': '#73c991',
  },
};

/** Runs in the page before the panel: theme variables, the VS Code API stub, measuring helpers. */
const HARNESS = String.raw`
(() => {
  const themes = ${JSON.stringify(THEMES)};
  const theme = new URLSearchParams(location.search).get('theme') || 'dark';
  const root = document.documentElement;
  for (const [name, value] of Object.entries(themes[theme])) root.style.setProperty(name, value);
  root.style.setProperty('background', 'var(--vscode-sideBar-background)');
  const kind = theme === 'light' ? 'vscode-light' : theme === 'hc' ? 'vscode-high-contrast' : 'vscode-dark';
  document.body.classList.add(kind);
  document.body.setAttribute('data-vscode-theme-kind', kind);

  const bench = (window.__bench = { posted: [], saves: [], readyAt: 0 });
  let called = false;
  window.acquireVsCodeApi = () => {
    if (called) throw new Error('acquireVsCodeApi called twice');
    called = true;
    return {
      postMessage(message) {
        bench.posted.push(message);
        if (message.type === 'ready') bench.readyAt = performance.now();
      },
      // Kept in sessionStorage, so that a reload of the page restores it like a webview's.
      getState() {
        const saved = sessionStorage.getItem('apollo-state');
        return saved ? JSON.parse(saved) : undefined;
      },
      // VS Code serializes the state with JSON.stringify on every setState.
      setState(state) {
        const start = performance.now();
        const json = JSON.stringify(state);
        bench.saves.push({ ms: performance.now() - start, bytes: json.length, steps: state.timeline ? state.timeline.steps.length : 0 });
        try {
          sessionStorage.setItem('apollo-state', json);
        } catch {
          // over the storage quota: the figures above are what counts
        }
      },
    };
  };
  customElements.whenDefined('vscode-button').then(() => (bench.toolkitAt = performance.now()));

  const afterPaint = () => new Promise((resolve) => requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve(performance.now());
    channel.port2.postMessage(0);
  }));
  const rowsInDom = () => document.querySelectorAll('.timeline > .step').length;
  const send = (data) => window.dispatchEvent(new MessageEvent('message', { data }));
  bench.afterPaint = afterPaint;
  bench.send = send;
  bench.rowsInDom = rowsInDom;

  /** init through window.postMessage (structured clone, as from the host) until its rows painted. */
  bench.measureInit = async (payload) => {
    await afterPaint();
    return new Promise((resolve) => {
      let start = 0;
      // Registered after the panel's own listener, so it runs once the panel handled the message.
      const listener = () => {
        window.removeEventListener('message', listener);
        const handled = performance.now();
        afterPaint().then((painted) => resolve({ handled: handled - start, painted: painted - start, rows: rowsInDom() }));
      };
      window.addEventListener('message', listener);
      start = performance.now();
      window.postMessage(payload, '*');
    });
  };

  /** Messages dispatched right after a frame; the next frame's work measured from its first rAF callback to after its paint. */
  bench.measureFrame = async (messages) => {
    await afterPaint();
    let frameStart = 0;
    requestAnimationFrame(() => (frameStart = performance.now()));
    const start = performance.now();
    for (const data of messages) send(data);
    const handled = performance.now();
    const painted = await afterPaint();
    return { handler: handled - start, frame: painted - frameStart, work: handled - start + (painted - frameStart), wall: painted - start };
  };

  bench.measureScroll = async (fraction) => {
    const scroller = document.querySelector('.timeline-scroller');
    return bench.measureScrollTo(fraction * (scroller.scrollHeight - scroller.clientHeight));
  };

  bench.measureScrollTo = async (top) => {
    const scroller = document.querySelector('.timeline-scroller');
    await afterPaint();
    let frameStart = 0;
    requestAnimationFrame(() => (frameStart = performance.now()));
    const painted = new Promise((resolve) =>
      scroller.addEventListener('scroll', () => afterPaint().then(resolve), { once: true }),
    );
    const start = performance.now();
    scroller.scrollTop = top;
    const end = await painted;
    const items = [...document.querySelectorAll('.timeline > .step')];
    const first = items[0];
    return {
      frame: end - frameStart,
      wall: end - start,
      rows: items.length,
      firstPos: first ? Number(first.getAttribute('aria-posinset')) : 0,
      setSize: first ? Number(first.getAttribute('aria-setsize')) : 0,
    };
  };
})();
`;

function page(origin: string): string {
  // The page the extension serves, plus the harness script before the panel's.
  return panelHtml({
    nonce: NONCE,
    cspSource: origin,
    style: `${origin}/media/panel.css`,
    toolkit: `${origin}/dist/webview/toolkit.min.js`,
    script: `${origin}/dist/webview/webview.js`,
    before: [`${origin}/harness.js`],
  });
}

async function serve(): Promise<{ server: Server; origin: string }> {
  const files: Record<string, [string, string]> = {
    '/dist/webview/toolkit.min.js': [path.join(ROOT, 'dist', 'webview', 'toolkit.min.js'), 'text/javascript'],
    '/dist/webview/webview.js': [path.join(ROOT, 'dist', 'webview', 'webview.js'), 'text/javascript'],
    '/media/panel.css': [path.join(ROOT, 'media', 'panel.css'), 'text/css'],
  };
  let origin = '';
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', origin);
    if (url.pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(origin));
    } else if (url.pathname === '/harness.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(HARNESS);
    } else if (files[url.pathname]) {
      const [file, type] = files[url.pathname];
      response.writeHead(200, { 'content-type': type }).end(readFileSync(file));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  origin = `http://127.0.0.1:${address.port}`;
  return { server, origin };
}

// ---- measuring ----------------------------------------------------------------------------

const evaluate = <T>(target: Page, expression: string): Promise<T> => target.evaluate<T>(expression);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

async function openPanel(browserPage: Page, origin: string, theme = 'dark'): Promise<void> {
  const errors: string[] = [];
  browserPage.on('pageerror', (error) => errors.push(String(error)));
  browserPage.on('console', (message) => {
    const text = message.text();
    // The toolkit tries an inline <style> and a style attribute that the webview's CSP blocks
    // (in VS Code too; it styles itself through adopted style sheets); no favicon is served.
    if (/^Applying inline style violates/.test(text) || /status of 404/.test(text)) return;
    if (message.type() === 'error') errors.push(text);
  });
  await browserPage.goto(`${origin}/?theme=${theme}`);
  await browserPage.waitForFunction('window.__bench && window.__bench.toolkitAt > 0 && window.__bench.readyAt > 0');
  if (errors.length) console.warn(`page errors:\n  ${errors.join('\n  ')}`);
}

interface FrameFigure {
  handler: number;
  frame: number;
  work: number;
  wall: number;
}

async function bench(origin: string, browserVersion: string, browser: Browser): Promise<void> {
  const fixture = makeRun(STEPS);
  const tab = await browser.newPage({ viewport: VIEWPORT });
  await openPanel(tab, origin);
  const load = await evaluate<{ ready: number; toolkit: number }>(tab, '({ ready: window.__bench.readyAt, toolkit: window.__bench.toolkitAt })');
  await tab.evaluate((payload) => ((globalThis as any).__bench.fixture = payload), fixture.init);
  const payloadBytes = JSON.stringify(fixture.init).length;

  // (1) init → first paint: the first in this page, then warm repeats (an empty init in between).
  const inits: { handled: number; painted: number; rows: number }[] = [];
  for (let i = 0; i < 6; i++) {
    if (i > 0) await evaluate(tab, `window.__bench.measureInit({ type: 'init', run: null, steps: [], hints: [], attention: [] })`);
    inits.push(await evaluate(tab, 'window.__bench.measureInit(window.__bench.fixture)'));
  }
  const firstInit = inits[0];
  const warm = inits.slice(1);
  const domAfterInit = await evaluate<{ rows: number; nodes: number; setSize: string | null }>(
    tab,
    `({ rows: window.__bench.rowsInDom(), nodes: document.querySelectorAll('*').length, setSize: document.querySelector('.timeline > .step')?.getAttribute('aria-setsize') })`,
  );

  // The view state is saved at most once a second: wait for the save the init scheduled.
  await tab.waitForTimeout(1300);
  const saves = await evaluate<{ ms: number; bytes: number; steps: number }[]>(tab, 'window.__bench.saves');

  // (2) live steps appended at the bottom (the reader follows the run).
  const appendFigures: FrameFigure[] = [];
  let next = STEPS + 1;
  const run = fixture.init.run!;
  for (let i = 0; i < APPENDS; i++) {
    const step = makeStep(next);
    const runView: RunView = { ...run, steps: next, tokens: run.tokens + i * 8200 };
    appendFigures.push(
      await tab.evaluate(([stepMessage, runMessage]) => (globalThis as any).__bench.measureFrame([stepMessage, runMessage]), [
        { type: 'stepAdded', step },
        { type: 'runUpdated', run: runView },
      ] as HostToWebview[]),
    );
    next++;
  }
  const followed = await evaluate<{ atBottom: boolean; lastPos: number }>(
    tab,
    `(() => { const s = document.querySelector('.timeline-scroller'); const items = [...document.querySelectorAll('.timeline > .step')];
      return { atBottom: s.scrollTop + s.clientHeight >= s.scrollHeight - 2, lastPos: Number(items[items.length - 1].getAttribute('aria-posinset')) }; })()`,
  );

  // A label and a delivered hint on a step on screen (the hint changes the row's height).
  const visibleStep = await evaluate<number>(tab, `Number(document.querySelectorAll('.timeline > .step')[3].dataset.step)`);
  const labelFigures: FrameFigure[] = [];
  const hintFigures: FrameFigure[] = [];
  for (let i = 0; i < 20; i++) {
    labelFigures.push(
      await tab.evaluate((message) => (globalThis as any).__bench.measureFrame([message]), {
        type: 'labelAdded',
        step: visibleStep,
        badge: { label: 'good', source: 'judge', axis: i % 2 ? 'decision' : 'execution', reason: `judge ${i}` },
      } as HostToWebview),
    );
    hintFigures.push(
      await tab.evaluate((messages) => (globalThis as any).__bench.measureFrame(messages), [
        { type: 'hintQueued', hint: { hintId: `bench-${i}`, text: `Bench hint ${i}: ${words(12)}`, kind: 'knowledge' } },
        { type: 'hintDelivered', hintId: `bench-${i}`, step: visibleStep - 40 },
      ] as HostToWebview[]),
    );
  }

  // (3) scroll to the middle, and a few jumps elsewhere.
  const middle = await evaluate<{ frame: number; wall: number; rows: number; firstPos: number; setSize: number }>(tab, 'window.__bench.measureScroll(0.5)');
  const jumps: { frame: number; wall: number }[] = [];
  for (const fraction of [0.1, 0.9, 0.33, 0.66, 0.02, 0.75, 0.45, 0.2, 0.95, 0.55]) jumps.push(await evaluate(tab, `window.__bench.measureScroll(${fraction})`));

  // Reading: scrolling down 120 px a frame (a wheel notch is about that) from the middle.
  const reading: { frame: number }[] = [];
  const from = await evaluate<number>(tab, `document.querySelector('.timeline-scroller').scrollTop`);
  for (let i = 1; i <= 60; i++) reading.push(await evaluate(tab, `window.__bench.measureScrollTo(${from + i * 120})`));

  // Appending while the reader is in the middle: the view stays put.
  const midAppends: FrameFigure[] = [];
  for (let i = 0; i < 20; i++) {
    midAppends.push(await tab.evaluate((message) => (globalThis as any).__bench.measureFrame([message]), { type: 'stepAdded', step: makeStep(next++) } as HostToWebview));
  }
  const stayed = await evaluate<number>(tab, `Number(document.querySelector('.timeline > .step').getAttribute('aria-posinset'))`);
  await tab.close();

  const cpus = os.cpus();
  const appendWork = appendFigures.map((figure) => figure.work);
  console.log('');
  console.log(`Panel benchmark: ${STEPS.toLocaleString('en-US')} steps (${(payloadBytes / 1e6).toFixed(1)} MB init payload), viewport ${VIEWPORT.width}×${VIEWPORT.height}`);
  console.log(
    `Machine: ${cpus.length} × ${cpus[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB RAM, ${os.type()} ${os.release()}, Node ${process.version}, Chromium ${browserVersion} (headless)`,
  );
  console.log('');
  console.log('| measure | figure | target |');
  console.log('|---|---|---|');
  console.log(`| page load → panel ready / toolkit defined | ${ms(load.ready)} / ${ms(load.toolkit)} | |`);
  console.log(`| init → first paint, first in the page | ${ms(firstInit.painted)} (handled after ${ms(firstInit.handled)}) | < 500 ms |`);
  console.log(
    `| init → first paint, warm, p50 / max of ${warm.length} | ${ms(
      percentile(
        warm.map((f) => f.painted),
        50,
      ),
    )} / ${ms(Math.max(...warm.map((f) => f.painted)))} | < 500 ms |`,
  );
  console.log(`| rows in the DOM after init / elements in the page | ${domAfterInit.rows} / ${domAfterInit.nodes} (aria-setsize ${domAfterInit.setSize}) | |`);
  console.log(
    `| append one live step (stepAdded + runUpdated), work p50 / p95 / max | ${ms(percentile(appendWork, 50))} / ${ms(percentile(appendWork, 95))} / ${ms(Math.max(...appendWork))} | < 16 ms |`,
  );
  console.log(
    `|   of which message handlers p50 / frame (render, style, layout, paint) p50 | ${ms(
      percentile(
        appendFigures.map((f) => f.handler),
        50,
      ),
    )} / ${ms(
      percentile(
        appendFigures.map((f) => f.frame),
        50,
      ),
    )} | |`,
  );
  console.log(
    `|   dispatch → painted, incl. the wait for vsync, p50 / p95 | ${ms(
      percentile(
        appendFigures.map((f) => f.wall),
        50,
      ),
    )} / ${ms(
      percentile(
        appendFigures.map((f) => f.wall),
        95,
      ),
    )} | |`,
  );
  console.log(`|   still at the bottom after ${APPENDS} appends | ${followed.atBottom ? 'yes' : 'NO'} (last row in DOM #${followed.lastPos}) | |`);
  console.log(
    `| label on a step on screen, work p50 / p95 | ${ms(
      percentile(
        labelFigures.map((f) => f.work),
        50,
      ),
    )} / ${ms(
      percentile(
        labelFigures.map((f) => f.work),
        95,
      ),
    )} | |`,
  );
  console.log(
    `| hint delivered at a step above (row grows, offsets below move), work p50 / p95 | ${ms(
      percentile(
        hintFigures.map((f) => f.work),
        50,
      ),
    )} / ${ms(
      percentile(
        hintFigures.map((f) => f.work),
        95,
      ),
    )} | |`,
  );
  console.log(`| scroll to the middle: frame that renders it | ${ms(middle.frame)} (${middle.rows} rows, from #${middle.firstPos} of ${middle.setSize}) | |`);
  console.log(
    `| 10 scroll jumps, frame p50 / max | ${ms(
      percentile(
        jumps.map((f) => f.frame),
        50,
      ),
    )} / ${ms(Math.max(...jumps.map((f) => f.frame)))} | |`,
  );
  console.log(
    `| scrolling 120 px a frame, 60 frames, frame p50 / p95 / max | ${ms(
      percentile(
        reading.map((f) => f.frame),
        50,
      ),
    )} / ${ms(
      percentile(
        reading.map((f) => f.frame),
        95,
      ),
    )} / ${ms(Math.max(...reading.map((f) => f.frame)))} | |`,
  );
  console.log(
    `| append while reading the middle, work p50 / p95 (view stays at #${stayed}) | ${ms(
      percentile(
        midAppends.map((f) => f.work),
        50,
      ),
    )} / ${ms(
      percentile(
        midAppends.map((f) => f.work),
        95,
      ),
    )} | |`,
  );
  const save = saves[saves.length - 1];
  console.log(
    `| saved view state (setState, JSON.stringify) | ${saves.length} save(s) after 6 inits; last ${((save?.bytes ?? 0) / 1e6).toFixed(2)} MB, ${save?.steps ?? 0} steps, ${ms(save?.ms ?? 0)} | ≥ 1 s apart |`,
  );
}

// ---- screenshots --------------------------------------------------------------------------

function shortRun(): { init: Extract<HostToWebview, { type: 'init' }>; detail: StepDetail } {
  const startedAt = new Date(Date.now() - 754_000).toISOString();
  const steps: TimelineStep[] = [
    {
      step: 1,
      tool: 'read_file',
      args: 'convert.py',
      observation: '"""Temperature conversions.""" def celsius_to_fahrenheit(celsius: float) -> float: return celsius * 9 / 5 + 32 def fahrenheit_to_celsius(f…',
      isError: false,
      diff: { files: 0, additions: 0, deletions: 0 },
      labels: [{ label: 'good', source: 'rule' }],
    },
    {
      step: 2,
      tool: 'run_command',
      args: 'python3 -m unittest discover -s tests 2>&1 | tail -3',
      observation: 'FAILED (failures=2) AssertionError: -17.77 != 0.0 within 7 places',
      isError: true,
      diff: { files: 0, additions: 0, deletions: 0 },
      labels: [
        { label: 'bad', source: 'human', reason: 'It piped the tests into tail and lost the exit code.' },
        { label: 'bad', source: 'judge', axis: 'execution', reason: 'The exit status is lost.' },
      ],
    },
    {
      step: 3,
      tool: 'write_file',
      args: 'convert.py',
      observation: 'Wrote 243 bytes to convert.py <script>alert("not run")</script>',
      isError: false,
      diff: { files: 1, additions: 2, deletions: 2 },
      labels: [{ label: 'good', source: 'human' }],
      abandoned: true,
      summaryBefore: { tokensBefore: 121_400, tokensAfter: 9_800 },
    },
    {
      step: 4,
      tool: 'run_command',
      args: 'python3 -m unittest discover -s tests',
      observation: 'Ran 4 tests in 0.001s OK',
      isError: false,
      diff: { files: 0, additions: 0, deletions: 0 },
      labels: [],
      abandoned: true,
    },
    {
      step: 5,
      tool: 'edit_file',
      args: 'convert.py',
      observation: 'Replaced 1 occurrence in convert.py',
      isError: false,
      diff: { files: 1, additions: 1, deletions: 1 },
      labels: [{ label: 'neutral', source: 'judge', axis: 'decision' }],
      branch: 'b-1a2b3c4d',
      branchFrom: 2,
    },
    {
      step: 6,
      tool: 'search',
      args: 'fahrenheit_to_celsius',
      observation: 'convert.py:9: def fahrenheit_to_celsius(fahrenheit: float) -> float: tests/test_convert.py:14: self.assertAlmostEqual(fahrenheit_to_celsius(32), 0.0)',
      isError: false,
      diff: { files: 0, additions: 0, deletions: 0 },
      labels: [],
      branch: 'b-1a2b3c4d',
    },
    {
      step: 7,
      tool: null,
      args: 'Should I also update the README examples, or leave them?',
      observation: '',
      isError: false,
      diff: { files: 0, additions: 0, deletions: 0 },
      labels: [],
      branch: 'b-1a2b3c4d',
    },
    {
      step: 8,
      tool: 'run_command',
      args: 'python3 -m unittest discover -s tests',
      observation: 'Ran 4 tests in 0.001s OK',
      isError: false,
      diff: { files: 3, additions: 24, deletions: 7 },
      labels: [{ label: 'good', source: 'rule' }],
      branch: 'b-1a2b3c4d',
    },
  ];
  const run: RunView = {
    runId: 'shot-run',
    task: 'Make the tests pass without changing the tests.',
    status: 'running',
    steps: 8,
    model: 'scripted-model',
    startedAt,
    tokens: 48_213,
    hints: 2,
    maskedShare: 0.25,
    redactions: 1,
    readOnly: false,
    live: true,
  };
  const hints: TimelineHint[] = [
    { hintId: 'a', text: 'The bug is in the order of operations: parenthesize (fahrenheit - 32) before multiplying.', kind: 'knowledge', deliveredAtStep: 3 },
    { hintId: 'b', text: 'Keep the tests as they are.', kind: 'strategy', urgency: 'now' },
  ];
  const attention: AttentionFlagView[] = [{ step: 7, kind: 'question', message: 'the agent asks: Should I also update the README examples, or leave them?' }];
  const detail: StepDetail = {
    step: 3,
    thought: 'The hint says operator precedence; parenthesize.\n<b>not bold</b>',
    reasoning: 'The subtraction binds after the multiplication; the hint agrees.',
    truncated: false,
    moreActions: [],
    skipped: [],
    tool: 'write_file',
    arguments: JSON.stringify({ path: 'convert.py', content: 'def fahrenheit_to_celsius(f):\n    return (f - 32) * 5 / 9\n' }, null, 2),
    observation: 'Wrote 243 bytes to convert.py <script>alert("not run")</script>',
    isError: false,
    hasFullOutput: true,
    files: [{ path: 'convert.py', status: 'modified', additions: 2, deletions: 2, binary: false }],
    patch:
      'diff --git a/convert.py b/convert.py\n--- a/convert.py\n+++ b/convert.py\n@@ -8,2 +8,2 @@\n def fahrenheit_to_celsius(fahrenheit: float) -> float:\n-    return fahrenheit - 32 * 5 / 9\n+    return (fahrenheit - 32) * 5 / 9\n',
    patchTruncated: false,
  };
  return { init: { type: 'init', run, steps, hints, notes: [], attention, unseen: 1 }, detail };
}

async function screenshots(origin: string, browser: Browser, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const { init, detail } = shortRun();
  for (const theme of ['light', 'dark', 'hc']) {
    const tab = await browser.newPage({ viewport: { width: 400, height: 1000 } });
    await openPanel(tab, origin, theme);
    await tab.evaluate(
      (messages) => {
        for (const data of messages) (globalThis as any).__bench.send(data);
      },
      [
        init,
        {
          type: 'runs',
          liveRunId: 'shot-run',
          runs: [
            { runId: 'shot-run', task: init.run!.task, status: 'running', steps: 8, createdAt: init.run!.startedAt },
            { runId: 'old-run', task: 'Add a --json flag to the stats command\nwith tests', status: 'finished', steps: 31, createdAt: '2026-11-20T09:12:00Z' },
            { runId: 'crashed', task: 'Migrate the cache to LRU', status: 'paused', steps: 12, createdAt: '2026-11-24T16:40:00Z' },
          ],
        },
        { type: 'attention', flag: { step: 2, kind: 'failures', message: '3 failed actions in a row' }, unseen: 2 },
        { type: 'notice', level: 'info', message: 'Rewound to before step 3: 1 file(s) restored. Resume to go on from there.' },
      ] as HostToWebview[],
    );
    await tab.evaluate('window.__bench.afterPaint()');
    const shot = async (name: string) => {
      await tab.waitForTimeout(250);
      await tab.screenshot({ path: path.join(dir, `panel-${theme}${name}.png`) });
    };
    const list = tab.getByRole('list', { name: 'Timeline' });
    // The run as it goes, with a step focused from the keyboard.
    await list.getByRole('listitem').nth(4).focus();
    await tab.keyboard.press('ArrowDown');
    await shot('');
    // The runs list open, a step marked bad and its reason being typed.
    await tab.locator('details.runs > summary').click();
    await list.getByRole('listitem').nth(1).getByRole('button', { name: 'Mark bad' }).click();
    await tab.getByRole('textbox', { name: 'Reason for step 2' }).fill('Lost the exit code');
    await shot('-runs-reason');
    await tab.getByRole('textbox', { name: 'Reason for step 2' }).press('Escape');
    await tab.locator('details.runs > summary').click();
    // A step's detail, a hint being typed.
    await list.getByRole('listitem').nth(2).locator('.step-head').click();
    await tab.evaluate((message) => (globalThis as any).__bench.send(message), { type: 'stepDetail', detail } as HostToWebview);
    await tab.getByRole('textbox', { name: 'Hint' }).fill('Check the README too.');
    await shot('-detail');
    await tab.getByRole('button', { name: 'Close' }).click();
    // The rewind confirmation, and a read-only past run.
    await list.getByRole('listitem').nth(5).getByRole('button', { name: 'Rewind to here' }).click();
    await tab.evaluate((message) => (globalThis as any).__bench.send(message), {
      type: 'rewindPreview',
      preview: { step: 6, written: ['convert.py', 'README.md'], removed: ['notes.txt'], userEdits: ['README.md'], stopsRun: true },
    } as HostToWebview);
    await shot('-rewind');
    const checks = await tab.evaluate(`({
      scriptsInTimeline: document.querySelectorAll('.timeline script, .detail script').length,
      scriptShownAsText: [...document.querySelectorAll('.timeline .observation, .detail pre')].some((node) => node.textContent.includes('<script>')),
      posted: window.__bench.posted.map((message) => message.type).join(', '),
    })`);
    console.log(`screenshots (${theme}): ${JSON.stringify(checks)}`);
    await tab.close();
  }
  console.log(`screenshots saved in ${dir}`);
}

async function main(): Promise<void> {
  const harness = await importModule(path.join(ROOT, 'scripts', 'vscode-server.mjs'));
  const { server, origin } = await serve();
  const browser = await chromium.launch({ executablePath: harness.chromiumPath(), headless: true, args: harness.CHROMIUM_ARGS });
  try {
    if (SCREENSHOTS) await screenshots(origin, browser, path.resolve(SCREENSHOTS));
    await bench(origin, browser.version(), browser);
  } finally {
    await browser.close();
    server.close();
  }
}

export { makeRun, makeStep, openPanel, serve, shortRun };

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
