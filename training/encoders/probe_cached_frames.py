"""Probe: is the full window's output recoverable from the cached mode's frames with more than span means?

The cached head (calibrate_cached_head.py) reads the cached window's pooled state and K span means.
This probe asks whether a richer reader does better: one transformer layer (4 heads, FF 2·D, learned
positions, its MLP's output zero-initialised) over all the window's cached last-layer frames, then the
span-means head on the corrected frames, trained the same way (MSE to the full-window logits, Adam, 50
epochs, seed 0), against the span-means head alone, both fitted on the same windows. It writes nothing;
it prints, per head, the mean |Δ| / sd of each logit from the full window on a second pairs file (other
speakers). Both files come from the tolerance bench with one span per frame:

    npx tsx bench/encoders-tolerance.ts --models-dir D --id ID --audio fit.wav --hop 3840 --windows 4000 \\
      --recompute 0 --spans 49 --dump fit49.jsonl        # and --audio heldout.wav --windows 0 ... held49.jsonl
    /usr/bin/python3 -m training.encoders.probe_cached_frames --fit fit49.jsonl --held held49.jsonl --model D/ID

(49 spans of a 1 s window at 16 kHz: one 20 ms frame each.) Session 10's answer on the trained tiny
model is in docs/bench.md ("The cached head").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from training.encoders.calibrate_cached_head import Head, deviation, fit, read_head, read_pairs


def load(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    header, win, full, stream, spans = read_pairs(path)
    keep = win > 0  # the first window is exact
    K, D = int(header["spans"]), full.shape[1]
    if K < 8:
        raise SystemExit(f"probe_cached_frames: {path} has {K} spans per window; dump it with --spans 49 (one per frame)")
    return full[keep], stream[keep], spans[keep].reshape(-1, K, D)


def quarters(T: int) -> torch.Tensor:
    """Which of 4 equal spans each of T frame slots falls in (the runtime's span rule)."""
    return torch.clamp((torch.arange(T) / (T / 4)).long(), max=3)


def span4(frames: torch.Tensor) -> torch.Tensor:
    """4 span means from per-frame slots (empty slots are zeros and counted out)."""
    q = quarters(frames.shape[1])
    present = (frames.abs().sum(-1, keepdim=True) > 0).float()
    return torch.stack([(frames[:, q == i] * present[:, q == i]).sum(1) / present[:, q == i].sum(1).clamp(min=1) for i in range(4)], 1)


class FrameReader(torch.nn.Module):
    """One transformer layer over the window's cached frames, then the span-means head on them."""

    def __init__(self, head: Head, T: int, D: int, heads: int = 4) -> None:
        super().__init__()
        self.head = head
        self.pos = torch.nn.Parameter(torch.zeros(1, T, D))
        self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.att = torch.nn.MultiheadAttention(D, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(D, 2 * D), torch.nn.GELU(), torch.nn.Linear(2 * D, D))
        with torch.no_grad():
            self.mlp[2].weight.zero_()
            self.mlp[2].bias.zero_()

    def forward(self, pooled: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        present = (frames.abs().sum(-1, keepdim=True) > 0).float()
        x = frames + self.pos
        h = self.ln1(x)
        a, _ = self.att(h, h, h, key_padding_mask=present[..., 0] == 0, need_weights=False)
        y = x + a
        y = (y + self.mlp(self.ln2(y))) * present
        corrected = y.sum(1) / present.sum(1).clamp(min=1)
        return self.head(corrected, span4(y))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--fit", required=True, help="pairs (one span per frame) to fit on")
    ap.add_argument("--held", required=True, help="pairs (one span per frame) of other speakers, only measured")
    ap.add_argument("--model", required=True, help="the model folder (streaming/head.onnx)")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    dw, db, ow, ob = read_head(os.path.join(a.model, "streaming", "head.onnx"))
    ff, fs, fr = load(a.fit)
    hf, hs, hr = load(a.held)
    t = lambda x: torch.from_numpy(x)  # noqa: E731
    head0 = Head(dw, db, ow, ob).eval()
    with torch.no_grad():
        y_fit, y_held = head0(t(ff)), head0(t(hf)).numpy()
        rows = {"modelHead": deviation(head0(t(hs)).numpy(), y_held)}
    t0 = time.time()
    torch.manual_seed(a.seed)
    m = fit(Head(dw, db, ow, ob, 4), [t(fs), span4(t(fr))], y_fit, a.epochs, 3e-3, 1e-4, 256)
    with torch.no_grad():
        rows["spanMeans4"] = deviation(m(t(hs), span4(t(hr))).numpy(), y_held)
    torch.manual_seed(a.seed)
    r = fit(FrameReader(Head(dw, db, ow, ob, 4), fr.shape[1], fr.shape[2]), [t(fs), t(fr)], y_fit, a.epochs, 3e-3, 1e-4, 256)
    with torch.no_grad():
        rows["frameReader"] = deviation(r(t(hs), t(hr)).numpy(), y_held)
    out = {"fitWindows": len(ff), "heldWindows": len(hf), "frameSlots": int(fr.shape[1]), "seconds": round(time.time() - t0, 1), "heldOut": rows}
    for k, v in rows.items():
        print(f"[probe] {k}: mean |Δ| / sd per logit {v['meanOverSd']}, max {v['maxAbsDiff']}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
