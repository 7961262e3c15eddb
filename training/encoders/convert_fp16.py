"""fp16 variants of the stand-ins (issue 14 item 5), by ONNX graph rewriting only, for GPUs.

No converter (onnxconverter-common) is installed here, so this rewrites the graph with python3-onnx:
every float32 initializer and Constant becomes float16, every Cast to float32 casts to float16,
ConstantOfShape fills float16, and the graph's float inputs and outputs stay float32 through one
Cast each at the edges (so the file keeps the stand-in's contract and loads through the same path).

fp16 kernels are a GPU matter (onnxruntime's CPU provider lacks most of them), so the speed-up can
only be measured on a GPU. The output deviation can be measured here by emulation: `--emulate`
also writes `model.fp16-emulated.onnx`, a float32 graph whose initializers are rounded to float16
precision and every float intermediate tensor passes Cast(float16) → Cast(float32), i.e. fp16
storage of weights and activations with float32 arithmetic inside each op (what GPU fp16 kernels
with float32 accumulation do; it does not emulate fp16 accumulation).

    /usr/bin/python3 -m training.encoders.convert_fp16 --src models/weights/standins --dst models/weights/standins-fp16 --emulate
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = 65504.0


def _to_f16(t: onnx.TensorProto) -> tuple[onnx.TensorProto, int]:
    a = numpy_helper.to_array(t).astype(np.float32)
    over = int(np.sum(np.abs(a) > FP16_MAX))
    return numpy_helper.from_array(np.clip(a, -FP16_MAX, FP16_MAX).astype(np.float16), t.name), over


def _round_f16(t: onnx.TensorProto) -> tuple[onnx.TensorProto, int]:
    a = numpy_helper.to_array(t).astype(np.float32)
    over = int(np.sum(np.abs(a) > FP16_MAX))
    return numpy_helper.from_array(np.clip(a, -FP16_MAX, FP16_MAX).astype(np.float16).astype(np.float32), t.name), over


def convert_fp16(src: str, dst: str) -> dict:
    """The real fp16 graph (float32 at the edges)."""
    m = onnx.load(src)
    g = m.graph
    overflow = 0
    inits = []
    for i in g.initializer:
        if i.data_type == F32:
            t, o = _to_f16(i)
            overflow += o
            inits.append(t)
        else:
            inits.append(i)
    del g.initializer[:]
    g.initializer.extend(inits)
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == F32:
                a.i = F16
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F32:
                t, o = _to_f16(a.t)
                overflow += o
                a.t.CopyFrom(t)
    # Edges: float32 inputs cast to float16 on entry, float16 outputs cast back on exit.
    edge_nodes = []
    for inp in g.input:
        if inp.type.tensor_type.elem_type != F32:
            continue
        h = f"{inp.name}__fp16"
        for n in g.node:
            for k, x in enumerate(n.input):
                if x == inp.name:
                    n.input[k] = h
        edge_nodes.append(helper.make_node("Cast", [inp.name], [h], to=F16, name=f"{inp.name}__to_fp16"))
    tail = []
    for out in g.output:
        if out.type.tensor_type.elem_type != F32:
            continue
        h = f"{out.name}__fp16"
        for n in g.node:
            for k, x in enumerate(n.output):
                if x == out.name:
                    n.output[k] = h
            for k, x in enumerate(n.input):
                if x == out.name:
                    n.input[k] = h
        tail.append(helper.make_node("Cast", [h], [out.name], to=F32, name=f"{out.name}__to_fp32"))
    nodes = edge_nodes + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    for vi in g.value_info:
        if vi.type.tensor_type.elem_type == F32:
            vi.type.tensor_type.elem_type = F16
    onnx.checker.check_model(m)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(m, dst)
    return {"bytes": os.path.getsize(dst), "clippedValues": overflow}


def emulate_fp16(src: str, dst: str) -> dict:
    """A float32 graph with fp16 storage of weights and of every float intermediate (CPU emulation)."""
    m = onnx.load(src)
    inferred = onnx.shape_inference.infer_shapes(m)
    float_vals = {vi.name for vi in list(inferred.graph.value_info) if vi.type.tensor_type.elem_type == F32}
    g = m.graph
    overflow = 0
    inits = []
    for i in g.initializer:
        if i.data_type == F32:
            t, o = _round_f16(i)
            overflow += o
            inits.append(t)
        else:
            inits.append(i)
    del g.initializer[:]
    g.initializer.extend(inits)
    outputs = {o.name for o in g.output}
    nodes = []
    rounded = 0
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == F32:
                t, o = _round_f16(a.t)
                overflow += o
                a.t.CopyFrom(t)
        nodes.append(n)
        if n.op_type in ("Shape", "Constant"):
            continue
        for k, y in enumerate(n.output):
            if y not in float_vals and y not in outputs:
                continue
            raw = f"{y}__f32raw"
            n.output[k] = raw
            nodes.append(helper.make_node("Cast", [raw], [f"{y}__f16"], to=F16, name=f"{y}__q16"))
            nodes.append(helper.make_node("Cast", [f"{y}__f16"], [y], to=F32, name=f"{y}__dq16"))
            rounded += 1
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(m, dst)
    return {"bytes": os.path.getsize(dst), "roundedTensors": rounded, "clippedValues": overflow}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.path.join("models", "weights", "standins"))
    ap.add_argument("--dst", default=os.path.join("models", "weights", "standins-fp16"))
    ap.add_argument("--ids", default="wav2vec2-base-dim,wav2vec2-msp-dim", help="model folders under --src")
    ap.add_argument("--emulate", action="store_true", help="also write model.fp16-emulated.onnx (float32 graph, fp16 rounding) for CPU deviation checks")
    a = ap.parse_args(argv)
    report = {}
    for sid in [s for s in a.ids.split(",") if s]:
        sdir, ddir = os.path.join(a.src, sid), os.path.join(a.dst, sid)
        if not os.path.exists(os.path.join(sdir, "model.onnx")):
            print(f"[fp16] {sid}: no {sdir}/model.onnx; build the stand-ins first", file=sys.stderr)
            return 1
        r = {"model.onnx": convert_fp16(os.path.join(sdir, "model.onnx"), os.path.join(ddir, "model.onnx"))}
        if a.emulate:
            r["model.fp16-emulated.onnx"] = emulate_fp16(os.path.join(sdir, "model.onnx"), os.path.join(ddir, "model.fp16-emulated.onnx"))
        if os.path.exists(os.path.join(sdir, "standin.json")):
            shutil.copyfile(os.path.join(sdir, "standin.json"), os.path.join(ddir, "standin.json"))
        report[sid] = r
        print(f"[fp16] {sid}: {r}", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
