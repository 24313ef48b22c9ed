"""The HTTP service (FastAPI): the feed, events, notes and takedowns, health and metrics.

``create_app(platform, token)`` wraps a ``snsrec.serve.pipeline.Platform``:

- ``GET /v1/feed?user_id=&k=[&scenario=]`` — retrieve → rank → moderate → diversify;
- ``POST /v1/search`` — a query's notes, personalised by the user's search interests;
- ``POST /v1/notes`` — a new note: encoded, moderated and indexed (cold start);
- ``POST /v1/events`` — a batch of impressions / clicks / conversions, idempotent
  by ``event_id``, answered only once durably stored; the user's next feed reads them;
- ``GET /v1/notes/{id}`` and ``DELETE /v1/notes/{id}`` (a takedown, gone from every
  response at once);
- ``GET /healthz``; ``GET /metrics`` (Prometheus text: requests and latency per
  route and status, index size, stored events).

Write endpoints need ``Authorization: Bearer <token>``. Every input is validated
with limits (k, batch size, query length); bad input is a 4xx with a message,
never a 5xx.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from snsrec import __version__

MAX_K = 100
MAX_EVENTS = 1000
MAX_QUERY = 256
MAX_BODY = 10_000


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: int = Field(ge=0)
    user_id: int = Field(ge=0)
    note_id: int = Field(ge=0)
    scenario: Literal["feed", "search", "discover", "ads"]
    query: str | None = Field(None, max_length=256)
    request_id: int | None = Field(None, ge=0)
    session_id: int | None = Field(None, ge=0)
    position: int | None = Field(None, ge=0, le=10_000)
    ts: int | None = Field(None, ge=0, description="epoch seconds; the server's clock if absent")
    click: int = Field(0, ge=0, le=1)
    like: int = Field(0, ge=0, le=1)
    collect: int = Field(0, ge=0, le=1)
    comment: int = Field(0, ge=0, le=1)
    share: int = Field(0, ge=0, le=1)
    convert: int = Field(0, ge=0, le=1)
    dwell_ms: int | None = Field(None, ge=0, le=86_400_000)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(ge=0)
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    k: int = Field(10, ge=1, le=MAX_K)
    show_filtered: bool = False


class NewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author_id: int | None = Field(None, ge=0)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=MAX_BODY)
    hashtags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20)
    category: str | None = Field(None, max_length=64)
    subcategory: str | None = Field(None, max_length=64)
    language: str | None = Field(None, max_length=16)


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


def create_app(platform: Any, token: str, clock: Any = time.time) -> FastAPI:
    if not token:
        raise ValueError("the service needs a write token (SNSREC_TOKEN)")
    app = FastAPI(title="snsrec", version=__version__,
                  description="retrieve → rank → moderate over HTTP")
    metrics = Metrics()
    write_lock = threading.Lock()

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe(getattr(route, "path", "unmatched"), response.status_code,
                        time.perf_counter() - t0)
        return response

    def writer(authorization: str | None = Header(None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "write endpoints need Authorization: Bearer <token> "
                                     "(the server's SNSREC_TOKEN)")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__,
                "index_size": len(platform.retriever.index),
                "events": platform.store.count_events()}

    @app.get("/v1/feed")
    def feed(user_id: int = Query(ge=0), k: int = Query(10, ge=1, le=MAX_K),
             scenario: Literal["feed", "discover", "ads"] = "feed",
             show_filtered: bool = False) -> dict[str, Any]:
        return platform.feed(user_id, k, int(clock()), scenario, show_filtered=show_filtered)

    @app.post("/v1/search")
    def search(req: SearchRequest) -> dict[str, Any]:
        if not req.query.strip():
            raise HTTPException(422, "query: give some text to search for")
        return platform.search(req.user_id, req.query, req.k, int(clock()),
                               show_filtered=req.show_filtered)

    @app.post("/v1/notes", dependencies=[Depends(writer)], status_code=201)
    def post_note(note: NewNote) -> dict[str, Any]:
        return platform.post_note(note.model_dump(), int(clock()))

    @app.post("/v1/events", dependencies=[Depends(writer)])
    def events(batch: EventBatch) -> dict[str, int]:
        now = int(clock())
        rows = [{**e.model_dump(), "ts": e.ts if e.ts is not None else now}
                for e in batch.events]
        with write_lock:
            accepted, duplicates = platform.store.add_events(rows)
        return {"accepted": accepted, "duplicates": duplicates}

    @app.get("/v1/notes/{note_id}")
    def get_note(note_id: int) -> dict[str, Any]:
        if note_id in platform.store.deleted():
            raise HTTPException(404, f"note {note_id} was taken down")
        note = platform.store.get_note(note_id) or platform.notes.get(note_id)
        if note is None:
            raise HTTPException(404, f"no note {note_id}")
        return note

    @app.delete("/v1/notes/{note_id}", dependencies=[Depends(writer)])
    def delete_note(note_id: int) -> dict[str, Any]:
        if platform.store.get_note(note_id) is None and note_id not in platform.notes \
                and note_id not in platform.store.deleted():
            raise HTTPException(404, f"no note {note_id}")
        return {"note_id": note_id, "deleted": platform.store.delete_note(note_id)}

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> str:
        return metrics.text({"snsrec_index_size": len(platform.retriever.index),
                             "snsrec_events_stored": platform.store.count_events()})

    return app
