"""EmoBank and user CSVs -> (texts, targets in [-1, 1], presence mask of the three dimensions)."""
from __future__ import annotations

import csv
import math
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.environ.get("CIRCUMPLEX_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
EMOBANK = os.path.join(DATA_DIR, "emobank", "emobank.csv")
DIMS = ("valence", "arousal", "dominance")


class DataError(Exception):
    pass


def load_emobank(split: str, path: str = EMOBANK) -> tuple[list[str], np.ndarray]:
    """EmoBank rows of one split; V, A, D (1..5) mapped with (x - 3) / 2."""
    if not os.path.exists(path):
        raise DataError(f"{path} not found: put the shared data at <repo>/../shared/data or set CIRCUMPLEX_DATA_DIR")
    texts, ys = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["split"] != split:
                continue
            texts.append(row["text"])
            ys.append([(float(row[k]) - 3.0) / 2.0 for k in ("V", "A", "D")])
    if not texts:
        raise DataError(f"{path}: no rows with split={split}")
    return texts, np.asarray(ys, dtype=np.float32)


def load_user_csv(path: str, scale: tuple[float, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A CSV `text,valence,arousal[,dominance]` rated on [lo, hi]; returns texts, targets in [-1, 1]
    and a mask (dominance 0 where the column is absent or empty)."""
    lo, hi = scale
    if not hi > lo:
        raise DataError(f"--scale {lo},{hi}: the high end must be above the low end")
    texts, ys, mask = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        for need in ("text", "valence", "arousal"):
            if need not in cols:
                raise DataError(f"{path}: no '{need}' column (header must be text,valence,arousal[,dominance])")
        has_d = "dominance" in cols
        for n, row in enumerate(reader, start=2):
            y, m = [], []
            for k in DIMS:
                raw = (row.get(k) or "").strip() if (k != "dominance" or has_d) else ""
                if k == "dominance" and raw == "":
                    y.append(0.0)
                    m.append(0.0)
                    continue
                try:
                    v = float(raw)
                except ValueError:
                    raise DataError(f"{path} row {n}: {k} '{raw}' is not a number") from None
                if not math.isfinite(v) or v < lo or v > hi:
                    raise DataError(f"{path} row {n}: {k} {raw} is outside the scale {lo},{hi} (pass the right --scale)")
                y.append((v - lo) / (hi - lo) * 2.0 - 1.0)
                m.append(1.0)
            texts.append(row["text"] or "")
            ys.append(y)
            mask.append(m)
    if not texts:
        raise DataError(f"{path}: no rows")
    return texts, np.asarray(ys, dtype=np.float32), np.asarray(mask, dtype=np.float32)
