"""Shared fixtures: the tiny synthetic world, generated once per test process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Models come from wheels and local folders; a test must never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# pytest-xdist workers share the cores: each takes its share of torch threads (the trainer's
# default follows OMP_NUM_THREADS), not all of them, which would oversubscribe the machine.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

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
