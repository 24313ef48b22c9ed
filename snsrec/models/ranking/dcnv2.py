"""DCNv2 (Wang et al. 2021): a full-rank (or low-rank mixture) cross network with an MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import CrossAndDeep, CrossNetV2, FeatureEmbedding
from snsrec.models.registry import register


@register("dcnv2")
class DCNv2(RankingModel):
    """Cross layers x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l over the flat field embeddings.

    structure: "parallel" (cross and MLP side by side, concatenated) or
    "stacked" (MLP on the cross output). num_cross_layers: 3.
    low_rank: None = full-rank W; r = mixture of ``num_experts`` rank-r experts.
    embedding_dim 16; hidden_units [400, 400, 400]; dropout, activation, batch_norm
    of the MLP; fields (None = all embeddable ones).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16, structure: str = "parallel",
                 num_cross_layers: int = 3, low_rank: int | None = None, num_experts: int = 4,
                 hidden_units: Sequence[int] = (400, 400, 400), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        in_dim = self.embedding.num_fields * embedding_dim
        cross = CrossNetV2(in_dim, num_cross_layers, low_rank, num_experts)
        self.net = CrossAndDeep(cross, in_dim, structure, hidden_units, dropout, activation,
                                batch_norm)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.bias + self.net(self.embedding(batch).flatten(1))}
