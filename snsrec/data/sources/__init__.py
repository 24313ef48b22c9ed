"""External data sets -> the canonical tables: ``snsrec data import SOURCE PATH --out DIR``.

Each source module has one ``load(path, out) -> dict`` that reads the files the
user already has (nothing is downloaded), maps them to notes / users / events
(extra columns kept) and writes them with a ``dataset.json`` into ``out``: a fresh
staging directory that ``import_source`` moves into place once it is complete.
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
from snsrec.io import atomic_dir

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


def import_source(source: str, path: Path, out: Path, *, force: bool = False) -> dict[str, Any]:
    """Import ``path`` as ``source`` into ``out`` (replaced when it is an import snsrec wrote,
    or with ``force``; never the input or a folder around or inside it); return the
    dataset.json dict."""
    if source not in SOURCES:
        close = difflib.get_close_matches(source, list(SOURCES), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise DataError(f"unknown source '{source}'; {hint}valid sources: {', '.join(SOURCES)}")
    # Each loader checks the path itself, so the error can say which files it expects.
    with atomic_dir(out, "data import", force=force, legacy=["dataset.json"],
                    inputs=[path]) as tmp:
        return SOURCES[source](Path(path), tmp)
