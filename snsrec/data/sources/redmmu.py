"""RED-MMU (the data set released with RED-Rec, arXiv 2510.14788), Parquet.

Layout as published with the RED-Rec code (RedSeqRec README and its data scripts); the data
itself is only on model hubs, so this loader follows that description:

* user-history files (``multiscene_lastn*.parquet``): one row per user — ``user_idx``
  (int64) and/or ``encrypted_user_id`` (string; ``user_id`` is accepted too) — and one list
  column per scenario: ``homefeed_list`` (or ``homefeed_noteid_list``) -> scenario ``feed``,
  ``ads_list`` (or ``ads_click_noteid_list``) -> scenario ``ads``. Each list element is a
  struct holding the note key ``note_idx`` (int) or ``note_id`` (hex string) and optionally
  ``ts`` (unix seconds, or ms), ``action_set`` (bit string), ``page_key``, ``duration``; a
  bare note key per element is accepted too.
* note files (``note_embeddings*.parquet`` and the public test notes): ``note_idx`` and/or
  ``encrypted_note_id`` / ``note_id``, optional ``note_feature`` (list<float>, 64-d) and
  text columns ``title``, ``content`` (or ``body``), ``ocr``.

A file is a history file if it has a scenario list column, else a note file. Every list
element becomes one event (click = 1: the lists are positive engagements), ``hist_pos`` =
its index in the user's list, struct fields kept as columns. note_id = ``note_idx`` when
the histories carry it, else dense ids over the sorted string keys (kept as ``note_key``);
user_id likewise (``user_key``). ts: ``ts`` when present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    NO_TIME,
    dense_ids,
    ids_need_mapping,
    list_files,
    need_path,
    read_parquet_frame,
    time_split,
    to_int_ids,
    unix_seconds,
    with_event_ids,
    write_tables,
)
from snsrec.errors import DataError, SchemaError

EXPECTS = ("RED-MMU Parquet: user-history files (user_idx / encrypted_user_id + homefeed_list "
           "/ ads_list) and optional note files (note_idx, note_feature, title, content)")
SCENARIO_COLUMNS = {"homefeed_list": "feed", "homefeed_noteid_list": "feed",
                    "ads_list": "ads", "ads_click_noteid_list": "ads"}
USER_KEYS = ("user_idx", "encrypted_user_id", "user_id")
NOTE_KEYS = ("note_idx", "note_id", "encrypted_note_id")


def _histories(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    ukey = next((c for c in USER_KEYS if c in df.columns), None)
    if ukey is None:
        raise SchemaError(f"{path}: missing a user column ({' / '.join(USER_KEYS)}); "
                          f"the file has {df.columns}")
    users = [c for c in USER_KEYS if c in df.columns]
    parts = []
    for col, scenario in SCENARIO_COLUMNS.items():
        if col not in df.columns:
            continue
        part = (df.select(*users, pl.col(col).alias("_h"))
                .with_columns(pl.int_ranges(pl.col("_h").list.len()).alias("hist_pos"))
                .explode("_h", "hist_pos").drop_nulls("_h"))
        if isinstance(part.schema["_h"], pl.Struct):
            part = part.unnest("_h")
        else:  # a bare note key per element
            name = "note_idx" if part.schema["_h"].is_integer() else "note_id"
            part = part.rename({"_h": name})
        parts.append(part.with_columns(pl.lit(scenario).alias("scenario"),
                                       pl.lit(col).alias("list")))
    ev = pl.concat(parts, how="diagonal_relaxed")
    if not any(k in ev.columns for k in NOTE_KEYS):
        raise SchemaError(f"{path}: history elements carry no note key ({' / '.join(NOTE_KEYS)})")
    return ev


def _ids(frames: list[pl.DataFrame], keys: tuple[str, ...], target: str, raw: str
         ) -> list[pl.DataFrame]:
    """One int id column ``target`` over all frames: the first int key, else dense ids."""
    key = next((k for k in keys if all(k in f.columns for f in frames if f.height)), None)
    key = key or next(k for k in keys if any(k in f.columns for f in frames))
    series = [f[key] for f in frames if key in f.columns]
    mapping = dense_ids(series) if ids_need_mapping(series) else None
    outs = []
    for f in frames:
        if key not in f.columns:
            outs.append(f)
        elif mapping is None:
            outs.append(f.with_columns(pl.col(key).cast(pl.Int64).alias(target)))
        else:
            outs.append(to_int_ids(f.with_columns(pl.col(key).alias("_k")), "_k", target,
                                   mapping, raw))
    return outs


def load(path: Path, out: Path) -> dict[str, Any]:
    base = need_path(path, "redmmu", EXPECTS)
    files = list_files(base, ("*.parquet",), "redmmu", EXPECTS, recursive=True)
    hist, notes = [], []
    for f in files:
        df = read_parquet_frame(f)
        if any(c in df.columns for c in SCENARIO_COLUMNS):
            hist.append(_histories(df, f))
        elif any(c in df.columns for c in NOTE_KEYS):
            notes.append(df)
        else:
            raise SchemaError(f"{f}: neither a history file ({' / '.join(SCENARIO_COLUMNS)}) "
                              f"nor a note file ({' / '.join(NOTE_KEYS)}); it has {df.columns}")
    if not hist:
        raise DataError(f"{base}: no user-history file (homefeed_list / ads_list); `redmmu` "
                        f"expects {EXPECTS}")
    ev = pl.concat(hist, how="diagonal_relaxed")
    ev, *notes = _ids([ev, *notes], NOTE_KEYS, "note_id", "note_key")
    (ev,) = _ids([ev], USER_KEYS, "user_id", "user_key")
    ev = ev.with_columns(pl.lit(1, pl.Int8).alias("click"))
    if "ts" in ev.columns:
        # Unix seconds; a value past 1e11 can only be milliseconds.
        unit = "ms" if (ev["ts"].max() or 0) > 1e11 else "s"
        ev = ev.with_columns(unix_seconds(pl.col("ts"), unit).alias("ts"))
        ev = ev.sort(["ts", "user_id"], maintain_order=True)
    ev = with_event_ids(ev)
    tables = {"events": ev}
    if notes:
        nt = pl.concat(notes, how="diagonal_relaxed").unique("note_id", keep="first",
                                                             maintain_order=True)
        if "content" in nt.columns and "body" not in nt.columns:
            nt = nt.with_columns(pl.col("content").alias("body"))
        tables["notes"] = nt
    else:
        keep = [c for c in ("note_id", "note_key") if c in ev.columns]
        tables["notes"] = ev.select(keep).unique("note_id").sort("note_id")
    user_cols = list(dict.fromkeys(c for c in ("user_id", *USER_KEYS[1:], "user_key")
                                   if c in ev.columns))
    tables["users"] = ev.select(user_cols).unique("user_id").sort("user_id")
    fields = {"files": [str(f.relative_to(base)) if f != base else f.name for f in files],
              "scenarios": dict(SCENARIO_COLUMNS.items()),
              "click": "1 (history lists are engagements; action_set kept)",
              "hist_pos": "index in the user's list", "layout": "see snsrec/data/sources/redmmu.py"}
    split = time_split(ev["ts"]) if "ts" in ev.columns else NO_TIME
    return write_tables(out, "redmmu", path, tables, split, fields)
