"""Where the service's platform calls run: in the server process, or in worker processes.

The HTTP app (``snsrec.serve.app``) awaits ``backend.call(method, *args)`` for every
platform call (``CALLS``); two backends answer it:

- ``Local(platform)``: the platform in this process, each call on a thread of the
  server's pool (the event loop keeps answering meanwhile);
- ``WorkerPool(build, settings, n)`` (``snsrec serve --workers N``): N processes, each
  with the whole platform (``build(settings)``), behind one line. A call goes to the worker that has been free
  longest, or waits for the next one to finish. One line for all workers is what
  keeps the tail short: with a line per worker (each server process accepting its
  own connections) a request waits behind a busy core while the other is idle. At
  14 ms a request, 100 requests/s on two cores, a simulated p99 is 114 ms with a
  line per worker and 64 ms with one line.

The workers share the store: events, takedowns and posted notes reach every worker
(``Platform.sync``), so any worker can answer any call. A worker that dies (killed,
out of memory) fails the call it held with ``WorkerDied`` (the app answers 503) and
is started again; workers exit with the server (their pipe closes; on Linux the
kernel also kills them when the server dies).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from snsrec.errors import SnsrecError
from snsrec.progress import echo

# The platform's methods the app calls: a worker answers these and no others.
CALLS = ("feed", "search", "post_note", "add_events", "note", "take_down", "health")


class WorkerDied(SnsrecError):
    """A worker process ended while it held a call."""


class Local:
    """The platform in this process."""

    def __init__(self, platform: Any):
        self.platform = platform

    @property
    def pids(self) -> list[int]:
        return [os.getpid()]

    async def call(self, method: str, *args: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(getattr(self.platform, method), *args)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a worker must not outlive a killed
    server, holding gigabytes). Elsewhere the closed pipe ends the worker's loop."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


Build = Callable[[dict[str, Any]], tuple[Any, list[int]]]


def worker_main(conn: Any, build: Build, settings: dict[str, Any], threads: int) -> None:
    """A worker process: build the platform (``build(settings)``: the platform and the
    users the page suggests), say it is ready, answer calls until the pipe closes."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C stops the server, which stops us
    import torch

    torch.set_num_threads(threads)
    try:
        platform, users = build(settings)
    except BaseException as e:                           # noqa: BLE001 - reported to the server
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        raise
    conn.send(("ready", {"users": users}))
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return                                       # the server is gone
        try:
            if method not in CALLS:
                raise ValueError(f"worker: no call {method!r}")
            reply = ("ok", getattr(platform, method)(*args))
        except Exception as e:                           # noqa: BLE001 - the caller raises it
            reply = ("error", e)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        except Exception as e:                           # noqa: BLE001 - an unpicklable error
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))


async def _readable(conn: Any) -> None:
    """Wait in the event loop until ``conn`` has something to read (or is closed)."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    fd = conn.fileno()
    loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(fd)


class _Worker:
    def __init__(self, ctx: Any, build: Build, settings: dict[str, Any], threads: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, build, settings, threads),
                                daemon=True, name="snsrec-serve-worker")
        self.proc.start()
        child.close()
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.conn.close()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)


class WorkerPool:
    """``workers`` processes, each building the platform with ``build(settings)`` (a
    module-level function, so a spawned process can import it:
    ``snsrec.serve.service.platform_of``), behind one line (module doc). The
    constructor returns once every worker is ready (or raises with the reason)."""

    def __init__(self, build: Build, settings: dict[str, Any], workers: int,
                 start_timeout: float = 3600.0):
        if workers < 1:
            raise ValueError(f"workers ({workers}) >= 1")
        self.build, self.settings = build, settings
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.ctx = multiprocessing.get_context("spawn")
        self.workers = [_Worker(self.ctx, build, settings, self.threads) for _ in range(workers)]
        self.users: list[int] = []
        deadline = time.monotonic() + start_timeout
        try:
            for w in self.workers:
                info = self._ready(w, max(0.0, deadline - time.monotonic()))
                self.users = info["users"]
        except BaseException:
            self.close()
            raise
        self._free: collections.deque[_Worker] | None = None
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    @staticmethod
    def _ready(w: _Worker, timeout: float) -> dict[str, Any]:
        if not w.conn.poll(timeout):
            raise SnsrecError(f"serve: worker {w.pid} was not ready within the start timeout")
        try:
            kind, info = w.conn.recv()
        except EOFError:
            raise SnsrecError(f"serve: worker {w.pid} exited while loading (code "
                              f"{w.proc.join(5) or w.proc.exitcode}); see the log above") \
                from None
        if kind != "ready":
            raise SnsrecError(f"serve: worker {w.pid} failed to load: {info}")
        return info

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    async def _take(self) -> _Worker:
        if self._free is None:                  # made in the server's event loop
            self._free = collections.deque(self.workers)
        if self._free:
            return self._free.popleft()
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():     # handed a worker, then cancelled
                self._give_back(fut.result())
            raise

    def _give_back(self, w: _Worker) -> None:
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_result(w)
                return
        assert self._free is not None
        self._free.append(w)

    async def call(self, method: str, *args: Any) -> Any:
        w = await self._take()
        try:
            reply = await self._exchange(w, method, args)
        except asyncio.CancelledError:
            # The client left mid-call: the worker still answers; read that answer
            # before the worker serves anyone else.
            asyncio.ensure_future(self._drain(w))
            raise
        except (EOFError, OSError):
            self._replace(w)
            raise WorkerDied(f"a worker process ({w.pid}) ended during {method}; it is "
                             "being restarted — retry") from None
        self._give_back(w)
        kind, value = reply
        if kind == "error":
            raise value
        return value

    async def _exchange(self, w: _Worker, method: str, args: tuple) -> Any:
        w.conn.send((method, args))
        await _readable(w.conn)
        return w.conn.recv()

    async def _drain(self, w: _Worker) -> None:
        await _readable(w.conn)
        try:
            w.conn.recv()
        except (EOFError, OSError):
            self._replace(w)
            return
        self._give_back(w)

    def _replace(self, dead: _Worker) -> None:
        """Start a worker in place of ``dead``; it joins the line once ready."""
        dead.stop()
        w = _Worker(self.ctx, self.build, self.settings, self.threads)
        self.workers[self.workers.index(dead)] = w
        loop = asyncio.get_running_loop()

        def ready() -> None:
            loop.remove_reader(w.conn.fileno())
            try:
                kind, _ = w.conn.recv()
            except (EOFError, OSError):
                kind = "failed"
            if kind == "ready":
                echo(f"serve: worker {w.pid} started in place of {dead.pid}")
                self._give_back(w)
            else:
                echo(f"serve: worker {w.pid} (in place of {dead.pid}) failed to start; "
                     f"{len(self.workers) - 1} worker(s) left serving")

        loop.add_reader(w.conn.fileno(), ready)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
