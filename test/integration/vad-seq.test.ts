/**
 * The sequence form of Silero VAD (models/silero-vad/silero-vad-seq.onnx, derived by
 * training/vad/derive_silero.py): real ONNX sessions of both graphs on real audio (espeak-ng speech,
 * hold music, line noise, silence) give the same probabilities and the same recurrent state, in
 * batches of streams with different numbers of frames (energy gate on and off) and at every frame
 * size; the committed file is what the script derives from the package's file, byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { REPO_ROOT } from '../../core/config.js';
import { SILERO_SEQ_FILE, SILERO_SEQ_SHA256, SileroVad, type SileroVadOptions } from '../../models/silero-vad.js';
import { concat, holdMusic, lineNoise, silence, speak } from '../helpers/vad-audio.js';

const logger = pino({ level: 'silent' });
/** Largest allowed difference of a probability or a state value (float32 sums in another order). */
const TOL = 1e-5;
let audio: Float32Array;
beforeAll(() => {
  const words = speak('Hello, I would like to change my flight to Tuesday.');
  audio = concat([silence(0.3, 1), words, holdMusic(1), lineNoise(1, 5), words, silence(0.3, 2)]).samples;
});

/** Stream i's audio: the test audio shifted so no two streams are alike, cut to whole frames. */
function audioOf(i: number, F: number): Float32Array {
  const shift = (i * 2731) % Math.floor(audio.length / 3);
  return audio.subarray(shift, shift + Math.floor((audio.length - shift) / F) * F);
}

/** Runs S streams through a detector hop by hop (all streams' pieces at once), pieces of 1..9 frames; returns every probability per stream. */
async function run(opts: Partial<SileroVadOptions>, streams: number): Promise<Float32Array[]> {
  const vad = await SileroVad.load({ logger, ...opts });
  try {
    const F = vad.frameSamples;
    const xs = Array.from({ length: streams }, (_, i) => audioOf(i, F));
    const st = xs.map(() => vad.stream());
    const out: number[][] = xs.map(() => []);
    const at = xs.map(() => 0);
    let seed = 7;
    while (at.some((a, i) => a < xs[i]!.length)) {
      await Promise.all(
        xs.map(async (x, i) => {
          if (at[i]! >= x.length) return;
          seed = (seed * 1103515245 + 12345) % 2147483648;
          const n = 1 + (seed % 9);
          const piece = x.subarray(at[i], Math.min(x.length, at[i]! + n * F));
          at[i]! += piece.length;
          out[i]!.push(...(await st[i]!.probabilities(piece)));
        }),
      );
    }
    return out.map((o) => Float32Array.from(o));
  } finally {
    await vad.close();
  }
}

function worstDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    expect(a[i]!.length).toBe(b[i]!.length);
    for (let k = 0; k < a[i]!.length; k++) worst = Math.max(worst, Math.abs(a[i]![k]! - b[i]![k]!));
  }
  return worst;
}

describe('Silero VAD sequence graph', () => {
  it('gives the packaged graph’s probabilities (≤ 1e-5) for 12 streams batched with uneven frame counts, gate on and off', async () => {
    for (const energyGateDbfs of [-60, null]) {
      const seq = await run({ graph: 'sequence', energyGateDbfs }, 12);
      const pkg = await run({ graph: 'packaged', energyGateDbfs }, 12);
      expect(worstDiff(seq, pkg), `gate ${energyGateDbfs}`).toBeLessThan(TOL);
      // The audio is real: speech is found in every stream, and the hold music is not speech everywhere.
      for (const p of seq) expect(Math.max(...p)).toBeGreaterThan(0.9);
      expect(Math.min(...seq.map((p) => p.reduce((a, b) => a + b, 0) / p.length))).toBeLessThan(0.9);
    }
  });

  it('carries the same recurrent state (checked through the probabilities after a long run) at 1024 and 1536 samples per frame', async () => {
    for (const frameSamples of [1024, 1536] as const) {
      const seq = await run({ graph: 'sequence', frameSamples, energyGateDbfs: null }, 3);
      const pkg = await run({ graph: 'packaged', frameSamples, energyGateDbfs: null }, 3);
      expect(worstDiff(seq, pkg), `frameSamples ${frameSamples}`).toBeLessThan(TOL);
    }
  });

  it('costs one ONNX call per batch', async () => {
    const vad = await SileroVad.load({ logger, energyGateDbfs: null, maxWaitMs: 20 });
    try {
      const x = audioOf(0, 512).subarray(0, 8 * 512);
      await Promise.all(Array.from({ length: 6 }, () => vad.stream().probabilities(x)));
      expect(vad.stats.modelFrames).toBe(48);
      expect(vad.stats.modelCalls).toBe(vad.stats.batches);
      expect(vad.stats.batches).toBeLessThanOrEqual(2);
    } finally {
      await vad.close();
    }
  });

  it('the committed file is what training/vad/derive_silero.py derives from the package’s file, byte for byte', () => {
    const python = '/usr/bin/python3';
    if (!existsSync(python)) throw new Error(`${python} is missing: install Debian's python3 and python3-onnx (scripts/setup-system.sh)`);
    const committed = readFileSync(SILERO_SEQ_FILE);
    expect(createHash('sha256').update(committed).digest('hex')).toBe(SILERO_SEQ_SHA256);
    const dir = mkdtempSync(join(tmpdir(), 'circumplex-silero-'));
    try {
      const dst = join(dir, 'seq.onnx');
      execFileSync(python, ['-m', 'training.vad.derive_silero', '--dst', dst], { cwd: REPO_ROOT, stdio: 'pipe' });
      expect(readFileSync(dst).equals(committed)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
