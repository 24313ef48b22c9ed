"""Tenrec (Tencent QQ Browser / Kandian feeds), the published CSV layout.

A CSV file or a folder of them: ``QK-video.csv`` / ``QB-video.csv`` (and the task files
``ctr_data_1M.csv``, ``sbr_data_1M.csv``) with ``user_id,item_id,click,follow,like,share,
video_category,watching_times,gender,age`` (ctr_data_1M adds hist_1..hist_10), and
``QK-article.csv`` / ``QB-article.csv`` with ``user_id,item_id,click,gender,age,
exposure_count,...,category_second,category_first,...,read,read_time,share,like,follow,
favorite``. ``\\N`` is missing.

Events: note_id = item_id, click / like / share from the file, scenario = feed, ``file``
names the source file. Tenrec has no timestamps: within a user the file order is the
time order, so events keep it (``seq`` = rank within the user) and a ``split`` column is
written: per user with >= 3 rows, the last 10% (at least one) are test, the 10% before
valid, the rest train. Users: gender/age codes (kept as ``gender_code`` / ``age_code``;
Tenrec does not publish their meaning). Notes: category from video_category or
category_first / category_second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    list_files,
    need_path,
    read_labelled_csv,
    with_event_ids,
    write_tables,
)

EXPECTS = ("a Tenrec CSV (QK-video.csv, QB-video.csv, QK-article.csv, QB-article.csv, "
           "ctr_data_1M.csv, ...) or a folder of them")
REQUIRED = ("user_id", "item_id", "click")
BINARY = ("click", "like", "share", "follow", "favorite")


def _read(f: Path) -> pl.DataFrame:
    return read_labelled_csv(f, REQUIRED, BINARY, {"user_id": pl.Int64, "item_id": pl.Int64,
                                                  "click": pl.Float64}, "file",
                             null_values=["\\N", ""])


def order_split(user: pl.Expr, share: float = 0.1) -> pl.Expr:
    """Per-user order split: last ``share`` (>= 1 row) test, the ``share`` before valid."""
    n = pl.len().over(user)
    rank = pl.int_range(pl.len()).over(user)
    k = (n.cast(pl.Float64) * share).floor().cast(pl.Int64).clip(lower_bound=1)
    return (pl.when(n < 3).then(pl.lit("train"))
            .when(rank >= n - k).then(pl.lit("test"))
            .when(rank >= n - 2 * k).then(pl.lit("valid"))
            .otherwise(pl.lit("train")))


def load(path: Path, out: Path) -> dict[str, Any]:
    files = list_files(need_path(path, "tenrec", EXPECTS), ("*.csv",), "tenrec", EXPECTS)
    ev = pl.concat([_read(f) for f in files], how="diagonal_relaxed").rename({"item_id": "note_id"})
    key = pl.struct("file", "user_id")  # the same user id in two files is two histories
    ev = ev.with_columns(pl.col("click").cast(pl.Int8), pl.lit("feed").alias("scenario"),
                         pl.int_range(pl.len()).over(key).alias("seq"),
                         order_split(key).alias("split"))
    ev = with_event_ids(ev)
    tables = {"events": ev}
    user_cols = [c for c in ("gender", "age") if c in ev.columns]
    if user_cols:
        tables["users"] = (ev.group_by("user_id", maintain_order=True)
                           .agg(pl.col(c).drop_nulls().first().alias(f"{c}_code") for c in user_cols)
                           .sort("user_id"))
    cats = [c for c in ("video_category", "category_first") if c in ev.columns]
    if cats:  # the first non-null category per item across the files
        agg = [pl.coalesce([pl.col(c).cast(pl.String) for c in cats]).drop_nulls().first()
               .alias("category")]
        if "category_second" in ev.columns:
            agg.append(pl.col("category_second").cast(pl.String).drop_nulls().first()
                       .alias("subcategory"))
        tables["notes"] = ev.group_by("note_id").agg(agg).sort("note_id")
    fields = {"files": [f.name for f in files], "click": "click (kept as given)",
              "ts": "none (Tenrec has no timestamps; file order within a user is time order)",
              "seq": "rank of the event within (file, user)",
              "split_rule": "per (file, user) with >= 3 rows: last 10% (>= 1) test, the 10% "
                            "before valid, rest train"}
    return write_tables(out, "tenrec", path, tables, {"column": "split"}, fields)
