"""AutoInt (Song et al. 2019): stacked multi-head self-attention over field embeddings.

AutoInt+ adds an MLP over the same embeddings in parallel; the logits are summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import RankingModel
from snsrec.models.layers import (
    MLP,
    FeatureEmbedding,
    FieldLinear,
    LogitLinear,
    MultiHeadSelfAttention,
)
from snsrec.models.registry import register


@register("autoint")
class AutoInt(RankingModel):
    """Interacting layers (attention + residual + ReLU) → flatten → linear logit.

    embedding_dim 16; attention_layers 3; num_heads 2; attention_dim 32 (per head);
    residual True; scale_attention False (AutoInt does not divide by sqrt(d));
    attention_dropout 0.0; use_wide False (add a first-order LR term);
    hidden_units () — non-empty adds a parallel MLP (that is AutoInt+);
    dropout, activation, batch_norm of that MLP; fields (None = all).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16, attention_layers: int = 3,
                 num_heads: int = 2, attention_dim: int = 32, residual: bool = True,
                 scale_attention: bool = False, attention_dropout: float = 0.0,
                 use_wide: bool = False, hidden_units: Sequence[int] = (),
                 dropout: float = 0.0, activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        dims = [embedding_dim] + [num_heads * attention_dim] * attention_layers
        self.attention = nn.Sequential(*(
            MultiHeadSelfAttention(d, attention_dim, num_heads, residual, scale_attention,
                                   dropout=attention_dropout) for d in dims[:-1]))
        n_fields = self.embedding.num_fields
        self.attention_head = LogitLinear(n_fields * dims[-1], 1, bias=False)
        self.linear = FieldLinear(feature_map, fields) if use_wide else None
        self.mlp = MLP(n_fields * embedding_dim, hidden_units, dropout, activation, batch_norm,
                       out_dim=1) if hidden_units else None
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)
        logit = self.bias + self.attention_head(self.attention(emb).flatten(1)).squeeze(-1)
        if self.linear is not None:
            logit = logit + self.linear(batch)
        if self.mlp is not None:
            logit = logit + self.mlp(emb.flatten(1)).squeeze(-1)
        return {"logit": logit}


@register("autoint_plus")
class AutoIntPlus(AutoInt):
    """AutoInt+: AutoInt with a parallel MLP (hidden_units [400, 400, 400] by default)."""

    def __init__(self, feature_map: Any, embedding_dim: int = 16, attention_layers: int = 3,
                 num_heads: int = 2, attention_dim: int = 32, residual: bool = True,
                 scale_attention: bool = False, attention_dropout: float = 0.0,
                 use_wide: bool = False, hidden_units: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__(feature_map, embedding_dim, attention_layers, num_heads, attention_dim,
                         residual, scale_attention, attention_dropout, use_wide, hidden_units,
                         dropout, activation, batch_norm, fields)
