"""ESMM (Ma et al. 2018): a click → conversion model over the entire impression space.

Click → conversion models (``esmm``, ``mmoe``) return ``logit`` (pCTR, every
impression) and ``cvr_logit`` (pCVR = P(convert | click)); what space each
head learns in is the loss's choice (``train.loss``):

- ``esmm`` — the entire-space loss of ESMM (Ma et al. 2018): BCE(click, pCTR)
  + BCE(click · convert, pCTR · pCVR) over every impression; pCVR is never fit
  to clicked rows alone, so it holds for impressions nobody clicked.
- ``click_cvr`` — BCE(click, pCTR) + BCE(convert, pCVR) on clicked rows only:
  the sample-selection-biased CVR model ESMM is compared with.

``esmm`` is ESMM's network: one embedding table shared by a CTR tower and a
CVR tower (MLPs over the same field embeddings). ``mmoe.py`` has MMoE with the
same two heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.models.base import MultiTaskModel
from snsrec.models.layers import MLP, FeatureEmbedding
from snsrec.models.registry import register

TASKS = ("logit", "cvr_logit")


@register("esmm")
class ESMM(MultiTaskModel):
    """Shared embeddings; a CTR and a CVR tower (MLPs) over them.

    embedding_dim 16; hidden_units [256, 128] of each tower; dropout 0.0,
    activation "relu", batch_norm False; fields (None = all embeddable).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 hidden_units: Sequence[int] = (256, 128), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields)
        n_in = self.embedding.num_fields * embedding_dim
        self.towers = nn.ModuleList(MLP(n_in, hidden_units, dropout, activation, batch_norm,
                                        out_dim=1) for _ in TASKS)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.embedding(batch).flatten(1)
        ctr, cvr = (t(x).squeeze(-1) for t in self.towers)
        return {"logit": self.bias + ctr, "cvr_logit": cvr}
