"""Open Bandit Dataset (ZOZOTOWN), the published CSV layout; the ``obp`` wheel ships a sample.

A campaign folder ``<policy>/<campaign>/`` (policy ``random`` | ``bts``, campaign ``all`` |
``men`` | ``women``) holding ``<campaign>.csv`` — an unnamed index column, ``timestamp,
item_id, position, click, propensity_score, user_feature_0..3, user-item_affinity_0..`` —
and ``item_context.csv`` (an unnamed index column, ``item_id, item_feature_0..``).

Events: note_id = item_id, position = OBD position − 1 (OBD counts slots from 1; the
canonical slot is 0-based), click, ts (UTC, to the second; the raw ``timestamp`` string is
kept), ``propensity_score`` and every feature column kept, ``behavior_policy`` and
``campaign`` from the folder names, scenario = feed. OBD has no user ids: ``user_id`` is a
pseudo-user, the dense rank (1..n, sorted) of the distinct ``user_feature_*`` tuple —
visits with identical features share a user_id. Notes: item_context with ``item_id`` as
note_id, features kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    check_binary,
    check_nonnegative,
    dense_ids,
    need_path,
    read_table,
    time_split,
    to_int_ids,
    with_event_ids,
    write_tables,
)
from snsrec.errors import DataError

EXPECTS = ("an OBD campaign folder (e.g. obd/random/all) with <campaign>.csv and "
           "item_context.csv")
REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")


def _data_file(folder: Path) -> Path:
    named = folder / f"{folder.name}.csv"
    if named.is_file():
        return named
    others = sorted(p for p in folder.glob("*.csv") if p.name != "item_context.csv")
    if len(others) != 1:
        raise DataError(f"{folder}: expected one data CSV beside item_context.csv, found "
                        f"{[p.name for p in others]}; `obd` expects {EXPECTS}")
    return others[0]


def _drop_index(df: pl.DataFrame) -> pl.DataFrame:
    """OBD CSVs were written by pandas with the index as a first, unnamed column."""
    return df.drop(c for c in df.columns if c in ("", "Unnamed: 0"))


def load(path: Path, out: Path) -> dict[str, Any]:
    folder = need_path(path, "obd", EXPECTS)
    folder = folder.parent if folder.is_file() else folder
    data = _data_file(folder)
    ev = _drop_index(read_table(data, required=REQUIRED,
                                schema_overrides={"timestamp": pl.String, "item_id": pl.Int64,
                                                  "position": pl.Int64, "click": pl.Int64}))
    check_binary(ev, "click", data)
    check_nonnegative(ev, ("item_id", "position", "propensity_score"), data)
    if ev.filter(pl.col("position") < 1).height:
        raise DataError(f"{data}: column 'position' has values < 1; OBD positions start at 1")
    ufeats = sorted(c for c in ev.columns if c.startswith("user_feature_"))
    user_key = pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in ufeats],
                             separator="|") if ufeats else pl.lit(None, pl.String)
    ev = ev.with_columns(user_key.alias("_user"))
    mapping = dense_ids([ev["_user"]]) if ufeats else None
    ev = to_int_ids(ev, "_user", "user_id", mapping, "_user_key").drop("_user_key") \
        if mapping is not None else ev.drop("_user").with_columns(pl.lit(None, pl.Int64)
                                                                   .alias("user_id"))
    ts = pl.col("timestamp").str.to_datetime(time_zone="UTC", strict=False)
    ev = ev.with_columns(
        pl.col("item_id").alias("note_id"), (pl.col("position") - 1).alias("position"),
        ts.dt.replace_time_zone(None).dt.truncate("1s").cast(pl.Datetime("ms")).alias("ts"),
        pl.lit("feed").alias("scenario"), pl.lit(folder.parent.name).alias("behavior_policy"),
        pl.lit(folder.name).alias("campaign"))
    if ev["ts"].null_count() > ev["timestamp"].null_count():
        raise DataError(f"{data}: column 'timestamp' has values that are not dates "
                        f"(e.g. {ev.filter(pl.col('ts').is_null())['timestamp'][0]!r})")
    ev = with_event_ids(ev)
    tables = {"events": ev}
    ctx = folder / "item_context.csv"
    if ctx.is_file():
        notes = _drop_index(read_table(ctx, required=("item_id",),
                                       schema_overrides={"item_id": pl.Int64}))
        tables["notes"] = notes.with_columns(pl.col("item_id").alias("note_id"))
    fields = {"file": data.name, "behavior_policy": folder.parent.name, "campaign": folder.name,
              "position": "OBD position - 1 (0-based)", "ts": "timestamp in UTC, to the second",
              "user_id": "dense rank of the distinct user_feature_* tuple (pseudo-user; OBD "
                         "has no user ids)" if ufeats else "null",
              "kept": ["propensity_score", "timestamp", *ufeats, "user-item_affinity_*"]}
    return write_tables(out, "obd", path, tables, time_split(ev["ts"]), fields)
