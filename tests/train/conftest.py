"""The ``runs`` fixture, loaded by path (importlib mode: sibling modules are not importable
by name): tests/train/runs.py. ``toy`` comes from tests/conftest.py."""

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def runs():
    return _load("snsrec_tests_train_runs", HERE / "runs.py")
