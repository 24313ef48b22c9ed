"""Cross-scenario behaviour sequences: what a user did before a moment, and what came next.

RED-Rec's user tower reads a user's recent behaviour from every scenario at
once. ``BehaviourLog`` holds every positive behaviour sorted by (user, time):

- a click on a note, in any scenario (``kind`` NOTE, ``item`` = the note's row
  in the log's corpus ``note_ids``), with ``convert`` set for an ads
  conversion;
- a search query (``kind`` QUERY, ``item`` = its row in ``queries``), one per
  search request, at the request's first impression.

``histories`` cuts, for each (user, time), the last ``blocks[s]`` behaviours of
each scenario strictly before that time and merges the blocks in time order
(oldest first, padding in front), with each token's scenario and a recency
bucket; ``next_items`` gives the first behaviours at or after it (training
windows and test targets). Both are vectorised over all rows (one
``searchsorted`` per block, see ``snsrec.data.features.history_bounds``):
nothing in the future of a cut-off time ever enters its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field as PField
from pydantic import field_validator

from snsrec.config import StrictModel
from snsrec.data.features import history_bounds
from snsrec.data.schema import SCENARIOS
from snsrec.errors import DataError

PAD, NOTE, QUERY = 0, 1, 2            # token kinds (0 = padding)
PAD_TS = np.iinfo(np.int64).min       # padding sorts before every real time
ALWAYS = np.iinfo(np.int64).min       # creation time of a note that has always existed
LEVELS = ("category", "subcategory")   # the notes' category levels a corpus keeps


class SequenceConfig(StrictModel):
    # Tokens per scenario block (RED-Rec: 96 feed, 32 ads; search holds clicks and queries).
    blocks: dict[str, int] = PField(default_factory=lambda: {
        "feed": 96, "search": 32, "discover": 32, "ads": 32})
    recency_buckets: int = PField(24, ge=2)   # log2 hours since the behaviour, 1..n-1

    @field_validator("blocks")
    @classmethod
    def _scenario_blocks(cls, v: dict[str, int]) -> dict[str, int]:
        if any(s not in SCENARIOS for s in v) or any(n < 0 for n in v.values()):
            raise ValueError(f"keys must be scenarios ({', '.join(SCENARIOS)}) and lengths >= 0")
        return v

    @property
    def length(self) -> int:
        return sum(self.blocks.values())


def rows_in(sorted_ids: np.ndarray, ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``ids`` in the sorted ``sorted_ids`` and whether each is there at all."""
    ids = np.asarray(ids, np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    known = (pos < len(sorted_ids)) & \
        (sorted_ids[np.minimum(pos, max(len(sorted_ids) - 1, 0))] == ids) \
        if len(sorted_ids) else np.zeros(len(ids), bool)
    return pos, known


def _seconds(col: pl.Series | pl.Expr) -> Any:
    return col.dt.epoch("s")


@dataclass
class BehaviourLog:
    user: np.ndarray          # int64 raw user id
    ts: np.ndarray            # int64 epoch seconds
    scenario: np.ndarray      # int8 index into SCENARIOS
    kind: np.ndarray          # int8 NOTE | QUERY
    item: np.ndarray          # int64 row in note_ids (NOTE) or queries (QUERY)
    convert: np.ndarray       # bool, an ads conversion
    note_ids: np.ndarray      # int64 raw note ids, sorted: the corpus
    queries: list[str]        # query texts

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def from_tables(cls, tables: Any, note_ids: np.ndarray | None = None) -> BehaviourLog:
        """Clicks and search queries of ``tables.events``; the corpus is every note by default."""
        ev = tables.events
        if note_ids is None:
            if tables.notes is None:
                raise DataError(f"{tables.root}: no notes table; the behaviour log needs the "
                                "note corpus")
            note_ids = tables.notes.select("note_id").collect()["note_id"].to_numpy()
        note_ids = np.unique(np.asarray(note_ids, dtype=np.int64))
        clicks = (ev.filter(pl.col("click") > 0)
                  .select("user_id", _seconds(pl.col("ts")).alias("t"), "scenario", "note_id",
                          pl.col("convert").fill_null(0) > 0)
                  .drop_nulls(["user_id", "t", "note_id"]).collect())
        pos, known = rows_in(note_ids, clicks["note_id"].to_numpy())
        searches = (ev.filter((pl.col("scenario") == "search") & pl.col("query").is_not_null())
                    .group_by("request_id")
                    .agg(pl.col("user_id").first(), _seconds(pl.col("ts").min()).alias("t"),
                         pl.col("query").first())
                    .drop_nulls(["user_id", "t"]).collect())
        queries, q_item = np.unique(searches["query"].to_numpy().astype(str), return_inverse=True)
        scen = {s: i for i, s in enumerate(SCENARIOS)}
        c_scen = clicks["scenario"].replace_strict(scen, return_dtype=pl.Int8).to_numpy()
        parts = {
            "user": [clicks["user_id"].to_numpy()[known], searches["user_id"].to_numpy()],
            "ts": [clicks["t"].to_numpy()[known], searches["t"].to_numpy()],
            "scenario": [c_scen[known], np.full(searches.height, scen["search"], np.int8)],
            "kind": [np.full(int(known.sum()), NOTE, np.int8),
                     np.full(searches.height, QUERY, np.int8)],
            "item": [pos[known], q_item.reshape(-1)],
            "convert": [clicks["convert"].to_numpy()[known], np.zeros(searches.height, bool)]}
        cols = {k: np.concatenate(v) for k, v in parts.items()}
        cols["user"], cols["ts"] = cols["user"].astype(np.int64), cols["ts"].astype(np.int64)
        # (user, ts), a query before the clicks it led to at the same second.
        order = np.lexsort((-cols["kind"], cols["ts"], cols["user"]))
        return cls(**{k: v[order] for k, v in cols.items()}, note_ids=note_ids,
                   queries=[str(q) for q in queries])

    def select(self, mask: np.ndarray) -> BehaviourLog:
        """The behaviours where ``mask`` holds (order kept, corpus and queries shared)."""
        return BehaviourLog(self.user[mask], self.ts[mask], self.scenario[mask],
                            self.kind[mask], self.item[mask], self.convert[mask],
                            self.note_ids, self.queries)


def recency_bucket(age_s: np.ndarray, buckets: int) -> np.ndarray:
    """1 + floor(log2(1 + hours)), capped at ``buckets - 1`` (0 is padding)."""
    hours = np.maximum(age_s, 0) / 3600.0
    return np.minimum(1 + np.floor(np.log2(1.0 + hours)), buckets - 1).astype(np.int8)


def histories(log: BehaviourLog, users: np.ndarray, times: np.ndarray,
              config: SequenceConfig | None = None) -> dict[str, np.ndarray]:
    """Each (user, time)'s cross-scenario history, ``[n, config.length]`` per array.

    ``hist_item`` (row in the corpus or in the queries, 0 where padded),
    ``hist_kind`` (PAD / NOTE / QUERY), ``hist_scenario`` (1 + SCENARIOS index,
    0 = pad), ``hist_recency`` (``recency_bucket``), ``hist_ts`` (seconds,
    PAD_TS = pad): the last ``blocks[s]`` behaviours of each scenario strictly
    before ``time``, merged oldest first, padding in front.
    """
    config = config or SequenceConfig()
    users, times = np.asarray(users, np.int64), np.asarray(times, np.int64)
    n = len(users)
    cols: dict[str, list[np.ndarray]] = {"item": [], "kind": [], "scenario": [], "ts": []}
    for scen, length in config.blocks.items():
        if length == 0:
            continue
        block = log.select(log.scenario == SCENARIOS.index(scen))
        start, stop, _ = history_bounds(block.user, block.ts, users, times)
        idx = stop[:, None] + np.arange(-length, 0)[None, :]
        ok = idx >= start[:, None]
        idx = np.clip(idx, 0, max(len(block) - 1, 0))
        for key, values, pad in (("item", block.item, 0), ("kind", block.kind, PAD),
                                 ("scenario", block.scenario.astype(np.int8) + 1, 0),
                                 ("ts", block.ts, PAD_TS)):
            got = values[idx] if len(block) else np.zeros((n, length), values.dtype)
            cols[key].append(np.where(ok, got, pad))
    merged = {k: np.concatenate(v, axis=1) if v else np.zeros((n, 0), np.int64)
              for k, v in cols.items()}
    order = np.argsort(merged["ts"], axis=1, kind="stable")
    out = {f"hist_{k}": np.take_along_axis(v, order, axis=1) for k, v in merged.items()}
    real = out["hist_kind"] != PAD
    out["hist_recency"] = np.where(
        real, recency_bucket(times[:, None] - out["hist_ts"], config.recency_buckets), 0
    ).astype(np.int8)
    return out


def history_arrays(log: BehaviourLog, users: np.ndarray, times: np.ndarray,
                    seq: SequenceConfig) -> dict[str, np.ndarray]:
    """The user tower's history inputs of each (user, time); serving builds the same
    (``snsrec.serve.pipeline.user_rows``)."""
    h = histories(log, users, times, seq)
    return {"hist_item": h["hist_item"].astype(np.int64), "hist_kind": h["hist_kind"],
            "hist_scenario": h["hist_scenario"], "hist_recency": h["hist_recency"]}


def next_items(log: BehaviourLog, users: np.ndarray, times: np.ndarray, window: int,
               scenarios: Sequence[str] | None = None, until: np.ndarray | int | None = None,
               convert_only: bool = False) -> np.ndarray:
    """``[n, window]`` corpus rows of each user's first note clicks at or after ``time``.

    Only clicks in ``scenarios`` (default all), before ``until`` (per row or one
    time) and, with ``convert_only``, ads conversions; -1 pads a short window.
    """
    return next_clicks(log, users, times, window, scenarios, until, convert_only)[0]


def next_clicks(log: BehaviourLog, users: np.ndarray, times: np.ndarray, window: int,
                scenarios: Sequence[str] | None = None, until: np.ndarray | int | None = None,
                convert_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``next_items`` and the clicks' times (``[n, window]`` each; -1 pads both)."""
    keep = log.kind == NOTE
    if scenarios is not None:
        keep &= np.isin(log.scenario, [SCENARIOS.index(s) for s in scenarios])
    if convert_only:
        keep &= log.convert
    sub = log.select(keep)
    users, times = np.asarray(users, np.int64), np.asarray(times, np.int64)
    if len(sub) == 0:
        empty = np.full((len(users), window), -1, np.int64)
        return empty, empty.copy()
    _, stop, end = history_bounds(sub.user, sub.ts, users, times)
    idx = stop[:, None] + np.arange(window)[None, :]
    ok = idx < end[:, None]
    idx = np.clip(idx, 0, len(sub) - 1)
    if until is not None:
        ok &= sub.ts[idx] < np.broadcast_to(np.asarray(until, np.int64), (len(users),))[:, None]
    return np.where(ok, sub.item[idx], -1), np.where(ok, sub.ts[idx], -1)


def note_text(title: str | None, body: str | None, hashtags: Sequence[str] | None) -> str:
    """A note as its item tower reads it: "title / body / #tag #tag"."""
    tags = " ".join(f"#{t}" for t in (hashtags or []))
    return " / ".join(p for p in (title or "", body or "", tags) if p)


@dataclass
class Corpus:
    """What a retrieval model ranks and reads: notes (texts, creation times) and query texts.

    ``log_q`` is each note's log share of the training clicks (add-one smoothed),
    the logQ correction of in-batch negatives. Rows line up with a
    ``BehaviourLog``'s items (``note_ids`` sorted, ``queries`` as in the log).
    """

    note_ids: np.ndarray
    texts: list[str]
    created: np.ndarray          # int64 epoch seconds
    queries: list[str]
    log_q: np.ndarray            # float32
    train_end: int | None = None  # the training cut-off (epoch seconds), when known
    # Each note's category / subcategory ("" when it has none; None: not known at all).
    category: list[str] | None = None
    subcategory: list[str] | None = None

    def __len__(self) -> int:
        return len(self.note_ids)

    def fresh(self) -> np.ndarray:
        """``[n]`` bool: notes created at or after the training cut-off (no training sample
        saw them); all False when the cut-off is unknown."""
        if self.train_end is None:
            return np.zeros(len(self), bool)
        return self.created >= self.train_end

    @classmethod
    def from_tables(cls, tables: Any, log: BehaviourLog, train_end: int) -> Corpus:
        # A note without a creation time (e.g. a MovieLens movie) has always existed.
        have = tables.notes.collect_schema().names()
        levels = [c for c in LEVELS if c in have]
        notes = (tables.notes.select("note_id", "title", "body", "hashtags",
                                     _seconds(pl.col("created_at")).fill_null(ALWAYS)
                                     .alias("created"),
                                     *[pl.col(c).cast(pl.String).fill_null("") for c in levels])
                 .collect())
        pos = np.searchsorted(log.note_ids, notes["note_id"].to_numpy())
        if len(notes) != len(log.note_ids) or not (log.note_ids[pos] == notes["note_id"]
                                                   .to_numpy()).all():
            raise DataError(f"{tables.root}: the notes table and the behaviour log's corpus "
                            "differ; build both from the same tables")
        order = np.argsort(pos)
        texts = [note_text(t, b, h) for t, b, h in zip(
            notes["title"].to_list(), notes["body"].to_list(), notes["hashtags"].to_list(),
            strict=True)]
        clicked = (log.kind == NOTE) & (log.ts < train_end)
        counts = np.bincount(log.item[clicked], minlength=len(log.note_ids)) + 1.0
        kept = {c: notes[c].gather(order).to_list() for c in levels}
        return cls(log.note_ids, [texts[i] for i in order],
                   notes["created"].to_numpy().astype(np.int64)[order], list(log.queries),
                   np.log(counts / counts.sum()).astype(np.float32), int(train_end),
                   **kept)

    # -- persistence (a retrieval run's "feature map") --------------------------------
    FILE = "corpus.parquet"

    def save(self, path: str | Path) -> None:
        """Notes to ``path`` (Parquet), query texts beside it (``*_queries.parquet``)."""
        import pyarrow as pa

        from snsrec.io import write_parquet

        path = Path(path)
        meta = {} if self.train_end is None else {"train_end": str(self.train_end)}
        levels = {c: getattr(self, c) for c in LEVELS if getattr(self, c) is not None}
        write_parquet(path, pa.table({"note_id": self.note_ids, "text": self.texts,
                                      "created": self.created, "log_q": self.log_q,
                                      **levels}, metadata=meta))
        write_parquet(_queries_path(path), pa.table({"query": pa.array(self.queries,
                                                                       pa.string())}))

    @classmethod
    def load(cls, path: str | Path) -> Corpus:
        from snsrec.io import read_parquet

        path = Path(path)
        table = read_parquet(path)
        queries = read_parquet(_queries_path(path)).column("query").to_pylist()
        end = (table.schema.metadata or {}).get(b"train_end")

        def numbers(name: str, dtype: Any) -> np.ndarray:      # column-wise, not row objects
            return np.array(table.column(name).to_numpy(), dtype)     # a writable copy

        return cls(numbers("note_id", np.int64), table.column("text").to_pylist(),
                   numbers("created", np.int64), [str(q) for q in queries],
                   numbers("log_q", np.float32), None if end is None else int(end),
                   *[table.column(c).to_pylist() if c in table.column_names else None
                     for c in LEVELS])


def _queries_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_queries.parquet")
