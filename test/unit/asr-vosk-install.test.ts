/**
 * An installed package gets no `vosk` (and so no libvosk for --asr-model) unless the installing
 * project overrides ffi-napi and ref-napi as this repository does: npm ignores a dependency's
 * overrides, and ffi-napi 4.0.3 does not build on Node 20, so npm silently drops the optional
 * `vosk`. The error hint and docs/asr.md tell users the overrides; this keeps them the same as the
 * ones package.json uses.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AffectError } from '../../core/errors.js';
import { VOSK_MODEL_HINT } from '../../models/asr/layout.js';
import { VOSK_INSTALL_HINT } from '../../models/asr/vosk-factory.js';
import { pullModel } from '../../models/download.js';
import { MODEL_SPECS } from '../../models/manifest.js';

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

describe('the command that gets a Vosk model (AFFECT_ERR_ASR_MODEL hint, docs/asr.md)', () => {
  const command = /`(circumplex models pull [^`]+)`/.exec(VOSK_MODEL_HINT)?.[1] ?? '';

  it('is the same in the hint and in docs/asr.md', () => {
    expect(command).toMatch(/^circumplex models pull vosk-small-en\b/);
    const doc = readFileSync(path.join(REPO, 'docs', 'asr.md'), 'utf8');
    const inDoc = [...doc.matchAll(/circumplex models pull vosk-small-en[^\n`#]*/g)].map((m) => m[0].trim());
    expect(inDoc.length).toBeGreaterThan(0);
    for (const c of inDoc) expect(c).toBe(command);
  });

  it('is not refused by pull (the manifest knows no sha256 for the zip): it goes on to download', async () => {
    const spec = MODEL_SPECS['vosk-small-en'];
    const args = command.split(' ').slice(4);
    // The real pull, pointed at a closed loopback port instead of alphacephei.com.
    const offline = { ...spec, files: spec.files.map((f) => ({ ...f, url: 'http://127.0.0.1:9/vosk.zip' })) };
    const dir = mkdtempSync(path.join(tmpdir(), 'vosk-pull-'));
    try {
      const err: unknown = await pullModel(offline, {
        modelsDir: dir,
        acceptUnverified: args.includes('--accept-unverified'),
        attempts: 1,
        retryDelayMs: 1,
        progress: null,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AffectError);
      // Offline is the only reason left: not "cannot be verified".
      expect((err as AffectError).message).not.toMatch(/cannot be verified/);
      expect((err as AffectError).message).toContain('127.0.0.1:9');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
