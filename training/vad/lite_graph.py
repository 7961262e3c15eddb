"""A small voice activity detector's ONNX graph in the interface of Silero's sequence form
(training/vad/derive_silero.py), so the VAD worker (models/worker/vad-worker.ts, runSequence) and
`SileroVad.load({ path })` run it unchanged:

    frames float32 [N, 512], index int64 [S, B], lengths int32 [B], h, c float32 [2, B, 64]
      → probs float32 [S, B], hn, cn float32 [2, B, 64]

Only 512-sample frames (32 ms at 16 kHz): the filterbank is one matrix over the whole frame.

Front end (stateless, over every frame of every stream at once): one MatMul [512 → 2K] (K complex
filters, real and imaginary parts, the analysis window folded in), squared and summed in pairs (a
second MatMul [2K → K] with a 0/1 matrix), log(· + eps): K log band powers per frame. Then an
optional dense layer (K → P, ReLU), one LSTM layer (hidden H ≤ 64) over each stream's frames with
`lengths` as sequence_lens, a linear read-out and a sigmoid. The LSTM's state sits in the first H
floats of layer 0 of h/c; layer 1 (Silero's second layer) and the rest are passed through untouched.

    /usr/bin/python3 -m training.vad.lite_graph --random --bands 32 --hidden 64 --dst /tmp/lite.onnx

(`--random`: seeded random weights, for timing only; `--null`: the interface with no model, probs 1;
training/vad/distill_lite.py builds the trained one.)
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.common.card import write_model

FRAME = 512
STATE = 64


def gabor_bank(bands: int, frame: int = FRAME, rate: int = 16000, f_lo: float = 80.0, f_hi: float = 7600.0) -> np.ndarray:
    """[frame, 2K] complex filters on a mel-like scale (Hann window folded in): columns re_0, im_0, re_1, im_1, …"""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    imel = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    centres = imel(np.linspace(mel(f_lo), mel(f_hi), bands))
    t = np.arange(frame) - (frame - 1) / 2
    out = np.zeros((frame, 2 * bands), np.float32)
    for k, fc in enumerate(centres):
        bw = max(fc * 0.25, 60.0)  # Hz; the Gaussian envelope's width in time follows from it
        sigma = rate / (2 * np.pi * bw)
        env = np.exp(-0.5 * (t / min(sigma, frame / 4)) ** 2)
        env /= np.sqrt((env**2).sum())
        out[:, 2 * k] = env * np.cos(2 * np.pi * fc * t / rate)
        out[:, 2 * k + 1] = env * np.sin(2 * np.pi * fc * t / rate)
    # No denormals: the Gaussian tails underflow, and subnormal weights make onnxruntime's MatMul ~30× slower.
    out[np.abs(out) < 1e-7] = 0
    return out


def random_weights(bands: int, hidden: int, pre: int, seed: int = 0) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    i = pre or bands
    s = 1 / np.sqrt(hidden)
    w = {
        'bank': gabor_bank(bands),
        'eps': np.array(1e-6, np.float32),
        # ONNX LSTM layout: W [1, 4H, I], R [1, 4H, H], B [1, 8H], gates i, o, f, c.
        'W': r.uniform(-s, s, (1, 4 * hidden, i)).astype(np.float32),
        'R': r.uniform(-s, s, (1, 4 * hidden, hidden)).astype(np.float32),
        'B': r.uniform(-s, s, (1, 8 * hidden)).astype(np.float32),
        'out_w': r.uniform(-s, s, (hidden, 1)).astype(np.float32),
        'out_b': np.zeros((1,), np.float32),
    }
    if pre:
        w['pre_w'] = r.uniform(-1 / np.sqrt(bands), 1 / np.sqrt(bands), (bands, pre)).astype(np.float32)
        w['pre_b'] = np.zeros((pre,), np.float32)
    return w


def build(w: dict[str, np.ndarray], name: str = 'vad_lite') -> onnx.ModelProto:
    """The graph from weights: bank [512, 2K], eps, optional pre_w [K, P]/pre_b [P], W/R/B (ONNX LSTM), out_w [H, 1], out_b [1]."""
    bank = w['bank'].astype(np.float32)
    K = bank.shape[1] // 2
    H = w['R'].shape[2]
    assert bank.shape[0] == FRAME and H <= STATE
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(n: str, v: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(v), n))
        return n

    def op(t: str, ins: list[str], outs: list[str] | str, **attrs) -> str:
        outs = [outs] if isinstance(outs, str) else outs
        nodes.append(helper.make_node(t, ins, outs, name=outs[0], **attrs))
        return outs[0]

    i64 = lambda n, v: const(n, np.array(v, np.int64))  # noqa: E731
    pair = np.zeros((2 * K, K), np.float32)
    for k in range(K):
        pair[2 * k, k] = pair[2 * k + 1, k] = 1
    y = op('MatMul', ['frames', const('bank', bank)], 'filtered')  # [N, 2K]
    y = op('Mul', [y, y], 'squared')
    y = op('MatMul', [y, const('pair', pair)], 'power')  # [N, K]
    y = op('Log', [op('Add', [y, const('eps', w['eps'].astype(np.float32).reshape(()))], 'power_eps')], 'logpow')
    if 'pre_w' in w:
        y = op('Add', [op('MatMul', [y, const('pre_w', w['pre_w'].astype(np.float32))], 'pre_mm'), const('pre_b', w['pre_b'].astype(np.float32))], 'pre_lin')
        y = op('Relu', [y], 'pre')
    seq = op('Gather', [y, 'index'], 'seq', axis=0)  # [S, B, I]
    if H == STATE:
        h0 = op('Slice', ['h', i64('l0s', [0]), i64('l0e', [1]), i64('ax0', [0])], 'h0')
        c0 = op('Slice', ['c', 'l0s', 'l0e', 'ax0'], 'c0')
    else:
        h0 = op('Slice', ['h', i64('l0s', [0, 0]), i64('l0e', [1, H]), i64('ax02', [0, 2])], 'h0')
        c0 = op('Slice', ['c', 'l0s', 'l0e', 'ax02'], 'c0')
    op(
        'LSTM',
        [seq, const('W', w['W'].astype(np.float32)), const('R', w['R'].astype(np.float32)), const('B', w['B'].astype(np.float32)), 'lengths', h0, c0],
        ['lstm_y', 'lstm_h', 'lstm_c'],
        hidden_size=H,
        direction='forward',
    )
    Y, Yh, Yc = 'lstm_y', 'lstm_h', 'lstm_c'
    if H == STATE:
        rest_h = op('Slice', ['h', i64('l1s', [1]), i64('l1e', [2]), 'ax0'], 'h_rest')
        rest_c = op('Slice', ['c', 'l1s', 'l1e', 'ax0'], 'c_rest')
        op('Concat', [Yh, rest_h], 'hn', axis=0)
        op('Concat', [Yc, rest_c], 'cn', axis=0)
    else:
        # Layer 0's floats H..63 and layer 1 pass through: [Yh | h[0, :, H:]] then layer 1.
        tail_h = op('Slice', ['h', i64('ts', [0, H]), i64('te', [1, STATE]), 'ax02'], 'h_tail')
        tail_c = op('Slice', ['c', 'ts', 'te', 'ax02'], 'c_tail')
        rest_h = op('Slice', ['h', i64('l1s', [1]), i64('l1e', [2]), i64('ax0', [0])], 'h_rest')
        rest_c = op('Slice', ['c', 'l1s', 'l1e', 'ax0'], 'c_rest')
        op('Concat', [op('Concat', [Yh, tail_h], 'h_l0', axis=2), rest_h], 'hn', axis=0)
        op('Concat', [op('Concat', [Yc, tail_c], 'c_l0', axis=2), rest_c], 'cn', axis=0)
    y = op('Squeeze', [Y, i64('ax1', [1])], 'lstm_seq')  # [S, B, H]
    y = op('Add', [op('MatMul', [y, const('out_w', w['out_w'].astype(np.float32))], 'logit_mm'), const('out_b', w['out_b'].astype(np.float32))], 'logit')
    y = op('Sigmoid', [y], 'p')  # [S, B, 1]
    op('Squeeze', [y, i64('ax2', [2])], 'probs')
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info('frames', f32, ['N', FRAME]),
            helper.make_tensor_value_info('index', TensorProto.INT64, ['S', 'B']),
            helper.make_tensor_value_info('lengths', TensorProto.INT32, ['B']),
            helper.make_tensor_value_info('h', f32, [2, 'B', STATE]),
            helper.make_tensor_value_info('c', f32, [2, 'B', STATE]),
        ],
        [
            helper.make_tensor_value_info('probs', f32, ['S', 'B']),
            helper.make_tensor_value_info('hn', f32, [2, 'B', STATE]),
            helper.make_tensor_value_info('cn', f32, [2, 'B', STATE]),
        ],
        inits,
    )
    model = helper.make_model(graph, producer_name='circumplex training/vad/lite_graph.py', opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def null_graph() -> onnx.ModelProto:
    """The same interface with no model: every frame that reaches it is speech (probs 1; the energy gate still
    gives quiet frames 0), state passed through. What the detector's host and the VAD stage cost without a
    model, with the speech model still running on every voiced window, as under Silero on continuous speech."""
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node('Shape', ['index'], ['shape']),
        helper.make_node('ConstantOfShape', ['shape'], ['probs'], value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node('Identity', ['h'], ['hn']),
        helper.make_node('Identity', ['c'], ['cn']),
    ]
    ins = [
        helper.make_tensor_value_info('frames', f32, ['N', FRAME]),
        helper.make_tensor_value_info('index', TensorProto.INT64, ['S', 'B']),
        helper.make_tensor_value_info('lengths', TensorProto.INT32, ['B']),
        helper.make_tensor_value_info('h', f32, [2, 'B', STATE]),
        helper.make_tensor_value_info('c', f32, [2, 'B', STATE]),
    ]
    outs = [
        helper.make_tensor_value_info('probs', f32, ['S', 'B']),
        helper.make_tensor_value_info('hn', f32, [2, 'B', STATE]),
        helper.make_tensor_value_info('cn', f32, [2, 'B', STATE]),
    ]
    model = helper.make_model(helper.make_graph(nodes, 'vad_null', ins, outs), opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--random', action='store_true', help='seeded random weights (timing only)')
    ap.add_argument('--null', action='store_true', help='no model, every frame speech (probs 1): the host\'s own cost')
    ap.add_argument('--bands', type=int, default=32)
    ap.add_argument('--hidden', type=int, default=64)
    ap.add_argument('--pre', type=int, default=0, help='dense layer before the LSTM (0: none)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--dst', required=True)
    a = ap.parse_args(argv)
    if a.random == a.null:
        ap.error('give one of --random, --null')
    model = null_graph() if a.null else build(random_weights(a.bands, a.hidden, a.pre, a.seed))
    print(f'lite_graph: {write_model(a.dst, model)}, K={a.bands} H={a.hidden} pre={a.pre}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
