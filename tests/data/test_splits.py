import datetime as dt

import polars as pl
import pytest

from snsrec.data.splits import leave_last_out, split_events, time_split
from snsrec.data.tables import load_tables
from snsrec.errors import DataError, SchemaError
from snsrec.io import write_json

D = dt.datetime(2024, 1, 10)


def _ids(frames: dict[str, pl.LazyFrame]) -> dict[str, list[int]]:
    return {k: sorted(v.collect()["event_id"].to_list()) for k, v in frames.items()}


def test_time_split_boundaries_are_half_open():
    ev = pl.LazyFrame({"event_id": [0, 1, 2, 3, 4, 5],
                       "ts": [D - dt.timedelta(seconds=1), D, D + dt.timedelta(hours=5),
                              D + dt.timedelta(days=1), D + dt.timedelta(days=3), None]})
    out = _ids(time_split(ev, D, D + dt.timedelta(days=1)))
    assert out == {"train": [0], "valid": [1, 2], "test": [3, 4]}   # null ts: in no split


def test_time_split_rejects_reversed_dates():
    with pytest.raises(DataError, match="after test_start"):
        time_split(pl.LazyFrame({"ts": [D]}), D + dt.timedelta(days=2), D)


def test_split_events_by_world_time(make_data, tmp_path):
    t = load_tables(make_data(tmp_path / "w"))
    parts = {k: v.collect() for k, v in split_events(t).items()}
    valid_start = dt.datetime.fromisoformat(t.meta["split"]["valid_start"])
    test_start = dt.datetime.fromisoformat(t.meta["split"]["test_start"])
    assert sum(p.height for p in parts.values()) == 240
    assert parts["train"]["ts"].max() < valid_start <= parts["valid"]["ts"].min()
    assert parts["valid"]["ts"].max() < test_start <= parts["test"]["ts"].min()


def test_split_events_by_column(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    t = load_tables(root)
    ev = t.events.collect().with_columns(
        split=pl.Series(["train", "valid", "test"] * 80))
    ev.write_parquet(root / "events.parquet")
    write_json(root / "dataset.json", {"split": {"column": "split"}})
    (root / "world.json").unlink()
    out = _ids(split_events(load_tables(root)))
    assert out["valid"] == list(range(1, 240, 3)) and out["test"] == list(range(2, 240, 3))


def test_split_column_missing_is_named(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    write_json(root / "world.json", {"split": {"column": "fold"}})
    with pytest.raises(SchemaError, match="split column 'fold'"):
        split_events(load_tables(root))


@pytest.mark.parametrize("split", [None, {"valid_start": "yesterday", "test_start": "x"},
                                   {"other": 1}])
def test_bad_split_meta_is_a_data_error(make_data, tmp_path, split):
    root = make_data(tmp_path / "w")
    write_json(root / "world.json", {} if split is None else {"split": split})
    with pytest.raises(DataError, match="split"):
        split_events(load_tables(root))


def test_leave_last_out_per_user():
    h = dt.timedelta(hours=1)
    ev = pl.LazyFrame({
        "event_id": [0, 1, 2, 3, 4, 5, 6, 7],
        "user_id": [1, 1, 1, 1, 2, 2, 3, 1],
        # user 1: events 3 and 7 share the last ts -> event_id breaks the tie
        "ts": [D, D + h, D + 2 * h, D + 3 * h, D, D + h, D, D + 3 * h],
    })
    out = _ids(leave_last_out(ev))
    assert out == {"train": [0, 1, 2, 4, 6], "valid": [3], "test": [5, 7]}


def test_leave_last_out_from_meta(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    write_json(root / "world.json", {"split": {"method": "leave_last_out"}})
    parts = _ids(split_events(load_tables(root)))
    assert sorted(x for p in parts.values() for x in p) == list(range(240))
