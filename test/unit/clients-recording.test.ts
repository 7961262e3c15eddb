/** Reading recordings for `replay` (errors name file and line) and `watch`'s compact line format. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRecording } from '../../src/commands/replay.js';
import { formatFrame } from '../../src/commands/watch.js';
import { AffectError } from '../../core/errors.js';
import type { AffectFrameMessage } from '../../core/protocol.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'circumplex-rec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const affect = (streamId: string, seq: number, tMs: number): AffectFrameMessage => ({
  type: 'affect',
  streamId,
  seq,
  tMs,
  valence: 0.5,
  arousal: -0.25,
  confidence: 0.8,
  label: 'content',
  intensity: 0.56,
  angleDeg: 333.4,
  modalities: ['speech', 'text'],
  droppedWindows: 0,
});

function write(name: string, lines: string[]): string {
  const f = path.join(dir, name);
  writeFileSync(f, lines.join('\n'));
  return f;
}

function errorOf(fn: () => unknown): AffectError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AffectError) return e;
    throw e;
  }
  throw new Error('expected an AffectError');
}

describe('readRecording', () => {
  it('reads messages with their line numbers and infers streams and hops', () => {
    const f = write('ok.jsonl', [
      JSON.stringify(affect('a', 0, 250)),
      '',
      JSON.stringify(affect('b', 5, 100)),
      JSON.stringify(affect('a', 1, 500)),
      JSON.stringify({ type: 'transcript', streamId: 'a', seq: 2, tMs: 500, text: 'hi', final: true, words: [] }),
      JSON.stringify(affect('a', 3, 750)),
      JSON.stringify(affect('b', 6, 200)),
      JSON.stringify({ type: 'status', streamId: 'b', seq: 7, tMs: 200, state: 'ended', message: 'done' }),
      '',
    ]);
    const rec = readRecording(f);
    expect(rec.messages.map((m) => m.line)).toEqual([1, 3, 4, 5, 6, 7, 8]);
    expect(rec.messages[0]?.message).toEqual(affect('a', 0, 250));
    // No `stream` lines (an older recording): hop inferred, window unknown.
    expect(rec.streams).toEqual([
      { streamId: 'a', hopMs: 250, windowMs: undefined, count: 4, firstSeq: 0, lastSeq: 3, firstTMs: 250, lastTMs: 750 },
      { streamId: 'b', hopMs: 100, windowMs: undefined, count: 3, firstSeq: 5, lastSeq: 7, firstTMs: 100, lastTMs: 200 },
    ]);
  });

  it('names the file and line of every bad line (JSON, schema, seq order)', () => {
    const f = write('bad.jsonl', [
      JSON.stringify(affect('a', 0, 0)),
      '{"type":"affect", oops',
      JSON.stringify({ ...affect('a', 1, 250), valence: 3 }),
      JSON.stringify({ type: 'hello', version: '1' }),
      JSON.stringify(affect('a', 0, 500)),
    ]);
    const e = errorOf(() => readRecording(f));
    expect(e.code).toBe('AFFECT_ERR_INPUT');
    expect(e.message).toContain('4 bad lines');
    expect(e.message).toContain(`${f}:2: not valid JSON`);
    expect(e.message).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: .*valence`));
    expect(e.message).toContain(`${f}:4: not a stream message`);
    expect(e.message).toContain(`${f}:5: stream "a": seq 0 is not after the previous seq 0`);
    expect(e.hint).toMatch(/fix or delete/);
  });

  it('reports a missing file and an empty recording clearly', () => {
    expect(errorOf(() => readRecording(path.join(dir, 'nope.jsonl'))).message).toMatch(/cannot read recording .*nope\.jsonl/);
    expect(errorOf(() => readRecording(write('empty.jsonl', ['', '']))).message).toMatch(/has no messages/);
  });
});

describe('formatFrame (watch)', () => {
  it('prints one compact line per frame type', () => {
    expect(formatFrame(affect('mic', 12, 3000))).toBe('mic #12 3.00s  content     v +0.50  a -0.25  i 0.56  c 0.80  speech+text');
    expect(formatFrame({ ...affect('mic', 13, 3250), droppedWindows: 2, coalesced: 3 })).toMatch(/dropped 2 {2}coalesced 3$/);
    expect(formatFrame({ type: 'transcript', streamId: 'mic', seq: 4, tMs: 1500, text: 'hello there', final: true, words: [] })).toBe(
      'mic #4 1.50s  "hello there"',
    );
    expect(formatFrame({ type: 'transcript', streamId: 'mic', seq: 5, tMs: 1750, text: 'hel', final: false, words: [] })).toBe('mic #5 1.75s  … hel');
    expect(formatFrame({ type: 'status', streamId: 'mic', seq: 6, tMs: 2000, state: 'ended', message: 'input file ended' })).toBe(
      'mic #6 2.00s  [ended] input file ended',
    );
  });
});
