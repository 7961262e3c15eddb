/**
 * The front part of an ONNX graph, for timing a model stage by stage with the same kernels
 * onnxruntime runs in the whole graph (bench `vad`: what Silero's STFT alone costs).
 *
 * `prefixGraph(bytes, ['re', 'im'])` keeps the nodes (and initializers) that the named tensors need,
 * and the graph inputs they read; each named tensor becomes an output, summed to one scalar when
 * `reduce` is set (default), so a timing does not also pay for copying a large intermediate out of
 * onnxruntime. Throws a RangeError naming a tensor that no node produces.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

export function prefixGraph(bytes: Uint8Array, targets: readonly string[], reduce = true): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw new RangeError('prefixGraph: the model has no graph');
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => producer.set(o, i)));
  for (const t of targets) if (!producer.has(t)) throw new RangeError(`prefixGraph: no node produces tensor '${t}'`);
  // Walk back from the targets: every node whose output is read on the way is kept.
  const keep = new Set<number>();
  const needed = new Set<string>();
  const stack = [...targets];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (needed.has(t)) continue;
    needed.add(t);
    const i = producer.get(t);
    if (i === undefined || keep.has(i)) continue;
    keep.add(i);
    for (const x of nodes[i]!.input ?? []) if (x) stack.push(x);
  }
  const kept = nodes.filter((_, i) => keep.has(i));
  const outputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  for (const t of targets) {
    if (reduce) {
      kept.push({
        opType: 'ReduceSum',
        input: [t],
        output: [`${t}_sum`],
        name: `prefix_sum_${t}`,
        attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      });
      outputs.push({ name: `${t}_sum`, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [] } } } });
    } else outputs.push({ name: t, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } });
  }
  graph.node = kept;
  graph.initializer = (graph.initializer ?? []).filter((x) => needed.has(x.name ?? ''));
  graph.input = (graph.input ?? []).filter((x) => needed.has(x.name ?? ''));
  graph.output = outputs;
  graph.valueInfo = [];
  return onnx.ModelProto.encode(model).finish();
}
