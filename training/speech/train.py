"""Trains `speech-va`: python -m training.speech.train [--quick] [--holdout N] [--data my.csv] [--out DIR].

Run from the repo root with Debian's interpreter (`/usr/bin/python3 -m training.speech.train`);
`npm run train:speech` does exactly that and rewrites models/speech-va/ (model.onnx + card).

1. Clips -> 1 s windows at 250 ms hop (the runtime's default window/hop) with the clip's target.
2. Features of every window through the same torch module that is exported (features.py), for the
   clean clips and `augment.copies` augmented copies (gain -20..+6 dB, 8 kHz band-limiting, additive
   noise), cached under .cache/speech-features/.
3. Held-out figures (full run only): leave-one-speaker-out within each corpus (trained on both corpora
   minus the speaker), leave-one-corpus-out both ways, a nested speaker-fold ensemble for the
   +-1 sigma calibration and coverage, and robustness of held-out predictions to gain, band-limiting
   and noise. Per clip = mean over its voiced windows.
4. The shipped model: the `ensemble.folds` speaker-fold models in one graph (export.py); the mean is
   the prediction, the calibrated member spread is sigma.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import zlib

import numpy as np
import torch

from training.common import metrics as M

from . import data as D
from . import splits as S
from .features import SpeechFeatures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- augmentation and features


def band_limit_8k(x: np.ndarray) -> np.ndarray:
    """Telephone channel: down to 8 kHz and back (everything above 4 kHz gone)."""
    import torchaudio.functional as AF

    t = torch.from_numpy(x)
    return AF.resample(AF.resample(t, 16000, 8000), 8000, 16000).numpy()[: len(x)].astype(np.float32)


def active_power(x: np.ndarray) -> float:
    """Mean square over the 10 ms frames within 40 dB of the loudest one (the speech, not the silences)."""
    n = len(x) // 160
    if n == 0:
        return float(np.mean(x**2) + 1e-12)
    fp = (x[: n * 160].reshape(n, 160) ** 2).mean(axis=1)
    return float(fp[fp > fp.max() * 1e-4].mean() + 1e-12)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Additive noise at `snr_db` relative to the active speech power; white or brown-ish (random mix)."""
    white = rng.standard_normal(len(x))
    brown = np.cumsum(rng.standard_normal(len(x)))
    brown -= np.convolve(brown, np.ones(401) / 401, mode="same")  # drop the random-walk drift
    mix = rng.uniform(0, 1)
    n = mix * white / (white.std() + 1e-9) + (1 - mix) * brown / (brown.std() + 1e-9)
    n = n / (n.std() + 1e-9) * np.sqrt(active_power(x) / 10 ** (snr_db / 10))
    return (x + n).astype(np.float32)


def perturb(x: np.ndarray, kind: str, rng: np.random.Generator | None = None, aug: dict | None = None) -> np.ndarray:
    """Named perturbations used both for augmentation ('random') and the robustness figures."""
    if kind == "clean":
        return x
    if kind == "gain-20":
        return x * 10 ** (-20 / 20)
    if kind == "gain+6":
        return np.clip(x * 10 ** (6 / 20), -1, 1)
    if kind == "band8k":
        return band_limit_8k(x)
    if kind.startswith("noise"):
        snr = float(kind[len("noise") :])
        return add_noise(x, snr, rng or np.random.default_rng(0))
    if kind == "random":
        assert rng is not None and aug is not None
        y = x
        if rng.uniform() < aug["bandLimitProbability"]:
            y = band_limit_8k(y)
        if rng.uniform() < aug["noiseProbability"]:
            y = add_noise(y, rng.uniform(*aug["noiseSnrDb"]), rng)
        g = 10 ** (rng.uniform(*aug["gainDb"]) / 20)
        return np.clip(y * g, -1, 1).astype(np.float32)
    raise ValueError(kind)


def feature_set(clips, cfg, kind: str, copy: int, cache_dir: str):
    """Features of every 1 s window of every clip under one perturbation: feats [N, D], vfrac [N], clip [N]."""
    key = json.dumps(
        {"f": cfg["features"], "w": cfg["windowSamples"], "h": cfg["hopSamples"], "a": cfg["augment"], "s": cfg["seed"],
         "k": kind, "c": copy, "clips": [(c.path, os.path.getsize(c.path)) for c in clips], "v": 3},
        sort_keys=True,
    )
    h = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{kind}-{copy}-{h}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    t0 = time.time()
    fx = SpeechFeatures(cfg["features"]).eval()
    feats, vfrac, cid = [], [], []
    with torch.no_grad():
        for i, c in enumerate(clips):
            x = D.read_audio(c.path)
            rng = np.random.default_rng([cfg["seed"], copy, zlib.crc32(os.path.basename(c.path).encode())])
            x = perturb(x, kind, rng, cfg["augment"])
            w = torch.from_numpy(np.ascontiguousarray(D.windows(x, cfg["windowSamples"], cfg["hopSamples"])))
            f, v = fx(w)
            feats.append(f.numpy())
            vfrac.append(v.numpy().ravel())
            cid.append(np.full(len(w), i))
    out = {"feats": np.concatenate(feats).astype(np.float32), "vfrac": np.concatenate(vfrac).astype(np.float32), "clip": np.concatenate(cid)}
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path, **out)
    log(f"features {kind}#{copy}: {len(out['feats'])} windows from {len(clips)} clips in {time.time() - t0:.1f}s")
    return out


# ---------------------------------------------------------------- heads


class Head:
    """A fitted head: input scaler folded in, predict(X) -> [N, 2] (valence, arousal)."""

    def __init__(self, mu, sd, layers):
        self.mu, self.sd, self.layers = mu, sd, layers  # layers: list of (W, b) numpy

    def predict(self, X):
        h = (X - self.mu) / self.sd
        for j, (W, b) in enumerate(self.layers):
            h = h @ W + b
            if j < len(self.layers) - 1:
                h = np.maximum(h, 0)
        return np.clip(h, -1, 1)


def _ccc_t(t, p):
    mt, mp = t.mean(0), p.mean(0)
    vt, vp = t.var(0, unbiased=False), p.var(0, unbiased=False)
    cov = ((t - mt) * (p - mp)).mean(0)
    return 2 * cov / (vt + vp + (mt - mp) ** 2 + 1e-8)


def fit_head(X, Y, W, hcfg, seed) -> Head:
    mu = X.mean(0)
    sd = X.std(0) + 1e-6
    Xs = (X - mu) / sd
    if hcfg["kind"] == "ridge":
        A = np.c_[Xs, np.ones(len(Xs))]
        R = hcfg.get("alpha", 10.0) * np.eye(A.shape[1])
        R[-1, -1] = 0
        Aw = A * W[:, None]
        beta = np.linalg.solve(A.T @ Aw + R, Aw.T @ Y)
        return Head(mu, sd, [(beta[:-1].astype(np.float32), beta[-1].astype(np.float32))])
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    H = hcfg["hidden"]
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], H), torch.nn.ReLU(), torch.nn.Dropout(hcfg["dropout"]), torch.nn.Linear(H, 2)
    )
    opt = torch.optim.AdamW(net.parameters(), lr=hcfg["lr"], weight_decay=hcfg["weightDecay"])
    Xt, Yt, Wt = torch.from_numpy(Xs.astype(np.float32)), torch.from_numpy(Y.astype(np.float32)), torch.from_numpy(W.astype(np.float32))
    n, bs, epochs = len(Xt), hcfg["batchSize"], hcfg["epochs"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hcfg["lr"], total_steps=epochs * ((n + bs - 1) // bs))
    lam = hcfg.get("cccWeight", 0.5)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            b = perm[s : s + bs]
            p = net(Xt[b])
            mse = ((p - Yt[b]) ** 2 * Wt[b, None]).sum() / (Wt[b].sum() * 2)
            loss = mse + lam * (1 - _ccc_t(Yt[b], p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    l1, l2 = net[0], net[3]
    return Head(
        mu, sd,
        [(l1.weight.detach().numpy().T.copy(), l1.bias.detach().numpy().copy()),
         (l2.weight.detach().numpy().T.copy(), l2.bias.detach().numpy().copy())],
    )


# ---------------------------------------------------------------- data plumbing


class Windows:
    """Window features of the clips under one or more perturbations, with clip targets."""

    def __init__(self, clips, sets, min_voiced):
        self.clips = clips
        self.Y = np.array([[c.valence, c.arousal] for c in clips], dtype=np.float32)
        self.sets = sets
        self.min_voiced = min_voiced

    def train_arrays(self, clip_idx):
        keep = np.zeros(len(self.clips), bool)
        keep[clip_idx] = True
        X, Y, W = [], [], []
        for s in self.sets:
            m = keep[s["clip"]] & (s["vfrac"] >= self.min_voiced)
            X.append(s["feats"][m])
            Y.append(self.Y[s["clip"][m]])
            W.append(np.ones(m.sum(), np.float32))
        return np.concatenate(X), np.concatenate(Y), np.concatenate(W)


def clip_means(fs, clip_idx, pred, min_voiced):
    """Per clip: mean of its windows' predictions over voiced windows (all windows if none is voiced)."""
    out = np.zeros((len(clip_idx), pred.shape[1]), np.float32)
    for j, ci in enumerate(clip_idx):
        m = fs["clip"] == ci
        v = m & (fs["vfrac"] >= min_voiced)
        out[j] = pred[v if v.any() else m].mean(0)
    return out


def predict_windows(heads, fs, clip_idx):
    keep = np.isin(fs["clip"], clip_idx)
    P = np.stack([h.predict(fs["feats"][keep]) for h in heads])  # [M, N, 2]
    sub = {k: v[keep] for k, v in fs.items()}
    return P, sub


def scores(clips, clip_idx, pred, prefix, sigma=None):
    """Figures for one held-out evaluation: CCC/pearson/RMSE per dim, arousal AUC, coverage."""
    Y = np.array([[clips[i].valence, clips[i].arousal] for i in clip_idx])
    out = {}
    for d, name in enumerate(["valence", "arousal"]):
        s = M.summary(Y[:, d], pred[:, d], None if sigma is None else sigma[:, d])
        for k, v in s.items():
            out[f"{name}_{k}"] = v
    emo = [clips[i].emotion for i in clip_idx]
    pos = [pred[j, 1] for j, e in enumerate(emo) if e in D.HIGH_AROUSAL]
    neg = [pred[j, 1] for j, e in enumerate(emo) if e in D.LOW_AROUSAL]
    if pos and neg:
        out["arousal_auc"] = M.auc(pos, neg)
    out["n"] = len(clip_idx)
    log(f"  {prefix}: " + ", ".join(f"{k}={v:.3f}" for k, v in out.items() if k.endswith(("ccc", "auc", "coverage1sigma"))) + f" (n={len(clip_idx)})")
    return out


# ---------------------------------------------------------------- sigma calibration


def fit_sigma(err, spread):
    """sigma = a + b*spread per dimension: b by Gaussian NLL over a grid, a so that 68.3 % of |err| <= sigma."""
    a_out, b_out = [], []
    for d in range(err.shape[1]):
        e, s = np.abs(err[:, d]), spread[:, d]
        best = None
        for b in np.linspace(0, 8, 33):
            a = max(1e-3, float(np.quantile(e - b * s, 0.683)))
            sig = a + b * s
            if np.any(sig <= 0):
                continue
            nll = float(np.mean(np.log(sig) + 0.5 * (e / sig) ** 2))
            if best is None or nll < best[0]:
                best = (nll, a, b)
        a_out.append(best[1])
        b_out.append(best[2])
    return np.array(a_out, np.float32), np.array(b_out, np.float32)


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.speech.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small ensemble, no augmentation, no CV figures (tests)")
    ap.add_argument("--holdout", type=int, default=None, help="speakers per corpus to exclude from training (first N sorted ids)")
    ap.add_argument("--data", action="append", default=None, help="train on your own CSV file,valence,arousal[,speaker] instead of EmoDB+RAVDESS (repeatable)")
    ap.add_argument("--out", default=os.path.join(REPO, "models", "speech-va"), help="output folder (default models/speech-va)")
    ap.add_argument("--cache", default=os.path.join(REPO, ".cache", "speech-features"))
    ap.add_argument("--compare-heads", action="store_true", help="only print the speaker-fold CV of the candidate heads")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these small heads)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = json.load(open(CONFIG))
    seed = cfg["seed"]
    np.random.seed(seed)
    torch.manual_seed(seed)
    hcfg = dict(cfg["head"])
    folds_k = cfg["ensemble"]["folds"]
    copies = cfg["augment"]["copies"]
    if args.quick:
        hcfg["epochs"] = cfg["quick"]["epochs"]
        folds_k = cfg["quick"]["folds"]
        copies = cfg["quick"]["augmentCopies"]
    t0 = time.time()

    if args.data:
        clips = [c for p in args.data for c in D.load_user_csv(p)]
        corpora_desc = [{"name": os.path.basename(p), "license": "user-supplied", "items": len(D.load_user_csv(p))} for p in args.data]
    else:
        clips = D.load_emodb() + D.load_ravdess()
        corpora_desc = None
    held = S.holdout_speakers(clips, args.holdout) if args.holdout else []
    if held:
        log(f"holding out speakers {held}")
        clips = [c for c in clips if c.speaker not in set(held)]
    log(f"{len(clips)} clips, {len(S.speakers_of(clips))} speakers, corpora {S.corpora_of(clips)}")
    min_v = cfg["windows"]["minVoicedFraction"]

    clean = feature_set(clips, cfg, "clean", 0, args.cache)
    aug_sets = [feature_set(clips, cfg, "random", i + 1, args.cache) for i in range(copies)]
    win = Windows(clips, [clean] + aug_sets, min_v)
    all_idx = np.arange(len(clips))

    def train_on(idx, s, h=hcfg):
        X, Y, W = win.train_arrays(idx)
        return fit_head(X, Y, W, h, s)

    figures: dict = {}
    if args.compare_heads:
        compare_heads(clips, cfg, win, clean, min_v, seed)
        return
    calib = None
    if not args.quick:
        corpora = S.corpora_of(clips)
        # 1. leave one speaker out within each corpus, trained on everything else (both corpora)
        for corpus in corpora:
            preds, idxs = [], []
            for spk, tr, te in S.loso(clips, corpus):
                h = train_on(tr, seed)
                P, sub = predict_windows([h], clean, te)
                preds.append(clip_means(sub, te, P[0], min_v))
                idxs.append(te)
            figures[f"loso-{corpus}"] = scores(clips, np.concatenate(idxs), np.concatenate(preds), f"LOSO {corpus}")
        # 2. leave one corpus out
        if len(corpora) > 1:
            for corpus, tr, te in S.loco(clips):
                h = train_on(tr, seed)
                P, sub = predict_windows([h], clean, te)
                figures[f"loco-to-{corpus}"] = scores(clips, te, clip_means(sub, te, P[0], min_v), f"trained without {corpus}, tested on it")
        # 3. nested speaker folds: held-out ensemble mean/spread for sigma calibration + robustness
        robust_kinds = ["gain-20", "gain+6", "band8k", "noise20", "noise10"]
        robust_sets = {k: feature_set(clips, cfg, k, 0, args.cache) for k in robust_kinds}
        folds = S.speaker_folds(clips, folds_k, seed)
        win_err, win_spread, win_fold = [], [], []
        clip_pred, clip_spread, clip_idx_all = [], [], []
        robust_pred = {k: [] for k in robust_kinds}
        for fi, fold in enumerate(folds):
            te = S.in_speakers(clips, fold)
            inner = [f for j, f in enumerate(folds) if j != fi]
            members = []
            for ii, f2 in enumerate(inner):
                tr = S.not_in_speakers(clips, fold + f2)
                members.append(train_on(tr, seed + 1 + ii))
            P, sub = predict_windows(members, clean, te)
            m, s = P.mean(0), P.std(0)
            v = sub["vfrac"] >= min_v
            win_err.append((m - win.Y[sub["clip"]])[v])
            win_spread.append(s[v])
            win_fold.append(np.full(v.sum(), fi))
            clip_pred.append(clip_means(sub, te, m, min_v))
            clip_spread.append(clip_means(sub, te, s, min_v))
            clip_idx_all.append(te)
            for k in robust_kinds:
                Pk, subk = predict_windows(members, robust_sets[k], te)
                robust_pred[k].append(clip_means(subk, te, Pk.mean(0), min_v))
            log(f"  nested fold {fi + 1}/{len(folds)} done ({time.time() - t0:.0f}s)")
        err, spread, wf = np.concatenate(win_err), np.concatenate(win_spread), np.concatenate(win_fold)
        # coverage of the calibration, measured fold by fold on folds the calibration did not see
        cov_hits = np.zeros_like(err, dtype=bool)
        for fi in range(len(folds)):
            a, b = fit_sigma(err[wf != fi], spread[wf != fi])
            cov_hits[wf == fi] = np.abs(err[wf == fi]) <= a + b * spread[wf == fi]
        a, b = fit_sigma(err, spread)
        calib = {"a": a.tolist(), "b": b.tolist()}
        ci = np.concatenate(clip_idx_all)
        cp, cs = np.concatenate(clip_pred), np.concatenate(clip_spread)
        sig_clip = a + b * cs
        figures["speaker-folds"] = scores(clips, ci, cp, f"{len(folds)}-fold speakers, ensemble of {len(folds) - 1}", sigma=sig_clip)
        figures["speaker-folds"]["window_valence_coverage1sigma"] = float(cov_hits[:, 0].mean())
        figures["speaker-folds"]["window_arousal_coverage1sigma"] = float(cov_hits[:, 1].mean())
        figures["speaker-folds"]["windows"] = int(len(err))
        log(f"  window coverage of +-1 sigma (cross-calibrated): valence {cov_hits[:, 0].mean():.3f}, arousal {cov_hits[:, 1].mean():.3f}")
        for k in robust_kinds:
            rp = np.concatenate(robust_pred[k])
            r = scores(clips, ci, rp, f"robustness {k}")
            r["max_abs_change_valence"] = float(np.abs(rp[:, 0] - cp[:, 0]).max())
            r["max_abs_change_arousal"] = float(np.abs(rp[:, 1] - cp[:, 1]).max())
            r["mean_abs_change_valence"] = float(np.abs(rp[:, 0] - cp[:, 0]).mean())
            r["mean_abs_change_arousal"] = float(np.abs(rp[:, 1] - cp[:, 1]).mean())
            figures[f"robust-{k}"] = r

    # 4. the shipped ensemble: one member per speaker fold
    folds = S.speaker_folds(clips, folds_k, seed)
    members = [train_on(S.not_in_speakers(clips, f), seed + 100 + i) for i, f in enumerate(folds)]
    if calib is None:  # quick: calibrate on each member's own held-out fold (no nested spread)
        errs, spr = [], []
        for h, f in zip(members, folds):
            te = S.in_speakers(clips, f)
            P, sub = predict_windows(members, clean, te)
            own = predict_windows([h], clean, te)[0][0]
            v = sub["vfrac"] >= min_v
            errs.append((own - win.Y[sub["clip"]])[v])
            spr.append(P.std(0)[v])
        a, b = fit_sigma(np.concatenate(errs), np.concatenate(spr))
        calib = {"a": a.tolist(), "b": b.tolist()}
    log(f"sigma = a + b * spread: a={np.round(calib['a'], 3).tolist()} b={np.round(calib['b'], 3).tolist()}")
    X_all = clean["feats"][clean["vfrac"] >= min_v]
    run = {
        "config": cfg, "quick": args.quick, "heldOutSpeakers": held, "folds": folds, "calibration": calib,
        "figures": figures, "clips": len(clips), "speakers": len(S.speakers_of(clips)),
        "corpora": corpora_desc, "seconds": round(time.time() - t0, 1),
        "embedding": {"mu": X_all.mean(0).tolist(), "sd": (X_all.std(0) + 1e-6).tolist()},
        "trainingItems": {c: sum(1 for x in clips if x.corpus == c) for c in S.corpora_of(clips)},
    }
    from .export import export

    export(members, run, args.out, write_card=not args.quick and not held)
    log(f"done in {time.time() - t0:.0f}s -> {args.out}")


def compare_heads(clips, cfg, win, clean, min_v, seed):
    """Speaker-fold CV (same folds as the ensemble) of the candidate heads; prints one line per head."""
    folds = S.speaker_folds(clips, cfg["ensemble"]["folds"], seed)
    cands = [
        {"kind": "ridge", "alpha": 10.0},
        {"kind": "ridge", "alpha": 100.0},
        dict(cfg["head"], hidden=32),
        dict(cfg["head"]),
        dict(cfg["head"], hidden=128),
        dict(cfg["head"], cccWeight=0.0),
    ]
    for hc in cands:
        preds, idxs = [], []
        for f in folds:
            te = S.in_speakers(clips, f)
            X, Y, W = win.train_arrays(S.not_in_speakers(clips, f))
            h = fit_head(X, Y, W, hc, seed)
            P, sub = predict_windows([h], clean, te)
            preds.append(clip_means(sub, te, P[0], min_v))
            idxs.append(te)
        ci, cp = np.concatenate(idxs), np.concatenate(preds)
        for corpus in S.corpora_of(clips):
            sel = np.array([clips[i].corpus == corpus for i in ci])
            scores(clips, ci[sel], cp[sel], f"{json.dumps(hc, sort_keys=True)} {corpus}")


if __name__ == "__main__":
    main()
