"""DeepFM (Guo et al. 2017): FM and an MLP over the same field embeddings, logits summed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP, FeatureEmbedding, FieldLinear, FMInteraction
from snsrec.models.registry import register


@register("deepfm")
class DeepFM(RankingModel):
    """logit = b + Σ_i w_i + Σ_{i<j} <e_i, e_j> + MLP([e_1; ...; e_F]).

    embedding_dim: 16. hidden_units: the MLP's layers ([400, 400, 400]).
    dropout (0.0), activation ("relu"), batch_norm (False): of the MLP.
    fields: the FeatureMap fields to use (None = all embeddable ones).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 hidden_units: Sequence[int] = (400, 400, 400), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        self.linear = FieldLinear(feature_map, fields)
        self.fm = FMInteraction()
        self.mlp = MLP(self.embedding.num_fields * embedding_dim, hidden_units, dropout,
                       activation, batch_norm, out_dim=1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)
        deep = self.mlp(emb.flatten(1)).squeeze(-1)
        return {"logit": self.bias + self.linear(batch) + self.fm(emb) + deep}
