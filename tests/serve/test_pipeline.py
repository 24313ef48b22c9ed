"""Serving reads a user as training did: the store's behaviours → the same user-tower rows."""

import numpy as np
import polars as pl
import pytest

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import BehaviourLog, Corpus, SequenceConfig
from snsrec.data.tables import load_tables
from snsrec.errors import ModelError
from snsrec.index.ann import merge_interests
from snsrec.serve.pipeline import Retriever, user_rows
from snsrec.serve.store import import_events, open_store
from snsrec.train.retrieval import history_arrays


def test_user_rows_match_the_training_histories(tiny_world, tmp_path):
    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    now = int(np.quantile(log.ts, 0.8))
    corpus = Corpus.from_tables(tables, log, now)
    store = open_store(f"sqlite:{tmp_path / 's.sqlite'}")
    import_events(store, tables.events, until=now)
    seq = SequenceConfig(blocks={"feed": 12, "search": 6, "discover": 4, "ads": 3})
    users = np.unique(log.user[log.ts < now])[:25]
    for target in SCENARIOS:
        for u in users[:5] if target != "feed" else users:
            got, dropped = user_rows(store.behaviours(int(u), per_scenario=12), corpus,
                                     int(u), now, seq, target)
            want = history_arrays(log, np.array([u]), np.array([now]), seq)
            assert dropped == 0
            for k, v in want.items():
                np.testing.assert_array_equal(got[k], v, err_msg=f"user {u} {k}")
            assert got["target_scenario"].tolist() == [SCENARIOS.index(target)]


def test_behaviour_outside_the_corpus_is_counted_not_read(tiny_world):
    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, int(log.ts.max()))
    known = int(corpus.note_ids[0])
    behaviours = {"clicks": [(known, "feed", 100), (10**12, "feed", 200)],
                  "queries": [(corpus.queries[0], 150), ("a query never seen", 160)]}
    rows, dropped = user_rows(behaviours, corpus, 1, 1_000, SequenceConfig(), "search")
    assert dropped == 2
    real = rows["hist_kind"][0] != 0
    assert real.sum() == 2 and rows["hist_item"][0][real].tolist() == [0, 0]
    assert pl.Series(rows["hist_kind"][0][real]).to_list() == [1, 2]    # note, then query


REDREC = {"dim": 16, "width": 32, "layers": 1, "heads": 2, "negatives": 50,
          "text": {"backbone": "hash", "buckets": 1 << 14, "dim": 16}}


@pytest.fixture(scope="module")
def redrec_run(tiny_world, tmp_path_factory):
    from snsrec.train.pipeline import RunConfig, train_run

    cfg = RunConfig.model_validate({
        "name": "redrec", "data": str(tiny_world),
        "model": {"name": "redrec", "params": REDREC},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.003, "loss": "window_nce",
                  "monitor": "hr@100"},
        "retrieval": {"window": 4, "cutoffs_per_user": 5, "sequence": {
            "blocks": {"feed": 16, "search": 8, "discover": 8, "ads": 8}}}})
    run_dir = tmp_path_factory.mktemp("serve_runs") / "redrec"
    train_run(cfg, run_dir)
    return run_dir


def test_retriever_serves_the_runs_top_notes_with_their_interest(redrec_run, tiny_world,
                                                                 tmp_path):
    r = Retriever(redrec_run, "flat")
    assert (redrec_run / "index-flat" / "index.faiss").is_file()
    tables = load_tables(tiny_world)
    store = open_store(f"sqlite:{tmp_path / 's.sqlite'}")
    import_events(store, tables.events)
    user = int(tables.events.select("user_id").head(1).collect().item())
    now = int(r.corpus.created.max()) + 1
    rows, _ = r.rows(store.behaviours(user, 16), user, now, "feed")
    got = r.retrieve(rows, 20)
    interests = r.interests(rows)
    # The index searches the distinct interests (near-duplicates merged, as RED-Rec serves).
    distinct = interests[merge_interests(interests, 0.98)]
    exact = (r.vectors @ distinct.T).max(1)
    best = np.argsort(-exact, kind="stable")[:20]
    assert [c["note_id"] for c in got] == r.corpus.note_ids[best].tolist()
    assert np.allclose([c["score"] for c in got], exact[best], atol=1e-5)
    assert all(0 <= c["interest"] < len(interests) for c in got)
    seen = {got[0]["note_id"], got[3]["note_id"]}
    fewer = r.retrieve(rows, 20, exclude=seen)
    assert len(fewer) == 20 and not seen & {c["note_id"] for c in fewer}
    assert Retriever(redrec_run, "flat").index is not None            # the saved index, loaded


def test_retriever_refuses_a_ranking_run(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ModelError, match="not found; is .* a run directory"):
        Retriever(tmp_path / "x")


def test_ranker_scores_a_request_as_training_scored_its_rows(tiny_world, tmp_path,
                                                            redrec_run):
    from snsrec.serve.pipeline import Ranker
    from snsrec.train.pipeline import RunConfig, model_inputs, train_run
    from snsrec.train.trainer import TrainConfig, Trainer, load_run

    cfg = RunConfig.model_validate({"name": "fm", "data": str(tiny_world),
                                    "model": {"name": "fm", "params": {"embedding_dim": 8}},
                                    "train": {"epochs": 1, "batch_size": 1024}})
    train_run(cfg, tmp_path / "fm")
    tables = load_tables(tiny_world)
    ranker = Ranker(tmp_path / "fm", tables)
    ev = tables.events.filter(pl.col("scenario") == "feed").head(200).collect()
    req = ev.filter(pl.col("request_id") == ev["request_id"][0])
    ts = int(req["ts"].dt.epoch("s")[0])
    got = ranker.score(int(req["user_id"][0]), req["note_id"].to_list(), "feed", ts)
    # The same rows through the training path, every row at position 0.
    frame = req.with_columns(pl.lit(0, pl.Int32).alias("position"))
    run = load_run(tmp_path / "fm")
    want = Trainer(TrainConfig()).predict(run.model, model_inputs(
        run.feature_map.transform(tables, frame)))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(got) == req.height and ((got > 0) & (got < 1)).all()
    with pytest.raises(ModelError, match="not a ranking run"):
        Ranker(redrec_run, tables)
