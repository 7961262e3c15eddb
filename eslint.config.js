// ESLint (flat config): typescript-eslint's type-aware recommended rules plus a few that catch real bugs
// in async/streaming code, the house's import floors (scripts/eslint-floors.js), and Prettier owning
// formatting (eslint-config-prettier turns off every rule it would fight). `npm run lint` runs it with
// `prettier --check`; `npm test` runs `npm run lint` first.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import floors from './scripts/eslint-floors.js';

export default defineConfig(
  {
    // Build output, downloaded weights, generated fixtures and results (same list as .prettierignore).
    ignores: ['dist/**', 'models/weights/**', 'models/fixtures/out/**', 'test-results/**', 'bench/results/**', '.cache/**', '**/node_modules/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { circumplex: floors },
    rules: {
      'circumplex/import-floors': ['error', { root: import.meta.dirname }],
      // Beyond recommended-type-checked (which already has no-floating-promises, no-misused-promises,
      // await-thenable, require-await, no-unsafe-*, only-throw-error, prefer-promise-reject-errors):
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'error',
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-deprecated': 'error',
      eqeqeq: ['error', 'smart'],
      // `_name` marks a parameter or binding that is unused on purpose (an interface's shape, a skipped element).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests: vitest's asymmetric matchers (expect.stringMatching, expect.closeTo…) are typed `any`, and
    // fakes of async ports are naturally `async` without awaiting anything.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off', '@typescript-eslint/require-await': 'off' },
  },
  {
    // Plain JavaScript is not in a tsconfig: no type information, so no type-aware rules.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The dashboard runs in the browser (a module; chart.js is a global, declared in app.js).
    files: ['clients/dashboard/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['bin/**', 'scripts/**/*.js', 'training/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: globals.node },
  },
  prettier,
);
