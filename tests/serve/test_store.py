"""The serving store on SQLite and on a real Redis: idempotent durable events, per-scenario
histories newest first, the already-seen set, notes and takedowns."""

import pytest

from snsrec.errors import ConfigError
from snsrec.serve.store import SQLiteStore, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:{tmp_path / 'db' / 'store.sqlite'}")
    else:
        s = open_store(request.getfixturevalue("redis_url"))
        s.r.flushdb()
    yield s
    s.close()


def ev(i, user, note, scenario="feed", click=0, **kw):
    return {"event_id": i, "user_id": user, "note_id": note, "scenario": scenario,
            "ts": 1000 + i, "position": 0, "click": click, **kw}


def test_events_are_idempotent_and_build_user_state(store):
    batch = [ev(1, 7, 100), ev(2, 7, 101, click=1), ev(3, 7, 102, "search", click=1,
                                                           query="ramen"),
             ev(4, 8, 100, click=1), ev(5, 7, 103, click=1)]
    assert store.add_events(batch) == (5, 0)
    assert store.add_events([ev(5, 7, 103, click=1), ev(6, 7, 104)]) == (1, 1)
    assert store.count_events() == 6
    assert store.history(7) == [103, 102, 101]                 # clicks, newest first
    assert store.history(7, "feed") == [103, 101]
    assert store.history(7, "search", limit=5) == [102]
    assert store.history(7, limit=2) == [103, 102]
    assert store.seen(7) == {100, 101, 102, 103, 104}          # every impression
    assert store.history(99) == [] and store.seen(99) == set()


def test_behaviours_as_the_user_tower_reads_them(store):
    store.add_events([
        ev(1, 3, 10, click=1), ev(2, 3, 11, "search", click=0, query="ramen", request_id=50),
        ev(3, 3, 12, "search", click=1, query="ramen", request_id=50),   # same request
        ev(4, 3, 13, "ads", click=1, convert=1), ev(5, 3, 14, click=1),
        ev(6, 3, 15, "search", query="tokyo trip", request_id=51), ev(7, 3, 16, click=1),
        ev(8, 4, 10, click=1)])
    b = store.behaviours(3)
    assert b["clicks"] == [(10, "feed", 1001), (12, "search", 1003), (13, "ads", 1004),
                           (14, "feed", 1005), (16, "feed", 1007)]
    assert b["queries"] == [("ramen", 1002), ("tokyo trip", 1006)]   # one per request
    last = store.behaviours(3, per_scenario=1)
    assert last["clicks"] == [(12, "search", 1003), (13, "ads", 1004), (16, "feed", 1007)]
    assert last["queries"] == [("tokyo trip", 1006)]
    assert store.behaviours(99) == {"clicks": [], "queries": []}


def test_notes_and_takedowns(store):
    store.put_note({"note_id": 5, "title": "新笔记 ramen", "hashtags": ["food"]})
    assert store.get_note(5) == {"note_id": 5, "title": "新笔记 ramen", "hashtags": ["food"]}
    assert store.delete_note(5) is True and store.delete_note(5) is False
    assert store.get_note(5) is None and store.deleted() == {5}
    # Taken down, still a posted note: a restarted server indexes it (and filters it).
    assert [n["note_id"] for n in store.posted_notes()] == [5]
    assert store.delete_note(6) is True                         # a world note, never posted
    assert store.deleted() == {5, 6} and store.get_note(404) is None
    store.put_note({"note_id": 5, "title": "back"})             # re-posted: live again
    assert store.get_note(5)["title"] == "back" and store.deleted() == {6}
    assert store.posted_notes() == [{"note_id": 5, "title": "back"}]     # not world note 6


def test_posted_notes_get_increasing_ids_from_the_store(store):
    assert store.post_note({"title": "a"}, floor=100) == 100          # at least the floor
    assert store.post_note({"title": "b"}, floor=100) == 101          # above every posted
    store.put_note({"note_id": 150, "title": "put"})
    assert store.post_note({"title": "c"}, floor=100) == 151
    assert store.post_note({"title": "d"}, floor=500) == 500
    assert [n["note_id"] for n in store.posted_notes()] == [100, 101, 150, 151, 500]
    assert store.posted_notes(after=150) == [{"title": "c", "note_id": 151},
                                             {"title": "d", "note_id": 500}]
    assert store.get_note(101) == {"title": "b", "note_id": 101}
    store.delete_note(151)
    assert [n["note_id"] for n in store.posted_notes(after=101)] == [150, 151, 500]


def test_sqlite_events_survive_a_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    s = SQLiteStore(path)
    s.add_events([ev(1, 1, 10, click=1)])
    s.db.close()                                  # no clean shutdown: the WAL holds it
    again = SQLiteStore(path)
    assert again.history(1) == [10] and again.add_events([ev(1, 1, 10)]) == (0, 1)


def test_bad_store_specs(tmp_path):
    with pytest.raises(ConfigError, match="use sqlite:PATH or redis://HOST:PORT"):
        open_store("postgres://x")
    with pytest.raises(ConfigError, match="a directory; give a database file path"):
        open_store(f"sqlite:{tmp_path}")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        open_store(f"sqlite:{tmp_path / 'junk.sqlite'}")
    with pytest.raises(ConfigError, match="cannot reach Redis"):
        open_store("redis://127.0.0.1:1/0")


def test_imported_world_events_give_the_training_histories(store, tiny_world):
    import numpy as np
    import polars as pl

    from snsrec.data.schema import SCENARIOS
    from snsrec.data.sequences import NOTE, QUERY, BehaviourLog
    from snsrec.data.tables import load_tables
    from snsrec.serve.store import import_events

    tables = load_tables(tiny_world)
    n = tables.events.select(pl.len()).collect().item()
    assert import_events(store, tables.events, chunk=5_000) == (n, 0)
    assert import_events(store, tables.events.head(100)) == (0, 100)     # idempotent
    # The history sits below 0: a client's first event ids are free.
    first = tables.events.head(1).collect().row(0, named=True)
    assert store.add_events([{**first, "event_id": 0, "ts": 1}]) == (1, 0)
    assert store.count_events() == n + 1
    log = BehaviourLog.from_tables(tables)
    user = int(np.bincount(log.user).argmax())                           # the busiest user
    mine = log.select(log.user == user)
    got = store.behaviours(user, per_scenario=10)
    want = []
    for s, scen in enumerate(SCENARIOS):
        sel = mine.select((mine.scenario == s) & (mine.kind == NOTE))
        want += [(int(log.note_ids[i]), scen, int(t))
                 for i, t in zip(sel.item[-10:], sel.ts[-10:], strict=True)]
    assert sorted(got["clicks"], key=lambda c: (c[2], c[0])) == \
        sorted(want, key=lambda c: (c[2], c[0]))
    queries = mine.select(mine.kind == QUERY)
    assert [q for q, _ in got["queries"]] == [log.queries[i] for i in queries.item[-10:]]
