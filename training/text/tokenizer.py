"""The text-emobank tokenizer in Python, written to match transformers.js (@huggingface/tokenizers 0.2)
running the tokenizer.json this module writes, id for id (test/fixtures/golden/text-emobank-tokens.json
is the proof, checked by a vitest test):

1. added (special) tokens written literally in the text ("[UNK]") are split out first;
2. BertNormalizer(clean_text, handle_chinese_chars, lowercase, strip_accents=None -> strip):
   drop NUL, U+FFFD and control/format/private/surrogate characters (keeping \t \n \r), JS-\s -> space,
   pad BMP CJK ideographs with spaces, JS toLowerCase, NFD and drop non-spacing marks (Mn);
3. BertPreTokenizer: trim, then runs of non-space non-punctuation, or single punctuation characters
   (Unicode P* plus the ASCII symbol ranges);
4. WordPiece with no `##` pieces, i.e. a word level lookup: a word is its id or [UNK];
5. TemplateProcessing: [CLS] words [SEP]; transformers.js truncation keeps the first max_length ids.
"""
from __future__ import annotations

import json
import re
import unicodedata

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4

# ECMAScript \s (WhiteSpace + LineTerminator)
JS_SPACE = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {chr(c) for c in range(0x2000, 0x200B)}
_ASCII_PUNCT = {chr(c) for r in ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)) for c in range(r[0], r[1] + 1)}
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in sorted(SPECIALS, key=len, reverse=True)) + ")")


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_cjk_bmp(cp: int) -> bool:
    # transformers.js tests each UTF-16 unit, so only the BMP ranges ever match
    return 19968 <= cp <= 40959 or 13312 <= cp <= 19903 or 63744 <= cp <= 64255


def normalize(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if ch in JS_SPACE else ch)
    text = "".join(out)
    text = "".join(f" {ch} " if _is_cjk_bmp(ord(ch)) else ch for ch in text)
    text = text.lower()
    text = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def pre_tokenize(text: str) -> list[str]:
    # JS String.prototype.trim removes the same set as \s
    i, j = 0, len(text)
    while i < j and text[i] in JS_SPACE:
        i += 1
    while j > i and text[j - 1] in JS_SPACE:
        j -= 1
    words: list[str] = []
    cur: list[str] = []
    for ch in text[i:j]:
        if ch in JS_SPACE:
            if cur:
                words.append("".join(cur))
                cur = []
        elif _is_punct(ch):
            if cur:
                words.append("".join(cur))
                cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


def words_of(text: str) -> list[str]:
    """Normalised words of a text (specials written in the text kept as they are)."""
    out: list[str] = []
    for part in _SPECIAL_RE.split(text):
        if not part:
            continue
        if part in SPECIALS:
            out.append(part)
            continue
        n = normalize(part)
        if n:
            out.extend(pre_tokenize(n))
    return out


class Tokenizer:
    def __init__(self, vocab: list[str]):
        assert vocab[: len(SPECIALS)] == SPECIALS
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        ids = [CLS]
        for w in words_of(text):
            ids.append(self.index.get(w, UNK) if len(w) <= 100 else UNK)
        ids.append(SEP)
        return ids[:max_length] if max_length else ids

    def to_json(self) -> dict:
        added = [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, s in enumerate(SPECIALS)
        ]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [
                    {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                    {"Sequence": {"id": "B", "type_id": 1}},
                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}},
                ],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [CLS], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [SEP], "tokens": ["[SEP]"]}},
            },
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {
                "type": "WordPiece",
                "unk_token": "[UNK]",
                "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": {w: i for i, w in enumerate(self.vocab)},
            },
        }

    def write(self, folder: str, max_length: int) -> None:
        with open(f"{folder}/tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, separators=(",", ":"))
        cfg = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": True,
            "model_max_length": max_length,
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "unk_token": "[UNK]",
            "mask_token": "[MASK]",
        }
        with open(f"{folder}/tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
