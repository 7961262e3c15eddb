"""Train a small wav2vec2-shaped encoder from scratch, to measure the `cached` mode's tolerance on a
TRAINED model (issue 14), and export it exactly like the stand-ins.

The random-weight stand-ins (export_standins.py) attend nearly uniformly over the window, the worst
case for the compute-once `cached` streaming mode. No real weights can be downloaded here, so this
recipe trains the `small` config of export_standins (the large layout: layer-norm conv front end
with the same strides and 400-sample receptive field, stable layer norm, the large model's 128-frame
positional conv; 64 wide, 4 layers) plus the same regression head to regress arousal and valence
(logit order arousal, dominance, valence on a [0, 1] scale, as wav2vec2-msp-dim; dominance has no
label in these corpora and is not trained) on 1 s windows of acted speech (EmoDB + RAVDESS,
../shared/data), with the manifest's per-window zero-mean/unit-variance input normalisation.

Split: speaker-independent, the project's quick split (training/speech/splits.holdout_speakers:
the first 2 speakers of each corpus held out). A cosine schedule over a wall-clock budget (--minutes;
--steps for a fixed, reproducible count); no early stopping or selection on any data; the held-out
speakers are scored once, at the end. Writes

    <out>/<id>/model.onnx + streaming/ (incl. step.onnx)   the trained model   (export_standins.export_one)
    <out>/<id>-random/ ...                                the same config and seed, untrained
    <out>/<id>/train.json                                 recipe, split, held-out figures
    <out>/<id>/model.pt                                   the torch weights (probe_deviation_sources.py reads them)
    <out>/<id>/heldout.wav, heldout.json                  held-out speakers' clips, silence-trimmed and
                                                          concatenated, and their spans and targets (the
                                                          tolerance bench's --audio and --labels)
    <out>/<id>/fitstream.wav, fitstream.json              the same for the training speakers (the audio the
                                                          cached head is fitted on: calibrate_cached_head.py)

Run from the repo root (18 min of training by default, plus about a minute):

    nice -n 10 /usr/bin/python3 -m training.encoders.train_tiny --out models/weights/trained-tiny
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import soundfile as sf
import torch

from training.common.metrics import auc, summary
from training.encoders.export_standins import CONFIGS, build, export_one
from training.speech.data import HIGH_AROUSAL, LOW_AROUSAL, SAMPLE_RATE, load_emodb, load_ravdess, read_audio, windows
from training.speech.splits import holdout_speakers, in_speakers, not_in_speakers

WINDOW = SAMPLE_RATE  # 1 s, as the runtime's speech windows
EVAL_HOP = 4000  # 250 ms, the runtime's default hop


def trim(x: np.ndarray, db: float = 35.0) -> np.ndarray:
    """Cut leading/trailing audio whose 20 ms RMS is more than `db` below the clip's loudest frame."""
    f = 320
    n = len(x) // f
    if n < 2:
        return x
    rms = np.sqrt((x[: n * f].reshape(n, f) ** 2).mean(axis=1) + 1e-12)
    keep = np.nonzero(rms >= rms.max() * 10 ** (-db / 20))[0]
    return x[keep[0] * f : (keep[-1] + 1) * f]


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Per-window zero mean / unit variance, exactly models/speech-onnx.ts normalizeWindow."""
    m = x.mean(dim=1, keepdim=True)
    v = ((x - m) ** 2).mean(dim=1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-7)


def crop(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= WINDOW:
        y = np.zeros(WINDOW, dtype=np.float32)
        y[: len(x)] = x
        return y
    s = int(rng.integers(0, len(x) - WINDOW + 1))
    return x[s : s + WINDOW]


def predict_clips(m, audio: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """Per clip: mean over its 1 s windows at a 250 ms hop of (arousal, valence) on [-1, 1]."""
    out = []
    m.eval()
    with torch.no_grad():
        for x in audio:
            w = torch.from_numpy(np.ascontiguousarray(windows(x, WINDOW, EVAL_HOP)))
            preds = []
            for i in range(0, len(w), batch):
                _, logits = m(normalise(w[i : i + batch]))
                preds.append(logits[:, [0, 2]] * 2 - 1)
            out.append(torch.cat(preds).clamp(-1, 1).mean(dim=0).numpy())
    return np.stack(out)


def write_heldout(d: str, clips, te_idx, audio: list[np.ndarray], name: str = "heldout") -> None:
    """Clips as one stream (sorted by file, so emotions alternate): <name>.wav, and <name>.json with each
    clip's sample span and human targets (the tolerance bench's --labels). `heldout`: the held-out
    speakers; `fitstream`: the training speakers (audio for fitting the cached head, never measured on)."""
    order = sorted(te_idx, key=lambda i: clips[i].path)
    segs, at = [], 0
    for i in order:
        n = len(audio[i])
        c = clips[i]
        segs.append({"file": os.path.basename(c.path), "speaker": c.speaker, "emotion": c.emotion, "start": at, "end": at + n, "arousal": c.arousal, "valence": c.valence})
        at += n
    os.makedirs(d, exist_ok=True)
    sf.write(os.path.join(d, f"{name}.wav"), np.concatenate([audio[i] for i in order]), SAMPLE_RATE, subtype="PCM_16")
    with open(os.path.join(d, f"{name}.json"), "w") as f:
        json.dump({"sampleRate": SAMPLE_RATE, "segments": segs}, f, indent=1)
        f.write("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join("models", "weights", "trained-tiny"))
    ap.add_argument("--id", default="small-wav2vec2-va", help="folder name of the trained export (the untrained one gets -random)")
    ap.add_argument("--config", default="small", help=f"one of {','.join(CONFIGS)}")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--minutes", type=float, default=18.0, help="training budget, wall clock: the cosine schedule runs over it (the box is shared, so steps vary; train.json records them)")
    ap.add_argument("--steps", type=int, default=0, help="a fixed number of steps instead of --minutes (reproducible; 0: use --minutes)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--holdout-per-corpus", type=int, default=2)
    ap.add_argument("--heldout-only", action="store_true", help="only (re)write <out>/<id>/heldout.wav/.json and fitstream.wav/.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the box is shared; 2 threads thrash under load)")
    ap.add_argument("--opset", type=int, default=14)
    a = ap.parse_args(argv)
    if a.config not in CONFIGS:
        ap.error(f"--config: unknown {a.config!r}; one of {','.join(CONFIGS)}")
    torch.set_num_threads(a.threads)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    t_start = time.time()

    clips = load_emodb() + load_ravdess()
    held = holdout_speakers(clips, a.holdout_per_corpus)
    tr_idx, te_idx = not_in_speakers(clips, held), in_speakers(clips, held)
    log(f"[train_tiny] {len(clips)} clips; held-out speakers {held} ({len(te_idx)} clips), train {len(tr_idx)} clips")
    audio = [trim(read_audio(c.path)) for c in clips]
    log(f"[train_tiny] audio read and trimmed in {time.time() - t_start:.0f} s")
    if a.heldout_only:
        write_heldout(os.path.join(a.out, a.id), clips, te_idx, audio)
        write_heldout(os.path.join(a.out, a.id), clips, tr_idx, audio, "fitstream")
        return 0
    tr_audio = [audio[i] for i in tr_idx]
    tr_y = np.array([[clips[i].arousal, clips[i].valence] for i in tr_idx], dtype=np.float32)

    m = build(a.config, a.seed)  # the same initial weights export_one(model=None) gives the -random export
    n_params = sum(p.numel() for p in m.parameters())
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.01)
    budget = a.minutes * 60
    t0 = time.time()

    def progress(step: int) -> float:
        return step / a.steps if a.steps else (time.time() - t0) / budget

    def lr_at(p: float) -> float:  # 5 % linear warm-up, then cosine to 0
        return a.lr * min(1.0, (p + 1e-3) / 0.05) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    rng = np.random.default_rng(a.seed)
    m.train()
    run = 0.0
    step = 0
    while progress(step) < 1.0:
        for g in opt.param_groups:
            g["lr"] = lr_at(progress(step))
        pick = rng.integers(0, len(tr_audio), a.batch)
        x = torch.from_numpy(np.stack([crop(tr_audio[i], rng) for i in pick]))
        y = torch.from_numpy(tr_y[pick]) * 0.5 + 0.5  # [-1, 1] -> the logits' [0, 1]
        _, logits = m(normalise(x))
        loss = ((logits[:, [0, 2]] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        run = loss.item() if step == 0 else 0.98 * run + 0.02 * loss.item()
        if step % 50 == 0:
            log(f"[train_tiny] step {step} lr {g['lr']:.2e} train loss (smoothed, logit scale) {run:.4f}  {time.time() - t0:.0f} s")
        step += 1
    log(f"[train_tiny] {step} steps in {time.time() - t0:.0f} s, final smoothed train loss {run:.4f}")
    train_s = time.time() - t0
    m.eval()

    te_y = np.array([[clips[i].arousal, clips[i].valence] for i in te_idx])
    pred = predict_clips(m, [audio[i] for i in te_idx])
    base = tr_y.mean(axis=0)  # the training mean: what a model that learnt nothing would say
    held_fig = {}
    for j, k in enumerate(["arousal", "valence"]):
        s = summary(te_y[:, j], pred[:, j])
        s["rmseTrainMean"] = float(np.sqrt(((te_y[:, j] - base[j]) ** 2).mean()))
        held_fig[k] = s
    emo = [clips[i].emotion for i in te_idx]
    hi = [pred[n, 0] for n, e in enumerate(emo) if e in HIGH_AROUSAL]
    lo = [pred[n, 0] for n, e in enumerate(emo) if e in LOW_AROUSAL]
    held_fig["arousalAuc"] = auc(hi, lo)
    per_corpus = {}
    for corpus in ("emodb", "ravdess"):
        sel = [n for n, i in enumerate(te_idx) if clips[i].corpus == corpus]
        per_corpus[corpus] = {k: summary(te_y[sel, j], pred[sel, j]) for j, k in enumerate(["arousal", "valence"])}
    held_fig["perCorpus"] = per_corpus
    log(f"[train_tiny] held-out speakers, per clip: {json.dumps(held_fig)}")

    recipe = {
        "trained": {
            "recipe": "training/encoders/train_tiny.py",
            "data": "EmoDB (research use) + RAVDESS (CC BY-NC-SA 4.0), ../shared/data; targets per its README",
            "heldOutSpeakers": held,
            "trainClips": int(len(tr_idx)),
            "heldOutClips": int(len(te_idx)),
            "steps": step,
            "schedule": f"{a.steps} steps" if a.steps else f"{a.minutes} min wall clock",
            "threads": a.threads,
            "batch": a.batch,
            "lr": a.lr,
            "window": "1 s random crops of silence-trimmed clips, per-window zero-mean/unit-variance",
            "trainSeconds": round(train_s, 1),
            "trainedOutputs": ["arousal", "valence"],
            "heldOut": held_fig,
        }
    }
    info = export_one(a.config, a.out, a.id, a.seed, a.opset, True, log, model=m, extra=recipe)
    rnd = export_one(a.config, a.out, a.id + "-random", a.seed, a.opset, True, log, extra={"trained": None})
    d = os.path.join(a.out, a.id)
    torch.save(m.state_dict(), os.path.join(d, "model.pt"))  # the torch weights, for probes of the encoder's layers
    write_heldout(d, clips, te_idx, audio)
    write_heldout(d, clips, tr_idx, audio, "fitstream")
    with open(os.path.join(d, "train.json"), "w") as f:
        json.dump({"parameters": n_params, "config": a.config, "seed": a.seed, **recipe, "totalSeconds": round(time.time() - t_start, 1)}, f, indent=2)
        f.write("\n")
    print(json.dumps({"trained": info["specId"], "random": rnd["specId"], "out": a.out, "heldOut": held_fig, "parameters": n_params}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
