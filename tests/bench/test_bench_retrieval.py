"""`snsrec bench retrieval` on the tiny world: leaderboards per target, reuse, bad variants."""

from __future__ import annotations

import json

import pytest

from snsrec.bench.retrieval import bench_retrieval
from snsrec.errors import ConfigError
from snsrec.progress import set_quiet

FAST = ["train.epochs=1", "retrieval.cutoffs_per_user=3", "model.params.negatives=50"]


def test_leaderboards_per_target_and_reuse(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)
    try:
        res = bench_retrieval(["world:tiny"], ["toppop", "itemcf"], 2, tmp_path / "b",
                              overrides=["train.epochs=1"], cache=cache)
        stamps = sorted((tmp_path / "b" / "runs").rglob("bench.json"))
        before = [p.stat().st_mtime_ns for p in stamps]
        again = bench_retrieval(["world:tiny"], ["toppop", "itemcf"], 2, tmp_path / "b",
                                overrides=["train.epochs=1"], cache=cache)
    finally:
        set_quiet(False)
    assert len(stamps) == 4 and [p.stat().st_mtime_ns for p in stamps] == before
    saved = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    board = saved["data"]["world_tiny"]["leaderboard"]
    assert {"feed/all", "search/all"} <= set(board)
    for rows in board.values():
        assert {r["variant"] for r in rows} <= {"toppop", "itemcf"}
        hr = [r["hr@100"][0] for r in rows]
        assert hr == sorted(hr, reverse=True) and all(0 <= h <= 1 for h in hr)
        assert all(r["seeds"] == 2 for r in rows)
    # toppop and itemcf are counted, not trained: the seeds agree exactly.
    assert all(r["hr@100"][1] == 0.0 for rows in board.values() for r in rows)
    assert "### feed" in res["markdown"] and again["markdown"] == res["markdown"]


def test_a_trained_variant_and_bad_variants(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)
    try:
        res = bench_retrieval(["world:tiny"], ["dssm"], 1, tmp_path / "d", overrides=FAST,
                              cache=cache)
    finally:
        set_quiet(False)
    run = tmp_path / "d" / "runs" / "world_tiny" / "dssm" / "seed0"
    assert (run / "metrics.json").is_file() and (run / "corpus.parquet").is_file()
    assert res["results"]["data"]["world_tiny"]["leaderboard"]["feed/all"][0]["variant"] == "dssm"
    with pytest.raises(ConfigError, match="no config .*'nosuch'.*redrec"):
        bench_retrieval(["world:tiny"], ["nosuch"], 1, tmp_path / "x", cache=cache)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("variant", ["toppop", "itemcf", "dssm", "redrec", "redrec_feed",
                                     "redrec_id"])
def test_every_shipped_variant_resolves(variant, tmp_path):
    from snsrec.bench.retrieval import VARIANTS, resolve

    assert variant in VARIANTS
    cfg = resolve(variant, "world:small", 3, None, tmp_path)
    assert cfg.train.seed == 3 and cfg.data == "world:small"
    assert cfg.name == f"{variant}-world_small-seed3"
