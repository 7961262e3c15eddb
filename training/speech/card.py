"""The speech-va model card (models/speech-va/model-card.json + MODEL_CARD.md) from a full training run."""
from __future__ import annotations

import json

from training.common.card import write_card

from .features import SpeechFeatures

LICENSE = "CC-BY-NC-SA-4.0 AND EmoDB-research-only"
LICENSE_NOTES = (
    "Trained on RAVDESS (CC BY-NC-SA 4.0: non-commercial, share-alike; this model is a derived work under the same terms) "
    "and EmoDB (distributed by its authors for research only). Not for commercial use: train your own model on data you own "
    "with `npm run train:speech -- --data my.csv`."
)
DATA = [
    {"name": "EmoDB (Burkhardt et al. 2005)", "license": "research only", "items": 408,
     "citation": "Burkhardt, Paeschke, Rolfes, Sendlmeier, Weiss (2005), A database of German emotional speech, Interspeech"},
    {"name": "RAVDESS speech (Livingstone & Russo 2018)", "license": "CC-BY-NC-SA-4.0", "items": 1200,
     "citation": "Livingstone & Russo (2018), The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS), PLoS ONE"},
]
TARGETS = {("loso", "arousal", "ccc"): 0.85, ("loso", "valence", "ccc"): 0.55, ("loso", "arousal", "auc"): 0.95,
           ("loco", "arousal", "ccc"): 0.60, ("speaker-folds", "valence", "coverage1sigma"): 0.683,
           ("speaker-folds", "arousal", "coverage1sigma"): 0.683}
DESCRIPTIONS = {
    "loso-emodb": "leave one EmoDB speaker out (8 folds); trained on both corpora minus that speaker; per clip = mean of voiced 1 s windows",
    "loso-ravdess": "leave one RAVDESS actor out (20 folds); trained on both corpora minus that actor",
    "loco-to-emodb": "trained on RAVDESS only, tested on all of EmoDB",
    "loco-to-ravdess": "trained on EmoDB only, tested on all of RAVDESS",
    "speaker-folds": "7 speaker folds; each held-out fold predicted by an ensemble of 6 models that never saw it (the shipped model's structure); coverage of +-1 sigma",
}


def _figs(run):
    out = []
    for ev, f in run["figures"].items():
        kind = ev.split("-")[0]
        desc = DESCRIPTIONS.get(ev) or (
            f"held-out speaker folds, clip perturbed ({ev[len('robust-'):]}): gain -20 / +6 dB, 8 kHz band-limit, or additive noise at the SNR in dB"
        )
        for dim in ("valence", "arousal"):
            for metric in ("ccc", "pearson", "rmse", "mae", "auc", "coverage1sigma"):
                key = f"{dim}_{metric}"
                if key not in f:
                    continue
                fig = {"evaluation": ev, "description": desc, "dimension": dim, "metric": metric, "value": float(f[key]), "n": int(f["n"])}
                # coverage's target is for windows (what sigma is calibrated on); per-clip coverage has none
                t = None if (ev == "speaker-folds" and metric == "coverage1sigma") else TARGETS.get((kind if kind != "speaker" else "speaker-folds", dim, metric))
                if t is not None and not ev.startswith("robust"):
                    fig["target"] = t
                out.append(fig)
        if ev == "speaker-folds":
            for dim in ("valence", "arousal"):
                out.append({"evaluation": "speaker-folds-windows", "description": "per 1 s voiced window, sigma calibrated on the other folds",
                            "dimension": dim, "metric": "coverage1sigma", "value": float(f[f"window_{dim}_coverage1sigma"]),
                            "n": int(f["windows"]), "target": 0.683})
    return out


def _row(run, ev, dim, metric):
    f = run["figures"].get(ev, {})
    v = f.get(f"{dim}_{metric}")
    return "–" if v is None else f"{v:.3f}"


def write_speech_card(out_dir, run, parity):
    F = run["figures"]
    headline = []
    loso = [k for k in F if k.startswith("loso-")]
    if loso:
        names = " / ".join(k[5:] for k in loso)
        headline.append("arousal CCC " + " / ".join(f"{F[k]['arousal_ccc']:.2f}" for k in loso) + f" (LOSO {names})")
        headline.append("valence CCC " + " / ".join(f"{F[k]['valence_ccc']:.2f}" for k in loso) + " (LOSO)")
    loco = [k for k in F if k.startswith("loco-")]
    if loco:
        headline.append("arousal CCC " + " / ".join(f"{F[k]['arousal_ccc']:.2f}" for k in loco) + " (cross-corpus: " + ", ".join("to " + k[8:] for k in loco) + ")")
    user = run.get("corpora") is not None
    cfg = run["config"]
    card = {
        "id": "speech-va", "role": "speech",
        "license": "user-supplied data: see its licence" if user else LICENSE,
        "licenseNotes": "Trained with --data on the user's own recordings; the weights carry that data's terms." if user else LICENSE_NOTES,
        "data": run["corpora"] if user else DATA,
        "recipe": {"command": "npm run train:speech", "seed": cfg["seed"], "config": cfg},
        "files": ["model.onnx"], "figures": _figs(run), "headline": headline,
        "figuresCommand": "npm run train:speech (figures printed to stderr and written to the card)",
    }
    rows = []
    labels = {"loso-emodb": "LOSO EmoDB (8 speakers)", "loso-ravdess": "LOSO RAVDESS (20 actors)",
              "loco-to-ravdess": "EmoDB -> RAVDESS", "loco-to-emodb": "RAVDESS -> EmoDB",
              "speaker-folds": f"{len(run['folds'])} speaker folds, ensemble"}
    order = [k for k in labels if k in F] + [k for k in F if k not in labels and not k.startswith("robust-")]
    for ev, label in [(k, labels.get(k, k)) for k in order]:
        rows.append(f"| {label} | {_row(run, ev, 'arousal', 'ccc')} | {_row(run, ev, 'valence', 'ccc')} | {_row(run, ev, 'arousal', 'auc')} | "
                    f"{_row(run, ev, 'arousal', 'pearson')} | {_row(run, ev, 'valence', 'pearson')} | {F.get(ev, {}).get('n', '–')} |")
    rob = []
    for ev, f in F.items():
        if ev.startswith("robust-"):
            rob.append(f"| {ev[len('robust-'):]} | {f['arousal_ccc']:.3f} | {f['valence_ccc']:.3f} | {f['mean_abs_change_arousal']:.3f} / {f['max_abs_change_arousal']:.3f} | "
                       f"{f['mean_abs_change_valence']:.3f} / {f['max_abs_change_valence']:.3f} |")
    sf = F.get("speaker-folds", {})
    cal = run["calibration"]
    if user:
        targets_md = "Targets: the valence/arousal columns of " + ", ".join(d["name"] for d in run["corpora"]) + " (values in [-1, 1])."
        limits_md = (
            "- Figures are speaker-independent within the supplied data only; a new recording setup is a new corpus.\n"
            "- The baselines and targets quoted above refer to EmoDB/RAVDESS, not to this data."
        )
    else:
        targets_md = (
            "Targets: EmoDB per-emotion table of ../shared/data/README.md (Russell angle, radius 0.8), RAVDESS\n"
            "labels.csv columns (same rule, radius 0.6/0.8 by intensity). Note: the EmoDB snapshot used is 22.05 kHz\n"
            "with every clip cut to 2.0 s; it is resampled to 16 kHz."
        )
        limits_md = (
            "- Acted emotion from professional actors (German EmoDB, North-American English RAVDESS), two fixed\n"
            "  sentences in RAVDESS and ten in EmoDB: spontaneous conversational speech is milder and its affect\n"
            "  is less separable by voice alone; expect lower figures on live calls.\n"
            "- Valence from voice alone is weak (happy vs angry share high arousal); fuse with text for valence.\n"
            "- The targets are category prototypes placed on the circumplex, not per-clip ratings.\n"
            "- Licence: non-commercial / research only (see above)."
        )
    md = f"""
## What it is
Raw 16 kHz mono audio (a 1 s window by default, any length works) in; valence and arousal in [-1, 1]
out, with a calibrated standard deviation `sigma` per dimension, the fraction of voiced frames
`voiced`, and a {SpeechFeatures(cfg['features']).dim}-d pooled acoustic `embedding`. All feature extraction is inside the ONNX
graph (training/speech/features.py): DFT as a fixed convolution (32 ms frames, 10 ms hop), 26 log-mel
bands 80 Hz-3.8 kHz (so 8 kHz telephone audio loses nothing the model uses), in-band energy, spectral
centroid, an autocorrelation pitch/periodicity proxy, deltas, mean/std pooled over voiced frames.
Level invariance is in the graph: log-mel relative to the window's own mean, energy relative to the
window's own loudest frame, voicing relative to the window's peak. The head is an ensemble of
{len(run['folds'])} small MLPs (one per speaker fold, each trained on the other folds); the prediction is
their mean, `sigma = a + b * spread` with a = {[round(x, 3) for x in cal['a']]}, b = {[round(x, 3) for x in cal['b']]}
(valence, arousal) fitted on held-out speakers. Training: 1 s windows at 250 ms hop (the runtime's
default), clip targets, {cfg['augment']['copies']} augmented copies per clip (gain {cfg['augment']['gainDb']} dB,
8 kHz band-limiting p={cfg['augment']['bandLimitProbability']}, additive white/brown noise at
{cfg['augment']['noiseSnrDb']} dB SNR p={cfg['augment']['noiseProbability']}).

{targets_md}

## Held-out figures (per clip = mean of its voiced 1 s windows)
| evaluation | arousal CCC | valence CCC | arousal AUC | arousal r | valence r | clips |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Targets (issue 11): LOSO arousal CCC >= 0.85, valence CCC >= 0.55, arousal AUC >= 0.95 (angry/fearful/happy/surprised
vs sad/bored/calm/neutral); cross-corpus arousal CCC >= 0.60. Classical baselines on the same data: SVR on
log-mel statistics LOSO EmoDB 0.75 / 0.42, both corpora -> RAVDESS unseen 0.82 / 0.31, cross-corpus ~0-0.37 arousal.

Uncertainty: +-1 sigma covers {sf.get('window_arousal_coverage1sigma', float('nan')):.1%} (arousal) and {sf.get('window_valence_coverage1sigma', float('nan')):.1%} (valence)
of held-out 1 s windows (sigma calibrated on the other speaker folds; target 68.3 %). Per clip (mean of windows, mean sigma)
the coverage is {sf.get('arousal_coverage1sigma', float('nan')):.1%} / {sf.get('valence_coverage1sigma', float('nan')):.1%}.

## Robustness (held-out speaker folds, each clip perturbed before windowing)
| perturbation | arousal CCC | valence CCC | arousal change mean / max | valence change mean / max |
|---|---|---|---|---|
{chr(10).join(rob)}

## Limits
{limits_md}

## Reproduce
`npm run train:speech` (seed {cfg['seed']}, about {run['seconds'] / 60:.0f} min on 2 CPU cores with a cold feature cache) rebuilds
`model.onnx` and this card; ONNX Runtime vs torch parity on the export check: max relative difference {parity:.1e}.
Your own data: `npm run train:speech -- --data my.csv` (`file,valence,arousal[,speaker]`, paths relative to the CSV).
"""
    write_card(out_dir, card, md)
