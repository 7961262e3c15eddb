/**
 * An installed package gets no `vosk` (and so no libvosk for --asr-model) unless the installing
 * project overrides ffi-napi and ref-napi as this repository does: npm ignores a dependency's
 * overrides, and ffi-napi 4.0.3 does not build on Node 20, so npm silently drops the optional
 * `vosk`. The error hint and docs/asr.md tell users the overrides; this keeps them the same as the
 * ones package.json uses.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VOSK_INSTALL_HINT } from '../../models/asr/vosk-factory.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  overrides: Record<string, string>;
  optionalDependencies: Record<string, string>;
};

describe('the overrides an installing project needs for vosk', () => {
  const wanted = ['ffi-napi', 'ref-napi'].map((name) => `"${name}": "${pkg.overrides[name] ?? 'MISSING'}"`);

  it('are the ones package.json uses, in the AFFECT_ERR_ASR hint', () => {
    expect(pkg.optionalDependencies.vosk).toBeDefined();
    for (const w of wanted) expect(VOSK_INSTALL_HINT).toContain(w);
  });

  it('are the ones package.json uses, in docs/asr.md', () => {
    const doc = readFileSync(path.join(REPO, 'docs', 'asr.md'), 'utf8');
    expect(doc).toContain('## Installing libvosk');
    for (const w of wanted) expect(doc).toContain(w);
  });
});
