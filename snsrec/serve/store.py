"""The serving store: events and user state, notes and takedowns — SQLite or Redis.

``open_store("sqlite:PATH")`` (the default) or ``open_store("redis://HOST:PORT/DB")``
gives the same interface:

- ``add_events(rows)`` — impressions / clicks / conversions; idempotent by
  ``event_id`` (a replayed event is counted as a duplicate, not stored twice;
  ``import_events`` puts a world's history under the negative ids)
  and durable when it returns: SQLite commits in WAL mode with
  ``synchronous=FULL``; Redis runs each event as one atomic script (for
  durability across a Redis restart, run it with ``appendonly yes`` and
  ``appendfsync always``).
- ``history(user, scenario, limit)`` — the notes the user clicked, newest
  first (arrival order), in one scenario or in all; ``seen(user, limit)`` — the
  notes shown to the user (every impression), for the already-seen filter.
- ``post_note(note, floor)`` — a new note under the next free id, given out
  atomically, so several server processes on one store never share an id;
  ``posted_notes(after)`` — the posted notes above an id (a restarted server
  indexes them all, a worker picks up the ones another posted);
  ``put_note`` / ``get_note`` / ``delete_note`` / ``deleted()`` — notes by id
  and takedowns (a deleted note is gone from ``get_note``).

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
    def post_note(self, note: dict[str, Any], floor: int) -> int:
        """Store a new note under the next free id — at least ``floor``, above every note
        posted before — and return it. Atomic: servers sharing the store never hand out
        one id twice, and ids become visible to ``posted_notes`` in increasing order."""

    @abstractmethod
    def posted_notes(self, after: int = -1) -> list[dict[str, Any]]:
        """Every note posted through the service (taken down ones too) with an id above
        ``after``, by id: a restarted server indexes them again, and a server sharing the
        store picks up what another one posted."""

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
    """Writes on one connection behind a lock (the service's worker threads share it);
    reads on a connection of their thread's own. In WAL mode a reader sees the last
    committed state while a write commits, so a feed never waits on another request's
    event batch being made durable (``synchronous=FULL``: an fsync, ~40 ms on a slow
    disk) nor on a WAL checkpoint — it did, through the one lock, at the tail of the
    serving benchmark."""

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
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (opened on its first read)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA query_only=ON")
            self._local.db = db
            with self.lock:
                self._readers.append(db)
        return db

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
        rows = self._reader().execute(sql + " ORDER BY seq DESC LIMIT ?",
                                      [*args, limit]).fetchall()
        return [r[0] for r in rows]

    def seen(self, user_id: int, limit: int = SEEN_CAP) -> set[int]:
        rows = self._reader().execute("SELECT note_id FROM events WHERE user_id = ? "
                                      "ORDER BY seq DESC LIMIT ?", (user_id, limit)).fetchall()
        return {r[0] for r in rows}

    def behaviours(self, user_id: int, per_scenario: int = 96) -> dict[str, list]:
        from snsrec.data.schema import SCENARIOS

        clicks: list[tuple[int, str, int, int]] = []
        db = self._reader()
        db.execute("BEGIN")             # one snapshot for every query
        try:
            for scen in SCENARIOS:
                clicks += db.execute(
                    "SELECT note_id, scenario, ts, seq FROM events WHERE user_id = ? AND "
                    "click = 1 AND scenario = ? ORDER BY seq DESC LIMIT ?",
                    (user_id, scen, per_scenario)).fetchall()
            queries = db.execute(
                "SELECT query, MIN(ts), MAX(seq) AS last FROM events "
                "INDEXED BY events_user_queries WHERE user_id = ? AND "
                "scenario = 'search' AND query IS NOT NULL GROUP BY COALESCE(request_id, -seq) "
                "ORDER BY last DESC LIMIT ?", (user_id, per_scenario)).fetchall()
        finally:
            db.execute("COMMIT")
        clicks.sort(key=lambda r: (r[2], r[3]))        # oldest first: time, then arrival
        return {"clicks": [(n, sc, t) for n, sc, t, _ in clicks],
                "queries": [(q, t) for q, t, _ in reversed(queries)]}

    def count_events(self) -> int:
        return self._reader().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def put_note(self, note: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO notes (note_id, doc, deleted) "
                            "VALUES (?, ?, 0)", (int(note["note_id"]),
                                                 json.dumps(note, ensure_ascii=False)))

    def get_note(self, note_id: int) -> dict[str, Any] | None:
        row = self._reader().execute("SELECT doc FROM notes WHERE note_id = ? AND deleted = 0",
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
        return {r[0] for r in self._reader().execute(
            "SELECT note_id FROM notes WHERE deleted = 1")}

    def post_note(self, note: dict[str, Any], floor: int) -> int:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")          # other processes wait: one id each
            try:
                top = self.db.execute(
                    "SELECT MAX(note_id) FROM notes WHERE doc != '{}'").fetchone()[0]
                nid = max(int(floor), -1 if top is None else int(top) + 1)
                self.db.execute("INSERT OR REPLACE INTO notes (note_id, doc, deleted) "
                                "VALUES (?, ?, 0)", (nid, json.dumps(
                                    {**note, "note_id": nid}, ensure_ascii=False)))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return nid

    def posted_notes(self, after: int = -1) -> list[dict[str, Any]]:
        rows = self._reader().execute("SELECT doc FROM notes WHERE note_id > ? AND "
                                      "doc != '{}' ORDER BY note_id", (after,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self.lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
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


# KEYS: the id counter, the posted ids (sorted set), the taken-down ids.
# ARGV: the id floor, the note JSON (without its id), the key prefix. The note's own key
# (prefix .. "note:" .. id) exists only once the id does: one Redis instance, not a cluster.
_POST_NOTE = """
local id = redis.call('INCR', KEYS[1])
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if top[2] and id <= tonumber(top[2]) then id = tonumber(top[2]) + 1 end
if id < tonumber(ARGV[1]) then id = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], id)
redis.call('SET', ARGV[3] .. 'note:' .. id, ARGV[2])
redis.call('ZADD', KEYS[2], id, id)
redis.call('SREM', KEYS[3], id)
return id
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
        self.post_one = self.r.register_script(_POST_NOTE)

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
        pipe.zadd(f"{self.p}posted", {str(nid): nid})
        pipe.srem(f"{self.p}deleted", nid)
        pipe.execute()

    def post_note(self, note: dict[str, Any], floor: int) -> int:
        # The id and the note in one script: atomic, so ids appear in increasing order.
        doc = json.dumps({k: v for k, v in note.items() if k != "note_id"}, ensure_ascii=False)
        return int(self.post_one(keys=[f"{self.p}note_ids", f"{self.p}posted",
                                       f"{self.p}deleted"], args=[int(floor), doc, self.p]))

    def get_note(self, note_id: int) -> dict[str, Any] | None:
        if self.r.sismember(f"{self.p}deleted", note_id):
            return None
        doc = self.r.get(f"{self.p}note:{note_id}")
        return {**json.loads(doc), "note_id": int(note_id)} if doc else None

    def delete_note(self, note_id: int) -> bool:
        return bool(self.r.sadd(f"{self.p}deleted", note_id))

    def deleted(self) -> set[int]:
        return {int(x) for x in self.r.smembers(f"{self.p}deleted")}

    def posted_notes(self, after: int = -1) -> list[dict[str, Any]]:
        ids = [int(x) for x in self.r.zrangebyscore(f"{self.p}posted", f"({after}", "+inf")]
        docs = self.r.mget([f"{self.p}note:{i}" for i in ids]) if ids else []
        return [{**json.loads(d), "note_id": i} for i, d in zip(ids, docs, strict=True) if d]

    def close(self) -> None:
        self.r.close()


def open_store(spec: str) -> Store:
    """``sqlite:PATH`` or ``redis://HOST:PORT[/DB]``."""
    if spec.startswith("sqlite:"):
        return SQLiteStore(spec.removeprefix("sqlite:"))
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    raise ConfigError(f"--store {spec!r}: use sqlite:PATH or redis://HOST:PORT")


def imported_id(event_id: Any) -> Any:
    """The store's id of an imported history event: ``-1 - event_id`` (ints, arrays or a
    Polars expression). Clients' events take ids >= 0 (the API's range), so they never
    collide with the history."""
    return -1 - event_id


def import_events(store: Store, events: Any, until: int | None = None,
                  chunk: int = 20_000) -> tuple[int, int]:
    """Load an events table (the canonical columns; a Polars frame, lazy or not) into the
    store in chunks, up to ``until`` (epoch seconds, exclusive) when given; (accepted,
    duplicates). Each event is stored under ``imported_id(event_id)``; re-running it adds
    nothing (idempotent by ``event_id``)."""
    import polars as pl

    from snsrec.progress import Progress

    frame = events.lazy() if isinstance(events, pl.DataFrame) else events
    have = frame.collect_schema().names()
    missing = [c for c in ("event_id", "user_id", "note_id", "scenario", "ts") if c not in have]
    if missing:
        raise ConfigError(f"events: no column(s) {', '.join(missing)}; the store needs the "
                          "canonical events table")
    ts = pl.col("ts").dt.epoch("s") if frame.collect_schema()["ts"] != pl.Int64 else pl.col("ts")
    # The history takes the negative ids, so every id >= 0 is free for clients' events.
    frame = frame.with_columns(
        ts.alias("ts"), imported_id(pl.col("event_id").cast(pl.Int64)).alias("event_id"))
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
