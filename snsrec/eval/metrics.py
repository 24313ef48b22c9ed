"""Evaluation metrics: small pure functions over NumPy arrays.

Conventions (stated, not implied):

- CTR metrics take labels ``y`` in {0, 1} and predicted probabilities ``p``.
- ``auc`` gives tied scores their average rank (the Mann-Whitney statistic, same
  as scikit-learn's ``roc_auc_score``). With only one class present AUC is
  undefined and the function returns ``nan`` rather than raising, so a
  per-scenario table can show the gap.
- ``gauc`` is the impression-weighted mean of per-group AUC over the groups that
  hold both classes; single-class groups are skipped (they carry no ranking
  information). ``nan`` when no group qualifies.
- Retrieval metrics take ``ranks``: the 0-based rank of the true item for each
  query (0 = ranked first). ``rank_of_targets`` computes them from a score
  matrix; ties with the target are counted *pessimistically* by default (every
  other item with an equal score is ranked ahead), so a constant scorer cannot
  look good. ``ties="average"`` gives the expected rank under random
  tie-breaking instead.

``METRICS`` maps metric names to the CTR functions (``fn(y, p)``) so configs and
reports can name them, RecBole style; ``higher_is_better`` knows the direction of
every metric a config, a benchmark or a report may name (``is_metric``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np


def _labels_scores(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.shape[0]}) and scores ({p.shape[0]}) differ in length")
    return y.astype(bool), p


def _tie_ranks(sorted_keys: np.ndarray, block_start: np.ndarray) -> np.ndarray:
    """1-based average ranks of sorted values; ``block_start`` marks where a new group begins.

    Positions restart at 1 in every group and tied values share the mean of
    their positions.
    """
    n = sorted_keys.shape[0]
    idx = np.arange(n)
    group_first = np.maximum.accumulate(np.where(block_start, idx, 0))
    pos = idx - group_first + 1.0
    tie_start = block_start.copy()
    tie_start[1:] |= sorted_keys[1:] != sorted_keys[:-1]
    tie_id = np.cumsum(tie_start) - 1
    sums = np.bincount(tie_id, weights=pos)
    counts = np.bincount(tie_id)
    return (sums / counts)[tie_id]


def _grouped_auc(y: np.ndarray, p: np.ndarray, g: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group AUC (nan for single-class groups), group sizes and group keys."""
    order = np.lexsort((p, g))
    gs, ps, ys = g[order], p[order], y[order]
    start = np.ones(gs.shape[0], dtype=bool)
    start[1:] = gs[1:] != gs[:-1]
    ranks = _tie_ranks(ps, start)
    gid = np.cumsum(start) - 1
    n = np.bincount(gid).astype(np.float64)
    n_pos = np.bincount(gid, weights=ys.astype(np.float64))
    n_neg = n - n_pos
    rank_sum = np.bincount(gid, weights=ranks * ys)
    with np.errstate(divide="ignore", invalid="ignore"):
        aucs = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    aucs[(n_pos == 0) | (n_neg == 0)] = np.nan
    return aucs, n, gs[start]


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve; ties get average rank; ``nan`` if one class only."""
    y, p = _labels_scores(y, p)
    if y.size == 0:
        return float("nan")
    aucs, _, _ = _grouped_auc(y, p, np.zeros(y.shape[0], dtype=np.int8))
    return float(aucs[0])


def soft_auc(q: np.ndarray, p: np.ndarray) -> float:
    """The AUC of scores ``p`` expected over labels drawn as Bernoulli(``q``) — against a
    known probability rather than one draw of it: pairs (i, j), i ≠ j, weighted by
    q_i (1 − q_j); i ranked above j counts 1, a tie 1/2. Equals ``auc`` for 0/1 ``q``;
    ``nan`` when no pair has weight."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if q.shape != p.shape:
        raise ValueError(f"probabilities ({q.shape[0]}) and scores ({p.shape[0]}) differ "
                         "in length")
    if ((q < 0) | (q > 1)).any() or not np.isfinite(p).all():
        raise ValueError("soft_auc: probabilities in [0, 1] and finite scores")
    order = np.argsort(p, kind="stable")
    q, p = q[order], p[order]
    neg = 1.0 - q
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    block = np.cumsum(np.r_[False, p[1:] != p[:-1]])            # tie block of each row
    neg_before = np.r_[0.0, np.cumsum(neg)][starts][block]      # all negatives scored lower
    neg_tied = np.add.reduceat(neg, starts)[block]              # negatives in the row's tie
    # A row ties with itself: its own q (1 − q) is not a pair.
    num = float((q * (neg_before + 0.5 * (neg_tied - neg))).sum())
    den = float(q.sum() * neg.sum() - (q * neg).sum())
    return num / den if den > 0 else float("nan")


def logloss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy; ``p`` is clipped to ``[eps, 1 - eps]``."""
    y, p = _labels_scores(y, p)
    if y.size == 0:
        return float("nan")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUC, skipping single-class groups."""
    y, p = _labels_scores(y, p)
    groups = np.asarray(groups).reshape(-1)
    if groups.shape != y.shape:
        raise ValueError(f"groups ({groups.shape[0]}) and labels ({y.shape[0]}) differ in length")
    if y.size == 0:
        return float("nan")
    aucs, n, _ = _grouped_auc(y, p, groups)
    ok = ~np.isnan(aucs)
    if not ok.any():
        return float("nan")
    return float(np.sum(aucs[ok] * n[ok]) / np.sum(n[ok]))


def calibration(y: np.ndarray, p: np.ndarray) -> float:
    """Mean predicted CTR over observed CTR (1.0 = calibrated); ``nan`` if no positives."""
    y, p = _labels_scores(y, p)
    observed = y.mean() if y.size else 0.0
    return float(p.mean() / observed) if observed > 0 else float("nan")


def binary_prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of boolean predictions against boolean truth (0 where a
    denominator is empty)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int((pred & truth).sum())
    precision = tp / pred.sum() if pred.sum() else 0.0
    recall = tp / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def rank_of_targets(scores: np.ndarray, target_idx: np.ndarray,
                    ties: Literal["pessimistic", "average"] = "pessimistic") -> np.ndarray:
    """0-based rank of ``scores[i, target_idx[i]]`` within row ``i`` (higher score = better).

    ``scores`` may also be one row ``[n]`` shared by every query.

    ``pessimistic``: every other item with an equal score counts as ranked ahead.
    ``average``: equal-score items count half (expected rank under random
    tie-breaking). Returns float64 ranks of shape ``[q]``.
    """
    scores = np.asarray(scores)
    target_idx = np.asarray(target_idx, dtype=np.int64).reshape(-1)
    weight = 1.0 if ties == "pessimistic" else 0.5
    if scores.ndim == 1:  # the same scores for every query (e.g. popularity): sort once
        ordered = np.sort(scores)
        target = scores[target_idx]
        above = np.searchsorted(ordered, target, side="right")
        equal = above - np.searchsorted(ordered, target, side="left") - 1
        return (scores.shape[0] - above) + weight * equal
    if scores.ndim != 2 or scores.shape[0] != target_idx.shape[0]:
        raise ValueError(f"scores {scores.shape} must be [n] or [q, n] with q = "
                         f"{target_idx.shape[0]}")
    target = np.take_along_axis(scores, target_idx[:, None], axis=1)
    higher = (scores > target).sum(axis=1)
    equal = (scores == target).sum(axis=1) - 1  # the target itself is not a competitor
    return higher + weight * equal


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of queries whose true item is in the top ``k``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks < k)) if ranks.size else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item per query: ``1 / log2(rank + 2)`` inside the top k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return float("nan")
    return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank ``1 / (rank + 1)``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(1.0 / (ranks + 1.0))) if ranks.size else float("nan")


def blended_ranks(scores: np.ndarray, target_idx: np.ndarray, fresh: np.ndarray,
                  every: int) -> np.ndarray:
    """0-based ranks of the targets in a list that gives every ``every``-th place to a
    fresh note (``fresh``: ``[n]`` bool over the items).

    Each channel is ranked by ``scores`` on its own (``-inf``: not a candidate);
    places ``every - 1``, ``2 * every - 1``, ... take the fresh notes in order,
    the others the rest, and when one channel of a row runs out the other
    fills every place. Ties are pessimistic, as in ``rank_of_targets``.
    """
    if every < 2:
        raise ValueError(f"every {every}: give at least 2 (every-th place fresh)")
    scores = np.asarray(scores, dtype=np.float64)
    target_idx = np.asarray(target_idx, dtype=np.int64).reshape(-1)
    fresh = np.asarray(fresh, dtype=bool)
    is_fresh = fresh[target_idx]
    own = np.where(is_fresh[:, None] == fresh[None, :], scores, -np.inf)
    r = rank_of_targets(own, target_idx).astype(np.int64)     # within the target's channel
    n_fresh, n_rest = (np.isfinite(scores[:, m]).sum(1) for m in (fresh, ~fresh))
    place_fresh = np.minimum((r + 1) * every - 1, r + n_rest)
    place_rest = np.minimum(r + r // (every - 1), r + n_fresh)
    return np.where(is_fresh, place_fresh, place_rest).astype(np.float64)


def retrieval_metrics(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """HR@k and NDCG@k for every k, and MRR, of 0-based target ranks."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = hit_rate_at_k(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    out["mrr"] = mrr(ranks)
    return out


def per_group(metric_fn: Callable[..., float], y: np.ndarray, p: np.ndarray,
              groups: np.ndarray, names: Sequence[str] | None = None,
              extra: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """``metric_fn`` on each group's rows, e.g. per scenario.

    ``groups`` holds integer codes (``names[code]`` labels them) or labels.
    ``extra`` arrays aligned with ``y`` are sliced the same way and passed as
    keywords, e.g. ``per_group(gauc, y, p, scen, SCENARIOS, extra={"groups": user})``.
    Groups are reported in sorted code order; groups with no rows are left out.
    """
    y, p = np.asarray(y).reshape(-1), np.asarray(p).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    out: dict[str, float] = {}
    for code in np.unique(groups):  # a handful of scenarios, not rows
        mask = groups == code
        kwargs = {k: np.asarray(v).reshape(-1)[mask] for k, v in (extra or {}).items()}
        label = names[int(code)] if names is not None else str(code)
        out[label] = metric_fn(y[mask], p[mask], **kwargs)
    return out


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": auc,
    "logloss": logloss,
    "calibration": calibration,
}


# The direction of every named metric: True where higher is better. hr@K, ndcg@K and
# recall@K (any cut-off K ≥ 1) are higher-is-better too.
DIRECTION: dict[str, bool] = {
    "auc": True, "gauc": True, "cvr_auc": True, "ctcvr_auc": True, "mrr": True,
    # AUCs against the world's true probabilities (snsrec.bench.conversion)
    "cvr_auc_entire": True, "ctr_auc_truth": True, "ctcvr_auc_truth": True,
    "logloss": False, "cvr_logloss": False}
_AT_K = re.compile(r"^(hr|ndcg|recall)@[1-9][0-9]*$")
METRIC_NAMES = ", ".join([*DIRECTION, "hr@K", "ndcg@K", "recall@K"])


def is_metric(name: str) -> bool:
    return name in DIRECTION or bool(_AT_K.match(name))


def higher_is_better(name: str) -> bool:
    """The direction of metric ``name``; a ValueError naming the known ones otherwise."""
    if name in DIRECTION:
        return DIRECTION[name]
    if _AT_K.match(name):
        return True
    raise ValueError(f"'{name}' is not a metric; use {METRIC_NAMES}")


def ctr_metrics(y: np.ndarray, p: np.ndarray, users: np.ndarray | None = None,
                names: Sequence[str] = ("auc", "logloss", "calibration")) -> dict[str, float]:
    """The named CTR metrics, plus ``gauc`` when ``users`` is given; also ``n`` and ``ctr``."""
    out = {name: METRICS[name](y, p) for name in names}
    if users is not None:
        out["gauc"] = gauc(y, p, users)
    y = np.asarray(y)
    out["n"] = int(y.size)
    out["ctr"] = float(y.mean()) if y.size else float("nan")
    return out


def paired_difference(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True,
                      level: float = 0.95) -> dict[str, float | int | str]:
    """``a − b`` over paired runs (the same seeds): the mean, a ``level`` t interval
    (``scipy.stats.ttest_rel``) and the reading — "a" or "b" ahead only when the interval
    excludes 0, "tie" otherwise, and "one run" (no interval, no claim) for fewer than two
    pairs. The rule every "beats" in the docs rests on."""
    from scipy import stats

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired_difference: {len(x)} values against {len(y)}")
    d = x - y
    mean = float(d.mean()) if d.size else float("nan")
    if d.size < 2:
        return {"mean": mean, "lo": float("nan"), "hi": float("nan"), "n": int(d.size),
                "reading": "one run"}
    if not d.any():
        lo = hi = 0.0
    else:
        ci = stats.ttest_rel(x, y).confidence_interval(level)
        lo, hi = float(ci.low), float(ci.high)
    ahead_a, ahead_b = (lo > 0, hi < 0) if higher_is_better else (hi < 0, lo > 0)
    reading = "a" if ahead_a else "b" if ahead_b else "tie"
    return {"mean": mean, "lo": lo, "hi": hi, "n": int(d.size), "reading": reading}
