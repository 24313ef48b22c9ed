"""FM (Rendle 2010): bias + first-order weights + all pairwise <e_i, e_j> field interactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import FeatureEmbedding, FieldLinear, FMInteraction
from snsrec.models.registry import register


@register("fm")
class FM(RankingModel):
    """logit = b + Σ_i w_i + Σ_{i<j} <e_i, e_j>.

    embedding_dim: size of each field's factor vector (16).
    fields: the FeatureMap fields to use (None = all embeddable ones).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        self.linear = FieldLinear(feature_map, fields)
        self.fm = FMInteraction()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)
        return {"logit": self.bias + self.linear(batch) + self.fm(emb)}
