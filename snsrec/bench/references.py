"""The rows every ranker is measured against, on its own test split: on a world the
**oracle** (the world's own click probability of each test impression) and
**popularity** (the note's smoothed training CTR), everywhere the **constant**
answer (the training CTR); and each row's share of the oracle's lift.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from snsrec.data.datasets import resolve_dataset
from snsrec.data.schema import SCENARIOS
from snsrec.eval.oracle import (
    constant_scores,
    has_truth,
    impression_truth,
    load_truth,
    oracle_share,
    popularity_scores,
)

# What each reference row is, for the tables.
REFERENCES = {"oracle": "the world's true P(click) (truth/, no training)",
              "popularity": "the note's training CTR, smoothed",
              "constant": "the training CTR for every impression"}


# Events columns a reference row reads, under the names of the FeatureMap's meta arrays.
META_COLUMNS = {"_user_id": "user_id", "_note_id": "note_id", "_request_id": "request_id",
                "_position": "position"}


def split_rows(frame: pl.LazyFrame) -> dict[str, np.ndarray]:
    """The click label and the meta arrays a FeatureMap gives a split (``_user_id``,
    ``_scenario``, ``_ts``, ...), read straight from its events: the references need no
    features. Columns the data lacks are left out."""
    from snsrec.eval.protocols import LABEL

    names = frame.collect_schema().names()
    cols = [pl.col(LABEL).cast(pl.Float32).fill_null(0)]
    cols += [pl.col(c).alias(k) for k, c in META_COLUMNS.items() if c in names]
    if "ts" in names:
        cols.append(pl.col("ts").dt.epoch("s").alias("_ts"))
    if "scenario" in names:
        cols.append(pl.col("scenario").cast(pl.String).replace_strict(
            list(SCENARIOS), list(range(len(SCENARIOS))), default=-1,
            return_dtype=pl.Int8).alias("_scenario"))
    df = frame.select(cols).collect()
    return {c: df[c].to_numpy() for c in df.columns}


def reference_rows(cfg: Any) -> list[dict[str, Any]]:
    """The rows every model is measured against, on ``cfg``'s test split and scored with
    the models' own metrics (``evaluate_predictions``): on a world the oracle and
    popularity, everywhere the constant answer. No training; the truth is read here, after
    every run, and never reaches one."""
    from snsrec.data.tables import load_tables
    from snsrec.eval.protocols import LABEL, evaluate_predictions
    from snsrec.train.pipeline import run_splits, sample_rows

    root = resolve_dataset(cfg.data, cfg.cache)
    splits = run_splits(load_tables(root), cfg)
    test = split_rows(sample_rows(splits["test"], cfg.max_rows.get("test")))
    train = split_rows(splits["train"])
    scores = {}
    if has_truth(root):
        scores["oracle"] = impression_truth(load_truth(root), test)["click"]
        scores["popularity"] = popularity_scores(train["_note_id"], train[LABEL],
                                                 test["_note_id"])
    scores["constant"] = constant_scores(train[LABEL], len(test[LABEL]))
    return [reference_row(name, evaluate_predictions(test, p)) for name, p in scores.items()]


def auc_references(cfg: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``reference_rows(cfg)``, with every row of a table keeping its AUC as ``(mean, std)``
    under ``"auc"`` (bench sequence, multimodal) and every reference given its share of the
    oracle's AUC lift over 0.5 (``auc_share``), in place."""
    refs = reference_rows(cfg)
    best = next((r["auc_mean"] for r in refs if r["model"] == "oracle"), math.nan)
    for r in rows:
        r["auc_share"] = oracle_share(r["auc"][0], best, 0.5)
    for r in refs:
        r["auc_share"] = oracle_share(r["auc_mean"], best, 0.5)
    return refs


def reference_row(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A reference as a leaderboard row (one value, no spread, no training)."""
    return {"model": name, "reference": REFERENCES[name], "auc_mean": metrics["auc"],
            "auc_std": 0.0, "logloss_mean": metrics["logloss"], "logloss_std": 0.0,
            "gauc_mean": metrics.get("gauc", math.nan), "rows": metrics["n"],
            "by_scenario": {s: {"auc_mean": m["auc"], "auc_std": 0.0}
                            for s, m in metrics.get("by_scenario", {}).items()}}


def add_shares(rows: list[dict[str, Any]], references: list[dict[str, Any]]) -> None:
    """Each row's share of the oracle, in place: AUC (and per-scenario AUC) over 0.5,
    logloss over the constant answer's; nan where the data has no oracle."""
    ref = {r["model"]: r for r in references}
    oracle = ref.get("oracle", {})
    floor = ref["constant"]["logloss_mean"]
    for r in [*rows, *references]:
        r["auc_share"] = oracle_share(r["auc_mean"], oracle.get("auc_mean", math.nan), 0.5)
        r["logloss_share"] = oracle_share(r["logloss_mean"],
                                          oracle.get("logloss_mean", math.nan), floor)
        for s, m in r.get("by_scenario", {}).items():
            best = oracle.get("by_scenario", {}).get(s, {}).get("auc_mean", math.nan)
            m["auc_share"] = oracle_share(m["auc_mean"], best, 0.5)
