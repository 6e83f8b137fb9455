// The layer order of design.md as rules, checked by `npm run lint` (and proved to bite by
// test/unit/lint.rules.test.ts). dependency-cruiser rather than an ESLint import plugin: it sees
// type-only imports too (a cycle made of `import type` is still two modules that cannot be
// understood apart, and the one the export folder had was of that kind), and it resolves
// every import once for the whole graph instead of once per linted file.
//
// Paths are relative to the checkout. Bottom to top, the core is:
//   src/core/*.ts (shared leaves: paths, version, text) < dataset < grounding < agent
//   < supervision < export < session
// and above the core: src/protocol.ts, src/cli, src/vscode, src/extension.ts; webview/ apart.

/** 'vscode' as an import resolves to its type declarations (or to nothing, where they are absent). */
const VSCODE = '^(vscode$|node_modules/@types/vscode/)';

/** The core's layers, bottom first. */
const LAYERS = ['dataset', 'grounding', 'agent', 'supervision', 'export', 'session'];

const layerRules = LAYERS.slice(0, -1).map((layer, index) => ({
  name: `core-${layer}-imports-only-below`,
  comment: `src/core/${layer} imports only the layers below it (${LAYERS.slice(0, index).join(', ') || 'none'}) and the shared files at src/core's root.`,
  severity: 'error',
  from: { path: `^src/core/${layer}/` },
  to: { path: `^src/core/(${LAYERS.slice(index + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'No import cycles, type-only imports included: a cycle is a layer that does not know what it is built on.',
      severity: 'error',
      from: { path: '^(src|webview)/' },
      to: { circular: true },
    },
    {
      name: 'core-no-vscode',
      comment: "src/core is pure TypeScript tested in plain Node: it never imports 'vscode'.",
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: VSCODE },
    },
    {
      name: 'cli-no-vscode',
      comment: "The CLI runs without VS Code: it never imports 'vscode' nor the VS Code adapters.",
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: [VSCODE, '^src/vscode/', '^src/extension\\.ts$'] },
    },
    {
      name: 'core-not-above',
      comment: 'src/core never imports what is built on it: the VS Code adapters, the CLI, the composition root or the webview protocol.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^(src/vscode/|src/cli/|src/extension\\.ts$|src/protocol\\.ts$|webview/)' },
    },
    {
      name: 'core-root-is-bottom',
      comment: "The shared files at src/core's root (paths.ts, version.ts, text.ts) are below every layer: they import no layer.",
      severity: 'error',
      from: { path: '^src/core/[^/]+\\.ts$' },
      to: { path: '^src/core/[^/]+/' },
    },
    ...layerRules,
    {
      name: 'webview-only-protocol',
      comment: 'The webview reaches the rest of Apollo only through src/protocol.ts (its own files and the UI toolkit aside).',
      severity: 'error',
      from: { path: '^webview/' },
      to: { path: '^src/', pathNot: '^src/protocol\\.ts$' },
    },
    {
      name: 'webview-no-node',
      comment: 'The webview runs in a browser: no Node built-ins, no packages but the UI toolkit.',
      severity: 'error',
      from: { path: '^webview/' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'], pathNot: '^node_modules/@vscode/webview-ui-toolkit/' },
    },
    {
      name: 'protocol-types-and-constants-only',
      comment: 'src/protocol.ts is bundled into the webview: it imports only from the core (types, constants, pure helpers), never Node built-ins or packages.',
      severity: 'error',
      from: { path: '^src/protocol\\.ts$' },
      to: { pathNot: '^src/core/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: "An import that resolves to nothing is a typo or a missing dependency ('vscode' is provided by the editor).",
      severity: 'error',
      from: { path: '^(src|webview)/' },
      to: { couldNotResolve: true, pathNot: VSCODE },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'],
    },
    skipAnalysisNotInRules: true,
  },
};
