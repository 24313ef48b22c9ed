"""MMoE (Ma et al. 2018, multi-gate mixture of experts) for click → conversion.

Shared expert MLPs over the field embeddings, one softmax gate per task over
the experts and a tower per task; the heads and the losses are ESMM's
(``esmm.py``): ``logit`` (pCTR) and ``cvr_logit`` (pCVR), trained with
``train.loss: esmm`` (entire space) or ``click_cvr`` (CVR on clicked rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import MultiTaskModel
from snsrec.models.layers import MLP, FeatureEmbedding
from snsrec.models.multitask.esmm import TASKS
from snsrec.models.registry import register


@register("mmoe")
class MMoE(MultiTaskModel):
    """Shared experts, a softmax gate and a tower per task (CTR, CVR).

    embedding_dim 16; num_experts 4 with expert_units [256, 128]; tower_units
    [64]; dropout 0.0, activation "relu", batch_norm False; fields (None = all).
    ``gates(batch)`` returns each task's ``[B, num_experts]`` gate weights.
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16, num_experts: int = 4,
                 expert_units: Sequence[int] = (256, 128), tower_units: Sequence[int] = (64,),
                 dropout: float = 0.0, activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        if num_experts < 1 or not expert_units:
            raise ModelError(f"mmoe: num_experts ({num_experts}) >= 1 and expert_units "
                             "non-empty")
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        n_in = self.embedding.num_fields * embedding_dim
        self.experts = nn.ModuleList(MLP(n_in, expert_units, dropout, activation, batch_norm)
                                     for _ in range(num_experts))
        self.gate_layers = nn.ModuleList(nn.Linear(n_in, num_experts) for _ in TASKS)
        self.towers = nn.ModuleList(MLP(expert_units[-1], tower_units, dropout, activation,
                                        batch_norm, out_dim=1) for _ in TASKS)
        self.bias = nn.Parameter(torch.zeros(1))

    def _gates(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.softmax(g(x), dim=-1) for g in self.gate_layers]

    def gates(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per task, ``[B, num_experts]`` weights of the experts (rows sum to 1)."""
        x = self.embedding(batch).flatten(1)
        return dict(zip(TASKS, self._gates(x), strict=True))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.embedding(batch).flatten(1)
        experts = torch.stack([e(x) for e in self.experts], 1)            # [B, E, H]
        ctr, cvr = (tower((g.unsqueeze(-1) * experts).sum(1)).squeeze(-1)
                    for g, tower in zip(self._gates(x), self.towers, strict=True))
        return {"logit": self.bias + ctr, "cvr_logit": cvr}
