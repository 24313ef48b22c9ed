"""The Python API of a saved run (docs/api.md): `load_run(path)` → `run.predict(events)`
for rankers, `run.recommend(user_ids, k, scenario=)` and `run.encode_items()` for
retrievers — each the same numbers as the path the CLI takes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from snsrec.data.tables import load_tables
from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.runs import load_run
from snsrec.train.pipeline import RunConfig, run_splits, train_run

REDREC = {"dim": 16, "width": 32, "layers": 1, "heads": 2, "negatives": 50,
          "text": {"backbone": "hash", "buckets": 1 << 14, "dim": 16}}
RETRIEVAL = {"window": 4, "cutoffs_per_user": 5,
             "sequence": {"blocks": {"feed": 16, "search": 8, "discover": 8, "ads": 8}}}


@pytest.fixture(scope="module")
def runs(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    configs = {
        "lr": {"model": {"name": "lr"}, "train": {"epochs": 1, "batch_size": 1024}},
        "toppop": {"model": {"name": "toppop"}, "retrieval": RETRIEVAL},
        "redrec": {"model": {"name": "redrec", "params": REDREC}, "retrieval": RETRIEVAL,
                   "train": {"epochs": 1, "batch_size": 256, "lr": 0.003,
                             "loss": "window_nce", "monitor": "hr@100"}},
    }
    for name, extra in configs.items():
        train_run(RunConfig.model_validate({"name": name, "data": str(tiny_world), **extra}),
                  root / name)
    return {name: root / name for name in configs}


def test_predict_is_what_training_scored(runs, tiny_world):
    """The test split's events, predicted through the API, give the AUC the run recorded."""
    from snsrec.eval.protocols import evaluate_predictions

    run = load_run(runs["lr"])
    assert run.family == "ranking"
    tables = load_tables(tiny_world)
    test_events = run_splits(tables, RunConfig.model_validate(run.config))["test"].collect()
    p = run.predict(test_events.drop("click"))          # labels are not needed
    assert p.shape == (test_events.height,) and ((p > 0) & (p < 1)).all()
    got = evaluate_predictions({"click": test_events["click"].to_numpy()}, p)["auc"]
    assert got == pytest.approx(run.metrics["test"]["auc"], abs=1e-9)
    # Explicit tables give the same answer as the run's own data.
    again = run.predict(test_events.head(50), tables=tables)
    np.testing.assert_allclose(again, p[:50])


def test_recommend_ranks_the_corpus_for_each_user(runs, tiny_world):
    tables = load_tables(tiny_world)
    events = tables.events.collect()
    users = events["user_id"].unique().sort().head(3).to_list()
    for name in ("redrec", "toppop"):
        run = load_run(runs[name])
        recs = run.recommend(users, k=5, scenario="ads")
        assert list(recs) == users
        for user, notes in recs.items():
            assert len(notes) == 5 and len(set(notes)) == 5
            assert set(notes) <= set(run.feature_map.note_ids.tolist())
            seen = events.filter((pl.col("user_id") == user) & (pl.col("click") > 0))["note_id"]
            assert not set(notes) & set(seen.to_list())               # exclude_seen
    # Most-popular is everyone's same list: the top clicked notes, best first.
    top = load_run(runs["toppop"]).recommend(users, k=3, exclude_seen=False)
    assert len({tuple(v) for v in top.values()}) == 1
    counts = events.filter(pl.col("click") > 0)["note_id"].value_counts(sort=True)
    assert top[users[0]][0] == counts["note_id"][0]


def test_recommend_respects_time(runs):
    """At a time before every note existed there is nothing to recommend."""
    run = load_run(runs["redrec"])
    early = int(run.feature_map.created.min()) - 1
    assert run.recommend([1], k=5, at=early) == {1: []}


def test_encode_items_are_the_item_tower(runs):
    run = load_run(runs["redrec"])
    every = run.encode_items()
    assert every.shape == (len(run.feature_map), REDREC["dim"]) and np.isfinite(every).all()
    some = run.feature_map.note_ids[[3, 0, 7]]
    np.testing.assert_allclose(run.encode_items(some), every[[3, 0, 7]], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="not in the run's corpus"):
        run.encode_items([-5])


def test_the_wrong_call_for_a_family_is_one_line(runs):
    with pytest.raises(ModelError, match="run.recommend: a ranking model"):
        load_run(runs["lr"]).recommend([1])
    with pytest.raises(ModelError, match="run.predict: a retriever model"):
        load_run(runs["redrec"]).predict(pl.DataFrame({"user_id": [1]}))
    with pytest.raises(ModelError, match="run.encode_items: a counting model"):
        load_run(runs["toppop"]).encode_items()
    with pytest.raises(ConfigError, match="scenario 'home'"):
        load_run(runs["redrec"]).recommend([1], scenario="home")


def test_the_cli_is_the_same_call(runs, capsys):
    import json

    from snsrec.cli import main

    with pytest.raises(SystemExit) as e:
        main(["recommend", str(runs["toppop"]), "--users", "1, 2", "--k", "3"])
    assert e.value.code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    want = load_run(runs["toppop"]).recommend([1, 2], 3)
    assert {d["user_id"]: d["note_ids"] for d in lines} == want
    with pytest.raises(SystemExit) as e:
        main(["recommend", str(runs["toppop"]), "--users", "x"])
    assert e.value.code == 2


def test_recommend_in_chunks_is_the_same(runs, tiny_world, monkeypatch):
    """A user list larger than one [users × corpus] chunk is scored a chunk at a time."""
    import snsrec.eval.protocols as protocols

    run = load_run(runs["redrec"])
    users = load_tables(tiny_world).events.select("user_id").unique().sort("user_id") \
        .head(7).collect()["user_id"].to_list()
    whole = run.recommend(users, k=4)
    monkeypatch.setattr(protocols, "SCORE_BUDGET", 2 * len(run.feature_map))   # 2 users a chunk
    assert run.recommend(users, k=4) == whole
