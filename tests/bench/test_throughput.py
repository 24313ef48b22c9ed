"""`snsrec bench throughput` at toy size: structure of the JSON / Markdown, peers really run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from snsrec.bench.peers import PEERS, CtrArrays, ctr_arrays_from_features, run_peer
from snsrec.bench.throughput import (
    bench_throughput,
    build_table,
    flops_per_sample,
    linear_shapes,
    run_snsrec,
)
from snsrec.errors import ConfigError, DataError


def toy_arrays(n_train: int = 4000, n_test: int = 2000, seed: int = 0) -> CtrArrays:
    """Three fields; the click depends on field a and on the a×b cross (LR-unfriendly)."""
    rng = np.random.default_rng(seed)
    vocab = {"a": 12, "b": 9, "c": 30}

    def split(n: int) -> dict[str, np.ndarray]:
        d = {k: rng.integers(2, v, n).astype(np.int32) for k, v in vocab.items()}
        logit = 1.5 * (d["a"] % 2 == 0) + 2.0 * ((d["a"] + d["b"]) % 3 == 0) - 1.5
        d["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
        return d

    return CtrArrays(split(n_train), split(n_test), vocab)


def test_bench_throughput_runs_every_library_and_writes_json_and_markdown(
        tmp_path: Path, tiny_world: Path) -> None:
    out = tmp_path / "bench"
    res = bench_throughput(out, rows=3000, seeds=1, peers=list(PEERS), models=["deepfm"],
                           world=str(tiny_world), movielens=None, cache=tmp_path / "cache")
    saved = json.loads((out / "throughput.json").read_text())
    md = (out / "throughput.md").read_text()
    assert md == res["markdown"]
    assert saved["libraries"] == ["snsrec", "snsrec-bf16", *PEERS]
    (data,) = saved["data"]
    assert data["name"] == "world" and data["fields"] == 39 and data["rows"] == 3000
    assert data["train_rows"] + data["test_rows"] == 3000 and data["test_rows"] > 0
    rows = {r["library"]: r for r in saved["results"]}
    assert set(rows) == {"snsrec", "snsrec-bf16", *PEERS}
    for lib, r in rows.items():
        assert 0.0 <= r["test_auc"] <= 1.0, lib
        assert math.isfinite(r["test_logloss"]) and r["params"] > 0, lib
        assert r["train_samples_per_s"] > 0 and r["infer_samples_per_s"] > 0, lib
        assert 0 < r["peak_rss_gb"] < 64 and r["train_roofline_share"] > 0, lib
        assert f"| world | deepfm | {lib} |" in md
    # Each library trained its own model: different sizes, different predictions.
    assert len({r["params"] for r in rows.values()}) == 3
    assert rows["snsrec"]["params"] == rows["snsrec-bf16"]["params"]
    assert len({round(r["test_logloss"], 9) for r in rows.values()}) == 4
    assert [v["library"] for v in saved["verdicts"]] == ["snsrec", "snsrec-bf16"]
    for v in saved["verdicts"]:
        assert v["train_vs"] in PEERS and v["train_ratio"] > 0
        assert isinstance(v["meets_target"], bool)
    assert saved["roofline"]["world/deepfm/fp32"]["gflops"] > 0
    assert saved["roofline"]["world/deepfm/bf16"]["gflops"] > 0
    assert "Roofline" in md and "train ×" in md


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("model", ["deepfm", "dcnv2"])
def test_peer_learns_the_toy_problem_on_our_arrays(peer: str, model: str) -> None:
    data = toy_arrays()
    r = run_peer(peer, model, data, embedding_dim=4, mlp=(16, 16), batch_size=256, epochs=3,
                 lr=3e-3, seed=1)
    assert r["library"] == peer and r["model"] == model
    assert r["train_rows"] == 4000 and r["test_rows"] == 2000
    assert r["test_auc"] > 0.6, r


def test_snsrec_side_uses_the_same_arrays_and_learns() -> None:
    r = run_snsrec("dcnv2", toy_arrays(), embedding_dim=4, mlp=(16, 16), batch_size=256,
                   epochs=3, lr=3e-3, seed=1)
    assert r["library"] == "snsrec" and r["test_rows"] == 2000
    assert r["test_auc"] > 0.6, r


def test_movielens_table_has_the_bars_fields(tmp_path: Path) -> None:
    arrays, info = build_table("ml-1m", "recbole:ml-1m", 3000, tmp_path / "cache")
    assert arrays.fields == ["user_id", "item_id", "gender", "age", "occupation", "zip", "genres"]
    assert info["train_rows"] + info["test_rows"] == 3000
    for split in (arrays.train, arrays.test):
        assert set(np.unique(split["label"])) <= {0.0, 1.0}
        for f, v in arrays.vocab_sizes.items():
            assert split[f].dtype == np.int32 and split[f].min() >= 0 and split[f].max() < v


def test_arrays_round_trip_through_npy(tmp_path: Path) -> None:
    data = toy_arrays(50, 20)
    data.save(tmp_path)
    back = CtrArrays.load(tmp_path)
    assert back.vocab_sizes == data.vocab_sizes
    for split in ("train", "test"):
        for k, v in getattr(data, split).items():
            np.testing.assert_array_equal(getattr(back, split)[k], v)


def test_ctr_arrays_take_categorical_fields_only() -> None:
    from snsrec.data.features import Field

    class FMap:
        fields = [Field("u", "categorical", 5), Field("x", "numeric")]

    arrays = {"u": np.array([2, 3], np.int32), "x": np.array([0.5, 1.0], np.float32),
              "click": np.array([0, 1], np.float32), "_user_id": np.array([7, 8])}
    got = ctr_arrays_from_features(arrays, arrays, FMap())
    assert got.fields == ["u"] and got.vocab_sizes == {"u": 5}
    assert list(got.train) == ["u", "label"]
    with pytest.raises(DataError, match="'x' is of kind 'numeric'"):
        ctr_arrays_from_features(arrays, arrays, FMap(), fields=["x"])


def test_flops_per_sample_matches_the_issue_figure() -> None:
    # DeepFM on 39 fields × 16: ≈ 3.4 MFLOP per sample forward + backward.
    fl = flops_per_sample(linear_shapes("deepfm", 39))
    assert fl["train"] == pytest.approx(3.42e6, rel=0.01)
    assert fl["infer"] == pytest.approx(fl["train"] / 3)
    assert flops_per_sample(linear_shapes("dcnv2", 39))["train"] > 2.5 * fl["train"]


def test_bad_peer_or_model_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown peer 'deepctr'.*deepctr-torch"):
        bench_throughput(tmp_path / "b", rows=1000, seeds=1, peers=["deepctr"])
    with pytest.raises(ConfigError, match=r"precision\(s\) \['fp16'\] unknown"):
        bench_throughput(tmp_path / "b", rows=1000, seeds=1, peers=[], precisions=["fp16"])
    with pytest.raises(ConfigError, match="unknown model 'xdeepfm'"):
        bench_throughput(tmp_path / "b", rows=1000, seeds=1, peers=[], models=["xdeepfm"])
    assert not (tmp_path / "b").exists()
