"""Train / valid / test splits of the events table.

Three protocols, stated rather than implied:

- **time** (the world; imports with ``{"valid_start", "test_start"}``): train is
  ``ts < valid_start``, valid is ``valid_start <= ts < test_start``, test is
  ``ts >= test_start``. Rows with a null ``ts`` belong to no split.
- **column** (fixed splits such as BARS; ``{"column": "split"}``): rows whose
  column equals ``"train"``, ``"valid"`` or ``"test"``.
- **leave-last-out** (``{"method": "leave_last_out"}`` or a direct call): per
  user, ordered by ``ts`` (then ``event_id``), the last event is test and the
  one before it valid; a user with one event has only train, with two has train
  and test.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from snsrec.data.tables import Tables
from snsrec.errors import DataError, SchemaError

SPLITS = ("train", "valid", "test")


def _parse_time(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise DataError(f"{where}: {value!r} is not an ISO date-time; write e.g. "
                        f"2024-01-30T00:00:00") from None


def time_split(events: pl.LazyFrame, valid_start: datetime,
               test_start: datetime) -> dict[str, pl.LazyFrame]:
    if valid_start > test_start:
        raise DataError(f"split: valid_start {valid_start} is after test_start {test_start}; "
                        f"swap them")
    ts = pl.col("ts")
    vs, te = pl.lit(valid_start).cast(pl.Datetime("us")), pl.lit(test_start).cast(pl.Datetime("us"))
    ts = ts.cast(pl.Datetime("us"))
    return {"train": events.filter(ts < vs),
            "valid": events.filter((ts >= vs) & (ts < te)),
            "test": events.filter(ts >= te)}


def column_split(events: pl.LazyFrame, column: str = "split") -> dict[str, pl.LazyFrame]:
    return {name: events.filter(pl.col(column) == name) for name in SPLITS}


def leave_last_out(events: pl.LazyFrame, user_col: str = "user_id",
                   time_col: str = "ts") -> dict[str, pl.LazyFrame]:
    names = events.collect_schema().names()
    order = [user_col, time_col] + (["event_id"] if "event_id" in names else [])
    ranked = events.sort(order, maintain_order=True).with_columns(
        _n=pl.len().over(user_col),
        _i=pl.int_range(pl.len()).over(user_col),
    ).with_columns(_rev=pl.col("_n") - 1 - pl.col("_i"))
    is_test = (pl.col("_rev") == 0) & (pl.col("_n") >= 2)
    is_valid = (pl.col("_rev") == 1) & (pl.col("_n") >= 3)
    drop = ["_n", "_i", "_rev"]
    return {"train": ranked.filter(~is_test & ~is_valid).drop(drop),
            "valid": ranked.filter(is_valid).drop(drop),
            "test": ranked.filter(is_test).drop(drop)}


def split_events(tables: Tables) -> dict[str, pl.LazyFrame]:
    """{"train", "valid", "test"} by the split recorded in world.json / dataset.json."""
    where = f"{tables.root}/(world|dataset).json"
    split = tables.meta.get("split")
    if not isinstance(split, dict):
        raise DataError(f"{where}: no 'split' entry; add {{\"valid_start\", \"test_start\"}} or "
                        f"{{\"column\": \"split\"}}")
    names = tables.events.collect_schema().names()
    if "column" in split:
        column = split["column"]
        if column not in names:
            raise SchemaError(f"{tables.path('events')}: split column '{column}' named in "
                              f"{where} is missing; re-import the data")
        return column_split(tables.events, column)
    if split.get("method") == "leave_last_out":
        return leave_last_out(tables.events)
    if "valid_start" in split and "test_start" in split:
        if "ts" not in names:
            raise SchemaError(f"{tables.path('events')}: column 'ts' is missing but {where} "
                              f"asks for a time split; add ts or use a split column")
        return time_split(tables.events, _parse_time(split["valid_start"], where),
                          _parse_time(split["test_start"], where))
    raise DataError(f"{where}: 'split' must hold valid_start + test_start, column, or "
                    f"method: leave_last_out; got keys {sorted(split)}")
