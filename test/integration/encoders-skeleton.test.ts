import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { REPO_ROOT } from '../../core/config.js';

const PYTHON = '/usr/bin/python3';

/**
 * Two graphs that share a weight, as model.onnx and streaming/encoder.onnx do: y = reshape(x @ W) + b,
 * W float [64, 256] (stripped), b float [256] and the int64 shape (small: kept as they are).
 */
const MAKE = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(7)
W = rng.standard_normal((64, 256)).astype(np.float32) * 0.05 + 0.01
b = rng.standard_normal(256).astype(np.float32)
def graph(name):
    nodes = [helper.make_node('MatMul', ['x', 'W'], ['h']), helper.make_node('Reshape', ['h', 'shape'], ['r']),
             helper.make_node('Add', ['r', 'b'], ['y'])]
    inits = [numpy_helper.from_array(W, 'W'), numpy_helper.from_array(b, 'b'), numpy_helper.from_array(np.array([-1, 256], np.int64), 'shape')]
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [None, 64])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [None, 256])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid('', 14)])
root = sys.argv[1]
import os
os.makedirs(os.path.join(root, 'm', 'streaming'), exist_ok=True)
onnx.save(graph('full'), os.path.join(root, 'm', 'model.onnx'))
onnx.save(graph('enc'), os.path.join(root, 'm', 'streaming', 'encoder.onnx'))
open(os.path.join(root, 'm', 'standin.json'), 'w').write('{"parameters": 16640}')
`;

async function outputs(file: string, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    const o = await s.run({ x: new ort.Tensor('float32', x, [x.length / 64, 64]) });
    return Float32Array.from((o['y'] as ort.Tensor).data as Float32Array);
  } finally {
    await s.release();
  }
}

describe('training/encoders/skeleton.py (stand-ins without weights, for the GPU transfer)', () => {
  it('strips large float weights, keeps small and integer initializers, and fills graphs that share a weight with the same values', async () => {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: install Debian's python3 and python3-onnx (scripts/setup-system.sh)`);
    const root = mkdtempSync(path.join(tmpdir(), 'skeleton-'));
    execFileSync(PYTHON, ['-c', MAKE, path.join(root, 'src')], { stdio: 'pipe' });
    const run = (args: string[]): string =>
      execFileSync(PYTHON, ['-m', 'training.encoders.skeleton', ...args], { cwd: REPO_ROOT, encoding: 'utf8', stdio: 'pipe' });
    run(['strip', '--src', path.join(root, 'src'), '--dst', path.join(root, 'skel')]);
    const manifest = JSON.parse(readFileSync(path.join(root, 'skel', 'skeleton.json'), 'utf8')) as {
      files: Record<string, Array<{ name: string; dims: number[]; mean: number; sd: number; digest: string }>>;
    };
    expect(Object.keys(manifest.files).sort()).toEqual(['m/model.onnx', 'm/streaming/encoder.onnx']);
    for (const entries of Object.values(manifest.files)) expect(entries.map((e) => [e.name, e.dims])).toEqual([['W', [64, 256]]]); // b (256) and shape stay
    const full = manifest.files['m/model.onnx']?.[0];
    expect(full?.sd).toBeCloseTo(0.05, 2);
    expect(full?.mean).toBeCloseTo(0.01, 2);
    expect(statSync(path.join(root, 'skel', 'm', 'model.onnx')).size).toBeLessThan(4096); // W's 64 KiB are gone
    expect(existsSync(path.join(root, 'skel', 'm', 'standin.json'))).toBe(true);

    run(['fill', '--src', path.join(root, 'skel'), '--dst', path.join(root, 'filled')]);
    const x = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
    const a = await outputs(path.join(root, 'filled', 'm', 'model.onnx'), x);
    const b = await outputs(path.join(root, 'filled', 'm', 'streaming', 'encoder.onnx'), x);
    const orig = await outputs(path.join(root, 'src', 'm', 'model.onnx'), x);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(Array.from(a)).toEqual(Array.from(b)); // the shared weight got the same draw in both graphs
    expect(Array.from(a)).not.toEqual(Array.from(orig)); // a fresh draw, not the original weights
    expect(existsSync(path.join(root, 'filled', 'm', 'standin.json'))).toBe(true);

    // A fill without a skeleton says what to do.
    let msg = '';
    try {
      run(['fill', '--src', path.join(root, 'nothing'), '--dst', path.join(root, 'x')]);
    } catch (err) {
      msg = String((err as { stderr?: string }).stderr);
    }
    expect(msg).toContain('skeleton.json is missing');
  }, 60_000);
});
