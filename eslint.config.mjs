// Lint for the house rules that code can check. The layer order and import cycles are checked by
// dependency-cruiser (.dependency-cruiser.cjs); the layout by Prettier (.prettierrc.json).
// Every rule below that guards behaviour is proved to fire by test/unit/lint.rules.test.ts.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-test/**', 'test-results/**', 'demo/**', '**/*.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Two programs: the Node side (src, test, bench) and the browser side (webview + protocol).
        project: ['./tsconfig.json', './tsconfig.webview.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The rules the house asked for.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // A variable a closure reads before its one assignment (a test's hook set later) stays a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // A type import that a bundler or `tsc` may drop must say so; pairs with consistent-type-imports.
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],

      // Turned off from the recommended sets, and why:
      // - The no-unsafe-* family flags every use of JSON.parse, of events read from disk and of
      //   the openai package's loosely typed deltas: those values are checked by the validators
      //   (dataset/validate.ts, protocol.ts's parseWebviewMessage), not by the type system, and
      //   the rules cannot see a runtime check. Hundreds of reports, none a bug.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // `${n}` with a number or boolean is how messages are written here; only objects would be a bug,
      // and those are still reported (allowAny: false).
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true, allowRegExp: true }],
      // Methods passed as callbacks (`.map(this.row)`) are bound where it matters; the rule flags
      // every `array.forEach(fn)` on interfaces that merely declare methods.
      '@typescript-eslint/unbound-method': 'off',
      // `async` functions without `await` implement interfaces that return promises.
      '@typescript-eslint/require-await': 'off',
      // Errors from child processes and git are rethrown as they came (often not Error objects).
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // Control characters in regular expressions are what redaction and terminal output look for.
      'no-control-regex': 'off',
    },
  },
  {
    // Build scripts and this file: plain JavaScript, no type information.
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { ...globals.node },
    },
  },
  {
    // The core and the CLI never reach VS Code (the full layer order is in .dependency-cruiser.cjs;
    // this one also shows in the editor as the import is typed).
    files: ['src/core/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'src/core and src/cli run without VS Code: put the VS Code side in src/vscode.' }] }],
    },
  },
  {
    // Tests and benchmarks poke into JSON they parsed (server requests, exported rows) to assert on
    // it; typing each of those shapes would restate the exporters. Product code keeps the rule.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests: node:test's `describe`/`it` return promises that the runner awaits itself.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
    },
  },
  // Layout is Prettier's business: turn off the stylistic rules that would fight it.
  prettier,
);
