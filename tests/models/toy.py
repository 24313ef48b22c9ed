"""A hand-made feature map and arrays for model and trainer tests (no world needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ToyField:
    name: str
    kind: str
    vocab_size: int = 0
    max_len: int = 0
    share_vocab_with: str | None = None


class ToyFeatureMap:
    """Duck-types the FeatureMap surface models use: ``.fields``."""

    def __init__(self, n_items: int = 50, n_users: int = 40):
        self.fields = [
            ToyField("user_id", "categorical", n_users + 2),
            ToyField("note_id", "categorical", n_items + 2),
            ToyField("hist_note_id", "sequence", n_items + 2, 5, share_vocab_with="note_id"),
            ToyField("quality", "numeric"),
        ]


def toy_arrays(n: int, seed: int, n_items: int = 50, n_users: int = 40) -> dict[str, np.ndarray]:
    """Clicks driven by the item id (even items good) and a numeric feature: LR can fit it."""
    rng = np.random.default_rng(seed)
    note = rng.integers(2, n_items + 2, n)
    user = rng.integers(2, n_users + 2, n)
    hist = rng.integers(0, n_items + 2, (n, 5))
    quality = rng.normal(size=n).astype(np.float32)
    logit = np.where(note % 2 == 0, 1.5, -1.5) + 1.0 * quality
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return {"user_id": user, "note_id": note, "hist_note_id": hist, "quality": quality,
            "click": click, "_user_id": user, "_scenario": (user % 4).astype(np.int8),
            "_ts": np.arange(n, dtype=np.int64) * 60}

