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
    # Three seeds: DIN ahead of DeepFM on every one, SDIM ahead on two and behind on one.
    auc = {"deepfm": (0.70, 0.71, 0.72), "din": (0.75, 0.752, 0.76), "sdim": (0.70, 0.74, 0.71)}
    ms = {"deepfm": 1.0, "din": 60.0, "sdim": 2.0}
    runs = [{"model": m, "length": None if m == "deepfm" else 1000, "seed": k,
             "auc": auc[m][k], "p50_ms": ms[m]} for m in auc for k in range(3)]
    (v,) = verdicts(runs)
    assert v["din_vs_deepfm"]["reading"] == "a" and v["din_vs_deepfm"]["n"] == 3
    assert v["din_vs_deepfm"]["mean"] == pytest.approx(0.044)
    assert v["sdim_vs_deepfm"]["reading"] == "tie"        # the seeds disagree: no claim
    assert v["sdim_speedup"] == pytest.approx(30.0) and not v["sdim_close_and_fast"]
    (one,) = verdicts([r for r in runs if r["seed"] == 0])
    assert one["din_vs_deepfm"]["reading"] == "one run"
    with pytest.raises(ConfigError, match="no config .*'dien'"):
        bench_sequence(["world:tiny"], ["dien"], [5], 1, tmp_path / "x",
                       cache=tiny_cache(tmp_path))
    with pytest.raises(ConfigError, match="--lengths"):
        bench_sequence(["world:tiny"], ["din"], [0], 1, tmp_path / "x")
