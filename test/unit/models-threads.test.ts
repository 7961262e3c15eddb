import { describe, expect, it } from 'vitest';
import { AUTO_THREADS_MAX, AUTO_THREADS_MIN_BYTES, checkIntraOpThreads, parseIntraOpThreads, resolveIntraOpThreads } from '../../models/threads.js';

const MiB = 1024 * 1024;

describe('ONNX intra-op threads (models/threads.ts)', () => {
  it('auto gives small models one thread and large ones every core, capped', () => {
    const size = (bytes: number) => (): number => bytes;
    expect(resolveIntraOpThreads('auto', 'speech-va.onnx', 2, size(0.74 * MiB))).toEqual({ threads: 1, why: 'auto: 0.74 MiB model' });
    expect(resolveIntraOpThreads(undefined, 'x.onnx', 16, size(AUTO_THREADS_MIN_BYTES - 1)).threads).toBe(1);
    expect(resolveIntraOpThreads(undefined, 'frontend.onnx', 2, size(AUTO_THREADS_MIN_BYTES))).toEqual({ threads: 2, why: 'auto: 8 MiB model, 2 cores' });
    expect(resolveIntraOpThreads('auto', 'large.onnx', 2, size(631 * MiB))).toEqual({ threads: 2, why: 'auto: 631 MiB model, 2 cores' });
    expect(resolveIntraOpThreads('auto', 'large.onnx', 1, size(631 * MiB)).threads).toBe(1);
    expect(resolveIntraOpThreads('auto', 'large.onnx', 64, size(631 * MiB)).threads).toBe(AUTO_THREADS_MAX);
  });

  it('an unreadable file counts as small (the session open then names it)', () => {
    const missing = (): number => {
      throw new Error('ENOENT');
    };
    expect(resolveIntraOpThreads('auto', '/nope/model.onnx', 8, missing).threads).toBe(1);
  });

  it('a count is used as given, 0 leaves onnxruntime its own default', () => {
    const never = (): number => {
      throw new Error('a set count must not stat the file');
    };
    expect(resolveIntraOpThreads(3, 'm.onnx', 2, never)).toEqual({ threads: 3, why: 'set' });
    expect(resolveIntraOpThreads(0, 'm.onnx', 2, never)).toEqual({ threads: 0, why: "onnxruntime's default" });
  });

  it('refuses counts that are not integers in [0, 256], naming the setting', () => {
    for (const bad of [-1, 1.5, 257, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => checkIntraOpThreads(bad, 'intraOpThreads')).toThrow(/^intraOpThreads must be auto or an integer in \[0, 256\]/);
    }
    expect(() => checkIntraOpThreads('many' as unknown as number)).toThrow('got "many"');
    expect(() => resolveIntraOpThreads(-2, 'm.onnx')).toThrow(RangeError);
  });

  it('parses the --threads flag', () => {
    expect(parseIntraOpThreads('auto')).toBe('auto');
    expect(parseIntraOpThreads(' 2 ')).toBe(2);
    expect(parseIntraOpThreads('0')).toBe(0);
    for (const bad of ['', 'two', '-1', '1.5', '2x', '300', 'Auto']) {
      expect(() => parseIntraOpThreads(bad), bad).toThrow(/^--threads must be auto or an integer in \[0, 256\]/);
    }
  });
});
