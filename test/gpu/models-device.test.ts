/** GPU checks: run only where onnxruntime-node's CUDA provider is installed (npm ci --onnxruntime-node-install=cuda12). */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { cudaProviderInstalled } from '../../models/device.js';
import { loadSpeechModel } from '../../models/registry.js';

const hasCuda = cudaProviderInstalled();

describe.runIf(hasCuda)('speech model on CUDA', () => {
  it('--device cuda runs on cuda and matches the CPU output', async () => {
    const logger = pino({ level: 'silent' });
    const gpu = await loadSpeechModel('speech-fixture', { device: 'cuda', logger });
    const cpu = await loadSpeechModel('speech-fixture', { device: 'cpu', logger });
    try {
      expect(gpu.provider).toBe('cuda');
      const w = Float32Array.from({ length: 16000 }, (_, i) => 0.3 * Math.sin(i * 0.05));
      const [a, b] = await Promise.all([gpu.infer(w), cpu.infer(w)]);
      expect(a.arousal).toBeCloseTo(b.arousal, 3);
      expect(a.valence).toBeCloseTo(b.valence, 3);
    } finally {
      await gpu.close();
      await cpu.close();
    }
  });

  it('auto picks cuda first', async () => {
    const m = await loadSpeechModel('speech-fixture', { device: 'auto', logger: pino({ level: 'silent' }) });
    expect(m.provider).toBe('cuda');
    await m.close();
  });
});

describe.runIf(!hasCuda)('without the CUDA provider', () => {
  it('is skipped (nothing to check on this machine)', () => {
    expect(hasCuda).toBe(false);
  });
});
