"""Fixtures of the benchmark tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_cache(tiny_world: Path) -> Callable[[Path], Path]:
    """``make(root)``: a data cache under ``root`` where ``world:tiny`` resolves to the
    session's tiny world (no regeneration)."""

    def make(root: Path) -> Path:
        cache = root / "cache"
        cache.mkdir(parents=True)
        (cache / "world-tiny-seed7").symlink_to(tiny_world, target_is_directory=True)
        return cache

    return make
