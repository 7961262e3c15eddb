/**
 * GPU machine probe (bench/device/gpu.sh): which providers `--device auto` would try, the Vulkan
 * drivers found, and whether each shipped ONNX model creates and runs on WebGPU with outputs close
 * to the CPU's. Prints one JSON object.
 *
 *   npx tsx bench/device/probe.ts
 */
import path from 'node:path';
import ort from 'onnxruntime-node';
import { REPO_ROOT } from '../../core/config.js';
import { providersFor, vulkanHardwareDrivers, vulkanIcdSources, webgpuMayWork, cudaProviderInstalled } from '../../models/device.js';

async function runOn(file: string, provider: string): Promise<{ ms: number; createMs: number; out: Float32Array; error?: string }> {
  const c0 = performance.now();
  try {
    const s = await ort.InferenceSession.create(file, { executionProviders: [provider], graphOptimizationLevel: 'all' });
    const createMs = performance.now() - c0;
    const input = s.inputNames[0] as string;
    const samples = new Float32Array(16_000).map((_, i) => 0.1 * Math.sin((2 * Math.PI * 220 * i) / 16_000) * (1 + Math.sin(i / 900)));
    const feeds: Record<string, ort.Tensor> = { [input]: new ort.Tensor('float32', samples, [1, samples.length]) };
    await s.run(feeds);
    const t0 = performance.now();
    const o = await s.run(feeds);
    const ms = performance.now() - t0;
    const first = o[s.outputNames[0] as string] as ort.Tensor;
    await s.release();
    return { ms, createMs, out: Float32Array.from(first.data as Float32Array) };
  } catch (err) {
    return { ms: NaN, createMs: performance.now() - c0, out: new Float32Array(0), error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

const report: Record<string, unknown> = {
  webgpuMayWork: webgpuMayWork(),
  cudaProviderInstalled: cudaProviderInstalled(),
  icdSources: vulkanIcdSources(),
  hardwareDrivers: vulkanHardwareDrivers(),
  autoProviders: providersFor('auto'),
};
const models: Record<string, unknown> = {};
for (const rel of ['models/speech-va/model.onnx', 'models/weights/standins/wav2vec2-msp-dim/model.onnx']) {
  const file = path.join(REPO_ROOT, rel);
  const cpu = await runOn(file, 'cpu');
  const gpu = await runOn(file, 'webgpu');
  let maxAbsDiff: number | null = null;
  if (!gpu.error && !cpu.error) maxAbsDiff = Math.max(...Array.from(cpu.out, (v, i) => Math.abs(v - (gpu.out[i] as number))));
  models[rel] = {
    cpu: { ms: cpu.ms, createMs: cpu.createMs, error: cpu.error },
    webgpu: { ms: gpu.ms, createMs: gpu.createMs, error: gpu.error },
    firstOutputMaxAbsDiff: maxAbsDiff,
  };
}
report['models'] = models;
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
