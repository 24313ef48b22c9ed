"""Helpers shared by the source loaders: checked reads, id mapping, splits, writing.

Every loader reads with Polars (explicit separators and schemas), turns the
source into Polars frames named after the canonical tables and hands them to
``write_tables``, which conforms them to ``snsrec.data.schema`` and writes them
with a ``dataset.json`` beside them into the staging directory ``import_source``
moves into place.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from snsrec.data.schema import REQUIRED, SCHEMAS, conform, validate
from snsrec.errors import DataError, SchemaError
from snsrec.io import read_parquet, write_json, write_parquet

# Age (or an ML-1M age code) → the canonical age bucket: lower edges and labels.
AGE_CUTS = [18, 25, 35, 45, 50, 56]
# The split entry of a data set without timestamps: rows keep the file's order.
NO_TIME = {"rule": "none", "note": "no timestamps; the file order is kept (event_id)"}
AGE_LABELS = ["under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]


def need_path(path: Path, source: str, expects: str) -> Path:
    """The path itself, or a DataError naming it and what the source expects."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; `{source}` expects {expects}")
    return path


def need_file(folder: Path, names: Iterable[str], source: str, expects: str) -> Path:
    """The first of ``names`` inside ``folder`` (a glob pattern is allowed)."""
    for name in names:
        hits = sorted(folder.glob(name))
        if hits:
            return hits[0]
    raise DataError(f"{folder}: no {' / '.join(names)} found; `{source}` expects {expects}")


def list_files(path: Path, patterns: Iterable[str], source: str, expects: str,
               recursive: bool = False) -> list[Path]:
    """``[path]`` for a file, else the sorted files in the folder matching any pattern."""
    if path.is_file():
        return [path]
    glob = path.rglob if recursive else path.glob
    files = sorted({f for pat in patterns for f in glob(pat)})
    if not files:
        raise DataError(f"{path}: no {' / '.join(patterns)} files; `{source}` expects {expects}")
    return files


def _fail_read(path: Path, e: Exception) -> DataError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return DataError(f"{path}: cannot be read ({msg}); check the file format")


def read_table(path: Path, *, separator: str = ",", has_header: bool = True,
               new_columns: list[str] | None = None,
               schema_overrides: Mapping[str, Any] | None = None,
               schema: Mapping[str, Any] | None = None,
               required: Iterable[str] = (), null_values: list[str] | None = None,
               text: str | None = None) -> pl.DataFrame:
    """Read a delimited file with Polars; a missing required column is a SchemaError.

    ``text`` replaces the file content (used after re-encoding latin-1 files).
    Quoting is off unless the file is a plain CSV: the TSV formats here never quote.
    """
    src: Any = io.BytesIO(text.encode("utf-8")) if text is not None else path
    try:
        df = pl.read_csv(src, separator=separator, has_header=has_header, new_columns=new_columns,
                         schema_overrides=schema_overrides, schema=schema,
                         quote_char='"' if separator == "," else None,
                         null_values=null_values, infer_schema_length=10_000)
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: the file is empty; check the download") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise _fail_read(path, e) from None
    need_columns(df, required, path)
    return df


def need_columns(df: pl.DataFrame, required: Iterable[str], path: Path | str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; the file has {df.columns[:30]}; "
                          f"use the published layout")


def read_parquet_frame(path: Path, required: Iterable[str] = ()) -> pl.DataFrame:
    df = pl.from_arrow(read_parquet(path))
    assert isinstance(df, pl.DataFrame)
    need_columns(df, required, path)
    return df


def latin1_text(path: Path, sep: str = "::") -> str:
    """A latin-1 file as UTF-8 text; a multi-byte separator becomes \\x1f for Polars."""
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as e:
        raise _fail_read(path, e) from None
    return text.replace(sep, "\x1f") if sep else text


def check_binary(df: pl.DataFrame, column: str, path: Path | str) -> None:
    """Labels must be 0/1 (nulls are left to the caller)."""
    value = pl.col(column).cast(pl.Float64)
    bad = df.filter(~value.is_in([0.0, 1.0]) & value.is_not_null())
    if bad.height:
        value = bad[column][0]
        raise DataError(f"{path}: column '{column}' has value {value!r} outside {{0, 1}} "
                        f"({bad.height:,} rows); binarise the label (e.g. click = rating > 3) "
                        f"before importing")


def read_labelled_csv(path: Path, required: Iterable[str], binary: Iterable[str],
                      schema_overrides: Mapping[str, Any], tag: str, **kw: Any) -> pl.DataFrame:
    """A CSV whose 0/1 columns are checked, tagged with its file stem in column ``tag``."""
    df = read_table(path, required=required, schema_overrides=schema_overrides, **kw)
    for c in binary:
        if c in df.columns:
            check_binary(df, c, path)
    return df.with_columns(pl.lit(path.stem).alias(tag))


def check_nonnegative(df: pl.DataFrame, columns: Iterable[str], path: Path | str) -> None:
    for c in columns:
        if c in df.columns and df[c].dtype.is_numeric():
            n = df.filter(pl.col(c) < 0).height
            if n:
                raise DataError(f"{path}: column '{c}' has {n:,} negative value(s); ids and "
                                f"counts must be >= 0 — fix or drop those rows")


def dense_ids(values: Iterable[pl.Series]) -> pl.DataFrame:
    """Map string keys to int ids 1..n by sorted order: deterministic, hash-free."""
    keys = pl.concat([v.cast(pl.String).rename("key") for v in values]).drop_nulls()
    uniq = keys.unique().sort()
    return pl.DataFrame({"key": uniq, "id": pl.int_range(1, len(uniq) + 1, eager=True)})


def to_int_ids(df: pl.DataFrame, column: str, target: str, mapping: pl.DataFrame | None,
               raw_name: str) -> pl.DataFrame:
    """Put an int id in ``target``; string keys go through ``mapping`` and stay in ``raw_name``."""
    if mapping is None:
        return df.with_columns(pl.col(column).cast(pl.Int64).alias(target))
    keyed = df.with_columns(pl.col(column).cast(pl.String).alias(raw_name)).drop(column)
    return keyed.join(mapping.rename({"key": raw_name, "id": target}), on=raw_name, how="left",
                      maintain_order="left")


def ids_need_mapping(series: Iterable[pl.Series]) -> bool:
    """True when some key is not an integer (then keys get dense ids)."""
    for s in series:
        if s.dtype.is_integer():
            continue
        if s.cast(pl.String).str.contains(r"^-?\d+$").fill_null(True).all():
            continue
        return True
    return False


def age_bucket(expr: pl.Expr) -> pl.Expr:
    """Age (or ML-1M age code: 1, 18, 25, ...) to the canonical bucket label."""
    age = expr.cast(pl.Float64)
    out = pl.when(age < AGE_CUTS[0]).then(pl.lit(AGE_LABELS[0]))
    for cut, label in zip(AGE_CUTS[1:], AGE_LABELS[1:-1], strict=True):
        out = out.when(age < cut).then(pl.lit(label))
    return out.when(age.is_not_null()).then(pl.lit(AGE_LABELS[-1]))


def with_event_ids(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(pl.int_range(0, events.height, dtype=pl.Int64).alias("event_id"))


def time_split(ts: pl.Series, min_share: float = 0.01) -> dict[str, Any]:
    """Last day = test, the day before = valid; by 80/90% time quantiles when days are few.

    A day split needs >= 3 distinct days and >= ``min_share`` of the events on each of
    the two last days; otherwise (e.g. MovieLens, whose last days are nearly empty)
    valid/test start at the 80% / 90% quantiles of ``ts``.
    """
    ts = ts.drop_nulls()
    if ts.is_empty():
        return NO_TIME
    days = ts.dt.truncate("1d")
    last = days.max()
    n = len(ts)
    if days.n_unique() >= 3:
        prev = last - timedelta(days=1)
        if (days == last).sum() >= min_share * n and (days == prev).sum() >= min_share * n:
            return {"rule": "last_day", "valid_start": prev.isoformat(),
                    "test_start": last.isoformat()}
    q = ts.sort()
    valid, test = q[int(0.8 * (n - 1))], q[int(0.9 * (n - 1))]
    return {"rule": "quantile 0.8/0.9", "valid_start": valid.isoformat(),
            "test_start": test.isoformat()}


def unix_seconds(expr: pl.Expr, unit: str = "s") -> pl.Expr:
    """Unix time (int or float) to a second-resolution datetime."""
    scale = {"s": 1, "ms": 1000}[unit]
    return pl.from_epoch((expr.cast(pl.Float64) / scale).floor().cast(pl.Int64), time_unit="s")


def write_tables(out: Path, source: str, path: Path, tables: Mapping[str, pl.DataFrame],
                 split: dict[str, Any] | None, fields: dict[str, Any],
                 required: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Conform each canonical table, write it and dataset.json into ``out`` (the staging
    directory of ``import_source``); return the info."""
    required = required or {}
    arrow: dict[str, pa.Table] = {}
    for kind, df in tables.items():
        check_nonnegative(df, ("user_id", "note_id"), f"{path} ({kind})")
        table = df.to_arrow()
        if kind in required:
            validate(table, kind, f"{source} {kind}", required=required[kind])
            for name in REQUIRED[kind]:  # e.g. Criteo has no user/item: left null
                if name not in table.column_names:
                    table = table.append_column(SCHEMAS[kind].field(name).with_nullable(True),
                                                pa.nulls(table.num_rows, SCHEMAS[kind].field(name).type))
        table = conform(table, kind, f"{source} {kind}") if kind != "tasks" else table
        arrow[kind] = table
    info = {"source": source, "path": str(path), "rows": {k: t.num_rows for k, t in arrow.items()},
            "split": split, "fields": fields}
    for kind, table in arrow.items():
        write_parquet(out / f"{kind}.parquet", table)
    write_json(out / "dataset.json", info)
    return info
