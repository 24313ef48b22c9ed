"""`snsrec bench retrieval` on the tiny world: leaderboards per target, reuse, bad variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snsrec.bench.retrieval import bench_retrieval
from snsrec.errors import ConfigError
from snsrec.progress import set_quiet

FAST = ["train.epochs=1", "retrieval.cutoffs_per_user=3", "model.params.negatives=50"]


def test_leaderboards_per_target_and_reuse(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_retrieval(["world:tiny"], ["toppop", "itemcf"], 2, tmp_path / "b",
                          overrides=["train.epochs=1"], cache=cache)
    stamps = sorted((tmp_path / "b" / "runs").rglob("bench.json"))
    before = [p.stat().st_mtime_ns for p in stamps]
    again = bench_retrieval(["world:tiny"], ["toppop", "itemcf"], 2, tmp_path / "b",
                            overrides=["train.epochs=1"], cache=cache)
    assert len(stamps) == 4 and [p.stat().st_mtime_ns for p in stamps] == before
    saved = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    board = saved["data"]["world_tiny"]["leaderboard"]
    assert {"feed/all", "search/all"} <= set(board)
    for table in board.values():
        *rows, oracle = table                   # the oracle's row closes every table
        assert oracle["variant"] == "oracle" and "reference" in oracle
        assert {r["variant"] for r in rows} <= {"toppop", "itemcf"}
        hr = [r["hr@100"][0] for r in rows]
        assert hr == sorted(hr, reverse=True) and all(0 <= h <= 1 for h in hr)
        assert all(r["seeds"] == 2 for r in rows)
        for r in table:                         # the same queries; shares model / oracle
            assert r["queries"] == oracle["queries"]
            for m in ("hr@10", "hr@100", "ndcg@10", "mrr"):
                want = r[m][0] / oracle[m][0] if oracle[m][0] else None
                assert r[f"{m}_share"] == (pytest.approx(want) if want is not None else None)
    # toppop and itemcf are counted, not trained: the seeds agree exactly.
    assert all(r["hr@100"][1] == 0.0 for rows in board.values() for r in rows)
    assert "### feed" in res["markdown"] and again["markdown"] == res["markdown"]
    assert "| *oracle* |" in again["markdown"]      # rebuilt from reused runs, it is there
    _check_oracle(saved["data"]["world_tiny"], cache)


def _check_oracle(block, cache):
    """The oracle's all-rows metrics of each target, recomputed by brute force: per query,
    the truth's probability of every note existing then, the target's pessimistic rank."""
    from snsrec.bench.retrieval import resolve
    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.sequences import BehaviourLog, Corpus
    from snsrec.data.tables import load_tables
    from snsrec.data.world.usermodel import UserModel
    from snsrec.train.retrieval import TARGETS, _split_times, eval_samples

    cfg = resolve("toppop", "world:tiny", 0, ["train.epochs=1"], cache)
    root = resolve_dataset("world:tiny", cache)
    tables = load_tables(root)
    valid_start, test_start = _split_times(tables)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, valid_start)
    um = UserModel.load(root)
    n = len(corpus.note_ids)
    for target, (scenario, conversion) in TARGETS.items():
        rows = eval_samples(log, corpus, test_start, int(log.ts.max()) + 1, target,
                            cfg.retrieval, valid_start)
        ranks = []
        for user, ts, t in zip(rows["_user"], rows["_ts"], rows["target"], strict=True):
            p = um.probabilities(np.full(n, user), corpus.note_ids, scenario, np.zeros(n),
                                 np.full(n, ts))
            s = p["click"] * p["convert"] if conversion else p["click"].copy()
            s[corpus.created > ts] = -np.inf
            ranks.append((s > s[t]).sum() + (s == s[t]).sum() - 1)
        oracle = block["leaderboard"][f"{target}/all"][-1]
        assert oracle["queries"] == len(ranks) > 0
        assert oracle["hr@10"][0] == pytest.approx(np.mean(np.array(ranks) < 10))
        assert oracle["hr@100"][0] == pytest.approx(np.mean(np.array(ranks) < 100))
        assert oracle["mrr"][0] == pytest.approx(np.mean(1 / (np.array(ranks) + 1)))


def test_a_trained_variant_and_bad_variants(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_retrieval(["world:tiny"], ["dssm"], 1, tmp_path / "d", overrides=FAST,
                          cache=cache)
    run = tmp_path / "d" / "runs" / "world_tiny" / "dssm" / "seed0"
    assert (run / "metrics.json").is_file() and (run / "corpus.parquet").is_file()
    assert res["results"]["data"]["world_tiny"]["leaderboard"]["feed/all"][0]["variant"] == "dssm"
    with pytest.raises(ConfigError, match="no config .*'nosuch'.*redrec"):
        bench_retrieval(["world:tiny"], ["nosuch"], 1, tmp_path / "x", cache=cache)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("variant", ["toppop", "itemcf", "dssm", "sasrec", "redrec",
                                     "redrec_feed", "redrec_id"])
def test_every_shipped_variant_resolves(variant, tmp_path):
    from snsrec.bench.retrieval import VARIANTS, resolve

    assert variant in VARIANTS
    cfg = resolve(variant, "world:small", 3, None, tmp_path)
    assert cfg.train.seed == 3 and cfg.data == "world:small"
    assert cfg.name == f"{variant}-world_small-seed3"


def test_sasrec_beside_recboles_on_the_same_split(tiny_cache, tmp_path, monkeypatch):
    """RecBole's SASRec trains with the sasrec variant's settings on the same clicks and is
    scored by the same full-corpus protocol; the speed table compares the two. The output
    directory is relative, as on a command line (RecBole works in a chdir)."""
    cache = tiny_cache(tmp_path)
    fast = ["train.epochs=2", "model.params.max_len=10", "model.params.dim=16",
            "model.params.inner=32", "train.batch_size=128"]
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    monkeypatch.chdir(tmp_path)
    res = bench_retrieval(["world:tiny"], ["sasrec"], 1, Path("s"), overrides=fast,
                          cache=cache)
    block = res["results"]["data"]["world_tiny"]
    assert {r["variant"] for r in block["runs"]} == {"sasrec", "recbole_sasrec"}
    peer = json.loads((tmp_path / "s" / "runs" / "world_tiny" / "recbole_sasrec" / "seed0" /
                       "metrics.json").read_text())
    ours = json.loads((tmp_path / "s" / "runs" / "world_tiny" / "sasrec" / "seed0" /
                       "metrics.json").read_text())
    # The same test queries, every note of the corpus a candidate, two epochs each.
    for target in ("feed", "search", "ads"):
        assert peer["test"][target]["all"]["queries"] == ours["test"][target]["all"]["queries"]
    assert peer["test"]["feed"]["all"]["candidates"] == ours["test"]["feed"]["all"]["candidates"]
    assert peer["epochs_run"] == 2 and peer["library"].startswith("recbole 1.2")
    # Both trained on every click but each user's first (RecBole: one row per target).
    assert peer["rows"]["train"]["rows"] == pytest.approx(
        ours["rows"]["train"]["rows"] * ours["rows"]["train"]["mean_targets"])
    assert "SASRec: snsrec and RecBole" in res["markdown"] and "targets/s" in res["markdown"]
    assert not list((tmp_path / "s").rglob("bench.pending.json"))
    with pytest.raises(ConfigError, match="unknown peer nosuch"):
        bench_retrieval(["world:tiny"], ["sasrec"], 1, tmp_path / "x", peers=["nosuch"],
                        cache=cache)


def test_a_time_budget_stops_both_libraries_after_the_epoch_that_spends_it(tiny_cache,
                                                                          tmp_path):
    cache = tiny_cache(tmp_path)
    fast = ["train.epochs=3", "train.early_stop_patience=3", "train.max_train_s=1e-6",
            "model.params.max_len=10", "model.params.dim=16", "model.params.inner=32"]
    set_quiet(True)
    bench_retrieval(["world:tiny"], ["sasrec"], 1, tmp_path / "s", overrides=fast, cache=cache)
    for variant in ("sasrec", "recbole_sasrec"):
        m = json.loads((tmp_path / "s" / "runs" / "world_tiny" / variant / "seed0" /
                        "metrics.json").read_text())
        assert m["epochs_run"] == 1 and m["best_epoch"] == 1 and m["out_of_time"], variant


def test_a_missing_peer_library_is_named_before_any_training(tmp_path, monkeypatch):
    from snsrec.bench import recbole_sasrec

    monkeypatch.setattr(recbole_sasrec, "available", lambda: False)
    with pytest.raises(ConfigError, match="needs RecBole.*make bench.*--peers none"):
        bench_retrieval(["world:tiny"], ["sasrec"], 1, tmp_path / "x", cache=tmp_path)
    assert not (tmp_path / "x").exists()
    # Without sasrec among the models the peer is not needed.
    with pytest.raises(ConfigError, match="no config"):
        bench_retrieval(["world:tiny"], ["nosuch"], 1, tmp_path / "x", cache=tmp_path)
