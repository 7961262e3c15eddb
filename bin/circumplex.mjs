#!/usr/bin/env node
// The `circumplex` command.
// - Installed package (no src/ beside dist/): runs the compiled CLI, dist/src/cli.js. No tsx needed.
// - Checkout (src/cli.ts present): runs the TypeScript sources through tsx (a devDependency), so
//   `npx circumplex` works right after `npm ci` and never runs a stale dist/ left by an older build.
//   CIRCUMPLEX_BIN=dist forces the compiled CLI from a checkout (after `npm run build`).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
const compiled = new URL('../dist/src/cli.js', import.meta.url);

/** tsx's loader, or undefined when it is not installed (e.g. a checkout installed with --omit=dev). */
async function loadTsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined;
  }
}

const tsx = existsSync(source) && process.env.CIRCUMPLEX_BIN !== 'dist' ? await loadTsx() : undefined;
if (tsx) {
  tsx.register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    existsSync(source)
      ? 'circumplex: neither tsx (a devDependency: run `npm ci`) nor dist/src/cli.js (run `npm run build`) is available\n'
      : 'circumplex: dist/src/cli.js is missing; reinstall the package\n',
  );
  process.exitCode = 2;
}
