"""Speaker-independent splits as code (every figure in the card comes from one of these).

All functions take the clip list and return index arrays; speakers are corpus-qualified
(`emodb:03`, `ravdess:01`), so a split never mixes two people up.
"""
from __future__ import annotations

import numpy as np

from .data import Clip


def speakers_of(clips: list[Clip], corpus: str | None = None) -> list[str]:
    return sorted({c.speaker for c in clips if corpus is None or c.corpus == corpus})


def corpora_of(clips: list[Clip]) -> list[str]:
    return sorted({c.corpus for c in clips})


def _idx(clips: list[Clip], pred) -> np.ndarray:
    return np.array([i for i, c in enumerate(clips) if pred(c)], dtype=np.int64)


def loso(clips: list[Clip], corpus: str):
    """Leave one speaker of `corpus` out; the model trains on every other clip of every corpus."""
    for spk in speakers_of(clips, corpus):
        yield spk, _idx(clips, lambda c: c.speaker != spk), _idx(clips, lambda c: c.speaker == spk)


def loco(clips: list[Clip]):
    """Leave one corpus out: train on the others, test on it."""
    for corpus in corpora_of(clips):
        yield corpus, _idx(clips, lambda c: c.corpus != corpus), _idx(clips, lambda c: c.corpus == corpus)


def holdout_speakers(clips: list[Clip], per_corpus: int) -> list[str]:
    """The first `per_corpus` speakers (sorted ids) of each corpus: the quick split's unseen people."""
    out: list[str] = []
    for corpus in corpora_of(clips):
        out += speakers_of(clips, corpus)[:per_corpus]
    return out


def speaker_folds(clips: list[Clip], k: int, seed: int) -> list[list[str]]:
    """k groups of speakers, each corpus dealt round-robin after a seeded shuffle (so every fold holds
    speakers of every corpus when it has at least k of them)."""
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    start = 0
    for corpus in corpora_of(clips):
        spk = speakers_of(clips, corpus)
        order = rng.permutation(len(spk))
        for j, o in enumerate(order):
            folds[(start + j) % k].append(spk[o])
        start += len(spk)
    return [f for f in folds if f]


def in_speakers(clips: list[Clip], speakers) -> np.ndarray:
    s = set(speakers)
    return _idx(clips, lambda c: c.speaker in s)


def not_in_speakers(clips: list[Clip], speakers) -> np.ndarray:
    s = set(speakers)
    return _idx(clips, lambda c: c.speaker not in s)
