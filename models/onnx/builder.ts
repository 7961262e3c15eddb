/**
 * A small ONNX graph builder on top of `onnx-proto` (the protobufjs ONNX schema), used only by the
 * fixture build script to make tiny, deterministic test models. It writes float tensors only (plus
 * int64 shape/axes constants) and pins every byte that could vary (producer name, no timestamps,
 * initializers in insertion order), so rebuilding reproduces the same sha256.
 */
import { createRequire } from 'node:module';

// onnx-proto is CommonJS (`module.exports = $root`); createRequire gives its namespace object
// without depending on Node's CJS named-export detection.
const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof import('onnx-proto');

/** The opset every fixture graph targets (ReduceMean still takes `axes` as an attribute here). */
export const FIXTURE_OPSET = 17;

/** A dimension: a fixed size, or a symbolic name for a dynamic one (e.g. `batch`). */
export type Dim = number | string;

/** Attribute values the builder can encode. */
export type AttrValue = number | string | readonly number[] | { readonly float: number };

// The seeded PRNG lives in streams/ so `validate` can share it without loading the ONNX builder.
export { seededRandom } from '../../core/seeded-random.js';

/** `n` values uniform in [-scale, scale] from a seeded PRNG, rounded to float32. */
export function randomWeights(rand: () => number, n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/** Builds one ONNX graph node by node; `encode()` gives the model bytes. */
export class GraphBuilder {
  private readonly nodes: import('onnx-proto').onnx.INodeProto[] = [];
  private readonly initializers: import('onnx-proto').onnx.ITensorProto[] = [];
  private readonly inputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private readonly outputs: import('onnx-proto').onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly graphName: string) {}

  /** Declares a float32 graph input. */
  input(name: string, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, onnx.TensorProto.DataType.FLOAT, dims));
    return name;
  }

  /** Declares an int64 graph input (token ids, attention masks). */
  inputInt64(name: string, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, onnx.TensorProto.DataType.INT64, dims));
    return name;
  }

  /** Declares a float32 graph output; `from` is the tensor that becomes it (via Identity). */
  output(name: string, from: string, dims: readonly Dim[]): string {
    this.nodes.push({ opType: 'Identity', input: [from], output: [name], name: `out_${name}` });
    this.outputs.push(valueInfo(name, onnx.TensorProto.DataType.FLOAT, dims));
    return name;
  }

  /** A float32 initializer (weights, constants). */
  floats(data: Float32Array | readonly number[], dims: readonly number[], name = this.fresh('w')): string {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (arr.length !== expected) throw new RangeError(`floats ${name}: ${arr.length} values for dims [${dims.join(',')}]`);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      // raw little-endian bytes: compact and bit-exact
      rawData: new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength)),
    });
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    return this.floats([value], []);
  }

  /** An int64 initializer (shapes, axes, slice bounds). */
  ints(data: readonly number[], name = this.fresh('i')): string {
    const buf = new BigInt64Array(data.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [data.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(buf.buffer),
    });
    return name;
  }

  /** Adds a node with one output; returns the output tensor's name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: [...inputs],
      output: [out],
      name: `${out}_node`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Serialises the model (IR 8, opset {@link FIXTURE_OPSET}). */
  encode(docString = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'circumplex-fixtures',
      producerVersion: '1',
      docString,
      opsetImport: [{ domain: '', version: FIXTURE_OPSET }],
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): import('onnx-proto').onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): import('onnx-proto').onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: [...(v as number[])] };
  return { name, type: T.FLOAT, f: (v as { float: number }).float };
}
