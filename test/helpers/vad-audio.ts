/**
 * Test audio for voice activity: espeak-ng speech (resampled to 16 kHz by sox), silence, a
 * hold-music-like chord and line noise, put together at known times, with a 16-bit WAV writer.
 * Not a test file itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../../core/seeded-random.js';

export const RATE = 16_000;

/** espeak-ng speaks `text`; returns 16 kHz mono float samples trimmed to the voiced part (-40 dBFS, 10 ms frames). */
export function speak(text: string, voice = 'en-us'): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'circumplex-vad-'));
  try {
    const raw = join(dir, 'raw.wav');
    const out = join(dir, 'out.raw');
    execFileSync('espeak-ng', ['-v', voice, '-s', '165', '-w', raw, text]);
    execFileSync('sox', ['-R', raw, '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', out]);
    const b = readFileSync(out);
    const s = new Float32Array(b.length / 2);
    for (let i = 0; i < s.length; i++) s[i] = b.readInt16LE(2 * i) / 32768;
    // Trim espeak's own leading/trailing silence, so the known segment bounds are the speech.
    const F = RATE / 100;
    const loud = (k: number) => {
      let e = 0;
      for (let i = k * F; i < (k + 1) * F && i < s.length; i++) e += (s[i] ?? 0) ** 2;
      return Math.sqrt(e / F) > 0.01;
    };
    const n = Math.floor(s.length / F);
    let a = 0;
    while (a < n && !loud(a)) a++;
    let z = n - 1;
    while (z > a && !loud(z)) z--;
    return s.slice(a * F, (z + 1) * F);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Digital near-silence: ±1 LSB dither (seeded). */
export function silence(seconds: number, seed = 1): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: Math.round(seconds * RATE) }, () => (r() - 0.5) / 16384);
}

/** A hold-music-like signal: a slowly changing major chord with vibrato and tremolo. */
export function holdMusic(seconds: number): Float32Array {
  const n = Math.round(seconds * RATE);
  const out = new Float32Array(n);
  const chords = [
    [220, 277.18, 329.63],
    [196, 246.94, 293.66],
    [174.61, 220, 261.63],
  ];
  for (let i = 0; i < n; i++) {
    const t = i / RATE;
    const chord = chords[Math.floor(t / 1.5) % chords.length]!;
    let v = 0;
    for (const f of chord) v += Math.sin(2 * Math.PI * f * t + 0.002 * Math.sin(2 * Math.PI * 5 * t) * f) + 0.3 * Math.sin(4 * Math.PI * f * t);
    out[i] = 0.08 * v * (0.8 + 0.2 * Math.sin(2 * Math.PI * 0.7 * t));
  }
  return out;
}

/** Line noise: white noise plus 50 Hz hum. */
export function lineNoise(seconds: number, seed = 2): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: Math.round(seconds * RATE) }, (_, i) => 0.06 * (r() - 0.5) + 0.03 * Math.sin((2 * Math.PI * 50 * i) / RATE));
}

/** Concatenates parts; returns the samples and each part's [startMs, endMs]. */
export function concat(parts: readonly Float32Array[]): { samples: Float32Array; spans: Array<[number, number]> } {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const samples = new Float32Array(total);
  const spans: Array<[number, number]> = [];
  let at = 0;
  for (const p of parts) {
    samples.set(p, at);
    spans.push([(at * 1000) / RATE, ((at + p.length) * 1000) / RATE]);
    at += p.length;
  }
  return { samples, spans };
}

/** 16-bit PCM WAV bytes, `channels` interleaved (each channel its own Float32Array of equal length). */
export function wavBytes(channels: readonly Float32Array[], rate = RATE): Buffer {
  const n = channels[0]?.length ?? 0;
  const ch = channels.length;
  const b = Buffer.alloc(44 + n * ch * 2);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + n * ch * 2, 4);
  b.write('WAVE', 8);
  b.write('fmt ', 12);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(ch, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * ch * 2, 28);
  b.writeUInt16LE(ch * 2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(n * ch * 2, 40);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < ch; c++) {
      const v = Math.max(-1, Math.min(1, channels[c]![i] ?? 0));
      b.writeInt16LE(Math.round(v * 32767), 44 + (i * ch + c) * 2);
    }
  }
  return b;
}

/** Writes a WAV file. */
export function writeWav(file: string, channels: readonly Float32Array[], rate = RATE): void {
  writeFileSync(file, wavBytes(channels, rate));
}
