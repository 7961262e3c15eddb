import { describe, expect, it } from 'vitest';
import { normalizeWindow, signalConfidence, toUnitRange } from '../../models/speech-onnx.js';
import { findModelSpec, listModelSpecs } from '../../models/manifest.js';

describe('speech output helpers', () => {
  it('maps a native range linearly onto [-1, 1] and clamps', () => {
    expect(toUnitRange(0.5, [0, 1])).toBeCloseTo(0, 9);
    expect(toUnitRange(0, [0, 1])).toBe(-1);
    expect(toUnitRange(1.3, [0, 1])).toBe(1);
    expect(toUnitRange(0.25, [-1, 1])).toBeCloseTo(0.25, 9);
  });

  it('confidence is signal presence: 0 for silence, 1 for speech-level audio, monotonic between', () => {
    const at = (amp: number) => signalConfidence(Float32Array.from({ length: 1600 }, (_, i) => amp * Math.sin(i)));
    expect(at(0)).toBe(0);
    expect(at(0.001)).toBe(0); // ≈ −63 dBFS
    expect(at(0.3)).toBe(1);
    expect(at(0.01)).toBeGreaterThan(at(0.005));
  });

  it('normalises a window to zero mean and unit variance', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => 0.5 + 0.1 * Math.sin(i / 7));
    normalizeWindow(x);
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const v = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
    expect(mean).toBeCloseTo(0, 5);
    expect(v).toBeCloseTo(1, 3);
    const silent = new Float32Array(10);
    normalizeWindow(silent);
    expect(silent.every((s) => s === 0)).toBe(true); // no NaN on silence
  });
});

describe('manifest', () => {
  it('every entry is complete: files with paths, ONNX file among them, speech mappings inside the outputs', () => {
    for (const s of listModelSpecs()) {
      expect(s.files.length, s.id).toBeGreaterThan(0);
      if (s.role !== 'asr')
        expect(
          s.files.map((f) => f.path),
          s.id,
        ).toContain(s.onnxFile);
      if (s.fixture) for (const f of s.files) expect(f.sha256, `${s.id}/${f.path}`).toMatch(/^[0-9a-f]{64}$/);
      if (s.role === 'speech') {
        const names = s.outputs.map((o) => o.name);
        expect(names).toContain(s.affect?.output);
        if (s.affect?.embedding) expect(names).toContain(s.affect.embedding);
      }
    }
    expect(findModelSpec('wav2vec2-msp-dim')?.affect).toMatchObject({ arousal: 0, dominance: 1, valence: 2, range: [0, 1] });
    expect(findModelSpec('vosk-small-en')?.files[0]?.url).toBe('https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip');
  });
});
