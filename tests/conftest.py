"""Shared fixtures: the tiny synthetic world, generated once per test process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Models come from wheels and local folders; a test must never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``snsrec world generate --preset tiny --seed 7`` into a session temp dir (read-only use)."""
    from snsrec.data.world.generate import generate_world
    from snsrec.progress import is_quiet, set_quiet

    out = tmp_path_factory.mktemp("tiny_world") / "world"
    was_quiet = is_quiet()
    set_quiet(True)
    try:
        generate_world("tiny", TINY_SEED, out)
    finally:
        set_quiet(was_quiet)
    return out


@pytest.fixture(autouse=True)
def _not_quiet():
    """`--quiet` is process-wide state: a CLI test that sets it must not silence the next test."""
    from snsrec.progress import set_quiet

    set_quiet(False)
    yield
    set_quiet(False)
