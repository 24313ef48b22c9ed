"""Progress bars for long loops.

Rich bars with rate and ETA in a terminal; plain periodic lines when CI=true or
output is not a terminal; nothing with ``--quiet`` (``set_quiet(True)``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_QUIET = False
PLAIN_EVERY_S = 10.0   # seconds between plain progress lines
PLAIN_MIN_S = 2.0      # loops shorter than this print no plain line at all


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET


def _plain() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or not sys.stderr.isatty()


def echo(msg: str) -> None:
    """A status line on stderr, silenced by --quiet."""
    if not _QUIET:
        print(msg, file=sys.stderr, flush=True)


class Progress:
    """A manually advanced bar: ``with Progress("events", total=n, unit="ev") as p: p.update(k)``."""

    def __init__(self, desc: str, total: float | None = None, unit: str = "it"):
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0.0
        self._rich = None
        self._task = None
        self._t0 = time.perf_counter()
        self._last_print = self._t0

    def __enter__(self) -> Progress:
        if _QUIET:
            return self
        if not _plain():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress
            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.desc, total=self.total, rate="")
        return self

    def update(self, n: float = 1) -> None:
        self.done += n
        if _QUIET:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = f"{self.done / elapsed:,.0f} {self.unit}/s"
        if self._rich is not None:
            self._rich.update(self._task, advance=n, rate=rate)
        # Plain lines: one every 10 s, and a closing one only for loops that took a while.
        elif (time.perf_counter() - self._last_print > PLAIN_EVERY_S
              or (self.total and self.done >= self.total and elapsed > PLAIN_MIN_S)):
            self._last_print = time.perf_counter()
            tot = f"/{self.total:,.0f}" if self.total else ""
            print(f"{self.desc}: {self.done:,.0f}{tot} {self.unit} ({rate})", file=sys.stderr,
                  flush=True)

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()


def track(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap an iterable in a progress bar."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(desc, total=total, unit=unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)
