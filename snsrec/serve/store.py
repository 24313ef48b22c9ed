"""The serving store: events and user state, notes and takedowns — SQLite or Redis.

``open_store("sqlite:PATH")`` (the default) or ``open_store("redis://HOST:PORT/DB")``
gives the same interface:

- ``add_events(rows)`` — impressions / clicks / conversions; idempotent by
  ``event_id`` (a replayed event is counted as a duplicate, not stored twice)
  and durable when it returns: SQLite commits in WAL mode with
  ``synchronous=FULL``; Redis runs each event as one atomic script (for
  durability across a Redis restart, run it with ``appendonly yes`` and
  ``appendfsync always``).
- ``history(user, scenario, limit)`` — the notes the user clicked, newest
  first (arrival order), in one scenario or in all; ``seen(user, limit)`` — the
  notes shown to the user (every impression), for the already-seen filter.
- ``put_note`` / ``get_note`` / ``delete_note`` / ``deleted()`` — notes posted
  through the service and takedowns (a deleted note is gone from ``get_note``).

Values are bound as parameters (SQLite) or passed as arguments (Redis): no
statement is built from request strings.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from snsrec.errors import ConfigError

EVENT_FIELDS = ("event_id", "request_id", "session_id", "user_id", "note_id", "scenario",
                "query", "position", "ts", "click", "like", "collect", "comment", "share",
                "dwell_ms", "convert")
ENGAGEMENT_DEFAULTS = ("click", "like", "collect", "comment", "share", "convert")  # 0 if absent
HISTORY_CAP = 1000      # clicks kept per user and scenario (Redis lists; SQLite keeps all)
SEEN_CAP = 5000         # impressions kept per user (Redis)


class Store(ABC):
    @abstractmethod
    def add_events(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Store new events; (accepted, duplicates)."""

    @abstractmethod
    def history(self, user_id: int, scenario: str | None = None, limit: int = 50
                ) -> list[int]: ...

    @abstractmethod
    def seen(self, user_id: int, limit: int = SEEN_CAP) -> set[int]: ...

    @abstractmethod
    def behaviours(self, user_id: int, per_scenario: int = 96) -> dict[str, list]:
        """The user's recent behaviour as the user tower reads it: ``clicks`` — (note_id,
        scenario, ts) of the last ``per_scenario`` clicks of each scenario — and
        ``queries`` — (query, ts) of the last ``per_scenario`` searches (one per
        request), both oldest first."""

    @abstractmethod
    def count_events(self) -> int: ...

    @abstractmethod
    def put_note(self, note: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_note(self, note_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def delete_note(self, note_id: int) -> bool:
        """Take a note down; False when it was already gone."""

    @abstractmethod
    def deleted(self) -> set[int]: ...

    @abstractmethod
    def posted_notes(self) -> list[dict[str, Any]]:
        """Every note posted through the service (taken down ones too), by id: a restarted
        server indexes them again."""

    def close(self) -> None:
        return None


# -- SQLite -------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL UNIQUE,
    request_id INTEGER, session_id INTEGER,
    user_id INTEGER NOT NULL, note_id INTEGER NOT NULL, scenario TEXT NOT NULL,
    query TEXT, position INTEGER, ts INTEGER NOT NULL,
    click INTEGER NOT NULL DEFAULT 0, "like" INTEGER NOT NULL DEFAULT 0,
    collect INTEGER NOT NULL DEFAULT 0, comment INTEGER NOT NULL DEFAULT 0,
    share INTEGER NOT NULL DEFAULT 0, dwell_ms INTEGER,
    convert INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, seq);
-- Covering indexes: a user's last clicks of a scenario and last impressions are read
-- from the index alone, newest first, without visiting the table row by row.
CREATE INDEX IF NOT EXISTS events_user_clicks
    ON events (user_id, click, scenario, seq, note_id, ts);
CREATE INDEX IF NOT EXISTS events_user_seen ON events (user_id, seq, note_id);
CREATE INDEX IF NOT EXISTS events_user_queries ON events (user_id, seq, request_id, ts, query)
    WHERE scenario = 'search' AND query IS NOT NULL;
CREATE TABLE IF NOT EXISTS notes (
    note_id INTEGER PRIMARY KEY, doc TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
"""
_COLUMNS = ", ".join('"' + f + '"' for f in EVENT_FIELDS)
_INSERT = (f"INSERT OR IGNORE INTO events ({_COLUMNS}) "
           f"VALUES ({', '.join('?' for _ in EVENT_FIELDS)})")


class SQLiteStore(Store):
    """One connection behind a lock (the service's worker threads share it)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"--store sqlite:{path}: a directory; give a database file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ConfigError(f"--store sqlite:{path}: not a usable SQLite database ({e})"
                              ) from None
        self.lock = threading.Lock()

    def add_events(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        values = [tuple(r.get(f) if f not in ENGAGEMENT_DEFAULTS else
                        int(r.get(f) or 0) for f in EVENT_FIELDS) for r in rows]
        with self.lock:
            before = self.db.total_changes
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(_INSERT, values)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            accepted = self.db.total_changes - before
        return accepted, len(values) - accepted

    def history(self, user_id: int, scenario: str | None = None, limit: int = 50) -> list[int]:
        sql = "SELECT note_id FROM events WHERE user_id = ? AND click = 1"
        args: list[Any] = [user_id]
        if scenario is not None:
            sql += " AND scenario = ?"
            args.append(scenario)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY seq DESC LIMIT ?", [*args, limit]).fetchall()
        return [r[0] for r in rows]

    def seen(self, user_id: int, limit: int = SEEN_CAP) -> set[int]:
        with self.lock:
            rows = self.db.execute("SELECT note_id FROM events WHERE user_id = ? "
                                   "ORDER BY seq DESC LIMIT ?", (user_id, limit)).fetchall()
        return {r[0] for r in rows}

    def behaviours(self, user_id: int, per_scenario: int = 96) -> dict[str, list]:
        from snsrec.data.schema import SCENARIOS

        clicks: list[tuple[int, str, int, int]] = []
        with self.lock:
            for scen in SCENARIOS:
                clicks += self.db.execute(
                    "SELECT note_id, scenario, ts, seq FROM events WHERE user_id = ? AND "
                    "click = 1 AND scenario = ? ORDER BY seq DESC LIMIT ?",
                    (user_id, scen, per_scenario)).fetchall()
            queries = self.db.execute(
                "SELECT query, MIN(ts), MAX(seq) AS last FROM events "
                "INDEXED BY events_user_queries WHERE user_id = ? AND "
                "scenario = 'search' AND query IS NOT NULL GROUP BY COALESCE(request_id, -seq) "
                "ORDER BY last DESC LIMIT ?", (user_id, per_scenario)).fetchall()
        clicks.sort(key=lambda r: (r[2], r[3]))        # oldest first: time, then arrival
        return {"clicks": [(n, sc, t) for n, sc, t, _ in clicks],
                "queries": [(q, t) for q, t, _ in reversed(queries)]}

    def count_events(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def put_note(self, note: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO notes (note_id, doc, deleted) "
                            "VALUES (?, ?, 0)", (int(note["note_id"]),
                                                 json.dumps(note, ensure_ascii=False)))

    def get_note(self, note_id: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT doc FROM notes WHERE note_id = ? AND deleted = 0",
                                  (note_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_note(self, note_id: int) -> bool:
        with self.lock:
            if self.db.execute("SELECT 1 FROM notes WHERE note_id = ? AND deleted = 1",
                               (note_id,)).fetchone():
                return False
            self.db.execute("INSERT INTO notes (note_id, doc, deleted) VALUES (?, '{}', 1) "
                            "ON CONFLICT(note_id) DO UPDATE SET deleted = 1", (note_id,))
        return True

    def deleted(self) -> set[int]:
        with self.lock:
            return {r[0] for r in self.db.execute("SELECT note_id FROM notes WHERE deleted = 1")}

    def posted_notes(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute("SELECT doc FROM notes WHERE doc != '{}' ORDER BY note_id")
            return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self.lock:
            self.db.close()


# -- Redis --------------------------------------------------------------------------------

# KEYS: event, seen list, scenario history, all-scenario history, event counter, query list,
#       the search request's key.
# ARGV: event JSON, note id, clicked (0/1), history cap, seen cap, history entry
#       ("note|scenario|ts"), query entry ("ts|query", or "" for none).
_ADD_EVENT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
  if ARGV[3] == '1' then
    redis.call('LPUSH', KEYS[3], ARGV[6])
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
    redis.call('LPUSH', KEYS[4], ARGV[6])
    redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
  end
  if ARGV[7] ~= '' and redis.call('SET', KEYS[7], '1', 'NX') then
    redis.call('LPUSH', KEYS[6], ARGV[7])
    redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[4]) - 1)
  end
  redis.call('INCR', KEYS[5])
  return 1
end
return 0
"""


class RedisStore(Store):
    def __init__(self, url: str, prefix: str = "snsrec:"):
        import redis

        self.url, self.p = url, prefix
        try:
            self.r = redis.Redis.from_url(url, decode_responses=True)
            self.r.ping()
        except (redis.exceptions.ConnectionError, ValueError) as e:
            raise ConfigError(f"--store {url}: cannot reach Redis ({e}); start redis-server "
                              "or use --store sqlite:PATH") from None
        self.add_one = self.r.register_script(_ADD_EVENT)

    def add_events(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        rows = list(rows)
        pipe = self.r.pipeline(transaction=False)
        for r in rows:
            u, n, e = int(r["user_id"]), int(r["note_id"]), int(r["event_id"])
            ts, scen = int(r["ts"]), str(r["scenario"])
            query = r.get("query") if scen == "search" else None
            request = r.get("request_id")
            self.add_one(keys=[f"{self.p}event:{e}", f"{self.p}seen:{u}",
                               f"{self.p}hist:{u}:{scen}", f"{self.p}hist:{u}:*",
                               f"{self.p}events", f"{self.p}queries:{u}",
                               f"{self.p}request:{request if request is not None else -e}"],
                         args=[json.dumps({f: r.get(f) for f in EVENT_FIELDS}), n,
                               int(bool(r.get("click"))), HISTORY_CAP, SEEN_CAP,
                               f"{n}|{scen}|{ts}", f"{ts}|{query}" if query else ""],
                         client=pipe)
        accepted = sum(int(x) for x in pipe.execute())
        return accepted, len(rows) - accepted

    def history(self, user_id: int, scenario: str | None = None, limit: int = 50) -> list[int]:
        key = f"{self.p}hist:{user_id}:{scenario or '*'}"
        return [int(x.split("|", 1)[0]) for x in self.r.lrange(key, 0, limit - 1)]

    def behaviours(self, user_id: int, per_scenario: int = 96) -> dict[str, list]:
        from snsrec.data.schema import SCENARIOS

        pipe = self.r.pipeline(transaction=False)
        for scen in SCENARIOS:
            pipe.lrange(f"{self.p}hist:{user_id}:{scen}", 0, per_scenario - 1)
        pipe.lrange(f"{self.p}queries:{user_id}", 0, per_scenario - 1)
        *lists, queries = pipe.execute()
        clicks = []
        for entries in lists:
            for i, x in enumerate(entries):            # newest first within a scenario
                note, scen, ts = x.split("|")
                clicks.append((int(note), scen, int(ts), -i))
        # Oldest first: by time, then by arrival within a scenario.
        clicks.sort(key=lambda c: (c[2], c[3]))
        return {"clicks": [c[:3] for c in clicks],
                "queries": [(q, int(t)) for t, q in
                            (x.split("|", 1) for x in reversed(queries))]}

    def seen(self, user_id: int, limit: int = SEEN_CAP) -> set[int]:
        return {int(x) for x in self.r.lrange(f"{self.p}seen:{user_id}", 0, limit - 1)}

    def count_events(self) -> int:
        return int(self.r.get(f"{self.p}events") or 0)

    def put_note(self, note: dict[str, Any]) -> None:
        nid = int(note["note_id"])
        pipe = self.r.pipeline(transaction=True)
        pipe.set(f"{self.p}note:{nid}", json.dumps(note, ensure_ascii=False))
        pipe.sadd(f"{self.p}notes", nid)
        pipe.srem(f"{self.p}deleted", nid)
        pipe.execute()

    def get_note(self, note_id: int) -> dict[str, Any] | None:
        if self.r.sismember(f"{self.p}deleted", note_id):
            return None
        doc = self.r.get(f"{self.p}note:{note_id}")
        return json.loads(doc) if doc else None

    def delete_note(self, note_id: int) -> bool:
        return bool(self.r.sadd(f"{self.p}deleted", note_id))

    def deleted(self) -> set[int]:
        return {int(x) for x in self.r.smembers(f"{self.p}deleted")}

    def posted_notes(self) -> list[dict[str, Any]]:
        ids = sorted(int(x) for x in self.r.smembers(f"{self.p}notes"))
        docs = self.r.mget([f"{self.p}note:{i}" for i in ids]) if ids else []
        return [json.loads(d) for d in docs if d]

    def close(self) -> None:
        self.r.close()


def open_store(spec: str) -> Store:
    """``sqlite:PATH`` or ``redis://HOST:PORT[/DB]``."""
    if spec.startswith("sqlite:"):
        return SQLiteStore(spec.removeprefix("sqlite:"))
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    raise ConfigError(f"--store {spec!r}: use sqlite:PATH or redis://HOST:PORT")


def import_events(store: Store, events: Any, until: int | None = None,
                  chunk: int = 20_000) -> tuple[int, int]:
    """Load an events table (the canonical columns; a Polars frame, lazy or not) into the
    store in chunks, up to ``until`` (epoch seconds, exclusive) when given; (accepted,
    duplicates). Re-running it adds nothing (idempotent by ``event_id``)."""
    import polars as pl

    from snsrec.progress import Progress

    frame = events.lazy() if isinstance(events, pl.DataFrame) else events
    have = frame.collect_schema().names()
    missing = [c for c in ("event_id", "user_id", "note_id", "scenario", "ts") if c not in have]
    if missing:
        raise ConfigError(f"events: no column(s) {', '.join(missing)}; the store needs the "
                          "canonical events table")
    ts = pl.col("ts").dt.epoch("s") if frame.collect_schema()["ts"] != pl.Int64 else pl.col("ts")
    frame = frame.with_columns(ts.alias("ts"))
    if until is not None:
        frame = frame.filter(pl.col("ts") < until)
    table = frame.select([c for c in EVENT_FIELDS if c in have]).collect()
    accepted = duplicates = 0
    with Progress("store: importing events", total=table.height, unit="events") as bar:
        for start in range(0, table.height, chunk):
            part = table.slice(start, chunk)
            a, d = store.add_events(part.to_dicts())
            accepted, duplicates = accepted + a, duplicates + d
            bar.update(part.height)
    return accepted, duplicates
