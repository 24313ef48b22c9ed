"""GDCN (Wang et al. CIKM 2023): DCNv2's cross network with an information gate per cross."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import CrossAndDeep, FeatureEmbedding, GatedCrossNet
from snsrec.models.registry import register


@register("gdcn")
class GDCN(RankingModel):
    """Gated cross layers c_{l+1} = c_0 ⊙ (W_l c_l + b_l) ⊙ σ(W_g,l c_l) + c_l, with an MLP.

    structure: "parallel" (GDCN-P: cross and MLP concatenated) or "stacked"
    (GDCN-S: MLP on the cross output). num_cross_layers: 3. embedding_dim 16;
    hidden_units [400, 400, 400]; dropout, activation, batch_norm of the MLP.
    The last forward's gates are ``self.cross.last_gates`` (``snsrec explain``).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16, structure: str = "parallel",
                 num_cross_layers: int = 3, hidden_units: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        in_dim = self.embedding.num_fields * embedding_dim
        self.net = CrossAndDeep(GatedCrossNet(in_dim, num_cross_layers), in_dim, structure,
                                hidden_units, dropout, activation, batch_norm)
        self.bias = nn.Parameter(torch.zeros(1))

    @property
    def cross(self) -> GatedCrossNet:
        return self.net.cross

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.bias + self.net(self.embedding(batch).flatten(1))}
