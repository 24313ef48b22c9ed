"""Load a directory of canonical tables as Polars lazy frames.

A data directory comes from the synthetic world (``world.json``) or from an
import (``dataset.json``); both hold the same table names. ``events.parquet`` is
required; ``notes``, ``users`` and ``queries`` are optional because not every
source has them. ``truth/`` is never opened here: features must not see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from snsrec.data.schema import validate_file
from snsrec.errors import DataError
from snsrec.io import read_json, settle

META_FILES = ("world.json", "dataset.json")
OPTIONAL_TABLES = ("notes", "users", "queries")


@dataclass
class Tables:
    root: Path
    events: pl.LazyFrame
    notes: pl.LazyFrame | None = None
    users: pl.LazyFrame | None = None
    queries: pl.LazyFrame | None = None
    meta: dict = field(default_factory=dict)

    def get(self, name: str) -> pl.LazyFrame | None:
        """The table called ``name`` ("events", "notes", ...), or None when absent."""
        return getattr(self, name, None) if name in ("events", *OPTIONAL_TABLES) else None

    def path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"


def read_meta(root: Path) -> dict:
    """The world.json or dataset.json of ``root`` (world.json wins when both exist)."""
    for name in META_FILES:
        if (root / name).is_file():
            meta = read_json(root / name)
            if not isinstance(meta, dict):
                raise DataError(f"{root / name}: expected a JSON object; regenerate the data")
            return meta
    raise DataError(f"{root}: neither world.json nor dataset.json found; generate a world "
                    f"(`snsrec world generate`) or import a data set (`snsrec data import`)")


def load_tables(root: str | Path) -> Tables:
    """Validate every table present under ``root`` and open it lazily."""
    root = settle(root)         # a replace cut short by a kill: its old copy comes back
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found; generate a world or import data first")
    meta = read_meta(root)
    frames: dict[str, pl.LazyFrame | None] = {}
    for name in ("events", *OPTIONAL_TABLES):
        path = root / f"{name}.parquet"
        if name != "events" and not path.exists():
            frames[name] = None
            continue
        validate_file(path, name)      # missing events.parquet -> DataError naming it
        frames[name] = pl.scan_parquet(path)
    return Tables(root=root, meta=meta, **frames)  # type: ignore[arg-type]
