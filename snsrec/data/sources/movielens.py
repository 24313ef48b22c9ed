"""MovieLens, the original GroupLens files: ml-100k and ml-1m.

* ml-100k: ``u.data`` (user \\t item \\t rating \\t unix time), ``u.item`` (pipe-separated,
  latin-1: id | title | release date | video release date | IMDb URL | 19 genre flags),
  ``u.user`` (id | age | gender | occupation | zip).
* ml-1m: ``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``movies.dat``
  (MovieID::Title::Genres with genres pipe-separated, latin-1), ``users.dat``
  (UserID::Gender::Age::Occupation::Zip-code; Age is a code 1, 18, 25, 35, 45, 50, 56).

Every rating is one event with click = 1; ``rating`` and the raw ``timestamp`` are kept.
Notes: title, genres (list) -> hashtags, category = first genre.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import (
    age_bucket,
    check_nonnegative,
    latin1_text,
    need_path,
    read_table,
    time_split,
    unix_seconds,
    with_event_ids,
    write_tables,
)
from snsrec.errors import DataError

EXPECTS = ("a folder with ml-100k files (u.data, u.item, u.user) or ml-1m files "
           "(ratings.dat, movies.dat, users.dat)")
GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]
RATING_SCHEMA = {"user_id": pl.Int64, "note_id": pl.Int64, "rating": pl.Float64,
                 "timestamp": pl.Int64}


def _events(ratings: pl.DataFrame, path: Path) -> pl.DataFrame:
    check_nonnegative(ratings, ("user_id", "note_id", "timestamp"), path)
    ev = ratings.with_columns(unix_seconds(pl.col("timestamp")).alias("ts"),
                              pl.lit(1, pl.Int8).alias("click"), pl.lit("feed").alias("scenario"))
    return with_event_ids(ev.sort(["ts", "user_id", "note_id"], maintain_order=True))


def _notes(notes: pl.DataFrame) -> pl.DataFrame:
    return notes.with_columns(pl.col("genres").alias("hashtags"),
                              pl.col("genres").list.first().alias("category"))


def _users(users: pl.DataFrame) -> pl.DataFrame:
    return users.with_columns(pl.col("gender").str.to_lowercase().str.slice(0, 1),
                              age_bucket(pl.col("age")).alias("age_bucket"))


def _load_100k(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    data = folder / "u.data"
    ratings = read_table(data, separator="\t", has_header=False, schema=RATING_SCHEMA)
    notes = users = None
    if (folder / "u.item").is_file():
        item = folder / "u.item"
        cols = ["note_id", "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K]
        raw = read_table(item, separator="|", has_header=False, text=latin1_text(item, ""),
                         schema={c: pl.Int64 if c == "note_id" or c in GENRES_100K else pl.String
                                 for c in cols})
        # One 0/1 flag per genre -> the list of genres that are set, in the published order.
        genres = pl.concat_list([pl.when(pl.col(g) == 1).then(pl.lit(g)) for g in GENRES_100K])
        notes = _notes(raw.with_columns(genres.list.drop_nulls().alias("genres"))
                       .drop(GENRES_100K).drop("video_release_date"))
    if (folder / "u.user").is_file():
        users = _users(read_table(folder / "u.user", separator="|", has_header=False,
                                  schema={"user_id": pl.Int64, "age": pl.Int64,
                                          "gender": pl.String, "occupation": pl.String,
                                          "zip": pl.String}))
    return ratings, notes, users


def _load_1m(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    data = folder / "ratings.dat"
    ratings = read_table(data, separator="\x1f", has_header=False, schema=RATING_SCHEMA,
                         text=latin1_text(data))
    notes = users = None
    if (folder / "movies.dat").is_file():
        f = folder / "movies.dat"
        raw = read_table(f, separator="\x1f", has_header=False, text=latin1_text(f),
                         schema={"note_id": pl.Int64, "title": pl.String, "genres": pl.String})
        notes = _notes(raw.with_columns(pl.col("genres").str.split("|")))
    if (folder / "users.dat").is_file():
        f = folder / "users.dat"
        users = _users(read_table(f, separator="\x1f", has_header=False, text=latin1_text(f),
                                  schema={"user_id": pl.Int64, "gender": pl.String,
                                          "age": pl.Int64, "occupation": pl.Int64,
                                          "zip": pl.String}))
    return ratings, notes, users


def load(path: Path, out: Path) -> dict[str, Any]:
    folder = need_path(path, "movielens", EXPECTS)
    folder = folder.parent if folder.is_file() else folder
    if (folder / "ratings.dat").is_file():
        version, (ratings, notes, users) = "ml-1m", _load_1m(folder)
        rating_file = folder / "ratings.dat"
    elif (folder / "u.data").is_file():
        version, (ratings, notes, users) = "ml-100k", _load_100k(folder)
        rating_file = folder / "u.data"
    else:
        raise DataError(f"{folder}: no u.data or ratings.dat; `movielens` expects {EXPECTS}")
    events = _events(ratings, rating_file)
    tables = {"events": events}
    if notes is not None:
        tables["notes"] = notes
    if users is not None:
        tables["users"] = users
    fields = {"version": version, "click": "1 for every rating (explicit feedback); see `rating`",
              "ts": "from the unix `timestamp` (kept)", "hashtags": "genres",
              "category": "first genre", "age_bucket": "from age / the ML-1M age code"}
    return write_tables(out, "movielens", path, tables, time_split(events["ts"]), fields)
