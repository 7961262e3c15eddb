/**
 * Dominance on the wire (protocol 1.1.0, additive): the hub's wire conversion carries it when the
 * point has it and omits it otherwise, checks its range like valence, the zod schema accepts frames
 * with and without it (1.0 frames still parse), a recording keeps it through `replay`'s reader, and
 * `watch` prints it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lateFuse } from '../../models/fusion-late.js';
import { AffectMessage, PROTOCOL_VERSION, parseServerMessage } from '../../core/protocol.js';
import { readRecording } from '../../src/commands/replay.js';
import { formatFrame } from '../../src/commands/watch.js';
import { JsonlRecorder } from '../../src/record.js';
import { toWire } from '../../src/server/hub.js';
import type { PipelineEvent } from '../../core/types.js';
import { affectEvent } from '../helpers/clients-protocol-server.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-dom-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An affect event with dominance on the frame and on its text part, as late fusion makes it. */
function withDominance(tMs: number, d: number, textD = d): PipelineEvent {
  const e = affectEvent('mic', tMs, 0.4, 0.1);
  if (e.kind !== 'affect') throw new Error('not an affect event');
  return {
    kind: 'affect',
    point: { ...e.point, dominance: d, modalities: ['speech', 'text'], text: { valence: 0.4, arousal: 0.1, confidence: 0.6, dominance: textD } },
  };
}

describe('late fusion of dominance (pure)', () => {
  it('is precision-weighted over the modalities that have it, and absent when none has it', () => {
    const speech = { valence: 0, arousal: 0, confidence: 0.5 }; // p = 1
    const text = { valence: 1, arousal: 0, confidence: 0.75, dominance: 0.8 }; // p = 3
    const fused = lateFuse([speech, text]);
    expect(fused.valence).toBeCloseTo(0.75, 12);
    expect(fused.dominance).toBeCloseTo(0.8, 12); // speech has no dominance: text alone
    expect(lateFuse([{ ...speech, dominance: -0.4 }, text]).dominance).toBeCloseTo((1 * -0.4 + 3 * 0.8) / 4, 12);
    expect('dominance' in lateFuse([speech, { ...text, dominance: undefined }])).toBe(false);
    expect('dominance' in lateFuse([speech, { ...text, dominance: Number.NaN }])).toBe(false);
    // A modality with confidence 0 is unusable for every dimension, dominance included.
    expect('dominance' in lateFuse([speech, { ...text, confidence: 0 }])).toBe(false);
    expect(lateFuse([{ ...text, dominance: 3 }]).dominance).toBe(1);
  });
});

describe('dominance on the wire', () => {
  it('toWire carries dominance on the frame and the modality parts only when present', () => {
    const m = toWire('mic', 3, withDominance(750, -0.3, -0.5));
    expect(m).toMatchObject({ type: 'affect', seq: 3, dominance: -0.3, text: { dominance: -0.5 } });
    expect(AffectMessage.parse(m)).toEqual(m);
    const plain = toWire('mic', 4, affectEvent('mic', 1000, 0.4, 0.1));
    expect('dominance' in plain).toBe(false);
    expect(plain.type === 'affect' && plain.speech && 'dominance' in plain.speech).toBe(false);
    // A 1.0 frame (no dominance anywhere) still parses.
    expect(parseServerMessage(JSON.stringify(plain))).toEqual(plain);
    // Dominance came with 1.1.0; later minor versions stay additive.
    const [major, minor] = PROTOCOL_VERSION.split('.').map(Number);
    expect(major).toBe(1);
    expect(minor).toBeGreaterThanOrEqual(1);
  });

  it('a dominance out of [-1, 1] or NaN is refused like valence (the frame is dropped, never sent wrong)', () => {
    expect(() => toWire('mic', 0, withDominance(0, 1.5))).toThrow(/dominance must be a finite number in \[-1, 1\]/);
    expect(() => toWire('mic', 0, withDominance(0, 0.1, Number.NaN))).toThrow(/text\.dominance/);
    expect(AffectMessage.safeParse({ ...toWire('mic', 0, withDominance(0, 0.2)), dominance: 2 }).success).toBe(false);
  });

  it('a recording keeps dominance through replay’s reader', () => {
    const file = path.join(dir, 'rec.jsonl');
    const rec = new JsonlRecorder(file);
    rec.write(toWire('mic', 0, withDominance(250, 0.25)));
    rec.write(toWire('mic', 1, affectEvent('mic', 500, 0.1, 0.1)));
    rec.close();
    const read = readRecording(file).messages.map((r) => r.message);
    expect(read[0]).toMatchObject({ dominance: 0.25, text: { dominance: 0.25 } });
    expect(read[1] && 'dominance' in read[1]).toBe(false);
  });

  it('watch prints d when the frame has dominance and nothing when it does not', () => {
    expect(formatFrame(toWire('mic', 0, withDominance(250, -0.42)))).toMatch(/ v \+0\.40 {2}a \+0\.10 {2}d -0\.42 {2}i /);
    expect(formatFrame(toWire('mic', 1, affectEvent('mic', 500, 0.4, 0.1)))).not.toMatch(/ d [+-]/);
  });
});
