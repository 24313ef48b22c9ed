"""Evaluation protocols, stated: how a model is scored, not just with what metric.

``evaluate_predictions`` — a ranker's click probabilities against the ``click``
label of held-out impressions: AUC, logloss, calibration and GAUC (by user),
overall and per scenario. ``conversion_metrics`` — CVR on the clicked rows,
CTCVR on every row (ESMM's protocol).

``full_corpus`` — every query row ranks its target note among **all** notes of
the corpus (no sampled negatives) by the model's score; a note created after
the query's time did not exist yet and is left out of its ranking; ties count
against the target (pessimistic). HR@k, NDCG@k (one relevant item) and MRR.
A model with a fresh-note channel (``fresh_every`` > 0, ``fresh``: notes
created after its training cut-off) is ranked as it serves: every
``fresh_every``-th place goes to the best fresh note
(``snsrec.eval.metrics.blended_ranks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from snsrec.data.batches import to_tensors
from snsrec.data.schema import SCENARIOS
from snsrec.errors import DataError
from snsrec.eval.metrics import (
    auc,
    blended_ranks,
    ctr_metrics,
    logloss,
    per_group,
    rank_of_targets,
    retrieval_metrics,
)
from snsrec.progress import Progress

LABEL = "click"
KS = (10, 50, 100, 1000)


@torch.no_grad()
def corpus_vectors(model: nn.Module, n_items: int, batch_size: int = 4096) -> torch.Tensor:
    """``[n_items, dim]`` item vectors of every corpus row, in chunks."""
    model.eval()
    parts = [model.item_vectors(torch.arange(s, min(s + batch_size, n_items)))
             for s in range(0, n_items, batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, getattr(model, "dim", 0))


def corpus_scores(model: nn.Module, batch: dict[str, torch.Tensor],
                  items: torch.Tensor | None) -> torch.Tensor:
    """``[B, n_items]`` scores of every corpus note for a batch of user-tower inputs: a
    model that counts (itemcf, toppop) scores the corpus directly (``score_batch``), a
    two-tower one scores its user vectors against ``items`` (``corpus_vectors``)."""
    if hasattr(model, "score_batch"):
        return model.score_batch(batch)
    return model.score(model.user_vectors(batch), items, batch)


def fresh_channel(model: nn.Module) -> tuple[int, np.ndarray | None]:
    """``(fresh_every, fresh)`` of a model that serves a fresh-note channel (``fresh``: a
    ``[n_items]`` bool mask), ``(0, None)`` for one that does not."""
    every = int(getattr(model, "fresh_every", 0) or 0)
    return (every, model.fresh.cpu().numpy()) if every else (0, None)


SCORE_BUDGET = 1 << 24      # [queries × corpus] score elements a full-corpus batch holds


@torch.no_grad()
def full_corpus(model: nn.Module, arrays: dict[str, np.ndarray], *, ks: Sequence[int] = KS,
                created: np.ndarray | None = None, batch_size: int = 512,
                items: torch.Tensor | None = None) -> dict[str, Any]:
    """Ranks of ``arrays["target"]`` (corpus rows) among all notes; metrics of them.

    ``arrays``: the model's user-tower inputs per row, ``target`` and ``_ts``
    (query time, seconds, needed with ``created``: per-note creation times).
    ``items``: precomputed ``corpus_vectors`` (computed when None).
    """
    if "target" not in arrays:
        raise DataError("full-corpus evaluation needs a 'target' array (the corpus row to find)")
    model.eval()
    direct = hasattr(model, "score_batch")        # itemcf / toppop score the corpus directly
    if items is None and not direct:
        items = corpus_vectors(model, model.n_items)
    n_items = model.n_items
    target = np.asarray(arrays["target"], dtype=np.int64)
    n = len(target)
    if n and (target.min() < 0 or target.max() >= n_items):
        raise DataError(f"full-corpus evaluation: target rows outside the corpus "
                        f"[0, {n_items})")
    # Queries in order of history length: a batch's rows then share most of their padding,
    # which the user towers trim. Each rank goes back to its row.
    order = np.argsort((np.asarray(arrays["hist_kind"]) != 0).sum(1), kind="stable") \
        if "hist_kind" in arrays else np.arange(n)
    inputs = to_tensors({k: np.asarray(v)[order] for k, v in arrays.items()
                         if not k.startswith("_") and k != "target"})
    if created is not None:
        created, ts = np.asarray(created), np.asarray(arrays["_ts"])[order]
    every, fresh = fresh_channel(model)
    ranks = np.empty(n, dtype=np.float64)
    # A batch scores [queries, corpus] several times over (cosines, freshness buckets,
    # float64 scores): bounded in elements, so a 1M-note corpus takes fewer queries at a
    # time instead of tens of GB.
    batch_size = max(1, min(batch_size, SCORE_BUDGET // max(n_items, 1)))
    with Progress("rank the corpus", total=n, unit="queries") as bar:
        for s in range(0, n, batch_size):
            rows = order[s:s + batch_size]
            batch = {k: v[s:s + batch_size] for k, v in inputs.items()}
            scores = corpus_scores(model, batch, items).double().numpy()
            if created is not None:
                scores[created[None, :] > ts[s:s + batch_size, None]] = -np.inf
            ranks[rows] = rank_of_targets(scores, target[rows]) if not every else \
                blended_ranks(scores, target[rows], fresh, every)
            bar.update(len(scores))
    return {**retrieval_metrics(ranks, ks), "queries": n, "candidates": int(n_items)}


def evaluate_predictions(arrays: dict[str, np.ndarray], p: np.ndarray,
                         label: str = LABEL) -> dict[str, Any]:
    """CTR metrics for predictions ``p`` against ``arrays[label]``, overall and per scenario."""
    y = np.asarray(arrays[label])
    users = arrays.get("_user_id")
    out: dict[str, Any] = ctr_metrics(y, p, users=users)
    scen = np.asarray(arrays.get("_scenario", np.zeros(0)))
    # -1 is "no scenario" (ML-1M, BARS: the column is null), not SCENARIOS[-1] ("ads").
    known = scen >= 0
    if known.any():
        extra = {"users": np.asarray(users)[known]} if users is not None else None
        out["by_scenario"] = per_group(ctr_metrics, y[known], np.asarray(p)[known],
                                       scen[known], SCENARIOS, extra=extra)
    return out


def conversion_metrics(arrays: dict[str, np.ndarray], p_ctr: np.ndarray, p_cvr: np.ndarray
                       ) -> dict[str, Any]:
    """CVR AUC and logloss on the clicked rows (label ``convert``), CTCVR AUC on every row
    (label click · convert, score pCTR · pCVR)."""
    click = np.asarray(arrays[LABEL]) > 0
    convert = np.asarray(arrays["convert"]) > 0      # a conversion has its click (check_labels)
    return {"cvr_auc": auc(convert[click], p_cvr[click]),
            "cvr_logloss": logloss(convert[click], p_cvr[click]),
            "ctcvr_auc": auc(convert, p_ctr * p_cvr), "clicks": int(click.sum()),
            "conversions": int(convert.sum())}
