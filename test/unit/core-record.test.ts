import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JsonlRecorder } from '../../src/record.js';
import { AffectError } from '../../core/errors.js';
import { ServerMessageSchema, type StreamEventMessage } from '../../core/protocol.js';

const dir = mkdtempSync(path.join(tmpdir(), 'core-record-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const msg = (seq: number): StreamEventMessage => ({
  type: 'affect',
  streamId: 's',
  seq,
  tMs: 1000 + seq * 250,
  valence: 0.1,
  arousal: -0.2,
  confidence: 0.9,
  label: 'calm',
  intensity: 0.22,
  angleDeg: 296.6,
  modalities: ['speech'],
  droppedWindows: 0,
});

describe('JsonlRecorder', () => {
  it('writes one parseable wire message per line, synchronously (readable before close)', () => {
    const f = path.join(dir, 'a.jsonl');
    const r = new JsonlRecorder(f);
    r.write(msg(0));
    r.write({ type: 'transcript', streamId: 's', seq: 1, tMs: 1200, text: 'line\nbreak "quoted"', final: true, words: [] });
    // No flush needed: the bytes are in the file as soon as write returns.
    const lines = readFileSync(f, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(ServerMessageSchema.parse(JSON.parse(lines[1] ?? '')).type).toBe('transcript');
    expect(r.lines).toBe(2);
    r.close();
    r.close(); // idempotent
    r.write(msg(2)); // ignored after close
    expect(readFileSync(f, 'utf8').split('\n')).toHaveLength(3);
  });

  it('truncates by default and appends when asked', () => {
    const f = path.join(dir, 'b.jsonl');
    new JsonlRecorder(f).write(msg(0));
    const again = new JsonlRecorder(f, { append: true, fsyncEvery: 1 });
    again.write(msg(1));
    again.close();
    expect(readFileSync(f, 'utf8').trim().split('\n')).toHaveLength(2);
    const fresh = new JsonlRecorder(f);
    fresh.close();
    expect(readFileSync(f, 'utf8')).toBe('');
  });

  it('refuseNonEmpty (what the CLI sets for --record) refuses a non-empty file without touching it; empty and missing files are written', () => {
    const f = path.join(dir, 'c.jsonl');
    const r = new JsonlRecorder(f, { refuseNonEmpty: true });
    r.write(msg(0));
    r.close();
    const before = readFileSync(f, 'utf8');
    let err: unknown;
    try {
      new JsonlRecorder(f, { refuseNonEmpty: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AffectError);
    expect(err).toMatchObject({ code: 'AFFECT_ERR_CONFIG', hint: expect.stringContaining('--record-overwrite') as unknown });
    expect((err as AffectError).message).toContain(`record file ${f} already exists and is not empty (${before.length} bytes)`);
    expect(readFileSync(f, 'utf8')).toBe(before);
    const empty = path.join(dir, 'd.jsonl');
    writeFileSync(empty, '');
    const e = new JsonlRecorder(empty, { refuseNonEmpty: true });
    e.write(msg(1));
    e.close();
    expect(readFileSync(empty, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(() => new JsonlRecorder(f, { refuseNonEmpty: true, append: true })).toThrow(RangeError);
  });

  it('an unwritable path is an AffectError naming the file', () => {
    expect(() => new JsonlRecorder(path.join(dir, 'no', 'such', 'dir.jsonl'))).toThrow(AffectError);
    expect(() => new JsonlRecorder(path.join(dir, 'no', 'such', 'dir.jsonl'))).toThrow(/cannot open record file .*dir\.jsonl/);
  });
});
