"""Int8 weight-quantised variants of the stand-ins (issue 14 item 5), by ONNX graph rewriting only.

onnxruntime's Python quantiser is not installed here, so this does what its dynamic quantisation
does for MatMul, with python3-onnx: every MatMul whose second input is a constant 2-D weight
W [K, N] becomes

    A --DynamicQuantizeLinear--> (A_u8, a_scale, a_zp)
    MatMulInteger(A_u8, W_i8, a_zp, 0) --Cast float--> * (a_scale * w_scale[N])

with W quantised symmetrically per output column (int8, zero point 0). Convolutions (the conv
front end), layer norms, softmax and the head's Gemm stay float32. The result has the same
inputs/outputs as the source, so it loads through the same paths.

    /usr/bin/python3 -m training.encoders.quantize_int8 --src models/weights/standins --dst models/weights/standins-int8
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


def quantize_model(src: str, dst: str) -> dict:
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    new_nodes = []
    new_inits = []
    drop = set()
    count = 0
    params = 0
    for n in g.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) == 2 else None
        if w is None or len(w.dims) != 2:
            new_nodes.append(n)
            continue
        W = numpy_helper.to_array(w).astype(np.float32)
        scale = np.abs(W).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        Wq = np.clip(np.round(W / scale), -127, 127).astype(np.int8)
        base = f"q{count}"
        count += 1
        params += W.size
        new_inits += [
            numpy_helper.from_array(Wq, f"{base}_w"),
            numpy_helper.from_array(scale.astype(np.float32), f"{base}_wscale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), f"{base}_wzp"),
        ]
        a = n.input[0]
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [a], [f"{base}_a", f"{base}_ascale", f"{base}_azp"], name=f"{base}_dql"),
            helper.make_node("MatMulInteger", [f"{base}_a", f"{base}_w", f"{base}_azp", f"{base}_wzp"], [f"{base}_i32"], name=f"{base}_mmi"),
            helper.make_node("Cast", [f"{base}_i32"], [f"{base}_f"], to=TensorProto.FLOAT, name=f"{base}_cast"),
            helper.make_node("Mul", [f"{base}_ascale", f"{base}_wscale"], [f"{base}_scale"], name=f"{base}_s"),
            helper.make_node("Mul", [f"{base}_f", f"{base}_scale"], list(n.output), name=f"{base}_out"),
        ]
        consumers[w.name] -= 1
        if consumers[w.name] == 0:
            drop.add(w.name)
    del g.node[:]
    g.node.extend(new_nodes)
    keep = [i for i in g.initializer if i.name not in drop]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(m, dst)
    return {"matmuls": count, "quantisedWeights": int(params), "bytes": os.path.getsize(dst)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.path.join("models", "weights", "standins"))
    ap.add_argument("--dst", default=os.path.join("models", "weights", "standins-int8"))
    ap.add_argument("--ids", default="wav2vec2-base-dim,wav2vec2-msp-dim", help="model folders under --src")
    a = ap.parse_args(argv)
    report = {}
    for sid in [s for s in a.ids.split(",") if s]:
        sdir, ddir = os.path.join(a.src, sid), os.path.join(a.dst, sid)
        if not os.path.exists(os.path.join(sdir, "model.onnx")):
            print(f"[int8] {sid}: no {sdir}/model.onnx; build the stand-ins first", file=sys.stderr)
            return 1
        r = {"model.onnx": quantize_model(os.path.join(sdir, "model.onnx"), os.path.join(ddir, "model.onnx"))}
        sd = os.path.join(sdir, "streaming")
        if os.path.isdir(sd):
            r["streaming/encoder.onnx"] = quantize_model(os.path.join(sd, "encoder.onnx"), os.path.join(ddir, "streaming", "encoder.onnx"))
            if os.path.exists(os.path.join(sd, "step.onnx")):  # the cached (KV) streaming mode's graph
                r["streaming/step.onnx"] = quantize_model(os.path.join(sd, "step.onnx"), os.path.join(ddir, "streaming", "step.onnx"))
            for f in ("frontend.onnx", "head.onnx", "streaming.json"):
                shutil.copyfile(os.path.join(sd, f), os.path.join(ddir, "streaming", f))
        for f in ("standin.json",):
            if os.path.exists(os.path.join(sdir, f)):
                shutil.copyfile(os.path.join(sdir, f), os.path.join(ddir, f))
        report[sid] = r
        print(f"[int8] {sid}: {r}", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
