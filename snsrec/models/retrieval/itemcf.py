"""Item-to-item collaborative filtering and most-popular: the non-neural retrieval baselines.

``itemcf``: two notes are similar when the same users clicked both; the
similarity is the co-click count over ``sqrt(n_i · n_j)`` (cosine of the
notes' user sets), each note keeping its ``neighbours`` most similar. A
user's score for a note is the sum of its similarities to the notes in the
user's history. ``toppop``: every user gets the notes by training clicks.

Both are fitted from the training log (``fit_log``), not by gradient descent;
their state is buffers, so a run directory saves and reloads it like weights.
They score a batch against the whole corpus directly (``score_batch``), which
``snsrec.eval.protocols.full_corpus`` uses in place of vector towers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from snsrec.data.sequences import NOTE, BehaviourLog
from snsrec.errors import ModelError
from snsrec.models.base import CountingRetriever
from snsrec.models.registry import register


@register("itemcf")
class ItemCF(CountingRetriever):
    def __init__(self, corpus: Any, neighbours: int = 200):
        super().__init__()
        if neighbours < 1:
            raise ModelError(f"itemcf: neighbours must be >= 1 (got {neighbours})")
        self.n_items, self.neighbours = len(corpus), neighbours
        # The similarity matrix as CSR: row i's neighbours are indices[indptr[i]:indptr[i+1]].
        self.register_buffer("indptr", torch.zeros(self.n_items + 1, dtype=torch.int64))
        self.register_buffer("indices", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("values", torch.zeros(0, dtype=torch.float32))

    def fit_log(self, log: BehaviourLog, train_end: int) -> ItemCF:
        """Co-click cosine similarities from the clicks before ``train_end``."""
        import scipy.sparse as sp

        keep = (log.kind == NOTE) & (log.ts < train_end)
        users, rows = np.unique(log.user[keep], return_inverse=True)
        a = sp.csr_matrix((np.ones(int(keep.sum()), np.float32),
                           (rows.reshape(-1), log.item[keep])), shape=(len(users), self.n_items))
        a.data[:] = 1.0                                        # clicked at all, not how often
        a.sum_duplicates()
        a.data[:] = 1.0
        co = (a.T @ a).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        n = np.asarray(a.sum(axis=0)).ravel()
        co = co.tocoo()
        sim = co.data / np.sqrt(n[co.row] * n[co.col])
        order = np.lexsort((-sim, co.row))                    # by row, best first
        r, c, s = co.row[order], co.col[order], sim[order]
        start = np.searchsorted(r, np.arange(self.n_items + 1))
        rank = np.arange(len(r)) - start[r]
        top = rank < self.neighbours
        r, c, s = r[top], c[top], s[top]
        self.indptr = torch.from_numpy(np.searchsorted(r, np.arange(self.n_items + 1))
                                       .astype(np.int64))
        self.indices = torch.from_numpy(c.astype(np.int64))
        self.values = torch.from_numpy(s.astype(np.float32))
        return self

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any
                              ) -> None:
        # The neighbour lists' length is known only after fitting: take the saved sizes.
        for name in ("indices", "values"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _similarity(self) -> Any:
        import scipy.sparse as sp

        return sp.csr_matrix((self.values.numpy(), self.indices.numpy(), self.indptr.numpy()),
                             shape=(self.n_items, self.n_items))

    @torch.no_grad()
    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, n_items]``: summed similarity of every note to each row's history notes."""
        import scipy.sparse as sp

        kind, item = batch["hist_kind"].numpy(), batch["hist_item"].numpy()
        b, t = kind.shape
        notes = kind == NOTE
        rows = np.repeat(np.arange(b), t).reshape(b, t)[notes]
        hist = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, item[notes])),
                             shape=(b, self.n_items))
        return torch.from_numpy(np.asarray((hist @ self._similarity()).todense()))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": self.score_batch(batch)}


@register("toppop")
class TopPopular(CountingRetriever):
    def __init__(self, corpus: Any):
        super().__init__()
        self.n_items = len(corpus)
        self.register_buffer("clicks", torch.zeros(self.n_items, dtype=torch.float32))

    def fit_log(self, log: BehaviourLog, train_end: int) -> TopPopular:
        keep = (log.kind == NOTE) & (log.ts < train_end)
        self.clicks = torch.from_numpy(np.bincount(log.item[keep], minlength=self.n_items)
                                       .astype(np.float32))
        return self

    @torch.no_grad()
    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b = batch["hist_kind"].shape[0]
        return self.clicks[None, :].expand(b, -1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": self.score_batch(batch)}
