"""FeatureMap: raw canonical tables → model-ready integer / float arrays.

Fitted on the training split only, saved as JSON, and applied identically to
any split or to one online request.

Conventions (every model relies on them):

- **Ids are int32** (``ID_DTYPE``): half the memory of int64 for the [n, L]
  histories (the medium world's train split: 4.3 GB instead of 8.7 GB), and
  ``nn.Embedding`` takes int32 indices as they are.
- **Categorical ids.** 0 = padding, 1 = out-of-vocabulary; known values get
  2, 3, ... ordered by descending training count, then by value, so the same
  data always gives the same ids. Values seen fewer than ``min_count`` times in
  train, values never seen in train, and **nulls** all map to 1 (OOV): a null
  is a real, unknown value, not an empty slot. 0 appears only in the empty
  slots of multi-valued and sequence fields.
- **Counts** of a notes/users column are counted per training *event* (a note
  shown 100 times in train counts 100), so ``min_count`` means "seen in at
  least this many training rows" whichever table the column lives in.
- **Numeric.** ``normalize``: (x - mean) / std with train statistics; nulls and
  NaN become 0 after normalisation (the train mean). ``bucketize``: quantile
  edges from train; the value becomes a categorical id 2 + bucket, null → 1.
- **Multi-valued** (hashtags): the first ``max_len`` values of the list, padded
  with 0 at the front so the last column holds the last value.
- **Sequences.** For each event, the user's *clicked* notes in the given
  scenarios (all scenarios when the list is empty) with click ``ts`` strictly
  before the event's ``ts`` — nothing from the same instant or request, nothing
  from the future — the most recent ``max_len`` of them, most recent LAST,
  0-padded at the front, mapped through the ``note_id`` vocabulary — or, with
  ``attribute: category`` (a categorical feature of a notes column), each
  clicked note's code of that feature (DIN's category sequence). Clicks are
  looked up in the whole events table, so a valid/test event does see clicks
  from earlier valid/test events before its own ``ts``: that is what the model
  would know online, not leakage. Vocabularies still come from train only.
- **Meta** arrays (keys start with "_", not model inputs): ``_user_id``,
  ``_note_id``, ``_request_id`` (raw ids, null → -1), ``_scenario`` (int8 index
  in ``SCENARIOS``, other/null → -1), ``_position`` (int32, null → -1), ``_ts``
  (int64 seconds, null → 0) and ``_text_<col>`` (raw ids kept for text lookup).
- **Vectors** (``vectors``: e.g. a note's text vector) map an id column through a
  fixed vocabulary — the ids of a vector table (`snsrec encode notes`), every
  note in it, not only those seen in train — so a sequence that shares it
  (``share_vocab_with``) and the event's own note index one ``[ids, dim]``
  table (``FeatureMap.vectors``, saved beside the JSON); an id the table lacks
  is OOV with a zero vector, and ``transform`` says how many rows have none.
- **Labels** are float32 with null → 0.

Column references are ``"table.column"`` (events, notes, users) or a derived
expression (``hour_of_day``, ``day_of_week``, ``note_age_hours``,
``user_age_days``). Everything is vectorised: values are coded once per note or
user and gathered per event; histories use searchsorted + one [n, L] gather.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field as PField
from pydantic import ValidationError, field_validator, model_validator

from snsrec.config import StrictModel, load_config
from snsrec.data.schema import EVENTS, NOTES, SCENARIOS, USERS
from snsrec.data.splits import split_events
from snsrec.data.tables import Tables, load_tables
from snsrec.errors import DataError, SchemaError
from snsrec.io import atomic_path, check_out_file, read_json, read_parquet, write_json
from snsrec.progress import Progress, echo

PAD, OOV = 0, 1
ID_DTYPE = np.int32   # every categorical / multi / sequence id array
TABLES = ("events", "notes", "users")
KEYS = {"notes": "note_id", "users": "user_id"}       # how a table joins onto events
# Derived event-level values and the columns they read.
EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "hour_of_day": ("events.ts",),
    "day_of_week": ("events.ts",),
    "note_age_hours": ("events.ts", "notes.created_at"),
    "user_age_days": ("events.ts", "users.signup_at"),
}
FORMAT = "snsrec.feature_map"
VERSION = 1
_CHUNK = 1 << 16        # rows per history gather block (see histories)

# ----------------------------------------------------------------------------- spec


def _check_ref(ref: str) -> str:
    table, _, col = ref.partition(".")
    if ref in EXPRESSIONS or (table in TABLES and col):
        return ref
    raise ValueError(f"'{ref}' is neither table.column (tables: {', '.join(TABLES)}) nor an "
                     f"expression ({', '.join(EXPRESSIONS)})")


class _ColumnSpec(StrictModel):
    name: str
    column: str

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        return _check_ref(v)


class CategoricalSpec(_ColumnSpec):
    min_count: int = PField(1, ge=1)


class NumericSpec(_ColumnSpec):
    mode: Literal["normalize", "bucketize"] = "normalize"
    n_buckets: int = PField(10, ge=2)


class MultiSpec(_ColumnSpec):
    max_len: int = PField(5, ge=1)
    min_count: int = PField(1, ge=1)


class VectorSpec(_ColumnSpec):
    """A fixed vector per id of ``column`` (e.g. a note's text vector from `snsrec encode
    notes`), read from ``path`` (Parquet with ``key`` and a list-of-floats ``vector``
    column). Its vocabulary is the table's ids — every note in the table, those that
    never appear in training too — so a model can read a new note's vector; an id the
    table lacks is out of vocabulary and has a zero vector."""

    column: str = "events.note_id"
    path: Path
    key: str = "note_id"
    vector: str = "vector"


class SequenceSpec(StrictModel):
    name: str
    scenarios: list[str] = PField(default_factory=list)   # empty: clicks in every scenario
    max_len: int = PField(20, ge=1)
    share_vocab_with: str | None = "note_id"              # None: own vocab of clicked notes
    min_count: int = PField(1, ge=1)                      # only for an own vocab
    # A categorical feature of the notes (e.g. "category"): the sequence holds that
    # feature's code for each clicked note instead of the note's id, and shares its
    # vocabulary (DIN's category sequence beside the item sequence). None: the note ids.
    attribute: str | None = None

    @model_validator(mode="after")
    def _attribute(self) -> SequenceSpec:
        if self.attribute is not None:
            if "share_vocab_with" in self.model_fields_set and \
                    self.share_vocab_with != self.attribute:
                raise ValueError(f"sequence '{self.name}' holds the attribute "
                                 f"'{self.attribute}', so it shares that feature's vocabulary; "
                                 f"drop share_vocab_with or set it to '{self.attribute}'")
            self.share_vocab_with = self.attribute
        return self


WORLD_CATEGORICAL = [
    ("user_id", "events.user_id"), ("note_id", "events.note_id"),
    ("author_id", "notes.author_id"), ("scenario", "events.scenario"),
    ("position", "events.position"), ("category", "notes.category"),
    ("subcategory", "notes.subcategory"), ("language", "notes.language"),
    ("is_ad", "notes.is_ad"), ("gender", "users.gender"), ("age_bucket", "users.age_bucket"),
    ("city", "users.city"),
]
WORLD_NUMERIC = [NumericSpec(name="hour_of_day", column="hour_of_day"),
                 NumericSpec(name="note_age_hours", column="note_age_hours", mode="bucketize",
                             n_buckets=16)]
WORLD_MULTI = [MultiSpec(name="hashtags", column="notes.hashtags", max_len=5)]
WORLD_SEQUENCES = [SequenceSpec(name=f"hist_{s}", scenarios=[s], max_len=n)
                   for s, n in (("feed", 50), ("search", 20), ("discover", 20), ("ads", 10))]


class FeatureSpec(StrictModel):
    """The feature YAML. The defaults are the synthetic world's features."""

    categorical: list[CategoricalSpec] = PField(default_factory=lambda: [
        CategoricalSpec(name=n, column=c) for n, c in WORLD_CATEGORICAL])
    numeric: list[NumericSpec] = PField(default_factory=lambda: list(WORLD_NUMERIC))
    multi: list[MultiSpec] = PField(default_factory=lambda: list(WORLD_MULTI))
    sequences: list[SequenceSpec] = PField(default_factory=lambda: list(WORLD_SEQUENCES))
    vectors: list[VectorSpec] = PField(default_factory=list)
    text: list[str] = PField(default_factory=lambda: ["note_id"])
    labels: list[str] = PField(default_factory=lambda: ["click"])

    @model_validator(mode="after")
    def _names(self) -> FeatureSpec:
        names = [f.name for group in (self.categorical, self.numeric, self.multi,
                                      self.sequences, self.vectors) for f in group] \
            + list(self.labels)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature/label names must be unique; repeated: {dup}")
        bad = [n for n in names if n.startswith("_")]
        if bad:
            raise ValueError(f"names starting with '_' are reserved for meta arrays: {bad}")
        cat = {c.name for c in self.categorical} | {v.name for v in self.vectors}
        note_level = {c.name for c in self.categorical if c.column.startswith("notes.")}
        for s in self.sequences:
            if s.attribute is not None and s.attribute not in note_level:
                raise ValueError(f"sequence '{s.name}' holds the attribute '{s.attribute}', "
                                 f"which is not a categorical feature of a notes column; "
                                 f"use one of {sorted(note_level) or 'none: add one'}")
            if s.share_vocab_with is not None and s.share_vocab_with not in cat:
                raise ValueError(f"sequence '{s.name}' shares the vocab of "
                                 f"'{s.share_vocab_with}', which is not a categorical or "
                                 "vector feature")
        for t in self.text:
            _check_ref(_full_ref(t))
        return self


def _full_ref(ref: str) -> str:
    """A bare column name is an events column: "note_id" → "events.note_id"."""
    return ref if "." in ref or ref in EXPRESSIONS else f"events.{ref}"


def _refs(spec: FeatureSpec) -> list[tuple[str, str]]:
    """(feature name, column reference) for every column the spec reads."""
    out = [(f.name, f.column) for g in (spec.categorical, spec.numeric, spec.multi, spec.vectors)
           for f in g]
    for s in spec.sequences:
        out += [(s.name, f"events.{c}") for c in ("user_id", "note_id", "ts", "click")]
        if s.attribute is not None:
            out.append((s.name, _attribute_column(spec, s)))
        if s.scenarios:
            out.append((s.name, "events.scenario"))
    out += [(t, _full_ref(t)) for t in spec.text]
    out += [(lab, f"events.{lab}") for lab in spec.labels]
    return out


def _attribute_column(spec: FeatureSpec, q: SequenceSpec) -> str:
    """The notes column of a sequence's attribute (its categorical feature's)."""
    return next(c.column for c in spec.categorical if c.name == q.attribute)


def _columns(lf: pl.LazyFrame | None) -> list[str]:
    return [] if lf is None else lf.collect_schema().names()


def check_columns(tables: Tables, spec: FeatureSpec) -> None:
    """SchemaError naming the first column the spec needs that the data lacks."""
    for name, ref in _refs(spec):
        for dep in EXPRESSIONS.get(ref, (ref,)):
            table, _, col = dep.partition(".")
            lf = tables.get(table)
            if lf is None:
                raise SchemaError(f"{tables.path(table)}: table '{table}' is missing but feature "
                                  f"'{name}' reads {dep}; add the table or drop the feature")
            if col not in _columns(lf):
                raise SchemaError(f"{tables.path(table)}: column '{col}' of the {table} table is "
                                  f"missing but feature '{name}' reads it; add the column or "
                                  f"drop the feature from the feature config")


# ----------------------------------------------------------------------------- default spec


def _nonempty(lf: pl.LazyFrame | None, cols: list[str]) -> set[str]:
    """Columns of ``lf`` among ``cols`` that hold at least one non-null value."""
    names = _columns(lf)
    have = sorted({c for c in cols if c in names}, key=cols.index)
    if lf is None or not have:
        return set()
    row = lf.select([pl.col(c).is_not_null().any() for c in have]).collect().row(0)
    return {c for c, ok in zip(have, row, strict=True) if ok}


def _is_free_text(lf: pl.LazyFrame, col: str) -> bool:
    mean_len = lf.select(pl.col(col).str.len_chars().mean()).collect().item()
    return mean_len is not None and mean_len > 32


def _extra_features(tables: Tables, taken: set[str]) -> tuple[list, list, list]:
    """Categorical / numeric / multi features for non-canonical columns of an import."""
    canonical = {"events": set(EVENTS.names) | {"split"}, "notes": set(NOTES.names),
                 "users": set(USERS.names)}
    cat, num, multi = [], [], []
    for table in TABLES:
        lf = tables.get(table)
        if lf is None:
            continue
        schema = lf.collect_schema()
        extras = [c for c in schema.names() if c not in canonical[table]]
        for col in sorted(_nonempty(lf, extras), key=extras.index):
            dtype, ref = schema[col], f"{table}.{col}"
            name = col if col not in taken else f"{table}_{col}"
            taken.add(name)
            if dtype.is_float():
                num.append(NumericSpec(name=name, column=ref))
            elif isinstance(dtype, pl.List):
                multi.append(MultiSpec(name=name, column=ref, max_len=10))
            elif dtype.is_integer() or dtype == pl.Boolean or (
                    dtype in (pl.String, pl.Categorical) and
                    (table == "events" or not _is_free_text(lf, col))):
                cat.append(CategoricalSpec(name=name, column=ref))
    return cat, num, multi


def default_spec(tables: Tables) -> FeatureSpec:
    """The world's features where their columns exist and hold values, plus import extras."""
    candidates = {t: [] for t in TABLES}
    world = FeatureSpec()
    for _, ref in _refs(world):
        for dep in EXPRESSIONS.get(ref, (ref,)):
            table, _, col = dep.partition(".")
            candidates[table].append(col)
    present = {f"{t}.{c}" for t in TABLES for c in _nonempty(tables.get(t), candidates[t])}

    def ok(ref: str) -> bool:
        return all(d in present for d in EXPRESSIONS.get(ref, (ref,)))

    cat = [c for c in world.categorical if ok(c.column)]
    num = [n for n in world.numeric if ok(n.column)]
    multi = [m for m in world.multi if ok(m.column)]
    seqs: list[SequenceSpec] = []
    if all(ok(f"events.{c}") for c in ("user_id", "note_id", "ts", "click")) and \
            any(c.name == "note_id" for c in cat):
        scen: list[str] = []
        if ok("events.scenario"):
            scen = tables.events.select(pl.col("scenario").drop_nulls().unique()) \
                .collect().to_series().to_list()
        seqs = [s for s in world.sequences if s.scenarios[0] in scen] or \
               [SequenceSpec(name="hist", scenarios=[], max_len=50)]
    taken = {f.name for g in (cat, num, multi, seqs) for f in g}
    labels = [lab for lab in world.labels if ok(f"events.{lab}")]
    taken |= set(labels)
    extra_cat, extra_num, extra_multi = _extra_features(tables, taken)
    text = [t for t in world.text if ok(_full_ref(t))]
    return FeatureSpec(categorical=cat + extra_cat, numeric=num + extra_num,
                       multi=multi + extra_multi, sequences=seqs, text=text, labels=labels)


# ----------------------------------------------------------------------------- frames


def _seconds(s: pl.Series) -> np.ndarray:
    """A time column (or a number of seconds) as float seconds since the epoch (floored),
    NaN for null. Without nulls no polars expression runs, so a served request does not
    queue on polars' thread pool for it (a few hundred microseconds each on a busy
    server)."""
    if not isinstance(s.dtype, pl.Datetime | pl.Date):
        return s.cast(pl.Int64, strict=False).cast(pl.Float64).to_numpy()   # null → NaN
    if s.dtype == pl.Date:
        per, scale, raw = 1, 86400, s.cast(pl.Int32)                         # days
    else:
        per, scale = {"ns": 10**9, "us": 10**6, "ms": 10**3}[s.dtype.time_unit], 1
        raw = s.cast(pl.Int64)
    if not raw.null_count():
        return (raw.to_numpy() // per * scale).astype(np.float64)
    out = (raw.fill_null(0).to_numpy() // per * scale).astype(np.float64)   # exact
    out[raw.is_null().to_numpy()] = np.nan
    return out


def _to_seconds(s: pl.Series) -> pl.Series:
    """``_seconds`` as an Int64 series (null for null)."""
    return pl.Series(s.name, _seconds(s), nan_to_null=True).cast(pl.Int64)


def _lookup(sorted_keys: np.ndarray, query: np.ndarray, dense: bool = True) -> np.ndarray:
    """Row of each ``query`` key in ``sorted_keys``; -1 when absent (``dense``: allow the
    table lookup, which costs the keys' range: not for a few queries)."""
    if len(sorted_keys) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    lo, hi = int(sorted_keys[0]), int(sorted_keys[-1])
    if dense and lo >= 0 and hi < 4 * len(sorted_keys) + 1_000_000:
        # Dense non-negative ids (the usual case): one O(n) table lookup beats a search.
        table = np.full(hi + 2, -1, dtype=np.int64)
        table[sorted_keys[::-1]] = np.arange(len(sorted_keys) - 1, -1, -1)  # first row wins
        return table[np.where((query >= 0) & (query <= hi), query, hi + 1)]
    pos = _searchsorted(sorted_keys, query)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == query, pos, -1).astype(np.int64)


def _searchsorted(sorted_keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """np.searchsorted(side="left") on sorted queries: several times faster on big arrays."""
    order = np.argsort(query, kind="stable")
    out = np.empty(len(query), dtype=np.int64)
    out[order] = np.searchsorted(sorted_keys, query[order])
    return out


def _gather(values: np.ndarray, idx: np.ndarray, fill: float) -> np.ndarray:
    """``values[idx]`` along the first axis with ``fill`` where idx < 0."""
    if len(values) == 0:
        return np.full((len(idx), *values.shape[1:]), fill, dtype=values.dtype)
    out = values[np.maximum(idx, 0)]
    out[idx < 0] = fill
    return out


def _ids(s: pl.Series | None, n: int, fill: int, dtype: Any = np.int64) -> np.ndarray:
    if s is None:
        return np.full(n, fill, dtype=dtype)
    if s.dtype.is_integer() and not s.null_count():     # no polars op (a served request)
        return s.to_numpy().astype(dtype)
    return s.cast(pl.Int64, strict=False).fill_null(fill).to_numpy().astype(dtype)


def _present(s: pl.Series) -> np.ndarray:
    """Non-null mask of ``s``."""
    return np.ones(len(s), bool) if not s.null_count() else s.is_not_null().to_numpy()


@dataclass
class _Frame:
    """Events of one split (or request) with the notes / users rows they point to.

    ``cache`` (a ``RequestEncoder``'s): arrays computed over a whole notes / users
    table, kept across requests — a request then costs its own rows, not the
    tables' size. Each entry keeps how it was made, so rows appended to a table
    (a posted note) extend it.
    """

    ev: pl.DataFrame
    side: dict[str, pl.DataFrame]       # "notes" / "users", sorted by key
    idx: dict[str, np.ndarray]          # row of each event in side[table], -1 when absent
    cache: dict[tuple[str, str], tuple[str, Callable[[pl.DataFrame], np.ndarray],
                                       np.ndarray]] | None = None
    ts_seconds: np.ndarray | None = None    # the events' times, computed once (_ts)

    @property
    def n(self) -> int:
        return self.ev.height

    @classmethod
    def build(cls, tables: Tables, events: pl.LazyFrame, spec: FeatureSpec) -> _Frame:
        need: dict[str, set[str]] = {t: set() for t in TABLES}
        for _, ref in _refs(spec):
            for dep in EXPRESSIONS.get(ref, (ref,)):
                table, _, col = dep.partition(".")
                need[table].add(col)
        need["events"] |= {"user_id", "note_id", "scenario", "position", "ts", "request_id"}
        have = _columns(events)
        ev = events.select([c for c in have if c in need["events"]]).collect()
        side, idx = {}, {}
        for table, key in KEYS.items():
            cols = sorted(need[table] - {key})
            lf = tables.get(table)
            if not cols or lf is None or key not in ev.columns:
                continue
            df = lf.select([key, *cols]).drop_nulls(key).collect().sort(key)
            side[table] = df
            idx[table] = _lookup(df[key].to_numpy(), _ids(ev[key], ev.height, -1))
        return cls(ev, side, idx)

    def level(self, ref: str) -> tuple[str, pl.Series]:
        """(table, values at that table's level) for a reference; expressions are events-level."""
        if ref in EXPRESSIONS:
            return "events", _EXPRESSION_FNS[ref](self)
        table, _, col = ref.partition(".")
        return table, (self.ev if table == "events" else self.side[table])[col]

    def align(self, table: str, values: np.ndarray, fill: float) -> np.ndarray:
        return values if table == "events" else _gather(values, self.idx[table], fill)

    def at_level(self, kind: str, ref: str, fn: Callable[[pl.Series], np.ndarray]
                 ) -> tuple[str, np.ndarray]:
        """(table, ``fn`` of the reference's values at that table's level); a notes / users
        level result is kept in ``cache`` when there is one."""
        table, values = self.level(ref)
        if table == "events" or self.cache is None:
            return table, fn(values)
        hit = self.cache.get((kind, ref))
        if hit is None:
            col = ref.partition(".")[2]

            def make(df: pl.DataFrame) -> np.ndarray:
                return fn(df[col])
            hit = self.cache[(kind, ref)] = (table, make, fn(values))
        return table, hit[2]

    def weights(self, table: str) -> np.ndarray:
        """Training rows per level row: 1 per event, impressions per note / user."""
        if table == "events":
            return np.ones(self.n, dtype=np.int64)
        idx = self.idx[table]
        return np.bincount(idx[idx >= 0], minlength=self.side[table].height)

    def seconds(self, ref: str) -> np.ndarray:
        """A time column aligned to events as float seconds (NaN for null)."""
        table, sec = self.at_level("seconds", ref, _seconds)
        return self.align(table, sec, np.nan)

    def numeric(self, ref: str) -> np.ndarray:
        def floats(s: pl.Series) -> np.ndarray:
            if isinstance(s.dtype, pl.Datetime | pl.Date):
                return _seconds(s)
            try:
                return s.cast(pl.Float64).to_numpy()            # null → NaN
            except pl.exceptions.PolarsError:
                raise SchemaError(f"column {ref} ({s.dtype}) is not numeric; use it as a "
                                  f"categorical feature instead") from None

        table, x = self.at_level("numeric", ref, floats)
        return self.align(table, x, np.nan)


def _ts(frame: _Frame) -> np.ndarray:
    if frame.ts_seconds is None:
        frame.ts_seconds = frame.seconds("events.ts")
    return frame.ts_seconds


def _int_or_null(x: np.ndarray) -> pl.Series:
    return pl.Series(x, nan_to_null=True).cast(pl.Int64)


_EXPRESSION_FNS: dict[str, Callable[[_Frame], pl.Series]] = {
    "hour_of_day": lambda f: _int_or_null(np.floor((_ts(f) % 86400) / 3600)),
    # 1970-01-01 was a Thursday: +3 makes Monday 0.
    "day_of_week": lambda f: _int_or_null((np.floor(_ts(f) / 86400) + 3) % 7),
    "note_age_hours": lambda f: pl.Series((_ts(f) - f.seconds("notes.created_at")) / 3600.0),
    "user_age_days": lambda f: pl.Series((_ts(f) - f.seconds("users.signup_at")) / 86400.0),
}


# ----------------------------------------------------------------------------- vocabularies


@dataclass
class Vocab:
    kind: str               # "int" | "float" | "bool" | "str": how raw values are compared
    values: list            # id = 2 + position

    @property
    def size(self) -> int:
        return len(self.values) + 2

    @cached_property
    def sorted_ints(self) -> tuple[np.ndarray, np.ndarray]:
        """(the int values sorted, their ids): ``encode`` looks ints up by binary search
        instead of turning the vocabulary into a mapping on every call (a served request
        encodes a few hundred values against vocabularies of millions)."""
        v = np.asarray(self.values, dtype=np.int64)
        order = np.argsort(v, kind="stable")
        return v[order], (order + 2).astype(ID_DTYPE)

    @cached_property
    def index(self) -> dict[Any, int]:
        """value → id, for short inputs (a served request), where a dict beats a join."""
        return {v: i for i, v in enumerate(self.values, start=2)}

    @cached_property
    def mapping(self) -> tuple[pl.Series, pl.Series]:
        """(values, ids) as Series, built once for ``replace_strict``."""
        return (pl.Series(self.values, dtype=_PL_KIND[self.kind], strict=False),
                pl.Series(range(2, self.size), dtype=pl.Int32))

    @staticmethod
    def kind_of(dtype: pl.DataType) -> str:
        if dtype.is_integer():
            return "int"
        if dtype.is_float():
            return "float"
        return "bool" if dtype == pl.Boolean else "str"


SMALL_ENCODE = 4096   # inputs up to this long are encoded through a dict (a served request)
_PL_KIND = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.String}


def _cast(s: pl.Series, kind: str) -> pl.Series:
    s = s.cast(_PL_KIND[kind], strict=False)
    return s.fill_nan(None) if kind == "float" else s


def fit_vocab(values: pl.Series, weights: np.ndarray, min_count: int) -> Vocab:
    """Ids by descending (weighted) count, then value; nulls and rare values left out."""
    inner = values.dtype.inner if isinstance(values.dtype, pl.List) else values.dtype
    kind = Vocab.kind_of(inner)
    df = pl.DataFrame({"v": values, "w": weights})
    if isinstance(values.dtype, pl.List):
        df = df.explode("v")
    df = df.with_columns(_cast(df["v"], kind).alias("v")).drop_nulls("v")
    counts = (df.group_by("v").agg(pl.col("w").sum()).filter(pl.col("w") >= min_count)
              .sort(["w", "v"], descending=[True, False]))
    return Vocab(kind, counts["v"].to_list())


def encode(s: pl.Series, vocab: Vocab) -> np.ndarray:
    """Raw values → ids (unknown and null → OOV)."""
    if not vocab.values:
        return np.full(len(s), OOV, dtype=ID_DTYPE)
    if vocab.kind == "int":
        x = s if s.dtype.is_integer() else _cast(s, "int")
        present = _present(x)
        raw = _ids(x, len(x), 0)
        keys, ids = vocab.sorted_ints
        pos = np.minimum(np.searchsorted(keys, raw), len(keys) - 1)
        return np.where(present & (keys[pos] == raw), ids[pos], OOV).astype(ID_DTYPE,
                                                                             copy=False)
    if len(s) <= SMALL_ENCODE:
        index = vocab.index
        return np.fromiter((index.get(v, OOV) for v in _cast(s, vocab.kind).to_list()),
                           dtype=ID_DTYPE, count=len(s))
    values, ids = vocab.mapping
    codes = _cast(s, vocab.kind).replace_strict(values, ids, default=OOV,
                                                return_dtype=pl.Int32)
    return codes.fill_null(OOV).to_numpy().astype(ID_DTYPE, copy=False)


def encode_multi(s: pl.Series, vocab: Vocab, max_len: int) -> np.ndarray:
    """List values → [n, max_len] ids: the first max_len items, 0-padded at the front."""
    n = len(s)
    out = np.zeros((n, max_len), dtype=ID_DTYPE)
    head = s.list.head(max_len)
    lens = head.list.len().fill_null(0).to_numpy().astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return out
    flat = head.filter(pl.Series(lens > 0)).explode()
    rows = np.repeat(np.arange(n), lens)
    starts = np.cumsum(lens) - lens
    cols = max_len - lens[rows] + (np.arange(total) - starts[rows])
    out[rows, cols] = encode(flat, vocab)
    return out


# ----------------------------------------------------------------------------- histories


def _clicks(events: pl.LazyFrame, scenarios: list[str]) -> pl.DataFrame:
    """Clicks (user, ts seconds, note) in ``scenarios``, sorted by user then time."""
    cond = pl.col("click") == 1
    if scenarios:
        cond = cond & pl.col("scenario").is_in(scenarios)
    order = ["user_id", "ts"] + (["event_id"] if "event_id" in _columns(events) else [])
    return (events.filter(cond).select(order + ["note_id"])
            .drop_nulls(["user_id", "ts", "note_id"]).sort(order).collect())


def histories(c_user: np.ndarray, c_ts: np.ndarray, c_code: np.ndarray, e_user: np.ndarray,
              e_ts: np.ndarray, e_ok: np.ndarray, max_len: int) -> np.ndarray:
    """[n, max_len] ids of each event's user's clicks strictly before its ts, most recent last.

    ``c_*`` are clicks sorted by (user, ts). Each (user, ts) pair becomes one sortable
    int64 key, so one searchsorted finds where the user's history starts and where it
    stops before the event; a [rows, L] index matrix then gathers the last L clicks.
    """
    n = len(e_user)
    if len(c_user) == 0 or n == 0:
        return np.zeros((n, max_len), dtype=ID_DTYPE)
    out = np.empty((n, max_len), dtype=ID_DTYPE)
    start, stop, _ = history_bounds(c_user, c_ts, e_user, e_ts, e_ok)
    # Gather in row blocks small enough that the [rows, L] index stays in cache; slots
    # before the user's first click point at a sentinel 0 appended to the codes. Each
    # block is gathered into a cached buffer and copied out sequentially: first-touching
    # the big output inside the random gather was 3x slower.
    codes = np.append(c_code, PAD).astype(ID_DTYPE, copy=False)
    offsets = np.arange(max_len, dtype=np.int64) - max_len
    rows = min(_CHUNK, n)
    idx_buf, val_buf = np.empty((rows, max_len), np.int64), np.empty((rows, max_len), ID_DTYPE)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        idx = np.add(stop[lo:hi, None], offsets[None, :], out=idx_buf[:hi - lo])
        idx[idx < start[lo:hi, None]] = len(c_code)
        out[lo:hi] = np.take(codes, idx, out=val_buf[:hi - lo], mode="clip")
    return out


def history_bounds(c_user: np.ndarray, c_ts: np.ndarray, e_user: np.ndarray,
                   e_ts: np.ndarray, e_ok: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, stop, end) rows of each query's user in clicks ``c`` sorted by (user, ts).

    ``c[start:stop]`` are the user's clicks strictly before ``e_ts`` (the history),
    ``c[stop:end]`` the ones at or after it (what comes next). All three are equal
    for an unknown user or a row with ``e_ok`` False.
    """
    e_ok = np.ones(len(e_user), dtype=bool) if e_ok is None else e_ok
    if len(c_user) == 0:
        zero = np.zeros(len(e_user), dtype=np.int64)
        return zero, zero, zero
    users, c_rank = np.unique(c_user, return_inverse=True)
    tmin = int(c_ts.min())
    span = int(c_ts.max()) - tmin + 1
    if (len(users) + 1) * span >= 2**62:      # key would overflow: rank the times instead
        times = np.unique(np.concatenate([c_ts, e_ts[e_ok]]))
        c_ts, e_ts = np.searchsorted(times, c_ts), np.searchsorted(times, e_ts)
        tmin, span = 0, len(times) + 1
    c_key = c_rank.astype(np.int64) * span + (c_ts - tmin)
    e_rank = _lookup(users, e_user)
    e_ok = e_ok & (e_rank >= 0)
    seg = np.searchsorted(c_rank, np.arange(len(users) + 1))   # first click of each user
    start = seg[np.maximum(e_rank, 0)]
    stop = _searchsorted(c_key, np.maximum(e_rank, 0) * span + np.clip(e_ts - tmin, 0, span))
    end = np.where(e_ok, seg[np.maximum(e_rank, 0) + 1], start)
    stop = np.where(e_ok, stop, start)
    return start, stop, end


# ----------------------------------------------------------------------------- FeatureMap


@dataclass
class Field:
    name: str
    kind: str                       # "categorical" | "numeric" | "multi" | "sequence"
    vocab_size: int | None = None   # includes 0 = pad and 1 = OOV; None for numeric
    max_len: int | None = None
    share_vocab_with: str | None = None
    dim: int | None = None          # a vector field's vector size


def read_vectors(v: VectorSpec) -> tuple[Vocab, np.ndarray]:
    """The vocabulary (the table's ids, in its order) and the ``[vocab size, dim]`` float32
    vectors of a ``VectorSpec`` (rows 0 = padding and 1 = out-of-vocabulary are zero)."""
    path = Path(v.path)
    if not path.is_file():
        raise DataError(f"{path}: no such vector table (feature '{v.name}'); write one with "
                        f"`snsrec encode notes SOURCE --notes notes.parquet --out {path}`")
    table = read_parquet(path)
    for col in (v.key, v.vector):
        if col not in table.column_names:
            raise SchemaError(f"{path}: no column '{col}' (feature '{v.name}' reads {v.key} "
                              f"and {v.vector}); columns: {', '.join(table.column_names)}")
    ids = pl.Series(table.column(v.key).to_pylist())
    if ids.null_count() or ids.is_duplicated().any():
        raise DataError(f"{path}: column '{v.key}' has null or repeated ids; one row per id")
    rows = table.column(v.vector).to_pylist()
    dims = {len(r) for r in rows if r is not None}
    if len(dims) > 1 or not rows:
        raise DataError(f"{path}: column '{v.vector}' needs one vector size in every row "
                        f"(got {sorted(dims) or 'no rows'})")
    dim = dims.pop() if dims else 0
    mat = np.zeros((len(rows) + 2, dim), dtype=np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            mat[i + 2] = r
    if not np.isfinite(mat).all():
        raise DataError(f"{path}: column '{v.vector}' holds NaN/inf; re-encode the notes")
    return Vocab(Vocab.kind_of(ids.dtype), ids.to_list()), mat


class FeatureMap:
    def __init__(self, spec: FeatureSpec, vocabs: dict[str, Vocab], stats: dict[str, dict],
                 vectors: dict[str, np.ndarray] | None = None):
        self.spec, self.vocabs, self.stats = spec, vocabs, stats
        # Per vector field: [vocab size, dim] float32, row = id (rows 0 and 1 zero).
        self.vectors = dict(vectors or {})
        self.fields = self._fields()

    def _fields(self) -> list[Field]:
        s = self.spec
        out = [Field(c.name, "categorical", self.vocabs[c.name].size) for c in s.categorical]
        for n in s.numeric:
            if n.mode == "bucketize":
                out.append(Field(n.name, "categorical", len(self.stats[n.name]["edges"]) + 3))
            else:
                out.append(Field(n.name, "numeric"))
        out += [Field(m.name, "multi", self.vocabs[m.name].size, m.max_len) for m in s.multi]
        for q in s.sequences:
            vocab = self.vocabs[q.share_vocab_with or q.name]
            out.append(Field(q.name, "sequence", vocab.size, q.max_len, q.share_vocab_with))
        out += [Field(v.name, "vector", self.vocabs[v.name].size,
                      dim=int(self.vectors[v.name].shape[1])) for v in s.vectors]
        return out

    # -- fit ------------------------------------------------------------------------------

    @classmethod
    def fit(cls, tables: Tables, spec: FeatureSpec | None = None,
            train: pl.LazyFrame | None = None) -> FeatureMap:
        """Fit vocabularies and numeric statistics on the training split only."""
        spec = spec or default_spec(tables)
        check_columns(tables, spec)
        if train is None:
            train = split_events(tables)["train"]
        frame = _Frame.build(tables, train.lazy(), spec)
        if frame.n == 0:
            raise DataError(f"{tables.root}: the training split is empty; check the split in "
                            f"world.json / dataset.json")
        vocabs: dict[str, Vocab] = {}
        stats: dict[str, dict] = {}
        vectors: dict[str, np.ndarray] = {}
        for v in spec.vectors:                  # fixed vocabularies: the tables' ids
            vocabs[v.name], vectors[v.name] = read_vectors(v)
        n_fields = len(spec.categorical) + len(spec.numeric) + len(spec.multi) + len(spec.sequences)
        with Progress("fit features", total=n_fields, unit="field") as bar:
            for c in [*spec.categorical, *spec.multi]:
                table, values = frame.level(c.column)
                vocabs[c.name] = fit_vocab(values, frame.weights(table), c.min_count)
                bar.update()
            for m in spec.numeric:
                stats[m.name] = _fit_numeric(frame.numeric(m.column), m)
                bar.update()
            for q in spec.sequences:
                if q.share_vocab_with is None:
                    clicks = _clicks(train.lazy(), q.scenarios)
                    vocabs[q.name] = fit_vocab(clicks["note_id"], np.ones(clicks.height,
                                                                          np.int64), q.min_count)
                bar.update()
        return cls(spec, vocabs, stats, vectors)

    # -- transform ------------------------------------------------------------------------

    def transform(self, tables: Tables, events: pl.LazyFrame | pl.DataFrame) -> dict[str, np.ndarray]:
        """Model arrays for ``events``; histories are looked up in ``tables.events``."""
        check_columns(tables, self.spec.model_copy(update={"labels": []}))
        frame = _Frame.build(tables, events.lazy(), self.spec)
        with Progress("features", total=len(self.fields), unit="field") as bar:
            out = self._arrays(frame, lambda q: self._history(tables, frame, q), bar.update)
        out.update(_labels(frame.ev, self.spec.labels))
        out.update(_meta(frame, self.spec.text))
        return out

    def _arrays(self, frame: _Frame, history: Callable[[SequenceSpec], np.ndarray],
                step: Callable[[], Any] = lambda: None) -> dict[str, np.ndarray]:
        """Every field's array for the frame's events (``history``: a sequence's rows)."""
        out: dict[str, np.ndarray] = {}
        for c in self.spec.categorical:
            vocab = self.vocabs[c.name]
            table, codes = frame.at_level(c.name, c.column, lambda s, v=vocab: encode(s, v))
            out[c.name] = frame.align(table, codes, OOV)
            step()
        for m in self.spec.numeric:
            out[m.name] = _apply_numeric(frame.numeric(m.column), self.stats[m.name])
            step()
        for mu in self.spec.multi:
            def multi(values: pl.Series, mu: MultiSpec = mu) -> np.ndarray:
                if not isinstance(values.dtype, pl.List):
                    raise SchemaError(f"column {mu.column} ({values.dtype}) is not a list; "
                                      f"use it as a categorical feature instead")
                return encode_multi(values, self.vocabs[mu.name], mu.max_len)
            table, codes = frame.at_level(mu.name, mu.column, multi)
            out[mu.name] = frame.align(table, codes, PAD)
            step()
        for q in self.spec.sequences:
            out[q.name] = history(q)
            step()
        for v in self.spec.vectors:
            vocab = self.vocabs[v.name]
            table, codes = frame.at_level(v.name, v.column, lambda s, w=vocab: encode(s, w))
            out[v.name] = frame.align(table, codes, OOV)
            missing = int((out[v.name] == OOV).sum())
            if missing:         # zero vectors: said, not hidden
                echo(f"feature '{v.name}': {missing:,} of {frame.n:,} rows have no vector "
                     f"in {v.path} (a zero vector)")
        return out

    def behaviour_codes(self, frame: _Frame, q: SequenceSpec, notes: pl.Series,
                        dense: bool = True) -> np.ndarray:
        """The ids a sequence holds for clicked ``notes``: their codes in the shared
        vocabulary or, for an ``attribute`` sequence, their notes row's attribute code
        (coded once per notes row, kept in a server's cache; a note the notes table
        lacks is out of vocabulary)."""
        vocab = self.vocabs[q.share_vocab_with or q.name]
        if q.attribute is None:
            return encode(notes, vocab)
        table, codes = frame.at_level(q.attribute, _attribute_column(self.spec, q),
                                      lambda s: encode(s, vocab))
        rows = _lookup(frame.side[table][KEYS[table]].to_numpy(),
                       _ids(notes, len(notes), -1), dense)
        return _gather(codes, rows, OOV)

    def _history(self, tables: Tables, frame: _Frame, q: SequenceSpec) -> np.ndarray:
        clicks = _clicks(tables.events, q.scenarios)
        codes = self.behaviour_codes(frame, q, clicks["note_id"])
        return _event_histories(frame, _ids(clicks["user_id"], clicks.height, -1),
                                _ids(_to_seconds(clicks["ts"]), clicks.height, 0), codes,
                                q.max_len)

    def transform_request(self, tables: Tables, request: dict) -> dict[str, np.ndarray]:
        """One online request → the same arrays ``transform`` gives for those rows."""
        return self.transform(tables, request_frame(request, drop=self.spec.labels))

    def request_encoder(self, tables: Tables) -> RequestEncoder:
        """``transform_request`` for a server: the tables encoded once (``RequestEncoder``)."""
        return RequestEncoder(self, tables)

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def vectors_path(path: str | Path) -> Path:
        """Where the vectors of a feature map saved at ``path`` live (beside it)."""
        path = Path(path)
        return path.with_name(f"{path.stem}.vectors.npz")

    def save(self, path: str | Path) -> None:
        if self.vectors:
            with atomic_path(self.vectors_path(path)) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **self.vectors)
        write_json(path, {
            "format": FORMAT, "version": VERSION,
            "spec": self.spec.model_dump(mode="json"),
            "vocabs": {k: {"kind": v.kind, "values": v.values} for k, v in self.vocabs.items()},
            "stats": self.stats,
        })

    @classmethod
    def load(cls, path: str | Path) -> FeatureMap:
        data = read_json(path)
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            spec = FeatureSpec.model_validate(data["spec"])
            vocabs = {k: Vocab(str(v["kind"]), list(v["values"])) for k, v in data["vocabs"].items()}
            if any(v.kind not in _PL_KIND for v in vocabs.values()):
                raise ValueError("unknown vocabulary kind")
            vectors = {}
            if spec.vectors:
                with np.load(cls.vectors_path(path), allow_pickle=False) as z:
                    vectors = {v.name: z[v.name] for v in spec.vectors}
                if any(vectors[v.name].shape[0] != vocabs[v.name].size for v in spec.vectors):
                    raise ValueError("vector rows do not match the vocabulary")
            fmap = cls(spec, vocabs, dict(data["stats"]), vectors)
            for m in spec.numeric:
                float(fmap.stats[m.name]["mean"]) if m.mode == "normalize" else \
                    np.asarray(fmap.stats[m.name]["edges"], dtype=np.float64)
        except (AttributeError, KeyError, TypeError, ValueError, ValidationError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"{path}: not a valid feature map ({msg}); refit it with "
                            f"`snsrec features fit`") from None
        return fmap

    def describe(self) -> str:
        kinds = ("categorical", "numeric", "multi", "sequence", "vector")
        counts = {k: sum(f.kind == k for f in self.fields) for k in kinds}
        parts = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        ids = sum(f.vocab_size for f in self.fields if f.vocab_size and not f.share_vocab_with)
        return f"{len(self.fields)} fields ({parts}), {ids:,} ids"


def _event_histories(frame: _Frame, c_user: np.ndarray, c_ts: np.ndarray, codes: np.ndarray,
                     max_len: int) -> np.ndarray:
    """``histories`` of the frame's events from clicks sorted by (user, ts)."""
    ts = frame.ev["ts"]
    e_ok = _present(ts) & _present(frame.ev["user_id"])
    return histories(c_user, c_ts, codes, _ids(frame.ev["user_id"], frame.n, -1),
                     _ids(_to_seconds(ts), frame.n, 0), e_ok, max_len)


class RequestEncoder:
    """``FeatureMap.transform_request`` for a server, one request at a time.

    The notes / users rows the features read are collected once and every field at
    their level is encoded once over the whole table (kept in the frame cache), so a
    request costs its own candidates, not the tables' size. The behaviour-sequence
    fields read ``clicks`` — one user's ``(note_id, scenario, ts)`` clicks, oldest
    first (a serving store's) — instead of the world's events; without them the
    tables' events are the history, as in ``transform``. ``add_rows`` appends
    rows (a posted note) to a table. Equal to ``transform`` row for row (tested).
    """

    def __init__(self, fmap: FeatureMap, tables: Tables):
        check_columns(tables, fmap.spec.model_copy(update={"labels": []}))
        self.fmap, self.tables = fmap, tables
        empty = request_frame({"user_id": 0, "note_ids": [], "scenario": "feed", "ts": 0},
                              drop=fmap.spec.labels)
        base = _Frame.build(tables, empty.lazy(), fmap.spec)
        self.ev_columns = base.ev.columns
        # (tables, their sorted keys, the frame cache): replaced as one by add_rows, so a
        # request served meanwhile reads one consistent state.
        self.state = (base.side, {t: df[KEYS[t]].to_numpy() for t, df in base.side.items()},
                      {})

    def add_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows of ``table`` (``notes`` / ``users``; missing columns null) added; rows with
        a key already there replace it."""
        side, known, cache = self.state
        if table not in side or not rows:
            return
        old, key = side[table], KEYS[table]
        new = pl.DataFrame([{c: r.get(c) for c in old.columns} for r in rows],
                           schema=old.schema).unique(key, keep="last").sort(key)
        keys = new[key].to_numpy()
        if len(known[table]) and keys[0] <= known[table][-1]:
            # Not past the last key: rebuild the table and its cached arrays.
            full = pl.concat([old.filter(~pl.col(key).is_in(new[key].implode())), new]
                             ).sort(key)
            entries = {k: (t, fn, fn(full) if t == table else arr)
                       for k, (t, fn, arr) in list(cache.items())}
        else:           # ids past the last (the service's posted notes): append
            full = pl.concat([old, new])
            entries = {k: (t, fn, np.concatenate([arr, fn(new)]) if t == table else arr)
                       for k, (t, fn, arr) in list(cache.items())}
        self.state = ({**side, table: full}, {**known, table: full[key].to_numpy()}, entries)

    def transform(self, request: dict, clicks: list[tuple[int, str, int]] | None = None
                  ) -> dict[str, np.ndarray]:
        """Model arrays of one request (``request_frame``'s keys) — no labels, no meta."""
        ev = request_frame(request, drop=self.fmap.spec.labels, columns=self.ev_columns)
        side, keys, cache = self.state
        idx = {t: _lookup(keys[t], _ids(ev[KEYS[t]], ev.height, -1), dense=False)
               for t in side}
        frame = _Frame(ev, side, idx, cache)
        if clicks is None:
            return self.fmap._arrays(frame, lambda q: self.fmap._history(self.tables, frame, q))
        # Every row of a request has its user and time: one history row, repeated.
        now = _epoch_seconds(_as_datetime(request["ts"]))
        ordered = sorted((c for c in clicks if c[2] < now), key=lambda c: c[2])  # stable

        def history(q: SequenceSpec) -> np.ndarray:
            wanted = set(q.scenarios)
            notes = [c[0] for c in ordered if not wanted or c[1] in wanted][-q.max_len:]
            row = np.zeros(q.max_len, ID_DTYPE)
            if notes:
                row[q.max_len - len(notes):] = self.fmap.behaviour_codes(
                    frame, q, pl.Series(notes, dtype=pl.Int64), dense=False)
            return np.repeat(row[None], frame.n, axis=0)

        return self.fmap._arrays(frame, history)


def _fit_numeric(x: np.ndarray, m: NumericSpec) -> dict:
    finite = x[np.isfinite(x)]
    if m.mode == "bucketize":
        qs = np.linspace(0, 1, m.n_buckets + 1)[1:-1]
        edges = np.unique(np.quantile(finite, qs)) if len(finite) else np.empty(0)
        return {"edges": [float(e) for e in edges]}
    mean = float(finite.mean()) if len(finite) else 0.0
    std = float(finite.std()) if len(finite) else 1.0
    return {"mean": mean, "std": std if std > 0 else 1.0}


def _apply_numeric(x: np.ndarray, stats: dict) -> np.ndarray:
    missing = ~np.isfinite(x)
    if "edges" in stats:
        edges = np.asarray(stats["edges"], dtype=np.float64)
        ids = np.searchsorted(edges, np.where(missing, 0.0, x), side="right") + 2
        return np.where(missing, OOV, ids).astype(ID_DTYPE)
    z = (x - stats["mean"]) / stats["std"]
    return np.where(missing, 0.0, z).astype(np.float32)


def _labels(ev: pl.DataFrame, labels: list[str]) -> dict[str, np.ndarray]:
    return {lab: ev[lab].cast(pl.Float32).fill_null(0).to_numpy().astype(np.float32, copy=False)
            for lab in labels if lab in ev.columns}


def _meta(frame: _Frame, text: list[str]) -> dict[str, np.ndarray]:
    ev, n = frame.ev, frame.n
    get = ev.get_column
    scen = get("scenario").cast(pl.String).replace_strict(
        list(SCENARIOS), list(range(len(SCENARIOS))), default=-1, return_dtype=pl.Int8) \
        if "scenario" in ev.columns else None
    out = {
        "_user_id": _ids(get("user_id") if "user_id" in ev.columns else None, n, -1),
        "_note_id": _ids(get("note_id") if "note_id" in ev.columns else None, n, -1),
        "_request_id": _ids(get("request_id") if "request_id" in ev.columns else None, n, -1),
        "_scenario": _ids(scen, n, -1, np.int8),
        "_position": _ids(get("position") if "position" in ev.columns else None, n, -1, np.int32),
        "_ts": _ids(_to_seconds(get("ts")) if "ts" in ev.columns else None, n, 0),
    }
    for t in text:
        table, values = frame.level(_full_ref(t))
        out[f"_text_{t.rpartition('.')[2]}"] = frame.align(table, _ids(values, len(values), -1), -1)
    return out


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, int | float | np.integer | np.floating):
        return datetime.fromtimestamp(int(value), tz=UTC).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise DataError(f"request: ts {value!r} is not a datetime, epoch seconds or ISO "
                        f"string; send e.g. 2024-01-30T12:00:00") from None


def _epoch_seconds(value: datetime) -> int:
    """Seconds since the epoch of a naive UTC datetime."""
    return int(value.replace(tzinfo=UTC).timestamp())


def request_frame(request: dict, drop: list[str] | tuple[str, ...] = (),
                  columns: list[str] | None = None) -> pl.DataFrame:
    """An events-shaped frame for one request: one row per candidate note (``columns``:
    only those events columns)."""
    missing = [k for k in ("user_id", "note_ids", "scenario", "ts") if k not in request]
    if missing:
        raise DataError(f"request: missing key(s) {missing}; send user_id, note_ids, scenario, ts")
    notes = [int(x) for x in request["note_ids"]]
    n = len(notes)
    pos = request.get("position")
    positions = list(range(n)) if pos is None else (
        [int(p) for p in pos] if isinstance(pos, list | tuple) else [int(pos)] * n)
    if len(positions) != n:
        raise DataError(f"request: {len(positions)} positions for {n} note_ids; send one each")
    rid = request.get("request_id")
    # Numbers and the time as numpy arrays (a server builds this frame for every request:
    # Python lists cost polars a conversion per value, and a list of datetimes an
    # expression on its thread pool).
    given = {"event_id": np.arange(n, dtype=np.int64),
             "user_id": np.full(n, int(request["user_id"]), np.int64),
             "note_id": np.asarray(notes, np.int64), "position": np.asarray(positions, np.int64),
             "ts": np.full(n, np.datetime64(_as_datetime(request["ts"]), "us")),
             "request_id": [None] * n if rid is None else np.full(n, int(rid), np.int64),
             "scenario": [str(request["scenario"])] * n, "query": [request.get("query")] * n}
    cols = {}
    for name, dtype in _events_schema().items():
        if name in drop or (columns is not None and name not in columns):
            continue
        v = given.get(name)
        cols[name] = pl.Series(name, v).cast(dtype) if isinstance(v, np.ndarray) else \
            pl.Series(name, [None] * n if v is None else v, dtype=dtype)
    return pl.DataFrame(cols)


@cache
def _events_schema() -> pl.Schema:
    return pl.from_arrow(EVENTS.empty_table()).schema


def fit_from_dir(root: str | Path, config: str | Path | None = None,
                 out: str | Path | None = None, force: bool = False) -> FeatureMap:
    """`snsrec features fit`: load the tables, pick the spec, fit on train; saved to ``out``
    when given (an existing file there is replaced when it is a feature map, or with
    ``force``: checked before the fit)."""
    if out is not None:
        check_out_file(out, force=force, ours=is_feature_map, kind="a feature map")
    tables = load_tables(root)
    base = default_spec(tables)
    spec = base if config is None else load_config(FeatureSpec, config,
                                                   base=base.model_dump(mode="json"))
    fmap = FeatureMap.fit(tables, spec)
    if out is not None:
        fmap.save(out)
    return fmap


def is_feature_map(path: Path) -> bool:
    """Whether ``path`` is a saved FeatureMap (its JSON names the format)."""
    try:
        data = read_json(path)
    except DataError:
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT

