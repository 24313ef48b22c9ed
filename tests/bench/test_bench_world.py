"""`snsrec bench world`: a child process per preset, JSON + Markdown written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snsrec.bench.world import bench_world
from snsrec.errors import ConfigError


def test_bench_world_tiny_writes_json_and_markdown(tmp_path: Path) -> None:
    res = bench_world(["tiny"], 7, tmp_path / "bench")
    (row,) = res["results"]
    assert row["preset"] == "tiny" and row["events"] > 10_000
    assert row["events_per_s"] > 0 and 0 < row["peak_rss_gb"] < 64
    saved = json.loads((tmp_path / "bench" / "world.json").read_text())
    assert saved["results"][0]["events"] == row["events"]
    md = (tmp_path / "bench" / "world.md").read_text()
    assert md == res["markdown"] and "| tiny |" in md and "events/s" in md


def test_bench_world_rejects_unknown_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="medium"):
        bench_world(["gigantic"], 7, tmp_path / "bench")
    assert not (tmp_path / "bench").exists()
