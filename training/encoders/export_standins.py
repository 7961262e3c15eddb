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
    streaming/step.onnx      one hop of a stream, computed once (the `cached` mode): the new audio's
                             conv frames, the transformer on the new frames only with every layer's
                             cached keys/values of the window's earlier frames (KV cache) and the
                             cached projected features as the positional conv's left context, and the
                             head on the window's pooled state (see StreamStep)
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
    small  the large layout at 32 conv channels, 64 wide, 4 layers, with the large model's 128-frame
           positional conv: the model training/encoders/train_tiny.py trains from scratch (0.26 M parameters)

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
# the large layout at a width small enough to train from scratch on a CPU (training/encoders/train_tiny.py),
# keeping the large model's positional conv (128 frames, 16 groups: wider than a 1 s window of 50 frames)
CONFIGS["small"] = dict(
    CONFIGS["large"],
    spec_id="small-wav2vec2",
    extractor_conv_layer_config=[(32, k, s) for _, k, s in CONV_DEFAULT],
    encoder_embed_dim=64,
    encoder_num_layers=4,
    encoder_num_heads=4,
    encoder_ff_interm_features=256,
)


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


def attend_layer(layer, h: torch.Tensor, memory, bias: torch.Tensor | None, pre_norm: bool, on_kv=None, dims=None) -> torch.Tensor:
    """One torchaudio encoder layer on the frames h [b, n, D]. Its keys/values are the cached frames'
    (`memory(0)` and `memory(1)` return them, [b, M, D] each; None: no cache) followed by h's own; `bias` [b, 1, 1, M + n]
    is added to the attention logits (masking); `on_kv(k_new, v_new)` receives h's own keys and values
    (StreamStep caches them); `dims` = (b, n, D) when the caller has them. `memory` is called where the
    keys are needed and `dims` read once by the caller so that StreamStep's traced graph keeps its node
    order (its export is reproduced byte for byte). With no cache and no bias it is the layer itself
    (full attention over h)."""
    b, n, d = h.shape if dims is None else dims
    residual = h
    y = layer.layer_norm(h) if pre_norm else h
    att = layer.attention
    nh, hd = att.num_heads, att.head_dim
    k_new, v_new = att.k_proj(y), att.v_proj(y)
    if on_kv is not None:
        on_kv(k_new, v_new)
    k = k_new if memory is None else torch.cat([memory(0), k_new], dim=1)
    v = v_new if memory is None else torch.cat([memory(1), v_new], dim=1)
    q = att.q_proj(y).view(b, n, nh, hd).transpose(2, 1)
    kk = k.view(b, -1, nh, hd).permute(0, 2, 3, 1)
    vv = v.view(b, -1, nh, hd).transpose(2, 1)
    wts = (att.scaling * q) @ kk
    if bias is not None:
        wts = wts + bias
    wts = wts - wts.max(dim=-1, keepdim=True)[0]
    o = torch.softmax(wts, dim=-1) @ vv
    o = att.out_proj(o.transpose(2, 1).reshape(b, n, d))
    h = residual + o
    if pre_norm:
        return h + layer.feed_forward(layer.final_layer_norm(h))
    h = layer.layer_norm(h)
    return layer.final_layer_norm(h + layer.feed_forward(h))


class StreamStep(nn.Module):
    """One hop of one stream through the whole model, each new sample computed once (KV cache).

    inputs
        signal      [b, S]        audio of the n new frames, S = (n - 1) * 320 + 400 (zero-padded rows allowed)
        frame_mask  [b, n]        1 for a real new frame, 0 for padding
        pos_ctx     [b, P, D]     projected features of the P = K // 2 frames before the first new one (0: none)
        kv_mem      [b, L, 2, M, D]  every layer's keys and values of M cached frames (the window's earlier frames)
        mem_mask    [b, M]        1 for a valid cached frame
        hidden_sum  [b, D]        sum of the last hidden state over the window's cached frames
        hidden_count [b, 1]       how many frames that sum holds
    outputs
        frame_hidden [b, n, D]    last hidden state of the new frames
        proj         [b, n, D]    their projected features (the next hops' positional context)
        kv_new       [b, L, 2, n, D]  their keys and values per layer
        hidden_states [b, D]      the window's mean-pooled last hidden state (cached + new frames)
        logits       [b, 3]       the regression head on it

    With empty caches (pos_ctx zeros, mem_mask zeros) and the whole window as new frames this is the
    full-window model exactly (checked at export). With caches, a new frame attends to the window's
    earlier frames through their cached keys/values (which were computed without the frames after
    them) and its positional conv sees no audio right of the hop: that is the approximation.
    """

    def __init__(self, m: "EmotionModel") -> None:
        super().__init__()
        w = m.wav2vec2
        self.fe = w.feature_extractor
        self.proj = w.encoder.feature_projection
        tr = w.encoder.transformer
        self.tr = tr
        conv = tr.pos_conv_embed.conv
        with torch.no_grad():
            conv(torch.zeros(1, conv.in_channels, conv.kernel_size[0]))  # materialise the weight-normed weight
        self.pos_w = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.pos_b = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.groups = conv.groups
        self.K = conv.kernel_size[0]
        self.P = self.K // 2
        self.layers = tr.layers
        # torchaudio's Transformer.layer_norm_first is the negation of its layers' (pre-norm layers
        # get the transformer's norm at the end, post-norm layers at the start)
        self.tr_lnf = tr.layer_norm_first
        self.lnf = bool(tr.layers[0].layer_norm_first)
        self.head = m.head

    def forward(self, signal, frame_mask, pos_ctx, kv_mem, mem_mask, hidden_sum, hidden_count):
        feats, _ = self.fe(signal, None)  # [b, n, C]
        x = self.proj(feats) * frame_mask.unsqueeze(-1)  # padded frames are zeros, as outside a window
        b, n, d = x.shape
        z = torch.cat([pos_ctx, x, torch.zeros(b, self.K - 1 - self.P, d, dtype=x.dtype)], dim=1).transpose(1, 2)
        pos = torch.nn.functional.gelu(torch.nn.functional.conv1d(z, self.pos_w, self.pos_b, groups=self.groups)).transpose(1, 2)
        h = x + pos
        if self.tr_lnf:
            h = self.tr.layer_norm(h)
        key_ok = torch.cat([mem_mask, frame_mask], dim=1)  # [b, M + n]
        bias = (1.0 - key_ok)[:, None, None, :] * -10000.0
        kvs = []
        for i, layer in enumerate(self.layers):
            h = attend_layer(layer, h, lambda j, i=i: kv_mem[:, i, j], bias, self.lnf, lambda k_new, v_new: kvs.append(torch.stack([k_new, v_new], dim=1)), (b, n, d))
        if not self.tr_lnf:
            h = self.tr.layer_norm(h)
        mk = frame_mask.unsqueeze(-1)
        pooled = (hidden_sum + (h * mk).sum(dim=1)) / (hidden_count + mk.sum(dim=1))
        return h, x, torch.stack(kvs, dim=1), pooled, self.head(pooled)


def step_inputs(m: "StreamStep", signal: torch.Tensor, mem: int) -> tuple:
    """Inputs of StreamStep for a whole window as new frames with empty caches (mem masked cached frames)."""
    b = signal.shape[0]
    n = (signal.shape[1] - RECEPTIVE_FIELD) // FRAME_STRIDE + 1
    d = m.pos_w.shape[0]
    return (
        signal,
        torch.ones(b, n),
        torch.zeros(b, m.P, d),
        torch.zeros(b, len(m.layers), 2, mem, d),
        torch.zeros(b, mem),
        torch.zeros(b, d),
        torch.zeros(b, 1),
    )


def build(name: str, seed: int) -> EmotionModel:
    torch.manual_seed(seed)
    return EmotionModel(CONFIGS[name]).eval()


def export(m: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], axes: dict, opset: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(m, args, path, input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=opset, do_constant_folding=True)


def export_one(
    name: str, out_root: str, spec_id: str | None, seed: int, opset: int, streaming: bool, log, model: EmotionModel | None = None, extra: dict | None = None
) -> dict:
    """Export encoder `name` (random weights from `seed`, or `model`, e.g. a trained one, built from CONFIGS[name])."""
    cfg = CONFIGS[name]
    sid = spec_id or cfg["spec_id"]
    d = os.path.join(out_root, sid)
    t0 = time.time()
    m = build(name, seed) if model is None else model.eval()
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
        **(extra or {}),
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
        step = StreamStep(m).eval()
        with torch.no_grad():
            _, _, _, sp, sl = step(*step_inputs(step, x, 2))
        dev_s = max(float((sp - hidden).abs().max()), float((sl - logits).abs().max()))
        if dev_s > 1e-4:
            raise SystemExit(f"step graph of {name} with empty caches differs from the full model by {dev_s:g}")
        export(
            step,
            step_inputs(step, x, 2),
            os.path.join(sd, "step.onnx"),
            ["signal", "frame_mask", "pos_ctx", "kv_mem", "mem_mask", "hidden_sum", "hidden_count"],
            ["frame_hidden", "proj", "kv_new", "hidden_states", "logits"],
            {
                "signal": {0: "batch", 1: "samples"},
                "frame_mask": {0: "batch", 1: "frames"},
                "pos_ctx": {0: "batch"},
                "kv_mem": {0: "batch", 3: "memory"},
                "mem_mask": {0: "batch", 1: "memory"},
                "hidden_sum": {0: "batch"},
                "hidden_count": {0: "batch"},
                "frame_hidden": {0: "batch", 1: "frames"},
                "proj": {0: "batch", 1: "frames"},
                "kv_new": {0: "batch", 3: "frames"},
                "hidden_states": {0: "batch"},
                "logits": {0: "batch"},
            },
            opset,
        )
        info["posContextFrames"] = step.P
        info["stepGraph"] = "step.onnx"
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
