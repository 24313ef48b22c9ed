"""Helpers for pipeline tests: a run YAML over the tiny world and CLI calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from snsrec.cli import main

# One thread: exact CPU arithmetic that does not depend on the machine's load.
BASE_TRAIN = {"epochs": 2, "batch_size": 512, "lr": 0.01, "threads": 1, "seed": 0}


def write_config(tmp: Path, data: Path, name: str = "run", model: str = "lr",
                 params: dict | None = None, **train) -> Path:
    cfg = {"name": name, "data": str(data), "cache": str(tmp / "cache"),
           "model": {"name": model, "params": params or {}},
           "train": {**BASE_TRAIN, **train}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``snsrec ARGV`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(["--quiet", *argv])
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())
