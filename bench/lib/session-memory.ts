/**
 * Memory of one speech model session, measured in a fresh child process so that sessions the
 * benchmark loaded before cannot hide it (a process's allocator keeps freed memory): RSS before
 * loading, after loading and one window, and after a batch of 8 windows.
 *
 *   node --import tsx bench/lib/session-memory.ts <spec json> <modelsDir|-> [streaming mode]
 */
import { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { StreamingSpeechModel, type StreamingMode } from '../../models/streaming-speech.js';
import type { ModelSpec } from '../../models/manifest.js';

const mib = (): number => Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10;

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as ModelSpec;
  const dir = process.argv[3] && process.argv[3] !== '-' ? process.argv[3] : undefined;
  const mode = process.argv[4] as StreamingMode | undefined;
  const win = spec.windowSamples ?? 16_000;
  const x = new Float32Array(win).map((_, i) => 0.1 * Math.sin(i / 7));
  const before = mib();
  const opts = { device: 'cpu' as const, ...(dir ? { modelsDir: dir } : {}) };
  if (mode) {
    const m = await StreamingSpeechModel.load(spec, { ...opts, streaming: { mode } });
    await m.infer(x);
    const loaded = mib();
    await Promise.all(Array.from({ length: 8 }, () => m.infer(x)));
    const batch8 = mib();
    await m.close();
    process.stdout.write(JSON.stringify({ before, loaded, batch8 }) + '\n');
  } else {
    const m = await OnnxSpeechModel.load(spec, opts);
    await m.runBatch([x]);
    const loaded = mib();
    await m.runBatch(Array.from({ length: 8 }, () => x));
    const batch8 = mib();
    await m.close();
    process.stdout.write(JSON.stringify({ before, loaded, batch8 }) + '\n');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(String(err) + '\n');
    process.exit(1);
  },
);
