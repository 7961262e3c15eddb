/**
 * fp16 variants of the encoder stand-ins (issue 14 item 5): output deviation against fp32, measured
 * on CPU. fp16 is a GPU format; there is no GPU here, so the speed-up is not measured.
 *
 * - `emulated`: model.fp16-emulated.onnx, a float32 graph with every weight and every float
 *   intermediate rounded to float16 (training/encoders/convert_fp16.py --emulate): fp16 storage with
 *   float32 arithmetic inside each op — an EMULATION of a GPU fp16 run, not one.
 * - `fp16 file on CPU`: the real fp16 model.onnx run by onnxruntime's CPU provider, which computes
 *   ops without fp16 CPU kernels in float32 behind inserted casts: also not what a GPU computes.
 * - `--device webgpu` (a GPU machine: bench/device/gpu.sh): fp32 and fp16 files both run on the
 *   WebGPU provider, timed at batch 1 and 16 (the speed-up), each compared with fp32 on the CPU.
 *
 *   /usr/bin/python3 -m training.encoders.convert_fp16 --ids wav2vec2-msp-dim --emulate
 *   npx tsx bench/fp16-deviation.ts [--id wav2vec2-msp-dim] [--windows 8] [--device cpu|webgpu]
 */
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { REPO_ROOT } from '../core/config.js';
import { loadSamples, round } from './lib/common.js';

interface Out {
  logits: Float32Array;
  hidden: Float32Array;
}

async function run(file: string, windows: Float32Array[], provider = 'cpu'): Promise<{ outs: Out[]; msPerWindow: number; msPerBatch16?: number }> {
  const s = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', executionProviders: [provider] });
  try {
    await s.run({ signal: new ort.Tensor('float32', windows[0] as Float32Array, [1, (windows[0] as Float32Array).length]) });
    const outs: Out[] = [];
    const t0 = performance.now();
    for (const w of windows) {
      const o = await s.run({ signal: new ort.Tensor('float32', w, [1, w.length]) });
      outs.push({ logits: (o['logits'] as ort.Tensor).data as Float32Array, hidden: (o['hidden_states'] as ort.Tensor).data as Float32Array });
    }
    const msPerWindow = (performance.now() - t0) / windows.length;
    if (provider === 'cpu') return { outs, msPerWindow };
    // Batch 16 (the windows repeated), median of 5 calls after one warm-up.
    const b = Array.from({ length: 16 }, (_, i) => windows[i % windows.length] as Float32Array);
    const flat = new Float32Array(16 * (b[0] as Float32Array).length);
    b.forEach((w, i) => flat.set(w, i * w.length));
    const feeds = { signal: new ort.Tensor('float32', flat, [16, (b[0] as Float32Array).length]) };
    await s.run(feeds);
    const calls: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c0 = performance.now();
      await s.run(feeds);
      calls.push(performance.now() - c0);
    }
    calls.sort((x, y) => x - y);
    return { outs, msPerWindow, msPerBatch16: calls[2] as number };
  } finally {
    await s.release();
  }
}

function compare(a: Out[], b: Out[]): { maxAbsDiff: number; meanAbsDiff: number; minEmbeddingCosine: number } {
  let mx = 0;
  let sum = 0;
  let n = 0;
  let minCos = 1;
  a.forEach((x, i) => {
    const y = b[i] as Out;
    for (let k = 0; k < x.logits.length; k++) {
      const d = Math.abs((x.logits[k] as number) - (y.logits[k] as number));
      mx = Math.max(mx, d);
      sum += d;
      n++;
    }
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < x.hidden.length; j++) {
      dot += (x.hidden[j] as number) * (y.hidden[j] as number);
      na += (x.hidden[j] as number) ** 2;
      nb += (y.hidden[j] as number) ** 2;
    }
    minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
  });
  return { maxAbsDiff: round(mx, 5), meanAbsDiff: round(sum / n, 5), minEmbeddingCosine: round(minCos, 6) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: string): string => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : def;
  };
  const id = opt('--id', 'wav2vec2-msp-dim');
  const count = Number(opt('--windows', '8'));
  const device = opt('--device', 'cpu');
  const fp32 = path.join(REPO_ROOT, 'models', 'weights', 'standins', id, 'model.onnx');
  const dir16 = path.join(REPO_ROOT, 'models', 'weights', 'standins-fp16', id);
  const emulated = path.join(dir16, 'model.fp16-emulated.onnx');
  const real = path.join(dir16, 'model.onnx');
  for (const f of device === 'cpu' ? [fp32, emulated, real] : [fp32, real])
    if (!existsSync(f)) {
      process.stderr.write(
        `${f} not found: build the stand-ins (npm run bench -- --encoders large) and the fp16 files (/usr/bin/python3 -m training.encoders.convert_fp16 --ids ${id} --emulate)\n`,
      );
      process.exit(1);
    }
  const audio = await loadSamples();
  const windows = Array.from({ length: count }, (_, k) => audio.slice(k * 4000, k * 4000 + 16_000));
  const ref = await run(fp32, windows);
  const vals = ref.outs.flatMap((o) => [...o.logits]);
  const mean = vals.reduce((p, q) => p + q, 0) / vals.length;
  const sd = Math.sqrt(vals.reduce((p, q) => p + (q - mean) ** 2, 0) / vals.length);
  if (device !== 'cpu') {
    const g32 = await run(fp32, windows, device);
    const g16 = await run(real, windows, device);
    const gpu = {
      id,
      device,
      windows: count,
      outputSd: round(sd, 4),
      fp32: { msPerWindowBatch1: round(g32.msPerWindow, 2), msPerBatch16: round(g32.msPerBatch16 ?? NaN, 2), ...compare(ref.outs, g32.outs) },
      fp16: { msPerWindowBatch1: round(g16.msPerWindow, 2), msPerBatch16: round(g16.msPerBatch16 ?? NaN, 2), ...compare(ref.outs, g16.outs) },
      fp16VsFp32OnDevice: compare(g32.outs, g16.outs),
      speedupBatch1: round(g32.msPerWindow / g16.msPerWindow, 2),
      speedupBatch16: round((g32.msPerBatch16 ?? NaN) / (g16.msPerBatch16 ?? NaN), 2),
      cpuFp32MsPerWindow: round(ref.msPerWindow, 2),
      note: `deviations are against fp32 on the CPU provider (the reference); ${device} latencies are wall time of session.run including copies to and from the device`,
      loadAvg1: round(os.loadavg()[0] ?? 0, 2),
    };
    process.stdout.write(JSON.stringify(gpu, null, 2) + '\n');
    return;
  }
  const em = await run(emulated, windows);
  const r16 = await run(real, windows);
  const report = {
    id,
    windows: count,
    outputSd: round(sd, 4),
    emulated: { ...compare(ref.outs, em.outs), note: 'fp16 storage of weights and activations, float32 arithmetic: an emulation of a GPU fp16 run' },
    fp16FileOnCpu: { ...compare(ref.outs, r16.outs), note: 'the fp16 file on the CPU provider (float32 kernels behind inserted casts): not a GPU run' },
    speedup: 'not measured: fp16 speed needs a GPU (npm run bench -- --device cuda on a GPU machine)',
    loadAvg1: round(os.loadavg()[0] ?? 0, 2),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

await main();
