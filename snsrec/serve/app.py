"""The HTTP service (FastAPI): the feed, events, notes and takedowns, health and metrics.

``create_app(platform, token)`` wraps a ``snsrec.serve.pipeline.Platform`` — in this
process, or a ``snsrec.serve.pool.WorkerPool`` of processes that each hold one:

- ``GET /v1/feed?user_id=&k=[&scenario=]`` — retrieve → rank → moderate → diversify;
- ``POST /v1/search`` — a query's notes, personalised by the user's search interests;
- ``POST /v1/notes`` — a new note: encoded, moderated and indexed (cold start);
- ``POST /v1/events`` — a batch of impressions / clicks / conversions on known notes
  (an unknown note id is a 422), idempotent by ``event_id`` (the client's: every id
  ≥ 0 is free, the imported history lives below 0), answered only once durably
  stored; the user's next feed reads them;
- ``GET /v1/notes/{id}`` and ``DELETE /v1/notes/{id}`` (a takedown, gone from every
  response at once);
- ``GET /healthz``; ``GET /metrics`` (Prometheus text: requests and latency per
  route and status, index size, stored events);
- ``GET /`` — a page to try the platform as a person would (``static/index.html``:
  choose a user, read the feed, search, click, post, see what moderation filtered);
  ``GET /v1/users?limit=`` — the users it suggests (``users``, e.g. the world's most
  active ones; none when not given).

Write endpoints need ``Authorization: Bearer <token>``. Every input is validated
with limits (k, batch size, query length); bad input is a 4xx with a message,
never a 5xx.

Admission control: at most ``concurrency`` feed / search requests are in flight per
platform process (they are CPU-bound: more at a time only share the cores and the
interpreter — at 1M notes, 2 processes at 100/s, the feed's p99 was 112 / 82 / 77 ms
with 4 / 2 / 1); the others wait in line, and one that would wait longer than
``queue_timeout`` seconds is answered at once with ``503`` and ``Retry-After: 1`` — an
overloaded server says so quickly instead of answering everyone late. A worker process
that dies mid-request is a ``503`` too (it is restarted).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
import time
from collections import defaultdict
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from snsrec import __version__
from snsrec.serve.pool import Local, WorkerDied

MAX_K = 100
MAX_EVENTS = 1000
MAX_QUERY = 256
MAX_BODY = 10_000
# Ids are stored as 64-bit integers (SQLite INTEGER, int64 arrays): a larger one is a 422, not
# an overflow deep in the store. Timestamps stop at the end of year 9999 (datetime's range).
MAX_ID = 2 ** 63 - 1
MAX_TS = 253_402_300_799
Id = Annotated[int, Field(ge=0, le=MAX_ID)]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: Id = Field(description="the client's idempotency key (any id >= 0; a replay "
                         "is counted as a duplicate, not stored twice)")
    user_id: Id
    note_id: Id
    scenario: Literal["feed", "search", "discover", "ads"]
    query: str | None = Field(None, max_length=256)
    request_id: Id | None = None
    session_id: Id | None = None
    position: int | None = Field(None, ge=0, le=10_000)
    ts: int | None = Field(None, ge=0, le=MAX_TS, description="epoch seconds; the server's clock if absent")
    click: int = Field(0, ge=0, le=1)
    like: int = Field(0, ge=0, le=1)
    collect: int = Field(0, ge=0, le=1)
    comment: int = Field(0, ge=0, le=1)
    share: int = Field(0, ge=0, le=1)
    convert: int = Field(0, ge=0, le=1)
    dwell_ms: int | None = Field(None, ge=0, le=86_400_000)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    k: int = Field(10, ge=1, le=MAX_K)
    show_filtered: bool = False


class NewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author_id: Id | None = None
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=MAX_BODY)
    hashtags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20)
    category: str | None = Field(None, max_length=64)
    subcategory: str | None = Field(None, max_length=64)
    language: str | None = Field(None, max_length=16)

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        """Stored as the corpus writes them: no '#', lower case, each once, in order."""
        out: list[str] = []
        for i, tag in enumerate(tags):
            t = tag.strip().lstrip("#").strip().lower()
            if not t or any(c.isspace() for c in t):
                raise ValueError(f"hashtags[{i}] {tag!r}: a tag is one word, e.g. 'filmcamera'")
            if t not in out:
                out.append(t)
        return out


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class Metrics:
    """Request counts and latency sums per (route, status), for /metrics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[tuple[str, int], int] = defaultdict(int)
        self.seconds: dict[tuple[str, int], float] = defaultdict(float)

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.count[(route, status)] += 1
            self.seconds[(route, status)] += seconds

    def text(self, gauges: dict[str, float]) -> str:
        lines = ["# TYPE snsrec_requests_total counter"]
        with self.lock:
            items = sorted(self.count.items())
            lines += [f'snsrec_requests_total{{route="{r}",status="{s}"}} {n}'
                      for (r, s), n in items]
            lines.append("# TYPE snsrec_request_seconds_sum counter")
            lines += [f'snsrec_request_seconds_sum{{route="{r}",status="{s}"}} '
                      f'{self.seconds[(r, s)]:.6f}' for (r, s), _ in items]
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def page() -> str:
    """The web page (one static file: HTML, CSS and JS, no build step, nothing fetched from
    elsewhere)."""
    return resources.files("snsrec.serve").joinpath("static", "index.html").read_text("utf-8")


_OBJECT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {
    "schema": {"type": "object"}}}}}
GATED = ("/v1/feed", "/v1/search")          # the compute-heavy routes admission control limits


class Observe:
    """ASGI middleware: admission control on ``GATED`` routes (module docstring) and each
    request's status and latency into ``metrics``. Plain ASGI, not Starlette's
    ``BaseHTTPMiddleware``, whose stream and task group per request cost ~0.3 ms of CPU
    (measured: 0.56 against 0.26 ms for a trivial route)."""

    def __init__(self, app: Any, metrics: Metrics, concurrency: int, queue_timeout: float):
        self.app, self.metrics = app, metrics
        self.concurrency, self.queue_timeout = concurrency, queue_timeout
        self.gate: asyncio.Semaphore | None = None      # made in the server's event loop

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), [500]     # 500 unless the app starts a response
        path = scope["path"]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        gated = path in GATED
        try:
            if gated:
                if self.gate is None:
                    self.gate = asyncio.Semaphore(self.concurrency)
                try:
                    await asyncio.wait_for(self.gate.acquire(), self.queue_timeout)
                except TimeoutError:
                    await JSONResponse(
                        {"detail": f"overloaded: more than {self.concurrency} requests "
                         f"computing and none done within {self.queue_timeout:g} s; "
                         "retry after a second"}, 503,
                        headers={"Retry-After": "1"})(scope, receive, sending)
                    return
                try:
                    await self.app(scope, receive, sending)
                finally:
                    self.gate.release()
            else:
                await self.app(scope, receive, sending)
        finally:
            # The router records the matched route in the scope; a request turned away
            # at the gate was never routed.
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", path if gated else "unmatched"),
                                 status[0], time.perf_counter() - t0)


def create_app(platform: Any, token: str, clock: Any = time.time,
               users: list[int] | None = None, concurrency: int = 2,
               queue_timeout: float = 1.0) -> FastAPI:
    """The service over ``platform`` (a ``Platform``, or a backend with ``call`` and
    ``pids``: ``snsrec.serve.pool``); ``users``: the user ids the page suggests;
    ``concurrency`` / ``queue_timeout``: admission control (module docstring), the
    concurrency per platform process."""
    if not token:
        raise ValueError("the service needs a write token (SNSREC_TOKEN)")
    if concurrency < 1 or not queue_timeout > 0:
        raise ValueError(f"concurrency ({concurrency}) >= 1 and queue_timeout "
                         f"({queue_timeout}) > 0")
    suggested = [int(u) for u in users or []]
    backend = platform if hasattr(platform, "call") else Local(platform)
    call = backend.call
    html = page()
    app = FastAPI(title="snsrec", version=__version__,
                  description="retrieve → rank → moderate over HTTP")
    metrics = Metrics()

    app.add_middleware(Observe, metrics=metrics,
                       concurrency=concurrency * len(backend.pids),
                       queue_timeout=queue_timeout)

    @app.exception_handler(WorkerDied)
    async def worker_died(request: Any, exc: WorkerDied) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": "1"})

    def writer(authorization: str | None = Header(None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "write endpoints need Authorization: Bearer <token> "
                                     "(the server's SNSREC_TOKEN)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return html

    @app.get("/v1/users")
    def list_users(limit: int = Query(10, ge=1, le=MAX_K)) -> dict[str, list[int]]:
        return {"users": suggested[:limit]}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """``pid``: this server process; ``workers``: the processes computing answers."""
        return {"status": "ok", "version": __version__, "pid": os.getpid(),
                "workers": backend.pids, **await call("health")}

    # The feed and search answers are plain JSON values already (ints, floats, strings,
    # lists): sent as they are, without FastAPI's generic encoder walking them (~1 ms a
    # feed of 10, against ~0.1 ms for json.dumps).
    @app.get("/v1/feed", response_class=JSONResponse, responses=_OBJECT)
    async def feed(user_id: int = Query(ge=0, le=MAX_ID), k: int = Query(10, ge=1, le=MAX_K),
                   scenario: Literal["feed", "discover", "ads"] = "feed",
                   show_filtered: bool = False) -> JSONResponse:
        return JSONResponse(await call("feed", user_id, k, int(clock()), scenario,
                                       show_filtered))

    @app.post("/v1/search", response_class=JSONResponse, responses=_OBJECT)
    async def search(req: SearchRequest) -> JSONResponse:
        if not req.query.strip():
            raise HTTPException(422, "query: give some text to search for")
        return JSONResponse(await call("search", req.user_id, req.query, req.k, int(clock()),
                                       req.show_filtered))

    @app.post("/v1/notes", dependencies=[Depends(writer)], status_code=201)
    async def post_note(note: NewNote) -> dict[str, Any]:
        return await call("post_note", note.model_dump(), int(clock()))

    @app.post("/v1/events", dependencies=[Depends(writer)])
    async def events(batch: EventBatch) -> dict[str, int]:
        now = int(clock())
        rows = [{**e.model_dump(), "ts": e.ts if e.ts is not None else now}
                for e in batch.events]
        out = await call("add_events", rows)
        unknown = set(out.get("unknown", ()))
        if unknown:
            i, e = next((i, e) for i, e in enumerate(batch.events) if e.note_id in unknown)
            raise HTTPException(422, f"events[{i}].note_id {e.note_id}: no such note "
                                f"({len(unknown)} unknown note id(s) in the batch); events "
                                "are about notes the platform has (GET /v1/notes/ID)")
        return out

    @app.get("/v1/notes/{note_id}")
    async def get_note(note_id: int = Path(ge=0, le=MAX_ID)) -> dict[str, Any]:
        state, note = await call("note", note_id)
        if note is None:
            raise HTTPException(404, f"note {note_id} was taken down" if state == "taken down"
                                else f"no note {note_id}")
        return note

    @app.delete("/v1/notes/{note_id}", dependencies=[Depends(writer)])
    async def delete_note(note_id: int = Path(ge=0, le=MAX_ID)) -> dict[str, Any]:
        deleted = await call("take_down", note_id)
        if deleted is None:
            raise HTTPException(404, f"no note {note_id}")
        return {"note_id": note_id, "deleted": deleted}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        h = await call("health")
        return metrics.text({"snsrec_index_size": h["index_size"],
                             "snsrec_events_stored": h["events"],
                             "snsrec_worker_processes": len(backend.pids)})

    return app
