"""The text-emobank network: word embeddings (GloVe init) + a frozen VADER valence channel, 1-D
convolutions, masked mean and max pooling, an MLP to valence/arousal/dominance. Also outputs `known`,
the fraction of the text's words that are in the vocabulary (the runtime's confidence)."""
from __future__ import annotations

import torch
from torch import nn

from .tokenizer import CLS, PAD, SEP, UNK


class TextNet(nn.Module):
    def __init__(self, emb: torch.Tensor, vader: torch.Tensor, cfg: dict, fine_tune: bool = True):
        super().__init__()
        m = cfg["model"]
        self.emb = nn.Embedding.from_pretrained(emb.clone(), freeze=not fine_tune, padding_idx=PAD, sparse=True)
        self.use_vader = bool(m["vaderFeature"])
        self.vader = nn.Embedding.from_pretrained(vader.clone().unsqueeze(1), freeze=True)
        d = emb.shape[1] + (1 if self.use_vader else 0)
        c = m["convChannels"]
        self.convs = nn.ModuleList([nn.Conv1d(d, c, k, padding=k // 2) for k in m["convKernels"]])
        feat = 2 * c * len(m["convKernels"]) + d
        self.edrop = nn.Dropout(m["embeddingDropout"])
        # a per-word linear term (mean over the words): the bag-of-words regression the baseline is made of
        self.use_bow = bool(m.get("bowTerm", False))
        self.bow = nn.Embedding(emb.shape[0], 3, padding_idx=PAD, sparse=True)
        nn.init.zeros_(self.bow.weight)
        self.head = nn.Sequential(nn.Dropout(m["dropout"]), nn.Linear(feat, m["hidden"]), nn.ReLU(), nn.Dropout(m["dropout"]), nn.Linear(m["hidden"], 3))

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)
        if self.use_vader:
            x = torch.cat([x, self.vader(ids)], dim=2)
        x = self.edrop(x)
        mf = mask.to(x.dtype).unsqueeze(2)  # [B, S, 1]
        n = mf.sum(dim=1).clamp(min=1.0)
        pooled = [(x * mf).sum(dim=1) / n]
        xt = x.transpose(1, 2)  # [B, D, S]
        for conv in self.convs:
            h = torch.relu(conv(xt)).transpose(1, 2)  # [B, S, C]
            pooled.append((h * mf).sum(dim=1) / n)
            pooled.append((h + (mf - 1.0) * 1e4).max(dim=1).values)
        return torch.cat(pooled, dim=1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(ids, mask))
        if self.use_bow:
            mf = mask.to(torch.float32).unsqueeze(2)
            y = y + (self.bow(ids) * mf).sum(dim=1) / mf.sum(dim=1).clamp(min=1.0)
        return y


def known_fraction(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, 1]: words in the vocabulary / words (specials and padding excluded); 0 for no words."""
    m = mask.to(torch.float32)
    word = m * (ids != CLS).to(torch.float32) * (ids != SEP).to(torch.float32) * (ids != PAD).to(torch.float32)
    known = word * (ids != UNK).to(torch.float32)
    return (known.sum(dim=1, keepdim=True) / word.sum(dim=1, keepdim=True).clamp(min=1.0))


class Exported(nn.Module):
    """What ships: the members' mean (clipped to [-1, 1]) and the known-word fraction."""

    def __init__(self, members: list[TextNet]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        ys = [m(input_ids, attention_mask) for m in self.members]
        y = torch.stack(ys, dim=0).mean(dim=0).clamp(-1.0, 1.0)
        return y, known_fraction(input_ids, attention_mask)
