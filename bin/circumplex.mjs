#!/usr/bin/env node
// The `circumplex` command.
// - Installed package (no src/ beside dist/): runs the compiled CLI, dist/src/cli.js. No tsx needed.
// - Checkout (src/cli.ts present): runs the TypeScript sources through tsx (a devDependency), so
//   `npx circumplex` works right after `npm ci` and never runs a stale dist/ left by an older build.
//   CIRCUMPLEX_BIN=dist forces the compiled CLI from a checkout (after `npm run build`).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
const compiled = new URL('../dist/src/cli.js', import.meta.url);

if (existsSync(source) && process.env.CIRCUMPLEX_BIN !== 'dist') {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write('circumplex: dist/src/cli.js is missing; run `npm run build` (from a checkout) or reinstall the package\n');
  process.exitCode = 2;
}
