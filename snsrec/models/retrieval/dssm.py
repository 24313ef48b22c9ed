"""DSSM / YouTube-DNN-style two-tower: the user is the mean of their history, through an MLP.

The baseline RED-Rec is measured against: the same item tower (text or ids),
the same history tokens (item vector + scenario, recency and kind tags) and
the same training (window NCE, here with one interest vector, i.e. a sampled
softmax over in-batch and uniform negatives), but no attention over the
sequence and a single interest: ``MLP(mean(tokens) + target)`` → unit vector.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from snsrec.models.layers import MLP
from snsrec.models.registry import register
from snsrec.models.retrieval.redrec import RedRec


@register("dssm")
class MeanPoolTwoTower(RedRec):
    """dim 64, item_encoder "text" | "id", text (a TextConfig dict), width 128, layers
    (MLP hidden layers of ``width``) 1, negatives 400, temperature 0.07, age_buckets 0
    (RED-Rec's note-age bias), fresh_every 0 (RED-Rec's fresh-note channel)."""

    def __init__(self, corpus: Any, dim: int = 64, item_encoder: str = "text",
                 text: dict[str, Any] | None = None, width: int = 128, layers: int = 1,
                 recency_buckets: int = 24, negatives: int = 400, temperature: float = 0.07,
                 age_buckets: int = 0, fresh_every: int = 0):
        super().__init__(corpus, dim=dim, item_encoder=item_encoder, text=text, width=width,
                         layers=layers, heads=1, dropout=0.0, num_interests=1,
                         recency_buckets=recency_buckets, negatives=negatives,
                         temperature=temperature, age_buckets=age_buckets,
                         fresh_every=fresh_every)

    def _user_tower(self, width: int, layers: int, heads: int, dropout: float) -> None:
        self.mlp = MLP(width, [width] * layers, activation="gelu")

    def interests(self, tokens: torch.Tensor, pad: torch.Tensor,
                  batch: dict[str, torch.Tensor]) -> torch.Tensor:
        keep = (~pad).unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        h = self.mlp(mean + self.target_emb(batch["target_scenario"].long()))
        return F.normalize(self.out(h), dim=-1).unsqueeze(1)          # [B, 1, dim]
