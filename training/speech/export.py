"""Exports the speech-va ensemble (features + heads in ONE graph), checks ONNX Runtime parity, writes the card.

Graph: audio [batch, samples] float32 (raw 16 kHz, [-1, 1]) ->
  va [batch, 2]        ensemble mean (valence, arousal), clamped to [-1, 1]
  sigma [batch, 2]     a + b * (member spread), calibrated on held-out speakers (train.py)
  voiced [batch, 1]    fraction of voiced 10 ms frames in the window
  embedding [batch, D] the pooled acoustic features, standardised with the training statistics
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

import numpy as np
import onnx
import torch
from torch import nn

from .features import SpeechFeatures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPSET = 14


class SpeechVA(nn.Module):
    def __init__(self, cfg, members, calib, emb):
        super().__init__()
        self.features = SpeechFeatures(cfg["features"])
        W1, B1, W2, B2 = [], [], [], []
        for h in members:
            (w1, b1), (w2, b2) = h.layers
            w1s = w1 / h.sd[:, None]  # fold the member's input scaler into its first layer
            b1s = b1 - (h.mu / h.sd) @ w1
            W1.append(w1s); B1.append(b1s[None, :]); W2.append(w2); B2.append(b2[None, :])
        f = lambda a: torch.tensor(np.stack(a), dtype=torch.float32)  # noqa: E731
        self.register_buffer("w1", f(W1))  # [M, D, H]
        self.register_buffer("b1", f(B1))  # [M, 1, H]
        self.register_buffer("w2", f(W2))  # [M, H, 2]
        self.register_buffer("b2", f(B2))  # [M, 1, 2]
        self.register_buffer("sig_a", torch.tensor(calib["a"], dtype=torch.float32))
        self.register_buffer("sig_b", torch.tensor(calib["b"], dtype=torch.float32))
        self.register_buffer("emb_mu", torch.tensor(emb["mu"], dtype=torch.float32))
        self.register_buffer("emb_sd", torch.tensor(emb["sd"], dtype=torch.float32))

    def forward(self, audio):
        feats, voiced = self.features(audio)
        h = torch.relu(torch.matmul(feats.unsqueeze(0), self.w1) + self.b1)  # [M, B, H]
        out = torch.clamp(torch.matmul(h, self.w2) + self.b2, -1.0, 1.0)  # [M, B, 2]
        va = out.mean(dim=0)
        spread = torch.sqrt(((out - va.unsqueeze(0)) ** 2).mean(dim=0) + 1e-12)
        sigma = self.sig_a + self.sig_b * spread
        emb = (feats - self.emb_mu) / self.emb_sd
        return va, sigma, voiced, emb


def check_parity(model: SpeechVA, onnx_path: str, seed: int) -> float:
    """Max |torch - onnxruntime| over every output on speech-like and silent inputs (node + onnxruntime-node)."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    rows = [
        0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(16000),
        0.05 * rng.standard_normal(16000),
        np.zeros(16000),
        0.1 * np.sign(np.sin(2 * np.pi * 220 * t)) * (t > 0.3),
    ]
    x = np.stack(rows).astype(np.float32)
    with torch.no_grad():
        ref = [o.numpy() for o in model(torch.from_numpy(x))]
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in.f32")
        x.tofile(inp)
        res = subprocess.run(
            ["node", os.path.join(REPO, "training", "speech", "parity.mjs"), onnx_path, inp, str(x.shape[0]), str(x.shape[1])],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
    got = json.loads(res.stdout)
    worst = 0.0
    for name, r in zip(["va", "sigma", "voiced", "embedding"], ref):
        g = np.array(got[name]["data"], dtype=np.float32).reshape(r.shape)
        worst = max(worst, float(np.abs(g - r).max() / (1 + np.abs(r).max())))
    return worst


def export(members, run, out_dir, write_card=True):
    cfg = run["config"]
    os.makedirs(out_dir, exist_ok=True)
    model = SpeechVA(cfg, members, run["calibration"], run["embedding"]).eval()
    path = os.path.join(out_dir, "model.onnx")
    dummy = torch.zeros(1, cfg["windowSamples"])
    torch.onnx.export(
        model, (dummy,), path, input_names=["audio"], output_names=["va", "sigma", "voiced", "embedding"],
        dynamic_axes={"audio": {0: "batch", 1: "samples"}, "va": {0: "batch"}, "sigma": {0: "batch"}, "voiced": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=OPSET, do_constant_folding=True,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    m.producer_name = "circumplex training/speech"
    m.doc_string = "speech-va: raw 16 kHz audio -> valence/arousal (ensemble mean), sigma, voiced fraction, embedding"
    onnx.save(m, path)
    worst = check_parity(model, path, cfg["seed"])
    if worst > 1e-3:
        raise RuntimeError(f"ONNX Runtime differs from torch by {worst:.2e} (relative) on the parity inputs")
    print(f"exported {path} ({os.path.getsize(path)} bytes); onnxruntime parity: max relative diff {worst:.1e}", flush=True)
    shipped = os.path.abspath(out_dir) == os.path.join(REPO, "models", "speech-va")
    run_json = os.path.join(REPO, ".cache", "speech-va-run.json") if shipped else os.path.join(out_dir, "training-run.json")
    os.makedirs(os.path.dirname(run_json), exist_ok=True)
    with open(run_json, "w") as f:
        json.dump({k: v for k, v in run.items() if k != "embedding"}, f, indent=1)
    if write_card:
        from .card import write_speech_card

        write_speech_card(out_dir, run, worst)
        from training.common.card import sha256_file

        if shipped:
            print(
                f"models/manifest.ts 'speech-va' files[0]: sha256 '{sha256_file(path)}', sizeBytes {os.path.getsize(path)} "
                "(update the entry if they changed; test/integration/models-speech-va.test.ts checks them)",
                flush=True,
            )
