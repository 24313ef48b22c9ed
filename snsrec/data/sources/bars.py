"""BARS / FuxiCTR benchmark splits (Frappe x1, MovieLens-latest x1, Criteo x1, ...).

A folder with ``train``, ``valid`` and ``test`` files, each ``.csv`` (with a header) or
``.parquet``: one label column (``label``, or ``click`` / ``clicked``) plus categorical and
numeric feature columns. Every sample is one event (click = label) tagged with a
``split`` column (train | valid | test) — BARS fixes its splits, so there is no time split.
A ``user`` / ``user_id`` column becomes ``user_id`` and ``item`` / ``item_id`` becomes
``note_id`` (dense ids when they are not integers, raw kept as ``user_token`` /
``item_token``); otherwise they stay null. All feature columns are kept with their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    check_binary,
    dense_ids,
    ids_need_mapping,
    need_path,
    read_parquet_frame,
    read_table,
    to_int_ids,
    with_event_ids,
    write_tables,
)
from snsrec.errors import DataError, SchemaError

EXPECTS = "a folder with train/valid/test files (.csv with a header, or .parquet)"
SPLITS = ("train", "valid", "test")
LABELS = ("label", "click", "clicked")
USER_COLUMNS = ("user", "user_id")
ITEM_COLUMNS = ("item", "item_id")


def _split_file(folder: Path, split: str) -> Path:
    for ext in (".csv", ".parquet"):
        if (folder / f"{split}{ext}").is_file():
            return folder / f"{split}{ext}"
    raise DataError(f"{folder}: no {split}.csv or {split}.parquet; `bars` expects {EXPECTS}")


def _read(path: Path, schema: dict[str, pl.DataType] | None) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return read_parquet_frame(path)
    # The train file fixes the column types; valid/test are read with the same schema so a
    # column that happens to look numeric in one file cannot change type in another.
    return read_table(path, schema_overrides=schema)


def load(path: Path, out: Path) -> dict[str, Any]:
    folder = need_path(path, "bars", EXPECTS)
    if folder.is_file():
        raise DataError(f"{folder}: is a file; `bars` expects {EXPECTS}")
    frames, schema = [], None
    for split in SPLITS:
        f = _split_file(folder, split)
        df = _read(f, schema)
        schema = schema or dict(df.schema)
        label = next((c for c in LABELS if c in df.columns), None)
        if label is None:
            raise SchemaError(f"{f}: missing column 'label' (or click/clicked); the file has "
                              f"{df.columns[:20]}; BARS files carry the label column first")
        check_binary(df, label, f)
        frames.append(df.with_columns(pl.col(label).cast(pl.Int8).alias("click"),
                                      pl.lit(split).alias("split")))
    try:
        ev = pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as e:
        raise SchemaError(f"{folder}: train/valid/test columns differ ({str(e).splitlines()[0]}); "
                          f"use the files of one BARS data set") from None
    fields: dict[str, Any] = {"label": label, "features": [c for c in ev.columns
                                                          if c not in (label, "click", "split")]}
    for names, target, raw in ((USER_COLUMNS, "user_id", "user_token"),
                               (ITEM_COLUMNS, "note_id", "item_token")):
        col = next((c for c in names if c in ev.columns), None)
        if col is None:
            continue
        mapping = dense_ids([ev[col]]) if ids_need_mapping([ev[col]]) else None
        if mapping is None:
            ev = ev.with_columns(pl.col(col).cast(pl.Int64).alias(target))
        else:  # keep the original feature column too: it is also a model input
            ev = to_int_ids(ev.with_columns(pl.col(col).alias(f"__{col}")), f"__{col}", target,
                            mapping, raw)
        fields[target] = f"from column '{col}'" + (" (dense ids)" if mapping is not None else "")
    ev = with_event_ids(ev)
    return write_tables(out, "bars", path, {"events": ev}, {"column": "split"}, fields,
                        required={"events": ("click",)})
