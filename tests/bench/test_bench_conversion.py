"""`snsrec bench conversion` on the tiny world: the table, the truth metrics, reuse, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from snsrec.bench.conversion import bench_conversion, truth_metrics
from snsrec.errors import ConfigError
from snsrec.progress import set_quiet

FAST = ["train.epochs=1", "train.threads=1"]


def test_entire_space_table_truth_and_reuse(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_conversion(["world:tiny"], ["esmm", "esmm_naive"], 1, tmp_path / "b",
                           overrides=FAST, cache=cache)
    block = res["results"]["data"]["world_tiny"]
    assert [r["variant"] for r in block["leaderboard"]] == ["esmm", "esmm_naive"]
    for r in block["runs"]:
        assert 0 < r["conversions"] <= r["clicks"] < r["rows"]
        for key in ("auc", "cvr_auc", "cvr_auc_entire", "ctcvr_auc", "ctr_auc_truth"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
    assert block["target"]["metric"] == "cvr_auc_entire"
    _check_references(res, cache)
    assert "CVR AUC (all, vs truth)" in res["markdown"] and "Target — esmm" in res["markdown"]
    saved = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    assert saved["data"]["world_tiny"]["runs"] == block["runs"]
    # the truth metrics recomputed from the saved run agree with the record
    from snsrec.bench.conversion import resolve

    run_dir = tmp_path / "b" / "runs" / "world_tiny" / "esmm" / "seed0"
    again = truth_metrics(resolve("esmm", "world:tiny", 0, FAST, cache), run_dir)
    assert np.isclose(again["cvr_auc_entire"], block["runs"][0]["cvr_auc_entire"])
    stamp = run_dir / "bench.json"
    before = stamp.stat().st_mtime_ns
    again = bench_conversion(["world:tiny"], ["esmm"], 1, tmp_path / "b", overrides=FAST,
                             cache=cache)
    assert stamp.stat().st_mtime_ns == before                      # reused, not retrained
    # The reference rows need no run: the rebuilt board has them, the same.
    assert again["results"]["data"]["world_tiny"]["references"] == block["references"]


def _check_references(res, cache):
    """The oracle and constant rows: the world's own probabilities, AUC 0.5, the shares."""
    from sklearn.metrics import roc_auc_score

    from snsrec.bench.conversion import COLUMNS, resolve
    from snsrec.data.world.usermodel import UserModel
    from snsrec.train.pipeline import prepare_data

    block = res["results"]["data"]["world_tiny"]
    refs = {r["variant"]: r for r in block["references"]}
    assert list(refs) == ["oracle", "constant"]
    oracle, const = refs["oracle"], refs["constant"]
    # The oracle's scores are the world's own probabilities of the test rows.
    data = prepare_data(resolve("esmm", "world:tiny", 0, FAST, cache))
    test = data.arrays["test"]
    truth = UserModel.load(data.root).probabilities(
        test["_user_id"], test["_note_id"], test["_scenario"], test["_position"], test["_ts"])
    assert oracle["auc"][0] == pytest.approx(roc_auc_score(test["click"], truth["click"]))
    clicked = test["click"] > 0
    assert oracle["cvr_auc"][0] == pytest.approx(
        roc_auc_score(test["convert"][clicked], truth["convert"][clicked]))
    # Against the true probabilities nothing ranks better than they do themselves.
    for r in block["runs"]:
        assert r["cvr_auc_entire"] <= oracle["cvr_auc_entire"][0]
    assert [const[m][0] for m in COLUMNS] == pytest.approx([0.5] * 4)   # a constant ranks nothing
    for r in [*block["leaderboard"], *block["references"]]:
        for m in COLUMNS:
            assert r[f"{m}_share"] == pytest.approx((r[m][0] - 0.5) / (oracle[m][0] - 0.5))
    assert (oracle["cvr_auc_entire_share"], const["cvr_auc_entire_share"]) == pytest.approx((1, 0))
    assert f"| *oracle* | {oracle['auc'][0]:.4f} (100.0%) |" in res["markdown"]
    assert "| *constant* | 0.5000 (0.0%) |" in res["markdown"]


def test_needs_a_world_and_a_known_variant(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    with pytest.raises(ConfigError, match="world:PRESET"):
        bench_conversion(["recbole:ml-1m"], ["esmm"], 1, tmp_path / "x", cache=cache)
    with pytest.raises(ConfigError, match="no config .*'dien'.*esmm_naive"):
        bench_conversion(["world:tiny"], ["dien"], 1, tmp_path / "x", cache=cache)
    assert not (tmp_path / "x").exists()
