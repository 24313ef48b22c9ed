"""`snsrec bench index` at toy size: every kind measured against exact search."""

from __future__ import annotations

import json

import pytest

from snsrec.bench.index import bench_index
from snsrec.errors import ConfigError


def test_bench_index_writes_json_and_markdown(tmp_path):
    res = bench_index(tmp_path, items=3000, dim=16, users=20, k=50, clusters=50)
    saved = json.loads((tmp_path / "index.json").read_text())
    assert (tmp_path / "index.md").read_text() == res["markdown"]
    rows = {r["kind"]: r for r in saved["results"]}
    assert set(rows) == {"flat", "hnsw", "ivfpq"}
    assert rows["flat"]["recall@50"] == 1.0 and rows["hnsw"]["recall@50"] > 0.9
    assert 0.0 < rows["ivfpq"]["recall@50"] <= 1.0
    assert rows["ivfpq"]["index_mb"] < rows["flat"]["index_mb"]        # compressed codes
    for r in rows.values():
        assert r["p99_ms"] >= r["p50_ms"] > 0 and r["build_s"] >= 0
    assert isinstance(saved["meets_target"], bool) and "| hnsw |" in res["markdown"]


def test_bad_kind_or_size_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="kind 'annoy'"):
        bench_index(tmp_path, kinds=["annoy"])
    with pytest.raises(ConfigError, match="multiple of 8"):
        bench_index(tmp_path, items=1000, dim=12)
