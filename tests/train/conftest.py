"""Re-export the ``toy`` fixture of tests/models/conftest.py (importlib mode: load by path)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "snsrec_tests_models_conftest", Path(__file__).resolve().parents[1] / "models" / "conftest.py")
_models_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models_conftest)

toy = _models_conftest.toy
