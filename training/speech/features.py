"""All feature extraction of `speech-va` as one torch module, exported inside the ONNX graph.

Raw 16 kHz audio [batch, samples] in, pooled per-window features [batch, D] and the voiced
fraction [batch, 1] out. Steps, all fixed (no learned weights):

1. DC removal; framing + DFT as one fixed conv1d (Hann-windowed cos/sin kernels, 32 ms frames,
   10 ms hop; torch 1.13 cannot export torch.stft), keeping only the bins up to `fMax` (3.8 kHz) so
   8 kHz telephone band-limiting leaves the features almost unchanged.
2. Frame power spectrum -> log-mel bands (80 Hz-3.8 kHz), in-band frame energy, spectral centroid.
3. Pitch/voicing proxy: the frame autocorrelation as the cosine transform of the power spectrum
   (Wiener-Khinchin), divided by the Hann window's own autocorrelation; its peak in the 70-400 Hz
   lag range gives periodicity, the peak's lag gives log f0.
4. Voiced frames: periodic, within `voicedEnergyBelowPeakDb` of the window's own loudest frame, and
   above an absolute floor (digital silence is never voiced). Level invariance: log-mel is taken
   relative to the window's own mean voiced log-mel, energy relative to the window's own peak.
5. Per-frame features and their deltas pooled over voiced frames (weighted mean, std), plus the
   voiced fraction and the voiced/unvoiced transition rate (a speaking-rate proxy).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


class SpeechFeatures(nn.Module):
    def __init__(self, cfg: dict, sample_rate: int = 16000):
        super().__init__()
        self.sr = sample_rate
        self.frame = int(cfg["frameSamples"])
        self.hop = int(cfg["frameHop"])
        n_fft = int(cfg["nFft"])
        assert self.frame <= n_fft
        f_max = float(cfg["fMax"])
        n_bins = int(math.floor(f_max * n_fft / sample_rate)) + 2
        self.n_bins = n_bins
        n = np.arange(self.frame)
        win = 0.5 - 0.5 * np.cos(2 * np.pi * (n + 0.5) / self.frame)  # Hann
        k = np.arange(n_bins)[:, None]
        ang = 2 * np.pi * k * n[None, :] / n_fft
        kern = np.concatenate([np.cos(ang) * win, -np.sin(ang) * win], axis=0)  # [2K, frame]
        self.register_buffer("dft", torch.tensor(kern[:, None, :], dtype=torch.float32))
        # power -> in-band mean square (dBFS-like scale: a full-scale sine inside the band ~ -3 dB)
        self.power_scale = 2.0 / (n_fft * 0 + self.frame * float((win**2).sum()))
        # mel filterbank [n_bins, n_mels]
        n_mels = int(cfg["nMels"])
        freqs = np.arange(n_bins) * sample_rate / n_fft
        mpts = _mel_to_hz(np.linspace(_hz_to_mel(cfg["fMin"]), _hz_to_mel(f_max), n_mels + 2))
        fb = np.zeros((n_bins, n_mels))
        for m in range(n_mels):
            lo, c, hi = mpts[m], mpts[m + 1], mpts[m + 2]
            up = (freqs - lo) / (c - lo)
            down = (hi - freqs) / (hi - c)
            fb[:, m] = np.maximum(0.0, np.minimum(up, down))
        self.register_buffer("melfb", torch.tensor(fb, dtype=torch.float32))
        self.register_buffer("bin_hz", torch.tensor(freqs / 1000.0, dtype=torch.float32))
        # autocorrelation at pitch lags via the cosine transform of the power spectrum
        lag_min = int(math.floor(sample_rate / float(cfg["pitchMaxHz"])))
        lag_max = int(math.ceil(sample_rate / float(cfg["pitchMinHz"])))
        lag_max = min(lag_max, self.frame - 1)
        lags = np.arange(lag_min, lag_max + 1)
        wk = np.full(n_bins, 2.0)
        wk[0] = 1.0
        cosm = wk[:, None] * np.cos(2 * np.pi * np.arange(n_bins)[:, None] * lags[None, :] / n_fft)
        self.register_buffer("acf_cos", torch.tensor(cosm, dtype=torch.float32))  # [K, L]
        self.register_buffer("acf_zero", torch.tensor(wk, dtype=torch.float32))  # [K]
        wac = np.array([(win[: self.frame - l] * win[l:]).sum() for l in lags]) / (win**2).sum()
        self.register_buffer("win_acf", torch.tensor(wac, dtype=torch.float32))  # [L]
        self.register_buffer("log_f0_of_lag", torch.tensor(np.log2(sample_rate / lags / 100.0), dtype=torch.float32))
        self.ln10 = math.log(10.0)
        self.below_peak = float(cfg["voicedEnergyBelowPeakDb"]) * self.ln10 / 10.0
        self.abs_floor = float(cfg["voicedAbsoluteFloorDbfs"]) * self.ln10 / 10.0
        self.periodicity = float(cfg["voicedPeriodicity"])
        n_cep = int(cfg.get("nCepstra", 0))
        if n_cep:
            q = np.arange(n_mels)
            dct = np.cos(np.pi * (q[:, None] + 0.5) * np.arange(1, n_cep + 1)[None, :] / n_mels) * math.sqrt(2.0 / n_mels)
            self.register_buffer("dct", torch.tensor(dct, dtype=torch.float32))  # [M, C], c1..cC (c0 is the level)
        self.n_cep = n_cep
        self.level_steps = [float(d) * self.ln10 / 10.0 for d in cfg.get("levelStepsDb", [])]
        self.n_frame_feats = n_mels + 4 + n_cep
        self.dim = 3 * self.n_frame_feats + 2 + len(self.level_steps) + (2 if self.level_steps else 0)

    def forward(self, audio: torch.Tensor):
        x = audio - audio.mean(dim=1, keepdim=True)
        spec = torch.nn.functional.conv1d(x.unsqueeze(1), self.dft, stride=self.hop)  # [B, 2K, T]
        re, im = spec[:, : self.n_bins], spec[:, self.n_bins :]
        p = (re * re + im * im).transpose(1, 2) * self.power_scale  # [B, T, K]
        tiny = 1e-12
        ptot = p.sum(dim=2)  # [B, T] in-band mean square per frame
        # log floor relative to the window's own loudest frame (-80 dB), so a gain change shifts every
        # log value by the same amount and the relative features below do not move at all
        floor = ptot.max(dim=1, keepdim=True).values * 1e-8 + 1e-20  # [B, 1]
        e = torch.log(ptot + floor)
        mel = torch.log(torch.matmul(p, self.melfb) + floor.unsqueeze(2) / self.melfb.shape[1])  # [B, T, M]
        cent = (p * self.bin_hz).sum(dim=2) / (p.sum(dim=2) + tiny)  # kHz
        r0 = (p * self.acf_zero).sum(dim=2) + tiny  # (MatMul by a 1-D vector misbehaves in ORT here)
        acf = torch.matmul(p, self.acf_cos) / r0.unsqueeze(2) / self.win_acf  # [B, T, L]
        per, idx = acf.max(dim=2)
        logf0 = self.log_f0_of_lag[idx]
        peak = e.max(dim=1, keepdim=True).values
        voiced = ((e > peak - self.below_peak) & (e > self.abs_floor) & (per > self.periodicity)).float()  # [B, T]
        vfrac = voiced.mean(dim=1, keepdim=True)
        w = voiced + 1e-8  # with no voiced frame, pool over all frames (voiced fraction says 0)
        wsum = w.sum(dim=1, keepdim=True)
        wn = (w / wsum).unsqueeze(2)  # [B, T, 1]
        mel_ref = (mel * wn).sum(dim=1).mean(dim=1, keepdim=True)  # mean voiced log-mel
        rel_mel = mel - mel_ref.unsqueeze(1)
        parts = [rel_mel, (e - peak).unsqueeze(2), logf0.unsqueeze(2), per.clamp(-1, 2).unsqueeze(2), cent.unsqueeze(2)]
        if self.n_cep:
            parts.append(torch.matmul(rel_mel, self.dct))
        frame_feats = torch.cat(parts, dim=2)  # [B, T, F]
        mean = (frame_feats * wn).sum(dim=1)
        var = ((frame_feats - mean.unsqueeze(1)) ** 2 * wn).sum(dim=1)
        std = torch.sqrt(var + 1e-6)
        d = frame_feats[:, 2:] - frame_feats[:, :-2]
        wd = (voiced[:, 2:] * voiced[:, :-2] + 1e-8).unsqueeze(2)
        dstd = torch.sqrt((d * d * wd).sum(dim=1) / wd.sum(dim=1) + 1e-6)
        trans = (voiced[:, 1:] - voiced[:, :-1]).abs().mean(dim=1, keepdim=True)
        extra = []
        if self.level_steps:
            # loudness distribution of the voiced frames relative to the window's peak, and ranges
            vs = voiced.sum(dim=1, keepdim=True) + 1e-8
            rel = e - peak
            for step in self.level_steps:
                extra.append(((rel > -step).float() * voiced).sum(dim=1, keepdim=True) / vs)
            big = 1e3 * (1.0 - voiced)
            extra.append(((logf0 - big).max(dim=1, keepdim=True).values - (logf0 + big).min(dim=1, keepdim=True).values).clamp(0, 3))
            extra.append((-(rel + big).min(dim=1, keepdim=True).values).clamp(0, 10))
        feats = torch.cat([mean, std, dstd, vfrac, trans] + extra, dim=1)
        return feats, vfrac
