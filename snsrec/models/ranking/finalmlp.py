"""FinalMLP: two gated MLP streams joined by multi-head bilinear fusion.

Mao et al., "FinalMLP: An Enhanced Two-Stream MLP Model for CTR Prediction"
(AAAI 2023). Each stream is a plain MLP over the flattened field embeddings,
re-weighted by its own *feature gate* ``g = 2·σ(MLP(context)) ⊙ e`` (the factor 2
lets a gate amplify as well as damp, and makes the initial gate ≈ 1). Giving
the streams different gate contexts (e.g. user fields vs item fields) lets them
specialise. The fusion ``y = b + w1ᵀo1 + w2ᵀo2 + Σ_h o1_hᵀ W3_h o2_h`` adds the
second-order interaction between the two streams' outputs, split into heads
so ``W3`` stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP, FeatureEmbedding, LogitLinear
from snsrec.models.registry import register


class FeatureGate(nn.Module):
    """``e ⊙ 2·σ(MLP(context))`` over flattened embeddings ``[B, F·D]``.

    ``context_idx`` picks the fields (positions in the embedding) the gate is
    conditioned on; ``None`` means all of them. An empty context gives a
    learned, input-independent gate per embedding element (FuxiCTR's default).
    """

    def __init__(self, num_fields: int, dim: int, context_idx: Sequence[int] | None,
                 hidden: Sequence[int] = (64,)):
        super().__init__()
        idx = list(range(num_fields)) if context_idx is None else list(context_idx)
        self.register_buffer("context_idx", torch.tensor(idx, dtype=torch.long),
                             persistent=False)
        self.const = nn.Parameter(torch.zeros(1, dim)) if not idx else None
        self.mlp = MLP(max(len(idx), 1) * dim, hidden, out_dim=num_fields * dim)
        # Start every gate at exactly 1 (2·σ(0)): the streams begin as plain MLPs.
        nn.init.zeros_(self.mlp.net[-1].weight)
        nn.init.zeros_(self.mlp.net[-1].bias)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """``emb`` ``[B, F, D]`` → gated, flattened ``[B, F·D]``."""
        if self.const is not None:
            context = self.const.expand(emb.shape[0], -1)
        else:
            context = emb[:, self.context_idx].flatten(1)
        return emb.flatten(1) * (2 * torch.sigmoid(self.mlp(context)))


class BilinearFusion(nn.Module):
    """Multi-head bilinear fusion of ``o1 [B, d1]`` and ``o2 [B, d2]`` into one logit ``[B]``.

    ``y = w1ᵀo1 + w2ᵀo2 + Σ_h o1_hᵀ W3_h o2_h`` where ``o1_h``/``o2_h`` are the
    h-th of ``num_heads`` equal chunks; ``d1`` and ``d2`` must divide by it.
    """

    def __init__(self, d1: int, d2: int, num_heads: int = 1):
        super().__init__()
        if num_heads < 1 or d1 % num_heads or d2 % num_heads:
            raise ModelError(f"finalmlp: num_heads={num_heads} must divide both streams' output "
                             f"sizes ({d1}, {d2}); change num_heads or the last hidden sizes")
        self.heads = num_heads
        self.w1 = LogitLinear(d1, 1, bias=False)
        self.w2 = LogitLinear(d2, 1, bias=False)
        self.w3 = nn.Parameter(torch.empty(num_heads, d1 // num_heads, d2 // num_heads))
        nn.init.xavier_normal_(self.w3)

    def forward(self, o1: torch.Tensor, o2: torch.Tensor) -> torch.Tensor:
        b, h = o1.shape[0], self.heads
        with torch.autocast(o1.device.type, enabled=False):      # a logit: float32 (LogitLinear)
            h1, h2 = o1.float().view(b, h, -1), o2.float().view(b, h, -1)
            bilinear = torch.einsum("bhi,hij,bhj->b", h1, self.w3, h2)
        return self.w1(o1).squeeze(-1) + self.w2(o2).squeeze(-1) + bilinear


@register("finalmlp")
class FinalMLP(RankingModel):
    """Two gated MLP streams + bilinear fusion.

    Parameters:
        embedding_dim: 16.
        fields: the FeatureMap fields to embed (default: every embeddable one).
        mlp1_hidden_units / mlp2_hidden_units: the two streams (400-400-400 each; the last
            size is the stream's output).
        gate1_fields / gate2_fields: fields each stream's gate is conditioned on;
            None (default) = all fields, [] = a learned static gate. The paper
            feeds user fields to one stream and item fields to the other.
        feature_gating: True; False gives the ungated two-stream baseline.
        gate_hidden: (64,), the gate MLP's hidden sizes.
        num_heads: 1, heads of the bilinear fusion.
        dropout / batch_norm / activation: for both streams (0, False, relu).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 fields: Sequence[str] | None = None,
                 mlp1_hidden_units: Sequence[int] = (400, 400, 400),
                 mlp2_hidden_units: Sequence[int] = (400, 400, 400),
                 gate1_fields: Sequence[str] | None = None,
                 gate2_fields: Sequence[str] | None = None,
                 feature_gating: bool = True, gate_hidden: Sequence[int] = (64,),
                 num_heads: int = 1, dropout: float = 0.0, batch_norm: bool = False,
                 activation: str = "relu"):
        super().__init__()
        if not mlp1_hidden_units or not mlp2_hidden_units:
            raise ModelError("finalmlp: mlp1_hidden_units and mlp2_hidden_units need at least "
                             "one layer each (their last size is the stream's output)")
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields=fields)
        f, d = self.embedding.num_fields, embedding_dim
        self.gates = nn.ModuleList([
            FeatureGate(f, d, self._positions(g), gate_hidden)
            for g in (gate1_fields, gate2_fields)]) if feature_gating else None
        self.stream1 = MLP(f * d, mlp1_hidden_units, dropout, activation, batch_norm)
        self.stream2 = MLP(f * d, mlp2_hidden_units, dropout, activation, batch_norm)
        self.fusion = BilinearFusion(self.stream1.out_dim, self.stream2.out_dim, num_heads)
        self.bias = nn.Parameter(torch.zeros(1))     # b of the fusion; RankingModel initialises it

    def _positions(self, names: Sequence[str] | None) -> list[int] | None:
        if names is None:
            return None
        index = {n: i for i, n in enumerate(self.embedding.field_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ModelError(f"finalmlp: gate field(s) {missing} are not among the model's "
                             f"fields {list(index)}; fix gate1_fields / gate2_fields")
        return [index[n] for n in names]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)                                    # [B, F, D]
        if self.gates is None:
            x1 = x2 = emb.flatten(1)
        else:
            x1, x2 = self.gates[0](emb), self.gates[1](emb)
        return {"logit": self.bias + self.fusion(self.stream1(x1), self.stream2(x2))}
