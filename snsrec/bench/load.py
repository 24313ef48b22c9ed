"""The load and the server under it, for ``snsrec bench serve`` and the fault tests.

**The load** is open-loop: request ``i`` is sent at ``t0 + i / rate`` whether or not
earlier ones were answered, and its latency is measured from that scheduled time,
so a slow server cannot slow the load down and hide its own queueing (no
coordinated omission). ``LoadClient`` drives a plan of ``GET /v1/feed``, ``POST
/v1/search`` and ``POST /v1/events`` requests; ``summarize`` gives p50 / p95 / p99 /
max latency, throughput and errors per endpoint. **The server** is ``snsrec serve``
as a child process on loopback (``ServerProcess``), started, waited for and
stopped (or killed, for the fault tests).
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.errors import ConfigError, DataError

ENDPOINTS = ("feed", "search", "events")
DEFAULT_MIX = "feed=0.8,search=0.1,events=0.1"
EVENT_ID_BASE = 1 << 40       # far above a world's event ids: the load's events are new


# -- the load: plan, drive, summarise ---------------------------------------------------

def parse_mix(text: str) -> dict[str, float]:
    """``"feed=0.8,search=0.1,events=0.1"`` → shares that sum to 1 (endpoints in ENDPOINTS)."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, share = part.partition("=")
        name = name.strip()
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if name not in ENDPOINTS or not math.isfinite(value) or value < 0 or name in mix:
            raise ConfigError(f"bench serve --mix {text!r}: give ENDPOINT=SHARE pairs, each "
                              f"endpoint once, of {', '.join(ENDPOINTS)}, shares >= 0 "
                              f"(e.g. {DEFAULT_MIX})")
        mix[name] = value
    total = sum(mix.values())
    if total <= 0:
        raise ConfigError(f"bench serve --mix {text!r}: the shares sum to 0; e.g. {DEFAULT_MIX}")
    return {k: v / total for k, v in mix.items() if v > 0}


def schedule(n: int, rate: float, mix: dict[str, float], seed: int = 0
             ) -> tuple[np.ndarray, list[str]]:
    """(send offsets in seconds, endpoint of each request): request ``i`` at ``i / rate``,
    endpoints drawn i.i.d. from ``mix`` with a seeded generator."""
    if n < 1 or not rate > 0:
        raise ConfigError(f"bench serve: requests ({n}) >= 1 and rate ({rate}) > 0")
    names = sorted(mix)
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(names), size=n, p=[mix[k] for k in names])
    return np.arange(n) / float(rate), [names[i] for i in kinds.tolist()]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with at least
    ``q`` % of the values at or below it — always an observed latency. NaN when empty."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q}: give 0 < q <= 100")
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, np.float64), q, method="inverted_cdf"))


def _answered_ms(rows: Sequence[dict[str, Any]]) -> list[float]:
    """The latencies (ms) of the requests answered with a 2xx."""
    return [r["latency_s"] * 1e3 for r in rows
            if r["status"] is not None and 200 <= r["status"] < 300]


def summarize(records: Sequence[dict[str, Any]], duration_s: float) -> dict[str, dict]:
    """Per endpoint: requests, errors, p50 / p95 / p99 / max ms of the answered requests,
    achieved throughput (answered per second of ``duration_s``). A record is ``{"endpoint",
    "latency_s", "status"}``; status None (no answer) or not 2xx is an error."""
    out: dict[str, dict] = {}
    names = {r["endpoint"] for r in records}
    for name in [*(e for e in ENDPOINTS if e in names), *sorted(names - set(ENDPOINTS))]:
        rows = [r for r in records if r["endpoint"] == name]
        ok = _answered_ms(rows)
        out[name] = {"requests": len(rows), "errors": len(rows) - len(ok),
                     "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95),
                     "p99_ms": percentile(ok, 99), "max_ms": max(ok, default=float("nan")),
                     "throughput_rps": len(ok) / duration_s if duration_s > 0 else 0.0}
    return out


def timeline(records: Sequence[dict[str, Any]], endpoint: str = "feed",
             step_s: float = 1.0) -> list[dict[str, Any]]:
    """``endpoint``'s latency second by second of the scheduled send time (``sent_s``):
    ``{"t_s", "requests", "errors", "p50_ms", "max_ms"}`` per step — where a tail comes
    from (a warm-up, a stall, a steady queue) is a question the percentiles leave open."""
    rows = [r for r in records if r["endpoint"] == endpoint and "sent_s" in r]
    steps: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        steps.setdefault(int(r["sent_s"] // step_s), []).append(r)
    out = []
    for k in sorted(steps):
        ok = _answered_ms(steps[k])
        out.append({"t_s": k * step_s, "requests": len(steps[k]),
                    "errors": len(steps[k]) - len(ok), "p50_ms": percentile(ok, 50),
                    "max_ms": max(ok, default=float("nan"))})
    return out


class LoadClient:
    """A minimal HTTP/1.1 client for the load: keep-alive connections to one server, taken
    from an idle list or opened on demand, with h11 parsing the answers.

    Not httpx: its connection pool re-scans every waiting request on each assignment, so
    with a few thousand requests in flight (an overloaded server under an open-loop load)
    the *driver* used a whole core and the measurement timed the client, not the server.
    Here a request costs O(1) bookkeeping however many are waiting. A connection idle for
    longer than ``keep_alive`` s is not reused (uvicorn closes them after 5 s), and a
    request whose reused connection turns out closed before any answer is sent again on
    a new one — what any HTTP client does. Idle connections are reused oldest first, so
    the requests spread over the open connections as many users' would: newest first sent
    most of them down one connection, i.e. to one ``--workers`` process (measured at
    100/s on two workers: feed p50 59 ms newest first, 11–12 ms oldest first)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None,
                 max_connections: int = 1000, keep_alive: float = 4.0):
        from urllib.parse import urlsplit

        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ConfigError(f"bench serve: {base_url!r}: the load speaks plain http://HOST:PORT")
        self.host, self.port, self.keep_alive = url.hostname, url.port or 80, keep_alive
        self.headers = [("host", f"{self.host}:{self.port}"),
                        *((k.lower(), v) for k, v in (headers or {}).items())]
        self.idle: deque[tuple[Any, Any, Any, float]] = deque()   # oldest first
        self.slots = asyncio.Semaphore(max_connections)

    async def request(self, method: str, url: str, params: dict[str, Any] | None = None,
                      json: Any = None) -> int:
        """Send one request; its HTTP status once the whole answer is read."""
        import json as jsonlib
        from urllib.parse import urlencode

        target = url + (f"?{urlencode(params)}" if params else "")
        body = b"" if json is None else jsonlib.dumps(json).encode()
        headers = [*self.headers, ("content-length", str(len(body)))]
        if json is not None:
            headers.append(("content-type", "application/json"))
        async with self.slots:
            while True:
                conn, reused = self._idle_connection(), True
                if conn is None:
                    conn, reused = await self._connect(), False
                status = await self._exchange(conn, method, target, headers, body, reused)
                if status is not None:
                    return status

    def _idle_connection(self) -> tuple[Any, Any, Any] | None:
        now = asyncio.get_running_loop().time()
        while self.idle:
            reader, writer, h, since = self.idle.popleft()
            if now - since < self.keep_alive:
                return reader, writer, h
            writer.close()
        return None

    async def _connect(self) -> tuple[Any, Any, Any]:
        import h11

        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, h11.Connection(h11.CLIENT)

    async def _exchange(self, conn: tuple[Any, Any, Any], method: str, target: str,
                        headers: list[tuple[str, str]], body: bytes, reused: bool
                        ) -> int | None:
        """The answer's status; None when a reused connection was closed before answering
        (send again on a new one)."""
        import h11

        reader, writer, h = conn
        status = None
        try:
            writer.write(h.send(h11.Request(method=method, target=target, headers=headers))
                         + h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()))
            await writer.drain()
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    h.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the server closed the connection")
        except (OSError, h11.ProtocolError):
            writer.close()
            if reused and status is None:
                return None
            raise
        except BaseException:              # a timeout's cancellation: never reuse it
            writer.close()
            raise
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            self.idle.append((reader, writer, h, asyncio.get_running_loop().time()))
        else:
            writer.close()
        return status

    async def aclose(self) -> None:
        while self.idle:
            self.idle.pop()[1].close()


async def drive(base_url: str, plan: Sequence[tuple[float, str, dict[str, Any]]],
                headers: dict[str, str] | None = None, timeout: float = 10.0,
                send: Any = None) -> tuple[list[dict[str, Any]], float]:
    """Send ``plan`` — (offset s, endpoint, request: method, url, params / json) — open-loop:
    each request at its offset from the start, answered or not. Returns one record per
    request (latency from the *scheduled* send time; status None and the error when there
    was no answer within ``timeout`` s) and the run's duration (first send → last answer).
    ``send``: an async ``(**request) -> status`` instead of the network (tests)."""
    import h11

    loop = asyncio.get_running_loop()
    client = None
    if send is None:
        client = LoadClient(base_url, headers)
        send = client.request

    async def one(at: float, name: str, kw: dict[str, Any]) -> dict[str, Any]:
        status, error = None, None
        try:
            status = await asyncio.wait_for(send(**kw), timeout)
        except TimeoutError:
            error = f"no answer in {timeout:g} s"
        except (OSError, ConnectionError, h11.ProtocolError) as e:
            error = f"{type(e).__name__}: {e}"[:200]
        return {"endpoint": name, "sent_s": at - t0, "latency_s": loop.time() - at,
                "status": status, "error": error}

    try:
        t0 = loop.time() + 0.01
        tasks = []
        for offset, name, kw in plan:
            at = t0 + offset
            if (delay := at - loop.time()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at, name, kw)))
        records = await asyncio.gather(*tasks)
        duration = loop.time() - t0
    finally:
        if client is not None:
            await client.aclose()
    return list(records), duration


def requests_plan(offsets: np.ndarray, kinds: list[str], users: np.ndarray,
                  queries: Sequence[str], notes: np.ndarray, *, k: int = 10,
                  batch: int = 20, seed: int = 0, event_base: int = EVENT_ID_BASE
                  ) -> list[tuple[float, str, dict[str, Any]]]:
    """The requests of a schedule: random users' feeds, the world's queries, event batches
    of ``batch`` impressions (a click one in ten) with ids from ``event_base`` up."""
    rng = np.random.default_rng([seed, 1])
    plan, next_event = [], event_base
    for offset, name in zip(offsets.tolist(), kinds, strict=True):
        user = int(users[rng.integers(len(users))])
        if name == "feed":
            kw = {"method": "GET", "url": "/v1/feed", "params": {"user_id": user, "k": k}}
        elif name == "search":
            kw = {"method": "POST", "url": "/v1/search",
                  "json": {"user_id": user, "query": queries[rng.integers(len(queries))],
                           "k": k}}
        else:
            shown = notes[rng.integers(len(notes), size=batch)].tolist()
            clicks = (rng.random(batch) < 0.1).astype(int).tolist()
            events = [{"event_id": next_event + j, "user_id": user, "note_id": int(n),
                       "scenario": "feed", "position": j, "click": c}
                      for j, (n, c) in enumerate(zip(shown, clicks, strict=True))]
            next_event += batch
            kw = {"method": "POST", "url": "/v1/events", "json": {"events": events}}
        plan.append((offset, name, kw))
    return plan


# -- the server as a child process ------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snsrec_command() -> list[str]:
    """The ``snsrec`` console script beside this interpreter (a venv's), else ``-m``."""
    exe = Path(sys.executable).parent / "snsrec"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "snsrec.cli"]


class ServerProcess:
    """``snsrec serve ARGS --port PORT`` on loopback as a child process, its output in
    ``log``. ``ready()`` waits for ``/healthz``; ``kill()`` is a SIGKILL (no clean-up at
    all: what a crash or an OOM kill leaves); ``stop()`` a SIGTERM, then a SIGKILL."""

    def __init__(self, args: Sequence[str], log: str | Path, token: str,
                 port: int | None = None, env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "SNSREC_TOKEN": token, "CI": "true",
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*snsrec_command(), "serve", *map(str, args), "--host", "127.0.0.1",
                 "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=full_env)

    def ready(self, timeout: float = 300.0, workers: int = 1) -> dict[str, Any]:
        """The ``/healthz`` answer once the server is up with ``workers`` worker processes
        (``pids``: theirs, from its ``workers``): a worker still building its platform
        takes a core, and a load started then measured that (the first ~10 s of a
        two-worker run 40 ms slower a request). DataError when it exits first or is not up
        within ``timeout`` seconds (the log's tail in the message)."""
        import httpx

        deadline = time.monotonic() + timeout
        pids: set[int] = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DataError(f"snsrec serve exited with code {self.proc.returncode} before "
                                f"answering /healthz; its log ({self.log}) ends:\n{self.tail()}")
            try:
                # A new connection each time: whichever worker is accepting answers.
                r = httpx.get(self.url + "/healthz", timeout=2.0)
                if r.status_code == 200:
                    body = r.json()
                    pids.update(int(p) for p in body.get("workers") or [body["pid"]])
                    if len(pids) >= workers:
                        return {**body, "pids": sorted(pids)}
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DataError(f"snsrec serve: {len(pids)} of {workers} worker(s) answered /healthz "
                        f"within {timeout:.0f} s; its log ({self.log}) ends:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _processes(self) -> list[Any]:
        """The server and its worker processes (``--workers``)."""
        import psutil

        try:
            main = psutil.Process(self.proc.pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def peak_rss_gb(self) -> float | None:
        """The server's peak resident memory (VmHWM; summed over its worker processes),
        while it runs."""
        total = 0
        for p in self._processes():
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024 ** 2 if total else None

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the server and its workers have used so far."""
        by = self.cpu_by_pid()
        return sum(by.values()) if by else None

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds (user + system) so far of each of the server's processes."""
        import psutil

        out = {}
        for p in self._processes():
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            out[p.pid] = t.user + t.system
        return out

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
