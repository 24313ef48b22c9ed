"""AdSEE's click-rate predictor: how attractive an ad's cover and text are, apart from
where it was shown.

The note is read through a FeatureMap vector field (``vector``, default
``note_vec``: `snsrec encode notes --with-cover`, the text vector followed by
the ``cover_dims`` cover-style floats). ``attractiveness`` = an MLP over
[a projection of the text part, the cover floats]; the logit adds a learned
bias per ``position`` (a shallow position tower, trained jointly and left out
when scoring attractiveness), so what the MLP learns is not where the ad
happened to be shown. ``snsrec.adsee`` searches cover edits against
``attractiveness``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP
from snsrec.models.registry import register


@register("adsee")
class AdSEE(RankingModel):
    requires = "a FeatureMap vector field"      # not built on a plain feature map
    """vector "note_vec" (a vector field: text + cover floats); cover_dims 8 (the trailing
    floats that are the cover); text_dim 32 (the text part's projection); hidden_units
    [64, 32], activation "relu", dropout 0.0; position "position" (a categorical field of
    the slot; None = no position tower)."""

    def __init__(self, feature_map: Any, vector: str = "note_vec", cover_dims: int = 8,
                 text_dim: int = 32, hidden_units: Sequence[int] = (64, 32),
                 activation: str = "relu", dropout: float = 0.0,
                 position: str | None = "position"):
        super().__init__()
        fields = {f.name: f for f in feature_map.fields}
        table = getattr(feature_map, "vectors", {}).get(vector)
        if table is None or fields.get(vector) is None:
            raise ModelError(f"adsee: the feature map has no vector field '{vector}'; add "
                             "vectors: [{name: note_vec, path: ...}] from `snsrec encode notes "
                             "--with-cover`")
        if not 0 < cover_dims <= table.shape[1]:
            raise ModelError(f"adsee: cover_dims {cover_dims} of {table.shape[1]}-d vectors")
        if position is not None and position not in fields:
            raise ModelError(f"adsee: no position field '{position}'; add it as a categorical "
                             "feature or set position: null")
        self.vector, self.position, self.cover_dims = vector, position, cover_dims
        self.register_buffer("vectors", torch.as_tensor(table, dtype=torch.float32),
                             persistent=False)
        text = table.shape[1] - cover_dims
        self.text = nn.Linear(text, text_dim) if text else None
        self.mlp = MLP((text_dim if text else 0) + cover_dims, hidden_units, dropout,
                       activation, out_dim=1)
        self.position_bias = None if position is None else \
            nn.Embedding(int(fields[position].vocab_size), 1, padding_idx=0)
        if self.position_bias is not None:
            nn.init.zeros_(self.position_bias.weight)
        self.bias = nn.Parameter(torch.zeros(1))

    def split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(text part, cover part) of the vector-table rows ``rows``."""
        v = self.vectors[rows.long()]
        return v[..., :-self.cover_dims], v[..., -self.cover_dims:]

    def attractiveness(self, text: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
        """The position-free logit of notes with text part ``text`` and cover ``cover``."""
        parts = [cover] if self.text is None else [self.text(text), cover]
        return self.bias + self.mlp(torch.cat(parts, -1)).squeeze(-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logit = self.attractiveness(*self.split(batch[self.vector]))
        if self.position_bias is not None:
            logit = logit + self.position_bias(batch[self.position].long()).squeeze(-1)
        return {"logit": logit}
