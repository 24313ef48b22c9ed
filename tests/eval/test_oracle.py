"""The oracle: the world's truth scored as a model, on the tiny world and hand-made cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from snsrec.data.schema import SCENARIOS
from snsrec.data.world.usermodel import ClickParams, Intents, Truth, UserModel
from snsrec.data.world.vocab import TOPIC_NAMES
from snsrec.errors import DataError
from snsrec.eval import oracle
from snsrec.eval.metrics import retrieval_metrics
from snsrec.eval.oracle import (
    WorldTruth,
    constant_scores,
    impression_truth,
    load_truth,
    oracle_share,
    popularity_scores,
    truth_ranks,
)


def _events(world: Path) -> pl.DataFrame:
    return pl.read_parquet(world / "events.parquet")


def _rows(ev: pl.DataFrame) -> dict[str, np.ndarray]:
    return {"_user_id": ev["user_id"].to_numpy(), "_note_id": ev["note_id"].to_numpy(),
            "_scenario": np.array([SCENARIOS.index(s) for s in ev["scenario"]], np.int8),
            "_position": ev["position"].to_numpy(), "_ts": ev["ts"].dt.epoch("s").to_numpy(),
            "_request_id": ev["request_id"].to_numpy()}


def test_impression_truth_is_the_user_models_probabilities(tiny_world: Path) -> None:
    ev = _events(tiny_world).tail(3000)
    got = impression_truth(load_truth(tiny_world), _rows(ev))
    # The queries' topics found independently: the topic's index by name, the subcategory's
    # global index from the notes that carry it (truth/notes.parquet beside notes.parquet).
    sub = (pl.read_parquet(tiny_world / "notes.parquet", columns=["note_id", "subcategory"])
           .join(pl.read_parquet(tiny_world / "truth" / "notes.parquet",
                                 columns=["note_id", "subcat"]), on="note_id")
           .select("subcategory", "subcat").unique())
    q = (ev.select("request_id", "scenario")
         .join(pl.read_parquet(tiny_world / "queries.parquet"), on="request_id", how="left")
         .join(sub, on="subcategory", how="left"))
    search = (q["scenario"] == "search").to_numpy()
    topic = np.array([TOPIC_NAMES.index(c) if c else -1 for c in q["category"]])
    subcat = q["subcat"].fill_null(-1).to_numpy()
    assert search.any() and (topic[search] >= 0).all() and (subcat[search] >= 0).all()
    want = UserModel.load(tiny_world).probabilities(
        ev["user_id"].to_numpy(), ev["note_id"].to_numpy(), ev["scenario"].to_numpy(),
        ev["position"].to_numpy(), ev["ts"].to_numpy(),
        query_topic=np.where(search, topic, -1), query_subcat=np.where(search, subcat, -1))
    np.testing.assert_array_equal(got["click"], want["click"])
    np.testing.assert_array_equal(got["convert"], want["convert"])
    # The query counts: without it the search rows' click probabilities differ.
    blind = impression_truth(load_truth(tiny_world),
                             {k: v for k, v in _rows(ev).items() if k != "_request_id"})
    assert not np.allclose(blind["click"][search], got["click"][search])
    np.testing.assert_array_equal(blind["click"][~search], got["click"][~search])


def test_the_oracle_beats_a_trained_lr_on_the_same_test_rows(tiny_world: Path,
                                                             tmp_path: Path) -> None:
    from snsrec.eval.protocols import evaluate_predictions
    from snsrec.train.pipeline import load_run_config, prepare_data, train_run

    cfg = load_run_config(None, base={
        "name": "lr", "data": str(tiny_world), "cache": str(tmp_path / "cache"),
        "model": {"name": "lr"}, "train": {"epochs": 2, "batch_size": 512, "lr": 0.01,
                                            "threads": 1}})
    lr = train_run(cfg, tmp_path / "lr")["test"]
    test = prepare_data(cfg).arrays["test"]          # the rows the LR was scored on
    truth = evaluate_predictions(test, impression_truth(load_truth(tiny_world), test)["click"])
    assert truth["n"] == lr["n"] and truth["ctr"] == lr["ctr"]
    assert lr["auc"] > 0.55                           # the LR learnt something
    assert truth["auc"] > lr["auc"] and truth["logloss"] < lr["logloss"]
    assert truth["gauc"] > lr["gauc"]
    for s in SCENARIOS:
        assert truth["by_scenario"][s]["auc"] > 0.5


def test_a_world_without_truth_or_with_a_foreign_query_is_one_line(tiny_world: Path,
                                                                     tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no truth/params.json.*snsrec world generate") as e:
        load_truth(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "truth").symlink_to(tiny_world / "truth", target_is_directory=True)
    with pytest.raises(DataError, match=r"queries.parquet: file not found"):
        load_truth(tmp_path)
    queries = pl.read_parquet(tiny_world / "queries.parquet")
    queries.with_columns(pl.when(pl.col("query_id") == 3).then(pl.lit("underwater-basketry"))
                         .otherwise("subcategory").alias("subcategory")
                         ).write_parquet(tmp_path / "queries.parquet")
    with pytest.raises(DataError, match=r"queries.parquet: .*'underwater-basketry' is not in "
                                        r"the world's taxonomy; regenerate the world"):
        load_truth(tmp_path)


def _hand_made_world() -> WorldTruth:
    """Two users, two topics, five notes; no intents, no queries.

    User 1 likes topic 0 only, user 2 topic 1 only. Notes 10, 12, 13, 14 are topic 0
    (quality 0.5, 0.5, 0.9, 0.2), note 11 topic 1; note 14 is the only ad.
    """
    f32 = np.float32
    truth = Truth(
        user_ids=np.array([1, 2]), interests=np.array([[1, 0], [0, 1]], f32),
        susceptibility=np.zeros(2, f32), sensitivity=np.ones(2, f32),
        gender_sign=np.zeros(2, f32), note_ids=np.array([10, 11, 12, 13, 14]),
        topic=np.array([0, 1, 0, 0, 0], np.int16), topic2=np.array([0, 1, 0, 0, 0], np.int16),
        topic_w=np.ones(5, f32), subcat=np.array([0, 1, 0, 0, 0], np.int32),
        quality=np.array([0.5, 0.5, 0.5, 0.9, 0.2], f32), clickbait=np.zeros(5, f32),
        harmful=np.zeros(5, bool), is_ad=np.array([0, 0, 0, 0, 1], bool),
        gender_appeal=np.zeros(5, f32))
    empty = np.zeros(0, np.int64)
    intents = Intents(user=empty, start=empty, end=empty, topic=empty.astype(np.int16),
                      subcat=empty.astype(np.int32), emerging=np.zeros(0, bool))
    return WorldTruth(UserModel(truth, intents, ClickParams()), empty, empty, empty)


@pytest.mark.parametrize("block", [oracle.TRUTH_BLOCK, 5])     # one block; one query a block
def test_truth_ranks_a_hand_made_case(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oracle, "TRUTH_BLOCK", block)
    world = _hand_made_world()
    notes = world.model.truth.note_ids
    created = np.array([0, 0, 200, 0, 0])      # note 12 appears at t = 200
    #            user 1 at 100: note 10 behind 13 (12 not written yet); at 300 also behind
    #            its tie 12 (ties count against it); note 11 behind 13, 10, 14 (topic 1);
    #            user 2: its topic's only note first.
    users, times = np.array([1, 1, 1, 2]), np.array([100, 300, 100, 100])
    targets = np.array([0, 0, 1, 1])            # rows of notes 10, 10, 11, 11
    ranks = truth_ranks(world, users, times, "feed", targets, notes, created)
    np.testing.assert_array_equal(ranks, [1, 2, 3, 0])
    m = retrieval_metrics(ranks, [1, 3])
    assert (m["hr@1"], m["hr@3"], m["mrr"]) == (0.25, 0.75, pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 1) / 4))
    # Ranked for a conversion the ad comes first, though its P(click) is the lowest of topic 0.
    ad = truth_ranks(world, np.array([1]), np.array([100]), "ads", np.array([4]), notes,
                     created, conversion=True)
    click = truth_ranks(world, np.array([1]), np.array([100]), "ads", np.array([4]), notes,
                        created)
    assert ad.tolist() == [0] and click.tolist() == [2]


def test_shares_of_the_oracle_as_defined() -> None:
    assert oracle_share(0.65, 0.8, 0.5) == pytest.approx(0.5)          # AUC over 0.5
    assert oracle_share(0.45, 0.4, 0.5) == pytest.approx(0.5)          # logloss vs constant
    assert oracle_share(0.55, 0.4, 0.5) == pytest.approx(-0.5)         # worse than constant
    assert oracle_share(0.12, 0.48) == pytest.approx(0.25)             # HR@K: model / oracle
    assert oracle_share(0.5, 0.8, 0.5) == 0.0 and str(oracle_share(0.5, 0.4, 0.5)) == "0.0"
    for undefined in ((0.7, math.nan, 0.5), (0.7, 0.5, 0.5), (math.nan, 0.8, 0.5)):
        assert math.isnan(oracle_share(*undefined))


def test_constant_and_popularity_answers() -> None:
    clicks = np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(constant_scores(clicks, 2), [1 / 3, 1 / 3])
    # ctr 1/3, prior 2 impressions: note 1 (1 + 2/3) / (2 + 2); note 2 (0 + 2/3) / (1 + 2);
    # note 3 was never shown in training: the training CTR.
    got = popularity_scores(np.array([1, 1, 2]), clicks, np.array([2, 3, 1]), prior=2.0)
    np.testing.assert_allclose(got, [2 / 9, 1 / 3, 5 / 12])
    assert popularity_scores(np.zeros(0), np.zeros(0), np.array([4])).tolist() == [0.5]
