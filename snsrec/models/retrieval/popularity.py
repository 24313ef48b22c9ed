"""Popularity: score notes by their (optionally time-decayed) training clicks.

Two uses, one fitted state:

- **CTR scorer** — ``forward`` returns the logit of the note's smoothed CTR,
  ``(clicks + k * prior) / (impressions + k)``, so unseen and rarely shown notes
  fall back to the global CTR instead of 0 or 1.
- **Retriever** — ``item_scores()`` / ``retrieve(k)`` rank notes by click count.

It is fitted from arrays (``fit``), not by gradient descent; its counts are
buffers, so a run directory stores and reloads them like any model's weights.
It is a ranking model (``snsrec.models.base``): built over a FeatureMap, its
``forward`` is a CTR logit; not a ``counting`` retriever, which is built over a
Corpus and fitted from the behaviour log.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.registry import register

PAD, OOV = 0, 1
_DAY_S = 86_400.0


def _seconds(ts: np.ndarray) -> np.ndarray:
    """Timestamps (datetime64 or integer seconds) as float seconds."""
    ts = np.asarray(ts)
    if np.issubdtype(ts.dtype, np.datetime64):
        ts = ts.astype("datetime64[s]").astype(np.int64)
    return ts.astype(np.float64)


@register("popularity")
class Popularity(RankingModel):
    def __init__(self, feature_map: Any, item_field: str = "note_id",
                 half_life_days: float | None = None, prior_strength: float = 20.0):
        super().__init__()
        fields = {f.name: f for f in feature_map.fields}
        if item_field not in fields:
            raise ModelError(f"popularity: item field '{item_field}' is not in the feature map; "
                             f"set item_field to one of {', '.join(fields)}")
        if half_life_days is not None and half_life_days <= 0:
            raise ModelError(f"popularity: half_life_days must be > 0 (got {half_life_days})")
        self.item_field = item_field
        self.half_life_days = half_life_days
        self.prior_strength = float(prior_strength)
        vocab = int(fields[item_field].vocab_size)
        self.register_buffer("clicks", torch.zeros(vocab, dtype=torch.float64))
        self.register_buffer("impressions", torch.zeros(vocab, dtype=torch.float64))
        self.register_buffer("prior", torch.zeros((), dtype=torch.float64))

    def fit(self, arrays: dict[str, np.ndarray], label: str = "click") -> Popularity:
        """Count (decayed) clicks and impressions per item from transformed training arrays."""
        for key in (self.item_field, label):
            if key not in arrays:
                raise ModelError(f"popularity.fit: arrays lack '{key}'; pass FeatureMap output")
        idx = np.asarray(arrays[self.item_field], dtype=np.int64)
        y = np.asarray(arrays[label], dtype=np.float64)
        w = np.ones_like(y)
        if self.half_life_days is not None:
            if "_ts" not in arrays:
                raise ModelError("popularity.fit: half_life_days needs the '_ts' meta array")
            ts = _seconds(arrays["_ts"])
            # Age relative to the newest training event: decay is about recency.
            w = 0.5 ** ((ts.max() - ts) / _DAY_S / self.half_life_days)
        vocab = self.clicks.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= vocab):
            raise ModelError(f"popularity.fit: '{self.item_field}' ids outside [0, {vocab}); "
                             "were the arrays made by this model's FeatureMap?")
        self.clicks.copy_(torch.from_numpy(np.bincount(idx, weights=y * w, minlength=vocab)))
        self.impressions.copy_(torch.from_numpy(np.bincount(idx, weights=w, minlength=vocab)))
        self.prior.fill_(float((y * w).sum() / w.sum()) if w.sum() > 0 else 0.0)
        return self

    def init_output_bias(self, ctr: float) -> None:
        """Nothing to start: the prior CTR is counted by ``fit`` (the trainer refuses a
        model without parameters)."""

    def ctr(self, idx: torch.Tensor) -> torch.Tensor:
        k = self.prior_strength
        return (self.clicks[idx] + k * self.prior) / (self.impressions[idx] + k)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = self.ctr(batch[self.item_field]).clamp(1e-6, 1 - 1e-6)
        return {"logit": torch.log(p / (1 - p)).float()}

    def item_scores(self) -> torch.Tensor:
        """Retrieval score per item index; padding and the OOV bucket score 0.

        The OOV row pools every rare item's clicks, so it must not outrank real
        items: it ties with never-clicked ones instead.
        """
        scores = self.clicks.clone()
        scores[[PAD, OOV][: scores.shape[0]]] = 0.0
        return scores

    def retrieve(self, k: int) -> torch.Tensor:
        """The ``k`` most clicked item indices, most clicked first (ties: lower index first)."""
        order = torch.from_numpy(np.argsort(-self.item_scores().numpy(), kind="stable"))
        return order[:k]
