// Runs an exported speech-va graph in onnxruntime-node (the runtime circumplex uses) on a raw float32
// input file and prints the outputs as JSON, so export.py can check ONNX Runtime against torch.
// Usage: node training/speech/parity.mjs model.onnx input.f32 batch samples
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, input, batch, samples] = process.argv.slice(2);
const buf = readFileSync(input);
const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const res = await session.run({ audio: new ort.Tensor('float32', data, [Number(batch), Number(samples)]) });
const out = {};
for (const [k, t] of Object.entries(res)) out[k] = { dims: t.dims, data: Array.from(t.data) };
process.stdout.write(JSON.stringify(out));
