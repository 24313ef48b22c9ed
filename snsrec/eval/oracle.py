"""The world's truth as a model, and the trivial answers beside it.

A synthetic world knows how its logs were written: ``truth/`` holds the click
model (``snsrec.data.world.usermodel``) that drew every impression's click and
conversion. Scored as if it were a model it is the **oracle** — on logged
impressions the best any model can expect (its AUC stays below 1 where the true
probabilities overlap; on a finite sample a model may pass it by chance) — and
a model's **share of the oracle** says how much of the achievable gain it
reached: ``(model − baseline) / (oracle − baseline)`` (``oracle_share``). Ranking
a whole corpus for a logged click is different: the click also needed the
logging policy to show the note, which the truth does not model, so there the
oracle is the user's preference, not a ceiling (``truth_ranks``).

- ``impression_truth``: P(click) and P(convert | click) of logged impressions
  (user, note, scenario, position, time, and for search rows the topic and
  subcategory of the request's query, read from ``queries.parquet``).
- ``truth_ranks``: the rank of each retrieval target among every note that
  exists at the query time, all notes ordered by that user's true P(click)
  in the target scenario at the top slot (× P(convert | click) for a
  conversion target).
- ``constant_scores`` / ``popularity_scores``: the trivial answers a
  leaderboard shows under its models (the training CTR everywhere; each note's
  smoothed training click rate).

Evaluation only: benchmarks call this after training, on test rows. Nothing
here is reachable from a model, a FeatureMap or a training sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from snsrec.data.schema import SCENARIOS
from snsrec.data.world.generate import _taxonomy
from snsrec.data.world.usermodel import UserModel
from snsrec.data.world.vocab import TOPIC_NAMES
from snsrec.errors import DataError
from snsrec.eval.metrics import rank_of_targets
from snsrec.io import read_parquet
from snsrec.progress import Progress

# Elements of one [queries × notes] block the retrieval oracle scores at a time: the click
# model keeps ~15 float64 arrays of that size alive, so 2M elements stay near 250 MB.
TRUTH_BLOCK = 1 << 21
# Popularity's prior: a note's click rate counts as this many impressions at the training CTR
# (most test-day notes of a world are new and have no training impression at all).
POPULARITY_PRIOR = 20.0


def has_truth(root: str | Path) -> bool:
    """Whether ``root`` is a world that knows its truth (``truth/params.json``)."""
    return (Path(root) / "truth" / "params.json").is_file()


@dataclass
class WorldTruth:
    """A world's click model and its search queries' topics (``load_truth``)."""

    model: UserModel
    request_id: np.ndarray      # int64, sorted: the search requests of queries.parquet
    query_topic: np.ndarray     # topic index of each request's query
    query_subcat: np.ndarray    # global subcategory index of each request's query


def load_truth(root: str | Path) -> WorldTruth:
    """The truth of the world at ``root``; a DataError when it has none."""
    root = Path(root)
    if not has_truth(root):
        raise DataError(f"{root}: no truth/params.json, so no oracle: only a generated world "
                        "(snsrec world generate) knows how its clicks were drawn")
    # The generator's own taxonomy: topic index by name, global subcategory index by
    # (topic, subcategory) name, as queries.parquet writes them.
    tax = _taxonomy()
    path = root / "queries.parquet"
    q = (pl.from_arrow(read_parquet(path, columns=["request_id", "category", "subcategory"]))
         .sort("request_id")
         .with_columns(pl.col("category").replace_strict(
                           list(TOPIC_NAMES), list(range(len(TOPIC_NAMES))), default=-1,
                           return_dtype=pl.Int64).alias("topic"),
                       pl.concat_str("category", "subcategory", separator="/").replace_strict(
                           [f"{TOPIC_NAMES[t]}/{n}" for t, n in zip(tax.sub_topic,
                                                                    tax.sub_names,
                                                                    strict=True)],
                           list(range(len(tax.sub_names))), default=-1,
                           return_dtype=pl.Int64).alias("subcat")))
    bad = q.filter(pl.col("subcat") < 0)
    if bad.height:
        raise DataError(f"{path}: query category / subcategory "
                        f"{bad['category'][0]!r} / {bad['subcategory'][0]!r} is not in the "
                        "world's taxonomy; regenerate the world")
    return WorldTruth(UserModel.load(root), q["request_id"].to_numpy().astype(np.int64),
                      q["topic"].to_numpy(), q["subcat"].to_numpy())


def query_topics(truth: WorldTruth, request_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(topic, subcategory) of each request's search query; -1 for a request without one."""
    req = np.asarray(request_ids, np.int64)
    if not len(truth.request_id):
        return np.full(len(req), -1, np.int64), np.full(len(req), -1, np.int64)
    pos = np.minimum(np.searchsorted(truth.request_id, req), len(truth.request_id) - 1)
    known = truth.request_id[pos] == req
    return (np.where(known, truth.query_topic[pos], -1),
            np.where(known, truth.query_subcat[pos], -1))


def impression_truth(truth: WorldTruth, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"click": P(click), "convert": P(convert | click)}`` of logged impressions.

    ``rows`` holds the meta arrays a FeatureMap gives every split (``_user_id``,
    ``_note_id``, ``_scenario`` as an index into ``SCENARIOS``, ``_position``,
    ``_ts`` in seconds, ``_request_id``): the situation each impression was drawn in.
    """
    missing = [k for k in ("_user_id", "_note_id", "_scenario", "_position", "_ts")
               if k not in rows]
    if missing:
        raise DataError(f"oracle: impression rows lack {', '.join(missing)}; they come from a "
                        "world's events (user, note, scenario, position, ts)")
    scen = np.asarray(rows["_scenario"])
    qt, qs = query_topics(truth, rows.get("_request_id", np.full(len(scen), -1)))
    search = scen == SCENARIOS.index("search")
    p = truth.model.probabilities(rows["_user_id"], rows["_note_id"], scen, rows["_position"],
                                  rows["_ts"], query_topic=np.where(search, qt, -1),
                                  query_subcat=np.where(search, qs, -1))
    return {"click": p["click"], "convert": p["convert"]}


def truth_ranks(truth: WorldTruth, users: np.ndarray, times: np.ndarray, scenario: str,
                targets: np.ndarray, note_ids: np.ndarray, created: np.ndarray, *,
                conversion: bool = False) -> np.ndarray:
    """0-based rank of each target among the notes (``note_ids``, rows as ``targets``
    index them) that exist at its query time (``created <= times``), ordered by the true
    P(click) of that user at that time in ``scenario`` at position 0 — times P(convert |
    click) with ``conversion``. Ties count against the target (``rank_of_targets``)."""
    users, times = np.asarray(users, np.int64), np.asarray(times, np.int64)
    targets, note_ids = np.asarray(targets, np.int64), np.asarray(note_ids, np.int64)
    created = np.asarray(created, np.int64)
    n = len(note_ids)
    ranks = np.empty(len(users), np.float64)
    step = max(1, TRUTH_BLOCK // max(n, 1))
    with Progress(f"rank by the truth ({scenario})", total=len(users), unit="queries") as bar:
        for s in range(0, len(users), step):
            u, t = users[s:s + step], times[s:s + step]
            m = len(u)
            p = truth.model.probabilities(np.repeat(u, n), np.tile(note_ids, m), scenario,
                                          np.zeros(m * n, np.int32), np.repeat(t, n))
            score = (p["click"] * p["convert"] if conversion else p["click"]).reshape(m, n)
            score[created[None, :] > t[:, None]] = -np.inf      # not written yet
            ranks[s:s + m] = rank_of_targets(score, targets[s:s + m])
            bar.update(m)
    return ranks


def constant_scores(train_clicks: np.ndarray, n: int) -> np.ndarray:
    """The training CTR as every one of ``n`` predictions (AUC 0.5; its logloss is the
    entropy a model must beat)."""
    return np.full(n, float(np.mean(train_clicks)) if len(train_clicks) else 0.5)


def popularity_scores(train_notes: np.ndarray, train_clicks: np.ndarray,
                      notes: np.ndarray, prior: float = POPULARITY_PRIOR) -> np.ndarray:
    """Each note's training click rate, smoothed towards the training CTR by ``prior``
    impressions: ``(clicks + prior · ctr) / (impressions + prior)`` — the training CTR for a
    note never shown in training."""
    train_notes = np.asarray(train_notes, np.int64)
    train_clicks = np.asarray(train_clicks, np.float64)
    ctr = float(train_clicks.mean()) if len(train_clicks) else 0.5
    ids, inverse = np.unique(train_notes, return_inverse=True)
    shown = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    clicked = np.bincount(inverse, weights=train_clicks, minlength=len(ids))
    # A note never shown in training sits at the prior alone (an empty slot appended).
    rate = np.r_[(clicked + prior * ctr) / (shown + prior), ctr]
    notes = np.asarray(notes, np.int64)
    pos = np.minimum(np.searchsorted(ids, notes), max(len(ids) - 1, 0))
    known = ids[pos] == notes if len(ids) else np.zeros(len(notes), bool)
    return rate[np.where(known, pos, len(ids))]


def oracle_share(value: float, oracle: float, baseline: float = 0.0) -> float:
    """How much of the oracle's gain over ``baseline`` a model reached: ``(value −
    baseline) / (oracle − baseline)``. AUC: baseline 0.5; logloss: the constant answer's
    logloss (a lower logloss then gives a positive share); HR@K / NDCG@K: 0 (model /
    oracle). ``nan`` when undefined (no oracle, or one no better than the baseline)."""
    values = np.array([value, oracle, baseline], np.float64)
    if not np.isfinite(values).all() or oracle == baseline:
        return float("nan")
    return float((value - baseline) / (oracle - baseline)) + 0.0     # never "-0.0"
