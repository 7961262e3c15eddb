"""Architecture-identical stand-ins for the real-size speech encoders (issue 14).

Builds wav2vec 2.0 encoders with torchaudio's model builders (random weights, seeded, nothing is
downloaded) plus the valence/arousal/dominance regression head of audeering's MSP-Podcast model
(mean-pool the last hidden state -> dense -> tanh -> out_proj to 3), and exports each one to ONNX
with exactly the contract of the manifest's real models:

    input  signal         float32 [batch, samples]   raw 16 kHz audio (already normalised by the adapter)
    output hidden_states  float32 [batch, D]         mean-pooled last hidden state (D = 1024 large, 768 base)
    output logits         float32 [batch, 3]         arousal, dominance, valence

with dynamic batch and length axes. Next to the full model it writes the split graphs the
compute-once streaming adapter (models/streaming-speech.ts) runs:

    streaming/frontend.onnx  signal [batch, samples]          -> features [batch, frames, C]   (conv feature encoder)
    streaming/encoder.onnx   features [batch, frames, C]      -> frame_hidden [batch, frames, D] (projection + transformer)
    streaming/head.onnx      pooled [batch, D]                -> logits [batch, 3]
    streaming/streaming.json frame stride, receptive field, front-end normalisation, widths

Encoders:
    large  torchaudio wav2vec2_large_lv60k layout cut to 12 layers (wav2vec2-large-robust-12, the
           MSP-Podcast model): layer-norm conv front end with conv bias, stable layer norm
           (encoder_layer_norm_first), 1024 wide, 16 heads, FF 4096  -> spec wav2vec2-msp-dim
    base   torchaudio wav2vec2_base: group-norm front end, post-norm, 768 wide, 12 layers
           -> spec wav2vec2-base-dim
    tiny   the large layout (same conv strides and receptive field, layer-norm front end, stable
           layer norm) at a toy width, for tests; contract of wav2vec2-msp-dim except D
    tiny-gn  tiny with the base layout's group-norm front end (streaming is not exact there)

Output: <out>/<spec id>/model.onnx (+ streaming/), default out = models/weights/standins (git-ignored).
Run from the repo root:

    /usr/bin/python3 -m training.encoders.export_standins --encoders base,large
    /usr/bin/python3 -m training.encoders.export_standins --encoders tiny --out /tmp/x --spec-id tiny-w2v
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from torch import nn
from torchaudio.models import wav2vec2_model

FRAME_STRIDE = 320  # product of the conv strides (5 * 2**6)
RECEPTIVE_FIELD = 400  # samples one frame sees

CONV_DEFAULT = [(512, 10, 5), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 2, 2), (512, 2, 2)]

CONFIGS = {
    "large": dict(
        spec_id="wav2vec2-msp-dim",
        extractor_mode="layer_norm",
        extractor_conv_layer_config=CONV_DEFAULT,
        extractor_conv_bias=True,
        encoder_embed_dim=1024,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=128,
        encoder_pos_conv_groups=16,
        encoder_num_layers=12,
        encoder_num_heads=16,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=4096,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=True,
        encoder_layer_drop=0.0,
    ),
    "base": dict(
        spec_id="wav2vec2-base-dim",
        extractor_mode="group_norm",
        extractor_conv_layer_config=CONV_DEFAULT,
        extractor_conv_bias=False,
        encoder_embed_dim=768,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=128,
        encoder_pos_conv_groups=16,
        encoder_num_layers=12,
        encoder_num_heads=12,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=3072,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
    ),
}
_TINY_CONV = [(16, 10, 5), (16, 3, 2), (16, 3, 2), (16, 3, 2), (16, 3, 2), (16, 2, 2), (16, 2, 2)]
CONFIGS["tiny"] = dict(
    CONFIGS["large"],
    spec_id="tiny-wav2vec2",
    extractor_conv_layer_config=_TINY_CONV,
    encoder_embed_dim=32,
    encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4,
    encoder_num_layers=2,
    encoder_num_heads=4,
    encoder_ff_interm_features=64,
)
CONFIGS["tiny-gn"] = dict(CONFIGS["tiny"], spec_id="tiny-wav2vec2-gn", extractor_mode="group_norm", extractor_conv_bias=False, encoder_layer_norm_first=False)


class RegressionHead(nn.Module):
    """audeering's RegressionHead (dropout is identity at inference)."""

    def __init__(self, d: int, n_out: int = 3) -> None:
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(torch.tanh(self.dense(x)))


class EmotionModel(nn.Module):
    """wav2vec2 -> mean over time of the last hidden state -> regression head (the audeering export)."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        kw = {k: v for k, v in cfg.items() if k != "spec_id"}
        self.wav2vec2 = wav2vec2_model(aux_num_out=None, **kw)
        self.head = RegressionHead(cfg["encoder_embed_dim"])

    def forward(self, signal: torch.Tensor):
        x, _ = self.wav2vec2(signal)
        hidden = x.mean(dim=1)
        return hidden, self.head(hidden)


class FrontEnd(nn.Module):
    def __init__(self, m: EmotionModel) -> None:
        super().__init__()
        self.fe = m.wav2vec2.feature_extractor

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x, _ = self.fe(signal, None)
        return x


class FrameEncoder(nn.Module):
    def __init__(self, m: EmotionModel) -> None:
        super().__init__()
        self.enc = m.wav2vec2.encoder

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.enc(features, None)


def build(name: str, seed: int) -> EmotionModel:
    torch.manual_seed(seed)
    return EmotionModel(CONFIGS[name]).eval()


def export(m: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], axes: dict, opset: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(m, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=opset, do_constant_folding=True)


def export_one(name: str, out_root: str, spec_id: str | None, seed: int, opset: int, streaming: bool, log) -> dict:
    cfg = CONFIGS[name]
    sid = spec_id or cfg["spec_id"]
    d = os.path.join(out_root, sid)
    t0 = time.time()
    m = build(name, seed)
    n_params = sum(p.numel() for p in m.parameters())
    log(f"[standins] {name}: {n_params / 1e6:.1f} M parameters -> {d}")
    x = torch.randn(1, 16000)
    export(
        m,
        (x,),
        os.path.join(d, "model.onnx"),
        ["signal"],
        ["hidden_states", "logits"],
        {"signal": {0: "batch", 1: "samples"}, "hidden_states": {0: "batch"}, "logits": {0: "batch"}},
        opset,
    )
    info = {
        "encoder": name,
        "specId": sid,
        "parameters": n_params,
        "seed": seed,
        "opset": opset,
        "frameStrideSamples": FRAME_STRIDE,
        "receptiveFieldSamples": RECEPTIVE_FIELD,
        "frontEnd": cfg["extractor_mode"],
        "featureDim": cfg["extractor_conv_layer_config"][-1][0],
        "hiddenDim": cfg["encoder_embed_dim"],
        "layers": cfg["encoder_num_layers"],
        "posConvKernelFrames": cfg["encoder_pos_conv_kernel"],
        "posConvGroups": cfg["encoder_pos_conv_groups"],
        "heads": cfg["encoder_num_heads"],
        "ffDim": cfg["encoder_ff_interm_features"],
        "convLayers": [list(c) for c in cfg["extractor_conv_layer_config"]],
        "torch": torch.__version__,
    }
    if streaming:
        sd = os.path.join(d, "streaming")
        fe, enc, head = FrontEnd(m).eval(), FrameEncoder(m).eval(), m.head.eval()
        with torch.no_grad():
            feats = fe(x)
            frames = enc(feats)
            # the split graphs must compose to the full model (torch, same weights)
            hidden, logits = m(x)
            dev = float((head(frames.mean(dim=1)) - logits).abs().max())
            dev_h = float((frames.mean(dim=1) - hidden).abs().max())
        if dev > 1e-4 or dev_h > 1e-4:
            raise SystemExit(f"split graphs of {name} do not compose to the full model (max |dlogits| {dev:g}, |dhidden| {dev_h:g})")
        export(fe, (x,), os.path.join(sd, "frontend.onnx"), ["signal"], ["features"], {"signal": {0: "batch", 1: "samples"}, "features": {0: "batch", 1: "frames"}}, opset)
        export(enc, (feats,), os.path.join(sd, "encoder.onnx"), ["features"], ["frame_hidden"], {"features": {0: "batch", 1: "frames"}, "frame_hidden": {0: "batch", 1: "frames"}}, opset)
        export(head, (hidden,), os.path.join(sd, "head.onnx"), ["pooled"], ["logits"], {"pooled": {0: "batch"}, "logits": {0: "batch"}}, opset)
        with open(os.path.join(sd, "streaming.json"), "w") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
    info["seconds"] = round(time.time() - t0, 1)
    info["bytes"] = os.path.getsize(os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "standin.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    log(f"[standins] {name}: exported in {info['seconds']} s ({info['bytes'] / 2**20:.0f} MiB)")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoders", default="base,large", help=f"comma-separated subset of {','.join(CONFIGS)}")
    ap.add_argument("--out", default=os.path.join("models", "weights", "standins"), help="folder holding one <spec id>/ folder per encoder")
    ap.add_argument("--spec-id", default=None, help="folder name (one encoder only); default the manifest id it stands in for")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--no-streaming", action="store_true", help="skip the split graphs")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.encoders.split(",") if n.strip()]
    bad = [n for n in names if n not in CONFIGS]
    if bad or not names:
        ap.error(f"--encoders: unknown {bad or 'empty'}; should be a subset of {','.join(CONFIGS)}")
    if a.spec_id and len(names) != 1:
        ap.error("--spec-id needs exactly one encoder")
    if a.threads:
        torch.set_num_threads(a.threads)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    out = [export_one(n, a.out, a.spec_id, a.seed, a.opset, not a.no_streaming, log) for n in names]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
