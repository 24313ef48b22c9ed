"""Shared fixtures: the tiny synthetic world, generated once per test process, and the toy
feature maps of tests/models/toy.py."""

from __future__ import annotations

import importlib.util
import os
import sys
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


# The ``toy`` fixture: tests/models/toy.py (a hand-made feature map and click arrays).
# Tests run with ``--import-mode=importlib``, so sibling modules are not importable by
# name; the helper is loaded once by path and shared through this fixture.
def _load_toy():
    name = "snsrec_tests_toy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parent / "models" / "toy.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def toy():
    return _load_toy()
