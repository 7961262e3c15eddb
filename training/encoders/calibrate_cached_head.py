"""Fit a regression head for the `cached` (compute-once) streaming mode's pooled states (issue 14).

In the cached mode a window's pooled state is the mean of frames that were each computed without
the audio to their right (models/streaming-speech.ts), so the model's own head, trained on
full-window states, reads it wrongly. This recipe distils the full-window path into a second head
for those states: the model's head (dense, tanh, out D x 3) initialised from it, its dense layer
widened to also read the window's span means (the window cut into K equal spans, default 4, each
span's mean last hidden state: where in the window a state sits tells how much right context it
lacked), trained to give the full-window logits. No labels are needed, only speech: the pairs come
from running both paths over any audio with

    npx tsx bench/encoders-tolerance.ts --models-dir DIR --id ID --audio speech.wav --hop 3840 \\
      --windows 0 --recompute 0 --dump pairs.jsonl

(`--windows 0`: every window the audio holds). The head is fitted for that hop and that
`recomputeFrames`, and the runtime uses it only for them (cached-head.json records both).

Writes, next to the model's step.onnx:

    streaming/cached-head.onnx   pooled [batch, D], span_means [batch, K, D] -> logits [batch, 3],
                                 hidden_states [batch, D] (the corrected pooled state, a ridge map
                                 from the same inputs: the embedding the learned fusion reads)
    streaming/cached-head.json   what it was fitted for and on, recipe, seed, sha256, and the
                                 deviation from the full-window logits on the held-back windows

Every fifth block of 100 windows (`--validation-fraction`, `--block`: contiguous blocks, so mostly
other clips than the fitted ones, spread over the whole audio) is held back from fitting and only
measured. The recipe is fixed (no selection on the held-back windows); the record says whether the head is
nearer the full window than the model's head on every output there (`heldBackImproves`), and the
runtime's `auto` does not use a head that is not. Run with Debian's /usr/bin/python3 from the repo root:

    /usr/bin/python3 -m training.encoders.calibrate_cached_head --pairs pairs.jsonl --model DIR/ID
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from training.common.card import sha256_file
from training.encoders.export_standins import export

SCHEMA = "circumplex.cached-head/1"


def fail(msg: str) -> None:
    print(f"calibrate_cached_head: {msg}", file=sys.stderr)
    raise SystemExit(2)


def read_pairs(path: str) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs file: a header line, then one line per window (full-window and streamed pooled states,
    and the streamed window's span means)."""
    if not os.path.exists(path):
        fail(f"--pairs {path}: not found; write it with bench/encoders-tolerance.ts --dump (see --help)")
    header, win, full, stream, spans = None, [], [], [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"--pairs {path}:{n}: not JSON ({e})")
            if r.get("type") == "header":
                header = r
                continue
            if header is None:
                fail(f"--pairs {path}:{n}: no header line before the windows; write the file with bench/encoders-tolerance.ts --dump")
            try:
                win.append(int(r["window"]))
                full.append(np.asarray(r["full"]["embedding"], dtype=np.float32))
                stream.append(np.asarray(r["stream"]["embedding"], dtype=np.float32))
                spans.append(np.asarray(r["stream"].get("spanMeans", []), dtype=np.float32))
            except (KeyError, TypeError, ValueError) as e:
                fail(f"--pairs {path}:{n}: field {e} missing or malformed (window, full.embedding, stream.embedding, stream.spanMeans)")
    if header is None or not win:
        fail(f"--pairs {path}: no windows")
    for k in ("id", "hopSamples", "recomputeFrames", "spans", "inputNormalization"):
        if k not in header:
            fail(f"--pairs {path}: header lacks {k!r}; rewrite it with bench/encoders-tolerance.ts --dump")
    d = {len(x) for x in full} | {len(x) for x in stream}
    if len(d) != 1:
        fail(f"--pairs {path}: pooled states of different widths {sorted(d)}")
    k = int(header["spans"])
    width = k * next(iter(d))
    bad = next((i for i, x in enumerate(spans) if len(x) != width), None)
    if bad is not None:
        fail(f"--pairs {path}: window {win[bad]} has {len(spans[bad])} span-mean values, expected {k} spans x {next(iter(d))}")
    return header, np.array(win), np.stack(full), np.stack(stream), np.stack(spans) if width else np.zeros((len(win), 0), dtype=np.float32)


def read_head(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """dense W [D, D], b [D], out W [3, D], b [3] of a Gemm -> Tanh -> Gemm head.onnx (torch's layout: y = x W^T + b)."""
    if not os.path.exists(path):
        fail(f"{path}: not found; the model's split graphs (streaming/head.onnx) come from training/encoders/export_standins.py")
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    ops = [n.op_type for n in m.graph.node]
    if ops != ["Gemm", "Tanh", "Gemm"]:
        fail(f"{path}: expected a Gemm -> Tanh -> Gemm head (the export's RegressionHead), found {ops}")
    mats = []
    for node in (m.graph.node[0], m.graph.node[2]):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w, b = init.get(node.input[1]), init.get(node.input[2])
        if w is None or b is None:
            fail(f"{path}: the Gemm weights are not initializers")
        mats += [w if attrs.get("transB", 0) == 1 else w.T, b]
    return tuple(mats)  # type: ignore[return-value]


class Head(torch.nn.Module):
    """The model's head (dense, tanh, out) on the pooled state, with the `spans` span means as extra
    inputs of the dense layer (their weights start at zero: at initialisation this is the model's head)."""

    def __init__(self, dw, db, ow, ob, spans: int = 0) -> None:
        super().__init__()
        d = dw.shape[1]
        self.spans = spans
        self.dense = torch.nn.Linear(d * (1 + spans), dw.shape[0])
        self.out_proj = torch.nn.Linear(ow.shape[1], ow.shape[0])
        with torch.no_grad():
            self.dense.weight.zero_()
            self.dense.weight[:, :d] = torch.from_numpy(np.array(dw))
            self.dense.bias.copy_(torch.from_numpy(np.array(db)))
            self.out_proj.weight.copy_(torch.from_numpy(np.array(ow)))
            self.out_proj.bias.copy_(torch.from_numpy(np.array(ob)))

    def features(self, pooled: torch.Tensor, span_means: torch.Tensor | None) -> torch.Tensor:
        return pooled if not self.spans else torch.cat([pooled, span_means.reshape(pooled.shape[0], -1)], dim=1)

    def forward(self, pooled: torch.Tensor, span_means: torch.Tensor | None = None) -> torch.Tensor:
        return self.out_proj(torch.tanh(self.dense(self.features(pooled, span_means))))


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> torch.nn.Linear:
    """Closed-form ridge regression y ~ x (intercept unpenalised) as a Linear layer."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = (x - xm).astype(np.float64), (y - ym).astype(np.float64)
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)  # [in, out]
    lin = torch.nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
        lin.bias.copy_(torch.from_numpy((ym - xm @ w).astype(np.float32)))
    return lin


class WithEmbedding(torch.nn.Module):
    """The exported graph: the cached head's logits and the corrected pooled state (`hidden_states`)."""

    def __init__(self, head: "Head", emb: torch.nn.Linear) -> None:
        super().__init__()
        self.head, self.emb = head, emb

    def forward(self, pooled: torch.Tensor, span_means: torch.Tensor | None = None):
        return self.head(pooled, span_means), self.emb(self.head.features(pooled, span_means))


def fit(model: torch.nn.Module, inputs: list, target: torch.Tensor, epochs: int, lr: float, weight_decay: float, batch: int) -> torch.nn.Module:
    """The recipe's training loop: MSE to `target`, Adam, shuffled batches (torch's global RNG, so seed
    first); an input that is None is passed as None. Returns the model in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(target)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            loss = ((model(*[x[b] if x is not None else None for x in inputs]) - target[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def embedding_deviation(pred: np.ndarray, target: np.ndarray) -> dict:
    """Cosine (mean, min) and relative error |pred - target| / |target| (mean) of pooled states."""
    cos = (pred * target).sum(axis=1) / (np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1) + 1e-12)
    rel = np.linalg.norm(pred - target, axis=1) / (np.linalg.norm(target, axis=1) + 1e-12)
    return {"cosineMean": round(float(cos.mean()), 5), "cosineMin": round(float(cos.min()), 5), "relativeErrorMean": round(float(rel.mean()), 5)}


def deviation(pred: np.ndarray, target: np.ndarray) -> dict:
    """Mean and max |Δ| per logit, and over the logits' sd (read a deviation against the outputs' spread)."""
    d = np.abs(pred - target)
    sd = target.std(axis=0)
    return {
        "meanAbsDiff": [round(float(x), 5) for x in d.mean(axis=0)],
        "maxAbsDiff": [round(float(x), 5) for x in d.max(axis=0)],
        "meanOverSd": [round(float(x), 4) for x in d.mean(axis=0) / np.maximum(sd, 1e-12)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--pairs", required=True, help="JSONL from bench/encoders-tolerance.ts --dump (one --recompute value)")
    ap.add_argument("--model", required=True, help="the model folder (holding streaming/head.onnx and step.onnx)")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validation-fraction", type=float, default=0.2, help="windows held back from fitting and only measured: every (1/fraction)-th block of --block windows")
    ap.add_argument("--block", type=int, default=100, help="windows per block of the held-back split (100 at a 240 ms hop: 24 s of audio)")
    ap.add_argument("--embedding-ridge", type=float, default=1.0, help="ridge penalty of the corrected pooled state's linear map")
    ap.add_argument("--opset", type=int, default=14)
    a = ap.parse_args(argv)
    if not 0 <= a.validation_fraction <= 0.5:
        ap.error("--validation-fraction must be in [0, 0.5]")
    if a.block < 1:
        ap.error("--block must be >= 1")
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    t0 = time.time()

    header, win, full, stream, spans = read_pairs(a.pairs)
    K = int(header["spans"])
    sdir = os.path.join(a.model, "streaming")
    dw, db, ow, ob = read_head(os.path.join(sdir, "head.onnx"))
    if not os.path.exists(os.path.join(sdir, "step.onnx")):
        fail(f"{sdir}/step.onnx: not found; the cached head belongs to the cached mode's step graph (export_standins.py writes it)")
    D = full.shape[1]
    if dw.shape != (D, D) or ow.shape[1] != D:
        fail(f"{sdir}/head.onnx is {dw.shape[1]} wide but the pairs' pooled states are {D} wide: the pairs come from another model")
    keep = win > 0  # a stream's first window is computed whole (exact): nothing to learn there
    full, stream, spans = full[keep], stream[keep], spans[keep]
    n = len(full)
    if n < 50:
        fail(f"--pairs {a.pairs}: {n} windows after the first; fit on at least 50 (a few minutes of speech)")
    head0 = Head(dw, db, ow, ob).eval()
    with torch.no_grad():
        target = head0(torch.from_numpy(full)).numpy()  # the full-window logits (the model's head on the full state)
        before = head0(torch.from_numpy(stream)).numpy()
    S = torch.from_numpy(spans.reshape(len(spans), K, D)) if K else None
    # Held back: every k-th block of --block windows (contiguous blocks, so mostly other clips than the fitted ones,
    # spread over the whole audio, so every corpus and speaker of it is in both parts).
    k = round(1 / a.validation_fraction) if a.validation_fraction > 0 else 0
    held = (np.arange(n) // a.block) % k == k - 1 if k else np.zeros(n, dtype=bool)
    fit_i, val = np.nonzero(~held)[0], np.nonzero(held)[0]
    n_fit = len(fit_i)
    if a.validation_fraction > 0 and len(val) == 0:
        log(f"[calibrate] warning: {n} windows make fewer than {k} blocks of {a.block}: nothing held back, so no held-back figures (use a smaller --block)")
    X = torch.from_numpy(stream[fit_i])
    XS = S[fit_i] if S is not None else None
    Y = torch.from_numpy(target[fit_i])
    m = fit(Head(dw, db, ow, ob, K), [X, XS], Y, a.epochs, a.lr, a.weight_decay, a.batch)
    with torch.no_grad():
        after = m(torch.from_numpy(stream), S).numpy()
    fig = {
        "fitWindows": int(n_fit),
        "heldBackWindows": int(n - n_fit),
        "logitOrder": "the model's logits (wav2vec2-msp-dim: arousal, dominance, valence on [0, 1])",
        "heldBack": {"modelHead": deviation(before[val], target[val]), "cachedHead": deviation(after[val], target[val])} if len(val) else None,
        "fit": {"modelHead": deviation(before[fit_i], target[fit_i]), "cachedHead": deviation(after[fit_i], target[fit_i])},
    }
    # The pooled state passed on as the embedding (the learned fusion reads it): a ridge map from the same
    # inputs to the full window's pooled state, closed form, fitted on the same windows.
    with torch.no_grad():
        feats = m.features(torch.from_numpy(stream), S).numpy()  # the head's own input layout, as exported
    emb = ridge(feats[fit_i], full[fit_i], a.embedding_ridge)
    with torch.no_grad():
        corrected = emb(torch.from_numpy(feats)).numpy()
    fig["embedding"] = {
        "heldBack": {"modelHead": embedding_deviation(stream[val], full[val]), "cachedHead": embedding_deviation(corrected[val], full[val])} if len(val) else None,
        "fit": {"modelHead": embedding_deviation(stream[fit_i], full[fit_i]), "cachedHead": embedding_deviation(corrected[fit_i], full[fit_i])},
        "ridge": a.embedding_ridge,
    }
    out = os.path.join(sdir, "cached-head.onnx")
    ins = (torch.from_numpy(stream[:2]),) + ((S[:2],) if S is not None else ())
    names = ["pooled"] + (["span_means"] if S is not None else [])
    outs = ["logits", "hidden_states"]
    export(WithEmbedding(m, emb).eval(), ins, out, names, outs, {n: {0: "batch"} for n in names + outs}, a.opset)
    # Does the head help where it was not fitted? Every logit's held-back deviation and the pooled state's must drop; the runtime's
    # `auto` skips a head that does not (null: nothing held back, so not known).
    hb_fig = fig["heldBack"]
    hb_emb = fig["embedding"]["heldBack"]
    improves = None if hb_fig is None else all(
        c < m for c, m in zip(hb_fig["cachedHead"]["meanAbsDiff"], hb_fig["modelHead"]["meanAbsDiff"])
    ) and hb_emb["cachedHead"]["relativeErrorMean"] < hb_emb["modelHead"]["relativeErrorMean"]
    card = {
        "schema": SCHEMA,
        "graph": "cached-head.onnx",
        "sha256": sha256_file(out),
        "model": header["id"],
        "hiddenDim": int(D),
        "hopSamples": int(header["hopSamples"]),
        "recomputeFrames": int(header["recomputeFrames"]),
        "spans": K,
        "correctsEmbedding": True,
        "inputNormalization": header["inputNormalization"],
        "stepSha256": sha256_file(os.path.join(sdir, "step.onnx")),
        "fittedOn": {"pairs": os.path.basename(a.pairs), "audio": header.get("audio"), "windows": int(n)},
        "recipe": {
            "script": "training/encoders/calibrate_cached_head.py",
            "what": "the model's head (dense, tanh, out) initialised from streaming/head.onnx, its dense layer widened to also read the window's span means (their weights from zero), trained to give the full-window logits from the cached mode's pooled state and span means; MSE, Adam",
            "epochs": a.epochs,
            "lr": a.lr,
            "weightDecay": a.weight_decay,
            "batch": a.batch,
            "seed": a.seed,
            "validationFraction": a.validation_fraction,
            "validationBlock": a.block,
            "torch": torch.__version__,
        },
        "figures": fig,
        "heldBackImproves": improves,
        "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(sdir, "cached-head.json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    hb = fig["heldBack"] or fig["fit"]
    he = fig["embedding"]["heldBack"] or fig["embedding"]["fit"]
    log(
        f"[calibrate] {header['id']}: {n_fit} windows fitted, {n - n_fit} held back; mean |Δ logits| / sd "
        f"{hb['modelHead']['meanOverSd']} -> {hb['cachedHead']['meanOverSd']}, pooled state relative error "
        f"{he['modelHead']['relativeErrorMean']} -> {he['cachedHead']['relativeErrorMean']} (held back); wrote {out}"
    )
    if improves is False:
        log(
            "[calibrate] warning: on the held-back windows the cached head is further from the full window than the model's head for "
            "at least one output (figures above): --speech-cached-head auto will not use it. Fit on more audio (a few minutes at least), "
            "or delete streaming/cached-head.*"
        )
    print(json.dumps(card))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
