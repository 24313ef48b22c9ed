"""Criteo display-advertising logs, raw: ``train.txt`` (Kaggle) or any ``*.txt``/``*.tsv``.

Tab-separated, no header, 40 columns: label, I1..I13 (integer counts, may be empty or
negative in the real data), C1..C26 (32-bit hex hashes, empty = missing). Every line is an
event with click = label; I1..I13 are kept as float, C1..C26 as string. No user/item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    NO_TIME,
    check_binary,
    list_files,
    need_path,
    read_table,
    with_event_ids,
    write_tables,
)
from snsrec.errors import SchemaError

EXPECTS = ("a Criteo TSV file (label, I1..I13, C1..C26; no header) or a folder with "
           "train.txt / *.txt / *.tsv")
INTS = [f"I{i}" for i in range(1, 14)]
CATS = [f"C{i}" for i in range(1, 27)]
SCHEMA = {"label": pl.Int64, **dict.fromkeys(INTS, pl.Float64), **dict.fromkeys(CATS, pl.String)}


def _files(path: Path) -> list[Path]:
    if path.is_dir() and (path / "train.txt").is_file():
        return [path / "train.txt"]  # the Kaggle test.txt beside it has no labels
    return list_files(path, ("*.txt", "*.tsv"), "criteo", EXPECTS)


def _read(f: Path) -> pl.DataFrame:
    with f.open("rb") as fh:
        first = fh.readline().rstrip(b"\r\n")
    n = first.count(b"\t") + 1 if first else 0
    if n != 40:
        missing = "label" if n == 39 else f"{40 - n} column(s)" if n < 40 else "none"
        raise SchemaError(f"{f}: has {n} tab-separated columns, expected 40 (label, I1..I13, "
                          f"C1..C26); missing {missing} — the unlabelled Kaggle test.txt cannot "
                          f"be imported")
    df = read_table(f, separator="\t", has_header=False, schema=SCHEMA)
    check_binary(df, "label", f)
    return df


def load(path: Path, out: Path) -> dict[str, Any]:
    files = _files(need_path(path, "criteo", EXPECTS))
    ev = pl.concat([_read(f) for f in files])
    ev = with_event_ids(ev.with_columns(pl.col("label").cast(pl.Int8).alias("click")))
    fields = {"files": [f.name for f in files], "numeric": INTS, "categorical": CATS,
              "user_id/note_id": "null (Criteo has no user or item id)"}
    return write_tables(out, "criteo", path, {"events": ev}, NO_TIME, fields,
                        required={"events": ("click",)})
