"""Category popularity: the content-only retrieval baseline that reads no text.

A user's score for a note is the probability of a click on it under a
two-step model fitted from the training clicks::

    P(note | user) = P(group | user) · P(note | group)

``group`` is the note's category (``level: category``) or its (category,
subcategory) pair (``level: subcategory``, the default; a corpus without
subcategories groups by category alone). ``P(group | user)`` is the user's
history share of the group, smoothed toward the group's share of all
training clicks with ``prior_strength`` pseudo-clicks (a user with no history
gets the global shares); ``P(note | group)`` is the note's share of its group's
training clicks with ``smoothing`` pseudo-clicks per note, so a note nobody
clicked yet — a new one — still scores by its group.

It is fitted from the training log (``fit_log``) and scores the whole corpus
per batch (``score_batch``), like ``itemcf``; ``fresh_every`` gives it the
fresh-note channel of serving (``snsrec.eval.protocols``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from snsrec.data.sequences import NOTE, BehaviourLog
from snsrec.errors import ModelError
from snsrec.models.base import CountingRetriever
from snsrec.models.registry import register


@register("category")
class CategoryPopularity(CountingRetriever):
    def __init__(self, corpus: Any, level: str = "subcategory", prior_strength: float = 1.0,
                 smoothing: float = 1.0, fresh_every: int = 0):
        super().__init__()
        if level not in ("category", "subcategory"):
            raise ModelError(f"category: level '{level}'; use 'category' or 'subcategory'")
        if prior_strength <= 0 or smoothing <= 0:
            raise ModelError("category: prior_strength and smoothing must be > 0 "
                             f"(got {prior_strength}, {smoothing})")
        if fresh_every == 1 or fresh_every < 0:
            raise ModelError(f"category: fresh_every {fresh_every}; use 0 (off) or >= 2")
        if corpus.category is None:
            raise ModelError("category: the corpus has no note categories; build it with "
                             "Corpus.from_tables from a notes table with a 'category' column")
        keys = list(corpus.category) if level == "category" or corpus.subcategory is None \
            else [f"{c}\x1f{s}" for c, s in zip(corpus.category, corpus.subcategory,
                                                 strict=True)]
        _, group = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
        self.n_items, self.n_groups = len(corpus), int(group.max()) + 1 if len(group) else 0
        self.prior_strength, self.smoothing = float(prior_strength), float(smoothing)
        self.register_buffer("group", torch.as_tensor(group.reshape(-1), dtype=torch.int64))
        # Fitted: log P(note | group) per note and P(group) over all training clicks.
        self.register_buffer("log_p_note", torch.zeros(self.n_items, dtype=torch.float64))
        self.register_buffer("p_group", torch.zeros(self.n_groups, dtype=torch.float64))
        self.fresh_every = fresh_every
        self.register_buffer("fresh", torch.as_tensor(corpus.fresh()), persistent=False)

    def fit_log(self, log: BehaviourLog, train_end: int) -> CategoryPopularity:
        keep = (log.kind == NOTE) & (log.ts < train_end)
        clicks = np.bincount(log.item[keep], minlength=self.n_items).astype(np.float64)
        group = self.group.numpy()
        # Pseudo-clicks on every note of a group; a group's total includes them.
        per_note = clicks + self.smoothing
        total = np.bincount(group, weights=per_note, minlength=self.n_groups)
        self.log_p_note = torch.from_numpy(np.log(per_note / total[group]))
        shares = np.bincount(group, weights=clicks, minlength=self.n_groups) + 1.0
        self.p_group = torch.from_numpy(shares / shares.sum())
        return self

    @torch.no_grad()
    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, n_items]`` log P(note | user) of each row's history (queries are ignored)."""
        kind, item = batch["hist_kind"], batch["hist_item"].long()
        notes = (kind == NOTE).double()
        counts = torch.zeros(kind.shape[0], self.n_groups, dtype=torch.float64)
        counts.scatter_add_(1, self.group[item.clamp(0, self.n_items - 1)] * (kind == NOTE),
                            notes)
        beta = self.prior_strength
        p_user = (counts + beta * self.p_group) / (notes.sum(1, keepdim=True) + beta)
        return (torch.log(p_user)[:, self.group] + self.log_p_note).float()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": self.score_batch(batch)}
