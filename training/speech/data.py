"""Labelled speech clips: EmoDB, RAVDESS (../shared/data) and a user's own CSV.

Every clip becomes a `Clip` with its corpus, a corpus-qualified speaker id and the valence/arousal
target in [-1, 1]. EmoDB targets are the per-emotion table of ../shared/data/README.md (used exactly);
RAVDESS targets are the `valence`/`arousal` columns of its labels.csv (made by the same rule).
A user CSV is `file,valence,arousal[,speaker]` with paths relative to the CSV, so a company can
train on recordings it owns instead of the research-only / non-commercial corpora.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

# ../shared/data/README.md, "Valence/arousal targets for the EmoDB categories" (exactly).
EMODB_TARGETS: dict[str, tuple[float, float]] = {
    "anger": (-0.127, 0.790),
    "fear": (-0.361, 0.714),
    "happiness": (0.726, 0.337),
    "disgust": (-0.693, 0.400),
    "sadness": (-0.710, -0.369),
    "boredom": (-0.377, -0.706),
    "neutral": (0.0, 0.0),
}

# The arousal AUC: angry/fearful/happy/surprised vs sad/bored/calm/neutral (disgust left out).
HIGH_AROUSAL = {"anger", "angry", "fear", "fearful", "happiness", "happy", "surprised"}
LOW_AROUSAL = {"sadness", "sad", "boredom", "bored", "calm", "neutral"}


@dataclass(frozen=True)
class Clip:
    path: str
    corpus: str
    speaker: str  # corpus-qualified, e.g. "emodb:03"
    valence: float
    arousal: float
    emotion: str = ""


def data_root() -> str:
    """../shared/data relative to the repo root, or $CIRCUMPLEX_DATA_DIR."""
    env = os.environ.get("CIRCUMPLEX_DATA_DIR")
    if env:
        return os.path.abspath(env)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.abspath(os.path.join(repo, "..", "shared", "data"))


def _need(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{what} not found at {path}: put the shared data at ../shared/data next to the repo "
            f"(or set CIRCUMPLEX_DATA_DIR), or train on your own data with --data my.csv"
        )


def load_emodb(root: str | None = None) -> list[Clip]:
    base = os.path.join(root or data_root(), "emodb")
    labels = os.path.join(base, "labels.csv")
    _need(labels, "EmoDB labels.csv")
    out = []
    with open(labels, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            emo = row["emotion"]
            if emo not in EMODB_TARGETS:
                raise ValueError(f"{labels} row {i}: unknown emotion {emo!r}")
            v, a = EMODB_TARGETS[emo]
            out.append(Clip(os.path.join(base, "wav", row["file"]), "emodb", f"emodb:{row['speaker']}", v, a, emo))
    return out


def load_ravdess(root: str | None = None) -> list[Clip]:
    base = os.path.join(root or data_root(), "ravdess")
    labels = os.path.join(base, "labels.csv")
    _need(labels, "RAVDESS labels.csv")
    out = []
    with open(labels, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.append(
                Clip(
                    os.path.join(base, "flac", row["file"]), "ravdess", f"ravdess:{row['actor']}",
                    float(row["valence"]), float(row["arousal"]), row["emotion"],
                )
            )
    return out


def load_user_csv(csv_path: str) -> list[Clip]:
    """`file,valence,arousal[,speaker]`, values in [-1, 1], files relative to the CSV (WAV/FLAC, 16 kHz mono)."""
    csv_path = os.path.abspath(csv_path)
    _need(csv_path, "user CSV")
    base = os.path.dirname(csv_path)
    out = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "valence", "arousal"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: header needs file,valence,arousal[,speaker]; missing {sorted(missing)}")
        for i, row in enumerate(reader, start=2):
            p = os.path.join(base, row["file"])
            if not os.path.exists(p):
                raise ValueError(f"{csv_path} row {i}: file {row['file']} not found (paths are relative to the CSV)")
            try:
                v, a = float(row["valence"]), float(row["arousal"])
            except ValueError:
                raise ValueError(f"{csv_path} row {i}: valence/arousal must be numbers in [-1, 1]") from None
            if not (np.isfinite(v) and np.isfinite(a) and -1 <= v <= 1 and -1 <= a <= 1):
                raise ValueError(f"{csv_path} row {i}: valence/arousal must be in [-1, 1]")
            spk = (row.get("speaker") or "").strip() or os.path.splitext(os.path.basename(p))[0]
            out.append(Clip(p, "user", f"user:{spk}", v, a, ""))
    if not out:
        raise ValueError(f"{csv_path}: no rows")
    return out


def read_audio(path: str) -> np.ndarray:
    """Mono float32 at 16 kHz in [-1, 1] (other rates resampled)."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1).astype(np.float32)
    if sr != SAMPLE_RATE:
        # The EmoDB snapshot in ../shared/data is 22.05 kHz (its README says 16 kHz); the runtime
        # resamples such files too (streams/audio.ts), so training does the same here.
        import torch
        import torchaudio.functional as AF

        x = AF.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy().astype(np.float32)
    return x


def windows(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """[n, window] windows at `hop`; a clip shorter than one window is zero-padded at the end (as the runtime does)."""
    if len(x) < window:
        y = np.zeros(window, dtype=np.float32)
        y[: len(x)] = x
        return y[None, :]
    n = 1 + (len(x) - window) // hop
    idx = np.arange(window)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]
