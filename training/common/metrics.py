"""Agreement metrics used by every recipe and model card (numpy only).

CCC is Lin's concordance correlation coefficient (population moments), the metric the issue's
targets are stated in; Pearson r, RMSE, MAE, a rank AUC and the coverage of +-1 reported sigma.
"""
from __future__ import annotations

import numpy as np


def _pair(y_true, y_pred):
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: {t.shape} vs {p.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("non-finite values in metric input")
    return t, p


def ccc(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    mt, mp = t.mean(), p.mean()
    vt, vp = t.var(), p.var()
    cov = ((t - mt) * (p - mp)).mean()
    den = vt + vp + (mt - mp) ** 2
    return float(2 * cov / den) if den > 0 else 0.0


def pearson(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    st, sp = t.std(), p.std()
    if st == 0 or sp == 0:
        return 0.0
    return float(((t - t.mean()) * (p - p.mean())).mean() / (st * sp))


def rmse(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(((t - p) ** 2).mean()))


def mae(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.abs(t - p).mean())


def auc(positive_scores, negative_scores) -> float:
    """P(score of a random positive > score of a random negative), ties count half."""
    pos = np.asarray(positive_scores, dtype=np.float64).ravel()
    neg = np.asarray(negative_scores, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("auc needs positives and negatives")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty_like(order, dtype=np.float64)
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: pos.size].sum()
    return float((r_pos - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def coverage(y_true, y_pred, sigma, k: float = 1.0) -> float:
    """Fraction of targets within +-k reported sigma of the prediction (0.683 for a calibrated Gaussian at k=1)."""
    t, p = _pair(y_true, y_pred)
    s = np.asarray(sigma, dtype=np.float64).ravel()
    return float((np.abs(t - p) <= k * s).mean())


def summary(y_true, y_pred, sigma=None) -> dict:
    """n, pearson, ccc, rmse, mae (and coverage1sigma) for one dimension."""
    t, p = _pair(y_true, y_pred)
    out = {"n": int(t.size), "pearson": pearson(t, p), "ccc": ccc(t, p), "rmse": rmse(t, p), "mae": mae(t, p)}
    if sigma is not None:
        out["coverage1sigma"] = coverage(t, p, sigma)
    return out
