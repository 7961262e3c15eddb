"""Weightless skeletons of the encoder stand-ins, to time them on a machine that cannot build them.

The stand-ins (export_standins.py) hold random weights: hundreds of MB per graph that do not
compress, and a GPU machine reached through a 64 MiB transfer (the device tool) cannot receive
them, nor build them (its torch/torchaudio differ from Debian's 1.13/0.13, and nothing can be
downloaded there). Their cost depends only on the graph and the weights' shapes, so:

    strip   every .onnx under --src is copied to --dst with each large float initializer emptied
            (its name, shape and type kept) and described in skeleton.json: shape, dtype, the
            mean and sd of its values, and a digest of its bytes. Small initializers (shapes,
            axes, scalars) and every non-float one stay as they are.
    fill    rebuilds full .onnx files from a skeleton: each emptied initializer gets fresh values
            drawn from a normal distribution with its recorded mean and sd, seeded by the digest,
            so a tensor shared by several graphs (model.onnx and streaming/encoder.onnx hold the
            same transformer weights) gets the same values in each, and the streaming graphs stay
            consistent with the full model (deviations between paths stay meaningful).

Filled weights are a different random draw from the originals: timings and memory are the
architecture's; outputs are as meaningless as the originals' (random weights either way).

    /usr/bin/python3 -m training.encoders.skeleton strip --src models/weights/standins --dst .dev/skeleton
    python3 -m training.encoders.skeleton fill --src .dev/skeleton --dst models/weights/standins
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

MIN_ELEMENTS = 4096  # initializers this large are stripped; smaller ones (shapes, axes, biases of tiny heads) stay
FLOAT_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64}


def _onnx_files(root: str) -> list[str]:
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".onnx"):
                out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def strip(src: str, dst: str) -> None:
    if not os.path.isdir(src):
        sys.exit(f"skeleton strip: {src} is not a folder (build the stand-ins first: /usr/bin/python3 -m training.encoders.export_standins)")
    files = _onnx_files(src)
    if not files:
        sys.exit(f"skeleton strip: no .onnx files under {src}")
    manifest: dict = {"version": 1, "files": {}}
    for rel in files:
        model = onnx.load(os.path.join(src, rel))
        entries = []
        for t in model.graph.initializer:
            n = int(np.prod(t.dims)) if len(t.dims) else 1
            if t.data_type not in FLOAT_TYPES or n < MIN_ELEMENTS:
                continue
            a = numpy_helper.to_array(t)
            digest = hashlib.sha256(a.tobytes()).hexdigest()[:16]
            entries.append(
                {
                    "name": t.name,
                    "dims": list(t.dims),
                    "dtype": int(t.data_type),
                    "mean": float(a.astype(np.float64).mean()),
                    "sd": float(a.astype(np.float64).std()),
                    "digest": digest,
                }
            )
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.ClearField("int32_data")
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        onnx.save(model, out)
        manifest["files"][rel] = entries
        print(f"[skeleton] {rel}: {len(entries)} initializers stripped -> {os.path.getsize(out)} bytes", flush=True)
    # A weight computed in torch for one graph (the step graph's weight-normed positional conv) and
    # folded by the exporter in another differs in the last bits, so its digest differs: match it by
    # shape and statistics and give it the other's seed, or filled graphs would disagree.
    everything = [(rel, e) for rel, es in manifest["files"].items() for e in es]
    counts: dict = {}
    for _, e in everything:
        counts[e["digest"]] = counts.get(e["digest"], 0) + 1
    for rel, e in everything:
        if counts[e["digest"]] > 1:
            continue
        for rel2, e2 in everything:
            if rel2 == rel or e2["dims"] != e["dims"] or counts[e2["digest"]] < 2:
                continue
            if abs(e2["sd"] - e["sd"]) <= 1e-6 * e["sd"] and abs(e2["mean"] - e["mean"]) <= 1e-6 * e["sd"] + 1e-12:
                e["seed"] = e2["digest"]
                print(f"[skeleton] {rel} {e['name']}: same values as {rel2} {e2['name']} up to rounding: same seed", flush=True)
                break
    # Side files (standin.json, streaming/streaming.json, model cards) travel as they are.
    for d, _, names in os.walk(src):
        for f in names:
            if f.endswith(".json") or f.endswith(".md"):
                rel = os.path.relpath(os.path.join(d, f), src)
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copyfile(os.path.join(d, f), os.path.join(dst, rel))
    with open(os.path.join(dst, "skeleton.json"), "w") as f:
        json.dump(manifest, f)
    print(f"[skeleton] {len(files)} graphs -> {dst}", flush=True)


def fill(src: str, dst: str) -> None:
    path = os.path.join(src, "skeleton.json")
    if not os.path.exists(path):
        sys.exit(f"skeleton fill: {path} is missing (make it with: skeleton strip --src <stand-ins> --dst {src})")
    with open(path) as f:
        manifest = json.load(f)
    for rel, entries in manifest["files"].items():
        model = onnx.load(os.path.join(src, rel))
        by_name = {e["name"]: e for e in entries}
        for t in model.graph.initializer:
            e = by_name.get(t.name)
            if e is None:
                continue
            rng = np.random.default_rng(int(e.get("seed", e["digest"]), 16))
            dtype = FLOAT_TYPES[e["dtype"]]
            a = (rng.standard_normal(size=e["dims"], dtype=np.float32) * e["sd"] + e["mean"]).astype(dtype)
            t.raw_data = a.tobytes()
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        onnx.save(model, out)
        print(f"[skeleton] filled {rel} ({len(entries)} initializers, {os.path.getsize(out) / 2**20:.0f} MiB)", flush=True)
    for d, _, names in os.walk(src):
        for f in names:
            if (f.endswith(".json") or f.endswith(".md")) and f != "skeleton.json":
                rel = os.path.relpath(os.path.join(d, f), src)
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copyfile(os.path.join(d, f), os.path.join(dst, rel))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["strip", "fill"])
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    a = ap.parse_args()
    (strip if a.command == "strip" else fill)(a.src, a.dst)


if __name__ == "__main__":
    main()
