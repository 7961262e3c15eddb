"""Probe: where does the compute-once (cached) path's deviation from the full window come from?

The cached mode (models/streaming-speech.ts, `StreamStep` in export_standins.py) computes each
frame once: its conv features are normalised with the statistics of the window that first held
it, its positional convolution sees no audio right of that window's end, and each layer's
attention sees only the frames before it. This probe replays a stream window by window in torch,
with the same caches as the runtime, and reads each window out five ways:

    cached      the cached mode (every layer from the caches): what the runtime computes
    top-k       layers below L-k from the caches, the top k layers recomputed over the whole
                window (full attention), for each k given (k = L: every layer recomputed from the
                cached positional-conv outputs)
    frames      the positional conv and every layer recomputed from the cached projected features
                (only the normalisation differs from the full window: the `frames` mode)
    full        the window's own fresh features (must equal the model: the check of this script)

and prints mean |Δ| / sd of each output from the full window, the worst window, and the RMSE
against the human targets when the audio has labels. Work per mode is the caller's arithmetic
(docs/bench.md). It writes nothing. It needs the torch weights train_tiny.py saves (`model.pt`):

    /usr/bin/python3 -m training.encoders.train_tiny --steps 1463 --out models/weights/trained-tiny
    /usr/bin/python3 -m training.encoders.probe_deviation_sources --model models/weights/trained-tiny/small-wav2vec2-va \\
      --hop 3840 --top 1,2,3,4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import soundfile as sf
import torch

from training.encoders.export_standins import FRAME_STRIDE, RECEPTIVE_FIELD, StreamStep, attend_layer, build
from training.encoders.train_tiny import normalise

WINDOW = 16000


def attend(st: StreamStep, layer, h: torch.Tensor, k_mem: torch.Tensor | None = None, v_mem: torch.Tensor | None = None):
    """One pre-norm layer over h [1, n, D]; keys/values are the cached ones [M, D] (if any) then h's own. Returns (h, k_new, v_new)."""
    kv = []
    h = attend_layer(layer, h, None if k_mem is None else lambda j: (k_mem, v_mem)[j][None], None, True, lambda k, v: kv.extend((k[0], v[0])))
    return h, kv[0], kv[1]


def read_out(st: StreamStep, h: torch.Tensor, first_layer: int) -> np.ndarray:
    """Layers first_layer.. over the whole window h [1, T, D] (full attention), final norm, mean pool, head."""
    for layer in st.layers[first_layer:]:
        h, _, _ = attend(st, layer, h)
    return st.head(st.tr.layer_norm(h).mean(1))[0].numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a train_tiny export folder with model.pt, train.json and heldout.wav/.json")
    ap.add_argument("--audio", help="16 kHz mono WAV (default: <model>/heldout.wav, labels from heldout.json)")
    ap.add_argument("--hop", type=int, default=3840, help="hop in samples (3840: the 20 ms frame grid; 4000: the default 250 ms)")
    ap.add_argument("--windows", type=int, default=0, help="first N windows (0: all)")
    ap.add_argument("--top", default="1,2,3", help="k values for top-k recompute")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    pt = os.path.join(a.model, "model.pt")
    if not os.path.exists(pt):
        sys.exit(f"probe_deviation_sources: {pt} is missing; train_tiny.py writes it (rerun it with the same --steps and --seed)")
    cfg = json.load(open(os.path.join(a.model, "train.json")))
    m = build(cfg["config"], cfg["seed"])
    m.load_state_dict(torch.load(pt))
    m.eval()
    st = StreamStep(m)
    if not (st.lnf and not st.tr_lnf):
        sys.exit("probe_deviation_sources: only pre-norm (layer_norm_first) encoders, like the large layout, are handled")
    L, P, K = len(st.layers), st.P, st.K
    tops = sorted({int(k) for k in a.top.split(",") if k})
    if any(k < 1 or k > L for k in tops):
        sys.exit(f"probe_deviation_sources: --top values must be in 1..{L}")
    audio = a.audio or os.path.join(a.model, "heldout.wav")
    x, sr = sf.read(audio, dtype="float32")
    if sr != 16000 or x.ndim != 1:
        sys.exit(f"probe_deviation_sources: {audio} must be 16 kHz mono")
    lab_file = os.path.splitext(audio)[0] + ".json"
    segs = json.load(open(lab_file))["segments"] if os.path.exists(lab_file) else None

    starts = list(range(0, len(x) - WINDOW + 1, a.hop))
    if a.windows > 0:
        starts = starts[: a.windows]
    modes = ["cached"] + [f"top-{k}" for k in tops] + ["frames", "full"]
    outs: dict[str, list[np.ndarray]] = {k: [] for k in modes}
    ref: list[np.ndarray] = []
    targets: list[tuple[float, float]] = []
    cache: dict[int, dict] = {}  # frame position -> proj, kv [L, 2, D], per-layer input states [L + 1, D]
    t0 = time.time()
    with torch.no_grad():
        for s in starts:
            xn = normalise(torch.from_numpy(x[s : s + WINDOW].copy())[None])
            ref.append(m(xn)[1][0].numpy())
            if segs is not None:
                e = s + WINDOW - 1
                g = next((g for g in segs if g["start"] <= e < g["end"]), None)
                targets.append((g["arousal"], g["valence"]) if g else (np.nan, np.nan))
            first = -(-s // FRAME_STRIDE) * FRAME_STRIDE
            pos = list(range(first, s + WINDOW - RECEPTIVE_FIELD + 1, FRAME_STRIDE))
            for p in [p for p in cache if p < first]:
                del cache[p]
            new = [p for p in pos if p not in cache]
            mem = [p for p in pos if p in cache]
            if new:  # the runtime's step: the new frames through every layer, attending to the cached ones
                off = new[0] - s
                feats, _ = st.fe(xn[:, off : off + (len(new) - 1) * FRAME_STRIDE + RECEPTIVE_FIELD], None)
                xp = st.proj(feats)
                d = xp.shape[-1]
                ctx = torch.stack([cache[p]["proj"] if p in cache else torch.zeros(d) for p in range(new[0] - P * FRAME_STRIDE, new[0], FRAME_STRIDE)])[None]
                z = torch.cat([ctx, xp, torch.zeros(1, K - 1 - P, d)], 1).transpose(1, 2)
                h = xp + torch.nn.functional.gelu(torch.nn.functional.conv1d(z, st.pos_w, st.pos_b, groups=st.groups)).transpose(1, 2)
                states, kvs = [h[0]], []
                for i, layer in enumerate(st.layers):
                    km = torch.stack([cache[p]["kv"][i, 0] for p in mem]) if mem else None
                    vm = torch.stack([cache[p]["kv"][i, 1] for p in mem]) if mem else None
                    h, kn, vn = attend(st, layer, h, km, vm)
                    states.append(h[0])
                    kvs.append(torch.stack([kn, vn]))
                for j, p in enumerate(new):
                    cache[p] = dict(proj=xp[0, j], kv=torch.stack([kv[:, j] for kv in kvs]), states=[sj[j] for sj in states])
            win = lambda i: torch.stack([cache[p]["states"][i] for p in pos])[None]  # noqa: E731
            outs["cached"].append(st.head(st.tr.layer_norm(win(L)).mean(1))[0].numpy())
            for k in tops:
                outs[f"top-{k}"].append(read_out(st, win(L - k), L - k))
            pc = st.tr.pos_conv_embed
            xw = torch.stack([cache[p]["proj"] for p in pos])[None]
            outs["frames"].append(read_out(st, xw + pc(xw), 0))
            xf = st.proj(st.fe(xn, None)[0])
            outs["full"].append(read_out(st, xf + pc(xf), 0))
    R = np.array(ref)
    sd = R.std(0)
    names = ["arousal", "dominance", "valence"]  # the export's logit order (wav2vec2-msp-dim), each on [0, 1]
    Y = np.array(targets) if targets else None

    def rmse(o: np.ndarray, col: int, ycol: int) -> float:
        ok = ~np.isnan(Y[:, ycol])
        return float(np.sqrt(np.mean(((o[ok, col] * 2 - 1) - Y[ok, ycol]) ** 2)))

    report = {"model": a.model, "audio": audio, "hop": a.hop, "windows": len(starts), "seconds": round(time.time() - t0, 1), "outputSd": dict(zip(names, [round(float(v), 4) for v in sd])), "modes": {}}
    if Y is not None:
        report["fullWindowRmse"] = {"arousal": round(rmse(R, 0, 0), 4), "valence": round(rmse(R, 2, 1), 4)}
    for k in modes:
        dev = np.abs(np.array(outs[k]) - R)
        row = {"meanAbsOverSd": dict(zip(names, [round(float(v), 3) for v in dev.mean(0) / sd])), "maxAbs": dict(zip(names, [round(float(v), 4) for v in dev.max(0)]))}
        if Y is not None:
            row["rmse"] = {"arousal": round(rmse(np.array(outs[k]), 0, 0), 4), "valence": round(rmse(np.array(outs[k]), 2, 1), 4)}
        report["modes"][k] = row
        print(f"{k:>8}: mean |d| / sd " + " · ".join(f"{n} {row['meanAbsOverSd'][n]:.2f}" for n in names) + (f"   RMSE arousal {row['rmse']['arousal']:.3f} valence {row['rmse']['valence']:.3f}" if Y is not None else ""), file=sys.stderr)
    if report["modes"]["full"]["maxAbs"]["arousal"] > 1e-4:
        sys.exit("probe_deviation_sources: the 'full' read-out does not reproduce the model (a bug in this script)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
