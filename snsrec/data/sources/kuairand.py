"""KuaiRand (Pure / 1K / 27K), the published CSV layout.

A folder (usually ``KuaiRand-*/data``) with interaction logs ``log_standard_*.csv`` and/or
``log_random_*.csv`` (user_id, video_id, date, hourmin, time_ms, is_click, is_like,
is_follow, is_comment, is_forward, is_hate, long_view, play_time_ms, duration_ms,
profile_stay_time, comment_stay_time, is_profile_enter, is_rand, tab), optionally
``user_features_*.csv`` (user_id, user_active_degree, ...) and
``video_features_basic_*.csv`` (video_id, author_id, video_type, upload_dt, ..., tag).

Events: note_id = video_id, ts = time_ms, click = is_click, like = is_like,
comment = is_comment, share = is_forward, dwell_ms = play_time_ms, scenario = feed; the
other columns stay (``tab`` is KuaiRand's own UI scenario 0..14) and ``log`` names the
file. Notes: author_id, created_at = upload_dt, is_ad = video_type == "AD",
hashtags = tag ids, category = the first tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    list_files,
    need_path,
    read_labelled_csv,
    read_table,
    time_split,
    unix_seconds,
    with_event_ids,
    write_tables,
)

EXPECTS = ("a KuaiRand data folder with log_standard_*.csv / log_random_*.csv "
           "(optional user_features_*.csv, video_features_basic_*.csv)")
LOG_REQUIRED = ("user_id", "video_id", "time_ms", "is_click")
BINARY = ("is_click", "is_like", "is_follow", "is_comment", "is_forward", "is_hate", "long_view")
RENAME = {"is_like": "like", "is_comment": "comment", "is_forward": "share",
          "play_time_ms": "dwell_ms"}


def _read_log(f: Path) -> pl.DataFrame:
    return read_labelled_csv(f, LOG_REQUIRED, BINARY, {"user_id": pl.Int64, "video_id": pl.Int64,
                                                       "time_ms": pl.Int64}, "log")


def _notes(f: Path) -> pl.DataFrame:
    v = read_table(f, required=("video_id",),
                   schema_overrides={"video_id": pl.Int64, "tag": pl.String,
                                     "upload_dt": pl.String, "video_type": pl.String})
    v = v.rename({"video_id": "note_id"})
    extra = []
    if "upload_dt" in v.columns:
        extra.append(pl.col("upload_dt").str.to_datetime("%Y-%m-%d", strict=False)
                     .alias("created_at"))
    if "video_type" in v.columns:
        extra.append((pl.col("video_type") == "AD").alias("is_ad"))
    if "tag" in v.columns:
        tags = pl.col("tag").str.split(",")
        extra += [tags.alias("hashtags"), tags.list.first().alias("category")]
    return v.with_columns(extra)


def load(path: Path, out: Path) -> dict[str, Any]:
    base = need_path(path, "kuairand", EXPECTS)
    logs = list_files(base, ("log_*.csv",), "kuairand", EXPECTS)
    ev = pl.concat([_read_log(f) for f in logs], how="diagonal_relaxed")
    ev = ev.rename({"video_id": "note_id", **{k: v for k, v in RENAME.items() if k in ev.columns}})
    ev = ev.with_columns(unix_seconds(pl.col("time_ms"), "ms").alias("ts"),
                         pl.col("is_click").alias("click"), pl.lit("feed").alias("scenario"))
    ev = with_event_ids(ev.sort(["ts", "user_id"], maintain_order=True))
    tables = {"events": ev}
    folder = base.parent if base.is_file() else base
    users = sorted(folder.glob("user_features*.csv"))
    if users:
        tables["users"] = read_table(users[0], required=("user_id",),
                                     schema_overrides={"user_id": pl.Int64})
    videos = sorted(folder.glob("video_features_basic*.csv"))
    if videos:
        tables["notes"] = _notes(videos[0])
    fields = {"logs": [f.name for f in logs], "click": "is_click (kept)",
              "mapped": {"video_id": "note_id", "time_ms": "ts", **RENAME},
              "scenario": "feed (KuaiRand's own UI tab is kept in `tab`)"}
    return write_tables(out, "kuairand", path, tables, time_split(ev["ts"]), fields)
