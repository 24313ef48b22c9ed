"""The canonical tables: Arrow schemas and a validator.

Every source (the synthetic world, MovieLens, BARS, Criteo, ...) is turned into
these tables. Required columns must be present with a compatible type; extra
columns are kept. Ground truth the models must never read lives apart, under
``truth/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from snsrec.errors import DataError, SchemaError

SCENARIOS = ("feed", "search", "discover", "ads")
HARM_TYPES = ("scam", "gambling", "fake_health", "harassment")
ENGAGEMENTS = ("click", "like", "collect", "comment", "share", "convert")

COVER_FIELDS = ("brightness", "saturation", "contrast", "warmth", "faces", "text_overlay",
                "clutter", "closeup")
COVER_TYPE = pa.struct([pa.field(f, pa.float32()) for f in COVER_FIELDS])


def cover_matrix(column: pa.ChunkedArray | pa.Array, fields: tuple[str, ...] | None = None
                 ) -> np.ndarray:
    """``[n, k]`` float32 of a cover struct column: ``fields`` (default: the struct's own,
    in order) as columns; a missing cover, field or value is 0."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_struct(arr.type):
        raise DataError(f"cover column is {arr.type}, not a struct of floats")
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    fields = tuple(names) if fields is None else fields
    out = np.zeros((len(arr), len(fields)), np.float32)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    for j, f in enumerate(fields):
        if f in names:
            x = np.asarray(arr.field(names.index(f)).to_numpy(zero_copy_only=False),
                           dtype=np.float32)
            out[:, j] = np.where(valid & np.isfinite(x), x, 0.0)
    return out

NOTES = pa.schema([
    pa.field("note_id", pa.int64(), nullable=False),
    pa.field("author_id", pa.int64()),
    pa.field("created_at", pa.timestamp("s")),
    pa.field("language", pa.string()),          # "en" | "zh" | "mixed" | source code
    pa.field("title", pa.string()),
    pa.field("body", pa.string()),
    pa.field("hashtags", pa.list_(pa.string())),
    pa.field("category", pa.string()),
    pa.field("subcategory", pa.string()),
    pa.field("is_ad", pa.bool_()),
    pa.field("harmful", pa.bool_()),
    pa.field("harm_type", pa.string()),         # null when not harmful
    pa.field("cover", COVER_TYPE),
])

USERS = pa.schema([
    pa.field("user_id", pa.int64(), nullable=False),
    pa.field("gender", pa.string()),            # "f" | "m" | "u"
    pa.field("age_bucket", pa.string()),        # "18-24", ...
    pa.field("city", pa.string()),
    pa.field("signup_at", pa.timestamp("s")),
])

EVENTS = pa.schema([
    pa.field("event_id", pa.int64(), nullable=False),
    pa.field("request_id", pa.int64()),
    pa.field("session_id", pa.int64()),
    pa.field("user_id", pa.int64(), nullable=False),
    pa.field("note_id", pa.int64(), nullable=False),
    pa.field("scenario", pa.string()),          # feed | search | discover | ads
    pa.field("query", pa.string()),             # search only, else null
    pa.field("position", pa.int32()),           # 0-based slot in the response
    pa.field("ts", pa.timestamp("s")),
    pa.field("click", pa.int8()),
    pa.field("like", pa.int8()),
    pa.field("collect", pa.int8()),
    pa.field("comment", pa.int8()),
    pa.field("share", pa.int8()),
    pa.field("dwell_ms", pa.int32()),
    pa.field("convert", pa.int8()),
])

QUERIES = pa.schema([
    pa.field("query_id", pa.int64(), nullable=False),
    pa.field("request_id", pa.int64()),
    pa.field("session_id", pa.int64()),
    pa.field("user_id", pa.int64()),
    pa.field("ts", pa.timestamp("s")),
    pa.field("query", pa.string()),
    pa.field("language", pa.string()),
    pa.field("category", pa.string()),          # the intent the query was written from
])

SCHEMAS: dict[str, pa.Schema] = {"notes": NOTES, "users": USERS, "events": EVENTS,
                                 "queries": QUERIES}

# An events table may carry an extra `split` column ("train" | "valid" | "test") for
# sources with fixed splits (BARS); otherwise splits are by time (see splits.py).
# CTR-only sources with no user/item notion (Criteo, libsvm) validate with
# required=("click",) and leave user_id/note_id null.
# Columns a source must provide; the others are filled with nulls/defaults by
# ``conform`` when a source has no such notion (e.g. MovieLens has no cover).
REQUIRED: dict[str, tuple[str, ...]] = {
    "notes": ("note_id",),
    "users": ("user_id",),
    # ts is optional: BARS-style CTR files have none and carry a `split` column instead.
    "events": ("user_id", "note_id"),
    "queries": ("query_id", "query"),
}


def _compatible(have: pa.DataType, want: pa.DataType) -> bool:
    if have.equals(want) or pa.types.is_null(have):
        return True
    for check in (pa.types.is_integer, pa.types.is_floating, pa.types.is_timestamp,
                  pa.types.is_boolean, pa.types.is_struct):
        if check(want):
            return check(have) or (pa.types.is_integer(have) and pa.types.is_boolean(want))
    if pa.types.is_string(want) or pa.types.is_large_string(want):
        return pa.types.is_string(have) or pa.types.is_large_string(have) or \
            pa.types.is_dictionary(have)
    if pa.types.is_list(want) or pa.types.is_large_list(want):
        return pa.types.is_list(have) or pa.types.is_large_list(have)
    return False


def validate(table: pa.Table | pa.Schema, kind: str, source: str = "table",
             required: tuple[str, ...] | None = None) -> None:
    """Raise SchemaError naming the first missing or mistyped column."""
    if kind not in SCHEMAS:
        raise SchemaError(f"{source}: unknown table kind '{kind}'; use one of {sorted(SCHEMAS)}")
    schema = table if isinstance(table, pa.Schema) else table.schema
    want = SCHEMAS[kind]
    need = REQUIRED[kind] if required is None else required
    missing = [c for c in need if c not in schema.names]
    if missing:
        raise SchemaError(f"{source}: {kind} table is missing column(s) {missing}; "
                          f"it has {schema.names}")
    for name in schema.names:
        if name in want.names:
            have_t, want_t = schema.field(name).type, want.field(name).type
            if not _compatible(have_t, want_t):
                raise SchemaError(f"{source}: column '{name}' has type {have_t}, expected "
                                  f"{want_t}; convert it")


def conform(table: pa.Table, kind: str, source: str = "table") -> pa.Table:
    """Validate, cast canonical columns to canonical types, add missing ones as nulls.

    Canonical columns come first in schema order; extra columns are kept after them.
    """
    validate(table, kind, source)
    want = SCHEMAS[kind]
    n = table.num_rows
    cols, fields = [], []
    for f in want:
        if f.name in table.column_names:
            col = table.column(f.name)
            if not col.type.equals(f.type):
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise SchemaError(f"{source}: column '{f.name}' cannot be read as {f.type} "
                                      f"({str(e).splitlines()[0]}); fix the values") from None
        else:
            col = pa.nulls(n, f.type)
        cols.append(col)
        fields.append(pa.field(f.name, f.type))
    for name in table.column_names:
        if name not in want.names:
            cols.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def validate_file(path: str | Path, kind: str) -> pa.Schema:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    validate(schema, kind, str(path))
    return schema
