"""`snsrec bench sequence` on the tiny world: the table, latency, the verdicts, reuse."""

from __future__ import annotations

import json

import pytest
import yaml

from snsrec.bench.sequence import bench_sequence, verdicts
from snsrec.errors import ConfigError
from snsrec.progress import set_quiet

FAST = ["train.epochs=1", "train.threads=1"]


def test_table_latency_and_reuse(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    kw = {"rows": 2000, "eval_rows": 600, "candidates": 20, "requests": 3, "overrides": FAST,
          "cache": cache}
    res = bench_sequence(["world:tiny"], ["deepfm", "sdim"], [4, 16], 1, tmp_path / "b", **kw)
    block = res["results"]["data"]["world_tiny"]
    assert [(r["model"], r["length"]) for r in block["table"]] == \
        [("deepfm", None), ("sdim", 4), ("sdim", 16)]
    for r in block["runs"]:
        assert r["rows"]["train"] == 2000 and r["rows"]["test"] == 600
        assert 0 < r["p50_ms"] <= r["p99_ms"] and 0.0 <= r["auc"] <= 1.0
        assert ("state_ms" in r) == (r["model"] == "sdim")
    share = {r["length"]: r["full_history_share"] for r in block["runs"] if r["length"]}
    assert share[4] >= share[16]                     # fewer rows fill the longer history
    assert [v["length"] for v in block["targets"]] == [4, 16]
    assert "| sdim | 16 |" in res["markdown"]
    # Every sequence of the shipped features (the note ids and their categories) at the length.
    feats = yaml.safe_load((tmp_path / "b" / "features" / "hist-16.yaml").read_text())
    assert [(q["name"], q["max_len"]) for q in feats["sequences"]] == \
        [("hist", 16), ("hist_category", 16)]
    assert yaml.safe_load((tmp_path / "b" / "features" / "no-history.yaml").read_text()
                          )["sequences"] == []
    saved = json.loads((tmp_path / "b" / "sequence.json").read_text())
    assert saved["data"]["world_tiny"]["runs"] == block["runs"]
    stamp = tmp_path / "b" / "runs" / "world_tiny" / "sdim-L16" / "seed0" / "bench.json"
    before = stamp.stat().st_mtime_ns
    bench_sequence(["world:tiny"], ["sdim"], [16], 1, tmp_path / "b", **kw)
    assert stamp.stat().st_mtime_ns == before                  # reused, not retrained


def test_the_verdicts_and_bad_input(tiny_cache, tmp_path):
    rows = [{"model": "deepfm", "length": None, "auc": (0.70, 0.0), "p50_ms": 1.0},
            {"model": "din", "length": 1000, "auc": (0.75, 0.0), "p50_ms": 60.0},
            {"model": "sdim", "length": 1000, "auc": (0.749, 0.0), "p50_ms": 2.0}]
    (v,) = verdicts(rows)
    assert v["din_beats_deepfm"] and v["sdim_beats_deepfm"] and v["sdim_close_and_fast"]
    assert v["sdim_speedup"] == pytest.approx(30.0)
    with pytest.raises(ConfigError, match="no config .*'dien'"):
        bench_sequence(["world:tiny"], ["dien"], [5], 1, tmp_path / "x",
                       cache=tiny_cache(tmp_path))
    with pytest.raises(ConfigError, match="--lengths"):
        bench_sequence(["world:tiny"], ["din"], [0], 1, tmp_path / "x")
