"""External data sets -> the canonical tables: ``snsrec data import SOURCE PATH --out DIR``.

Each source module has one ``load(path, out) -> dict`` that reads the files the
user already has (nothing is downloaded), maps them to notes / users / events
(extra columns kept) and writes them atomically with a ``dataset.json``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from snsrec.data.sources import (
    bars,
    criteo,
    kuairand,
    libsvm,
    movielens,
    obd,
    recbole,
    redmmu,
    snsbench,
    tenrec,
)
from snsrec.errors import DataError

Loader = Callable[[Path, Path], dict[str, Any]]

SOURCES: dict[str, Loader] = {
    "movielens": movielens.load,
    "recbole": recbole.load,
    "bars": bars.load,
    "criteo": criteo.load,
    "libsvm": partial(libsvm.load, fmt="libsvm"),
    "libffm": partial(libsvm.load, fmt="libffm"),
    "kuairand": kuairand.load,
    "tenrec": tenrec.load,
    "obd": obd.load,
    "redmmu": redmmu.load,
    "snsbench": snsbench.load,
}


def import_source(source: str, path: Path, out: Path) -> dict[str, Any]:
    """Import ``path`` as ``source`` into ``out``; return the dataset.json dict."""
    if source not in SOURCES:
        close = difflib.get_close_matches(source, list(SOURCES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise DataError(f"unknown source '{source}'; {hint}valid sources: {', '.join(SOURCES)}")
    # Each loader checks the path itself, so the error can say which files it expects.
    return SOURCES[source](Path(path), Path(out))
