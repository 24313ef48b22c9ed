"""Cross-scenario behaviour sequences: histories strictly before a time, windows after it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import (
    NOTE,
    PAD,
    PAD_TS,
    QUERY,
    BehaviourLog,
    SequenceConfig,
    histories,
    next_items,
    recency_bucket,
)

H = 3600


def make_log(rows: list[tuple[int, int, str, int, int, bool]]) -> BehaviourLog:
    """(user, ts, scenario, kind, item, convert) rows → a log sorted as from_tables sorts it."""
    a = np.array([(u, t, SCENARIOS.index(s), k, i, c) for u, t, s, k, i, c in rows],
                 dtype=np.int64).reshape(-1, 6)
    order = np.lexsort((-a[:, 3], a[:, 1], a[:, 0]))
    a = a[order]
    return BehaviourLog(a[:, 0], a[:, 1], a[:, 2].astype(np.int8), a[:, 3].astype(np.int8),
                        a[:, 4], a[:, 5].astype(bool), np.arange(100, dtype=np.int64),
                        ["q0", "q1", "q2"])


LOG = make_log([
    (7, 10 * H, "feed", NOTE, 1, False), (7, 11 * H, "search", QUERY, 0, False),
    (7, 11 * H, "search", NOTE, 2, False), (7, 12 * H, "feed", NOTE, 3, False),
    (7, 13 * H, "ads", NOTE, 4, True), (7, 14 * H, "feed", NOTE, 5, False),
    (7, 20 * H, "feed", NOTE, 6, False), (7, 21 * H, "ads", NOTE, 8, False),
    (9, 12 * H, "feed", NOTE, 9, False)])


def test_history_merges_blocks_in_time_order_strictly_before_the_cut():
    cfg = SequenceConfig(blocks={"feed": 2, "search": 2, "discover": 1, "ads": 1})
    h = histories(LOG, np.array([7, 9, 8]), np.array([14 * H, 12 * H, 99 * H]), cfg)
    assert h["hist_item"].shape == (3, 6)
    # User 7 at 14h: feed keeps its last two (1 @10h, 3 @12h), search its query and click
    # at 11h (the query first), ads its 13h click; the 14h click is not before 14h.
    assert h["hist_kind"][0].tolist() == [PAD, NOTE, QUERY, NOTE, NOTE, NOTE]
    assert h["hist_item"][0].tolist() == [0, 1, 0, 2, 3, 4]
    assert h["hist_ts"][0].tolist() == [PAD_TS, 10 * H, 11 * H, 11 * H, 12 * H, 13 * H]
    assert h["hist_scenario"][0].tolist() == \
        [0, *(1 + SCENARIOS.index(s) for s in ("feed", "search", "search", "feed", "ads"))]
    assert h["hist_recency"][0].tolist() == \
        [0, *recency_bucket(np.array([4, 3, 3, 2, 1]) * H, cfg.recency_buckets).tolist()]
    # User 9 at 12h: nothing strictly before; unknown user 8: nothing at all.
    assert (h["hist_kind"][1:] == PAD).all() and (h["hist_recency"][1:] == 0).all()


def test_recency_buckets():
    assert recency_bucket(np.array([0, H, 3 * H, 10 ** 9]), 8).tolist() == [1, 2, 3, 7]


def test_next_items_windows_filters_and_until():
    users, t = np.array([7, 7, 9]), np.array([12 * H, 30 * H, 0])
    assert next_items(LOG, users, t, 3).tolist() == [[3, 4, 5], [-1, -1, -1], [9, -1, -1]]
    assert next_items(LOG, users[:1], t[:1], 3, scenarios=["feed"]).tolist() == [[3, 5, 6]]
    assert next_items(LOG, users[:1], t[:1], 3, until=14 * H).tolist() == [[3, 4, -1]]
    assert next_items(LOG, users[:1], t[:1], 2, convert_only=True).tolist() == [[4, -1]]


def test_bad_blocks_are_a_config_error():
    with pytest.raises(ValueError, match="keys must be scenarios"):
        SequenceConfig(blocks={"home": 3})


rows = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.sampled_from(SCENARIOS),
                          st.sampled_from([NOTE, QUERY]), st.integers(0, 99), st.booleans()),
                max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows, st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 52)), min_size=1,
                      max_size=8))
def test_matches_a_brute_force_reference(raw, cuts):
    raw = [(u, t, s, NOTE if s != "search" else k, i, c) for u, t, s, k, i, c in raw]
    log = make_log(raw)
    cfg = SequenceConfig(blocks={"feed": 3, "search": 2, "ads": 1})
    users, times = np.array([c[0] for c in cuts]), np.array([c[1] for c in cuts])
    h = histories(log, users, times, cfg)
    nx = next_items(log, users, times, 4, scenarios=["feed", "ads"])
    for r, (u, t) in enumerate(cuts):
        mine = [j for j in range(len(log)) if log.user[j] == u and log.ts[j] < t]
        want = []
        for scen, n in cfg.blocks.items():
            block = [j for j in mine if SCENARIOS[log.scenario[j]] == scen]
            want += block[max(0, len(block) - n):] if n else []
        want.sort(key=lambda j: log.ts[j])     # stable: block order breaks ties
        real = h["hist_kind"][r] != PAD
        assert sorted(h["hist_ts"][r][real].tolist()) == h["hist_ts"][r][real].tolist()
        assert sorted(zip(h["hist_ts"][r][real].tolist(), h["hist_item"][r][real].tolist(),
                          strict=True)) == sorted((int(log.ts[j]), int(log.item[j]))
                                                  for j in want)
        after = [int(log.item[j]) for j in range(len(log)) if log.user[j] == u
                 and log.ts[j] >= t and log.kind[j] == NOTE
                 and SCENARIOS[log.scenario[j]] in ("feed", "ads")][:4]
        assert nx[r].tolist() == after + [-1] * (4 - len(after))


def test_from_tables_on_the_tiny_world(tiny_world):
    from snsrec.data.tables import load_tables

    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    ev = tables.events.collect()
    clicks = ev.filter(pl.col("click") > 0)
    requests = ev.filter(pl.col("scenario") == "search")["request_id"].n_unique()
    assert int((log.kind == NOTE).sum()) == clicks.height
    assert int((log.kind == QUERY).sum()) == requests
    assert int(log.convert.sum()) == int((clicks["convert"] > 0).sum())
    key = log.user * 10**11 + log.ts
    assert (np.diff(key) >= 0).all()                                # sorted by (user, ts)
    notes = log.kind == NOTE
    assert set(log.note_ids[log.item[notes]].tolist()) == set(clicks["note_id"].to_list())
    assert {log.queries[i] for i in log.item[~notes]} == \
        set(ev.filter(pl.col("scenario") == "search")["query"].unique().to_list())


def test_corpus_texts_log_q_and_notes_without_a_creation_time():
    import datetime as dt
    from types import SimpleNamespace

    from snsrec.data.sequences import ALWAYS, Corpus, note_text

    notes = pl.LazyFrame({"note_id": [5, 3], "title": ["Cafe", None], "body": ["latte", "x"],
                          "hashtags": [["coffee"], None],
                          "created_at": [dt.datetime(2024, 6, 1), None]})
    log = make_log([(1, 10, "feed", NOTE, 0, False), (1, 20, "feed", NOTE, 0, False),
                    (2, 99, "feed", NOTE, 1, False)])
    log.note_ids = np.array([3, 5], dtype=np.int64)
    corpus = Corpus.from_tables(SimpleNamespace(notes=notes, root="t"), log, train_end=50)
    assert corpus.texts == ["x", "Cafe / latte / #coffee"] == \
        [note_text(None, "x", None), note_text("Cafe", "latte", ["coffee"])]
    assert corpus.created.tolist() == [ALWAYS, int(dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
                                                   .timestamp())]
    # log q: add-one smoothed shares of the clicks before the end (note row 0 twice).
    assert np.exp(corpus.log_q).tolist() == pytest.approx([3 / 4, 1 / 4])
    assert corpus.category is None and corpus.subcategory is None    # no such columns


def test_corpus_keeps_the_note_categories_through_save_and_load(tmp_path):
    import datetime as dt
    from types import SimpleNamespace

    from snsrec.data.sequences import Corpus

    notes = pl.LazyFrame({"note_id": [5, 3], "title": ["a", "b"], "body": ["", ""],
                          "hashtags": [None, None], "category": ["food", None],
                          "subcategory": ["cafe", None],
                          "created_at": [dt.datetime(2024, 6, 1), None]})
    log = make_log([(1, 10, "feed", NOTE, 0, False)])
    log.note_ids = np.array([3, 5], dtype=np.int64)
    corpus = Corpus.from_tables(SimpleNamespace(notes=notes, root="t"), log, train_end=50)
    assert corpus.category == ["", "food"] and corpus.subcategory == ["", "cafe"]  # row order
    corpus.save(tmp_path / "corpus.parquet")
    back = Corpus.load(tmp_path / "corpus.parquet")
    assert back.category == corpus.category and back.subcategory == corpus.subcategory
    assert back.train_end == 50
