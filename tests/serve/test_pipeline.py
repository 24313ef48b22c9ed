"""Serving reads a user as training did: the store's behaviours → the same user-tower rows."""

import numpy as np
import polars as pl

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import BehaviourLog, Corpus, SequenceConfig
from snsrec.data.tables import load_tables
from snsrec.serve.pipeline import user_rows
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
