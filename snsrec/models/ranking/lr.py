"""Logistic regression: a bias plus one learned weight per feature value.

The baseline every CTR model must beat. It is ``FeatureEmbedding`` with
``dim=1``: each categorical id gets a scalar weight, multi-valued fields the
mean of their ids' weights, numeric fields a weight times the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import FeatureEmbedding
from snsrec.models.registry import register


@register("lr")
class LR(RankingModel):
    def __init__(self, feature_map: Any, fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, dim=1, fields=fields)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        weights = self.embedding(batch)                      # [B, F, 1]
        return {"logit": weights.sum(dim=(1, 2)) + self.bias}

    @torch.no_grad()
    def pair_logits(self, queries: dict[str, torch.Tensor], items: dict[str, torch.Tensor],
                    item_fields: Sequence[str]) -> torch.Tensor:
        """Logits ``[q, n]`` of every query row with every item, without forming the q*n batch.

        LR is additive, so the logit splits into a query part and an item part.
        """
        emb, owned = self.embedding, set(item_fields)
        zero = self.bias.new_zeros(1)
        q_part = sum((emb.embed_one(f, queries[f.name])[:, 0] for f in emb.fields
                      if f.name not in owned), zero)
        i_part = sum((emb.embed_one(f, items[f.name])[:, 0] for f in emb.fields
                      if f.name in owned), zero)
        return (q_part + self.bias)[:, None] + i_part[None, :]

