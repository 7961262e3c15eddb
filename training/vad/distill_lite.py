"""Distils Silero VAD v4 (the project's sequence graph, through the VAD stage's own detector) into a
small detector (training/vad/lite_graph.py): a fixed Gabor filterbank over each 32 ms frame, log band
powers, one LSTM layer, a sigmoid. Silero's per-frame probabilities are the targets.

Three steps (the second is Node, because the teacher runs in onnxruntime-node):

    /usr/bin/python3 -m training.vad.distill_lite audio      # .cache/vad-lite/train.{f32,json}
    npx tsx training/vad/teacher-labels.ts [NAME]              # .cache/vad-lite/train.labels.f32
    nice -n 10 /usr/bin/python3 -m training.vad.distill_lite train [--dst models/vad-lite/vad-lite.onnx]

Training audio (seeded, deterministic): ~10 s streams, each a random sequence of speech clips (RAVDESS
actors 01–18, EmoDB speakers 09–14; actors 19–20 and speakers 03 and 08 are kept out for the
evaluation, with espeak-ng speech as an unseen corpus) and non-speech: near-silence, low white/pink
noise, line noise (noise + mains hum), tones (single, dual, call-progress cadences), synthetic
hold-music (random chords and melodies with vibrato and tremolo), some streams with a quiet
background (noise or music) under everything. Gains vary over 30 dB.

Frames below the detector's energy gate (-60 dBFS) never reach the model (SileroVad skips them and
keeps the state), so training drops them from each stream's sequence in the same way.

Licence of the result: trained on RAVDESS (CC BY-NC-SA 4.0) and EmoDB (research use), so it carries
both restrictions (see models/vad-lite/MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

from training.common.card import write_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, '.cache', 'vad-lite')
RATE = 16000
F = 512
GATE_MS = 10 ** (-60 / 10)  # mean square of -60 dBFS (SileroVad's default energy gate)
TRAIN_RAVDESS_ACTORS = {f'{a:02d}' for a in range(1, 19)}
TRAIN_EMODB_SPEAKERS = {'09', '10', '11', '12', '13', '14'}


# ---------------------------------------------------------------- audio

def resample(x: np.ndarray, sr: int) -> np.ndarray:
    """To 16 kHz (the EmoDB copy here is 22.05 kHz, though its README says 16 kHz)."""
    if sr == RATE:
        return x.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(RATE, sr)
    return resample_poly(x, RATE // g, sr // g).astype(np.float32)


def load_speech(emodb: bool = True) -> list[np.ndarray]:
    """The training speakers' clips (the corpora as training/speech/data.py lists them), at 16 kHz."""
    import soundfile as sf

    from training.speech.data import load_emodb, load_ravdess

    def speaker(c) -> str:
        return c.speaker.split(':', 1)[1]

    clips = [c for c in load_ravdess() if speaker(c) in TRAIN_RAVDESS_ACTORS]
    if emodb:
        clips += [c for c in load_emodb() if speaker(c) in TRAIN_EMODB_SPEAKERS]
    out = []
    for c in clips:
        x, sr = sf.read(c.path, dtype='float32')
        out.append(resample(x, sr))
    return out


def db(x: float) -> float:
    return 10 ** (x / 20)


def noise(r: np.random.Generator, n: int) -> np.ndarray:
    w = r.standard_normal(n).astype(np.float32)
    if r.random() < 0.5:  # pink-ish: a leaky integrator mixed in
        from scipy.signal import lfilter

        y = lfilter([1.0], [1.0, -0.98], w).astype(np.float32)
        w = y / (np.std(y) + 1e-9)
    return w / (np.sqrt(np.mean(w**2)) + 1e-9)


def line_noise(r: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    mains = 50 if r.random() < 0.5 else 60
    hum = sum(r.uniform(0.2, 1) / (k + 1) * np.sin(2 * np.pi * mains * (k + 1) * t + r.uniform(0, 6)) for k in range(r.integers(1, 5)))
    return (r.uniform(0.3, 1) * noise(r, n) + r.uniform(0.3, 1.5) * hum).astype(np.float32)


def tone(r: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    kind = r.integers(0, 3)
    if kind == 0:  # single tone
        x = np.sin(2 * np.pi * r.uniform(150, 3500) * t)
    elif kind == 1:  # dual tone (DTMF-like)
        x = np.sin(2 * np.pi * r.choice([697, 770, 852, 941]) * t) + np.sin(2 * np.pi * r.choice([1209, 1336, 1477, 1633]) * t)
    else:  # call-progress: 350+440, 440+480, 480+620 with an on/off cadence
        a, b = [(350, 440), (440, 480), (480, 620)][r.integers(0, 3)]
        on, off = r.uniform(0.2, 2), r.uniform(0.2, 4)
        x = (np.sin(2 * np.pi * a * t) + np.sin(2 * np.pi * b * t)) * ((t % (on + off)) < on)
    return x.astype(np.float32)


def music(r: np.random.Generator, n: int) -> np.ndarray:
    """Hold-music-like: chords or a melody of harmonic notes, vibrato, tremolo, note changes every 0.2–2 s."""
    t = np.arange(n) / RATE
    out = np.zeros(n, np.float64)
    step = r.uniform(0.2, 2.0)
    melody = r.random() < 0.4
    root = r.uniform(110, 440)
    harm = [1.0] + [r.uniform(0, 0.6) / k for k in range(2, r.integers(2, 7))]
    vib_f, vib_d = r.uniform(3, 7), r.uniform(0, 0.006)
    trem_f, trem_d = r.uniform(0.2, 6), r.uniform(0, 0.4)
    nseg = int(np.ceil(n / (step * RATE)))
    for s in range(nseg):
        a, z = int(s * step * RATE), min(n, int((s + 1) * step * RATE))
        tt = t[a:z]
        if melody:
            notes = [root * 2 ** (r.integers(-5, 13) / 12)]
        else:
            base = root * 2 ** (r.integers(-5, 6) / 12)
            notes = [base * 2 ** (iv / 12) for iv in ([0, 4, 7] if r.random() < 0.6 else [0, 3, 7, 10])]
        env = np.minimum(1, (tt - tt[0]) / 0.02) * (np.exp(-(tt - tt[0]) * r.uniform(0, 3)) if melody else 1)
        for f0 in notes:
            for k, g in enumerate(harm):
                fk = f0 * (k + 1)
                if fk > 7000:
                    break
                out[a:z] += env * g * np.sin(2 * np.pi * fk * tt + vib_d * fk / vib_f * np.sin(2 * np.pi * vib_f * tt))
    out *= 1 - trem_d + trem_d * np.sin(2 * np.pi * trem_f * t)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-9)).astype(np.float32)


def nonspeech(r: np.random.Generator, n: int) -> np.ndarray:
    k = r.choice(['silence', 'noise', 'line', 'tone', 'music', 'music'])
    if k == 'silence':
        return ((r.random(n) - 0.5) / 16384).astype(np.float32)
    x = {'noise': noise, 'line': line_noise, 'tone': tone, 'music': music}[k](r, n)
    level = {'noise': (-60, -25), 'line': (-55, -25), 'tone': (-40, -8), 'music': (-45, -10)}[k]
    return x / (np.sqrt(np.mean(x**2)) + 1e-9) * db(r.uniform(*level))


def build_streams(seed: int, seconds: float, emodb: bool = True) -> list[np.ndarray]:
    r = np.random.default_rng(seed)
    speech = load_speech(emodb)
    order = r.permutation(len(speech))
    streams: list[np.ndarray] = []
    si = 0
    n = int(seconds * RATE)
    # Every speech clip once (plus a second pass over a third of them, at other gains and backgrounds).
    queue = list(order) + list(order[: len(order) // 3])
    while si < len(queue):
        parts: list[np.ndarray] = []
        total = 0
        while total < n:
            if r.random() < 0.55 and si < len(queue):
                x = speech[queue[si]]
                si += 1
                peak = np.max(np.abs(x)) + 1e-9
                x = x / peak * db(r.uniform(-32, -1))
            else:
                x = nonspeech(r, int(r.uniform(0.3, 4) * RATE))
            parts.append(x.astype(np.float32))
            total += len(x)
        y = np.concatenate(parts)[:n]
        if r.random() < 0.3:  # a quiet background under the whole stream
            bg = nonspeech(r, len(y))
            y = y + bg * db(r.uniform(-15, -3))
        streams.append(np.clip(y, -1, 1).astype(np.float32))
    # Streams of non-speech alone (the detector must stay off on them for minutes).
    for _ in range(len(streams) // 6):
        parts = []
        total = 0
        while total < n:
            x = nonspeech(r, int(r.uniform(1, 8) * RATE))
            parts.append(x)
            total += len(x)
        streams.append(np.clip(np.concatenate(parts)[:n], -1, 1).astype(np.float32))
    return streams


def cmd_audio(a: argparse.Namespace) -> int:
    t0 = time.time()
    streams = build_streams(a.seed, a.seconds, not a.no_emodb)
    os.makedirs(CACHE, exist_ok=True)
    allx = np.concatenate(streams)
    allx.astype('<f4').tofile(os.path.join(CACHE, f'{a.name}.f32'))
    lengths = [len(s) for s in streams]
    meta = {'seed': a.seed, 'rate': RATE, 'lengths': lengths, 'sha256': hashlib.sha256(allx.astype('<f4').tobytes()).hexdigest()}
    with open(os.path.join(CACHE, f'{a.name}.json'), 'w') as f:
        json.dump(meta, f)
    print(f'distill_lite audio: {len(streams)} streams, {sum(lengths) / RATE / 60:.1f} min, sha256 {meta["sha256"][:16]}…, {time.time() - t0:.0f} s')
    return 0


# ---------------------------------------------------------------- training

def features(x: np.ndarray, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 512-sample frame: K log band powers (as the graph computes them) and whether it passes the gate."""
    n = len(x) // F
    fr = x[: n * F].reshape(n, F).astype(np.float32)
    y = fr @ bank
    p = y[:, 0::2] ** 2 + y[:, 1::2] ** 2
    return np.log(p + 1e-6).astype(np.float32), (np.mean(fr**2, axis=1) >= GATE_MS)


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from training.vad.lite_graph import build, gabor_bank

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    with open(os.path.join(CACHE, f'{a.name}.json')) as f:
        meta = json.load(f)
    x = np.fromfile(os.path.join(CACHE, f'{a.name}.f32'), '<f4')
    labels = np.fromfile(os.path.join(CACHE, f'{a.name}.labels.f32'), '<f4')
    bank = gabor_bank(a.bands)
    seqs, tgts, raws = [], [], []
    at = 0
    lat = 0
    for n in meta['lengths']:
        feat, keep = features(x[at : at + n], bank)
        lab = labels[lat : lat + len(feat)]
        if a.learn_bank and keep.sum() >= 2:
            raws.append(x[at : at + len(feat) * F].reshape(-1, F)[keep])
        at += n
        lat += len(feat)
        if keep.sum() >= 2:
            seqs.append(feat[keep])
            tgts.append(lab[keep])
    assert lat == len(labels), f'labels: {len(labels)} floats, frames {lat}'
    allf = np.concatenate(seqs)
    mu, sd = allf.mean(0), allf.std(0) + 1e-6
    K, H = a.bands, a.hidden
    T = max(len(s) for s in seqs)
    N = len(seqs)
    X = np.zeros((N, T, F if a.learn_bank else K), np.float32)
    Y = np.zeros((N, T), np.float32)
    M = np.zeros((N, T), np.float32)
    for i, (s, t) in enumerate(zip(seqs, tgts)):
        X[i, : len(s)] = raws[i] if a.learn_bank else (s - mu) / sd
        Y[i, : len(s)] = t
        M[i, : len(s)] = 1
    # Frames Silero calls clearly not speech weigh `neg_weight` (false alarms on music and noise cost more than a late onset).
    M = M * np.where(Y < 0.2, a.neg_weight, 1.0).astype(np.float32)
    X, Y, M = map(torch.from_numpy, (X, Y, M))
    # Hold out 5 % of the streams to watch for overfitting (the real evaluation is bench/vad-lite.ts agree).
    perm = torch.randperm(N)
    nv = max(1, N // 20)
    va, tr = perm[:nv], perm[nv:]
    print(f'distill_lite train: {N} streams, {int((M > 0).sum())} gated-in frames (mean target {float(Y.sum() / (M > 0).sum()):.3f}), K={K} H={H}, {time.time() - t0:.0f} s')

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # --learn-bank: the filterbank is trained too (from the Gabor start), on raw frames; else features are precomputed.
            self.bank = torch.nn.Parameter(torch.from_numpy(bank.copy())) if a.learn_bank else None
            self.mu, self.sd = torch.from_numpy(mu), torch.from_numpy(sd)
            # --pre P: a dense layer (K → P, ReLU) before the LSTM.
            self.pre = torch.nn.Linear(K, a.pre) if a.pre else None
            self.lstm = torch.nn.LSTM(a.pre or K, H, batch_first=True)
            self.out = torch.nn.Linear(H, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.bank is not None:
                z = x @ self.bank
                x = (torch.log(z[..., 0::2] ** 2 + z[..., 1::2] ** 2 + 1e-6) - self.mu) / self.sd
            if self.pre is not None:
                x = torch.relu(self.pre(x))
            y, _ = self.lstm(x)
            return self.out(y).squeeze(-1)

    net = Net()
    groups = [{'params': [p for n, p in net.named_parameters() if n != 'bank']}]
    if net.bank is not None:
        groups.append({'params': [net.bank], 'lr': a.lr * 0.1})
    opt = torch.optim.Adam(groups, lr=a.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    bce = torch.nn.BCEWithLogitsLoss(reduction='none')

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        z = net(X[idx])
        l = bce(z, Y[idx])
        return (l * M[idx]).sum() / M[idx].sum()

    def l1_of(idx: torch.Tensor) -> float:
        with torch.no_grad():
            p = torch.sigmoid(net(X[idx]))
            m = (M[idx] > 0).float()
            return float(((p - Y[idx]).abs() * m).sum() / m.sum())

    for ep in range(a.epochs):
        net.train()
        order = tr[torch.randperm(len(tr))]
        tot = 0.0
        for b in range(0, len(order), a.batch):
            idx = order[b : b + a.batch]
            opt.zero_grad()
            l = loss_of(idx)
            l.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            tot += float(l) * len(idx)
        sched.step()
        net.eval()
        if ep % 5 == 4 or ep == a.epochs - 1:
            print(f'  epoch {ep + 1}: train bce {tot / len(tr):.4f}, held-out streams mean |p - silero| {l1_of(va):.4f}, {time.time() - t0:.0f} s', flush=True)

    # Export: fold the input standardisation into the LSTM's input weights; PyTorch gates i, f, g, o → ONNX i, o, f, c.
    sd_ = net.state_dict()
    Wih = sd_['lstm.weight_ih_l0'].numpy()  # [4H, K]
    Whh = sd_['lstm.weight_hh_l0'].numpy()
    bih = sd_['lstm.bias_ih_l0'].numpy()
    bhh = sd_['lstm.bias_hh_l0'].numpy()
    extra = {}
    if a.pre:  # the standardisation folds into the dense layer instead
        Wp, bp = sd_['pre.weight'].numpy(), sd_['pre.bias'].numpy()
        extra = {'pre_w': (Wp / sd[None, :]).T.astype(np.float32), 'pre_b': (bp - Wp @ (mu / sd)).astype(np.float32)}
        W_fold, b_fold = Wih, bih
    else:
        W_fold = Wih / sd[None, :]
        b_fold = bih - Wih @ (mu / sd)
    perm_g = np.concatenate([np.arange(0, H), np.arange(3 * H, 4 * H), np.arange(H, 2 * H), np.arange(2 * H, 3 * H)])
    w = {
        'bank': net.bank.detach().numpy().copy() if net.bank is not None else bank,
        'eps': np.array(1e-6, np.float32),
        'W': W_fold[perm_g][None].astype(np.float32),
        'R': Whh[perm_g][None].astype(np.float32),
        'B': np.concatenate([b_fold[perm_g], bhh[perm_g]])[None].astype(np.float32),
        'out_w': sd_['out.weight'].numpy().T.astype(np.float32),
        'out_b': sd_['out.bias'].numpy().astype(np.float32),
        **extra,
    }
    for k, v in w.items():  # no subnormal weights (onnxruntime's kernels slow down on them)
        v[np.abs(v) < 1e-30] = 0
    print(f'distill_lite train: {write_model(a.dst, build(w, "vad_lite"))}, {time.time() - t0:.0f} s')
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('audio')
    p.add_argument('--seed', type=int, default=13)
    p.add_argument('--seconds', type=float, default=10.0)
    p.add_argument('--no-emodb', action='store_true', help='RAVDESS speech only (for a cross-corpus check on EmoDB)')
    p.add_argument('--name', default='train', help='file names under .cache/vad-lite/ (default train)')
    p = sub.add_parser('train')
    p.add_argument('--seed', type=int, default=13)
    p.add_argument('--bands', type=int, default=32)
    p.add_argument('--hidden', type=int, default=64)
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--name', default='train', help='training set under .cache/vad-lite/ (default train)')
    p.add_argument('--pre', type=int, default=0, help='dense layer (ReLU) before the LSTM, 0: none')
    p.add_argument('--learn-bank', action='store_true', help='train the filterbank too (from the Gabor start)')
    p.add_argument('--neg-weight', type=float, default=1.0, help='loss weight of frames Silero puts below 0.2')
    p.add_argument('--dst', default=os.path.join(ROOT, 'models', 'vad-lite', 'vad-lite.onnx'))
    a = ap.parse_args(argv)
    return cmd_audio(a) if a.cmd == 'audio' else cmd_train(a)


if __name__ == '__main__':
    sys.exit(main())
