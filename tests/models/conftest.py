"""The ``toy`` fixture: tests/models/toy.py (a hand-made feature map and click arrays).

Tests run with ``--import-mode=importlib``, so sibling modules are not importable
by name; the helper is loaded once by path and shared through this fixture.
"""

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_toy():
    name = "snsrec_tests_toy"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "models" / "toy.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def toy():
    return _load_toy()
