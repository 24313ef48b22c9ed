"""AdSEE: the predictor over note vectors (with its position tower), cover edits that stay in
bounds and raise the predicted rate, the CLI, and the truth-judged bench on a tiny world whose
covers draw clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snsrec.errors import ModelError
from snsrec.models.registry import build_model


def test_the_predictor_its_position_tower_and_bad_settings(toy):
    torch.manual_seed(0)
    model = build_model("adsee", toy.vector_feature_map()).eval()
    batch = {"note_vec": torch.tensor([2, 3, 3]), "position": torch.tensor([2, 2, 4])}
    with torch.no_grad():
        model.position_bias.weight[4] = 1.0
        out = model(batch)["logit"]
    assert out.shape == (3,) and out[2] - out[1] == pytest.approx(1.0)  # only the slot differs
    with pytest.raises(ModelError, match="no vector field"):
        build_model("adsee", toy.vector_feature_map(), vector="nope")
    with pytest.raises(ModelError, match="cover_dims 20"):
        build_model("adsee", toy.vector_feature_map(), cover_dims=20)


def test_suggested_edits_stay_in_bounds_and_raise_the_prediction(toy):
    from snsrec.adsee import suggest

    torch.manual_seed(0)
    model = build_model("adsee", toy.vector_feature_map())
    model.model_name = "adsee"
    rows = np.arange(2, 12)
    out = suggest(model, rows, max_change=0.2, steps=30, lr=0.05)
    assert len(out) == 10
    for s in out:
        assert (np.abs(s["cover"] - s["original"]) <= 0.2 + 1e-6).all()
        assert ((s["cover"] >= 0) & (s["cover"] <= 1)).all()
        assert s["predicted_after"] >= s["predicted_before"]
        moved = [e["field"] for e in s["edits"]]
        assert len(moved) == len(set(moved))
        deltas = [abs(e["to"] - e["from"]) for e in s["edits"]]
        assert all(a >= b - 1e-6 for a, b in zip(deltas, deltas[1:], strict=False))
    assert any(s["predicted_after"] > s["predicted_before"] + 1e-4 for s in out)


def test_the_bench_on_a_world_whose_covers_draw_clicks(tmp_path, capsys):
    from snsrec.adsee import bench_adsee
    from snsrec.cli import main
    from snsrec.data.world.generate import generate_world
    from snsrec.errors import ConfigError
    from snsrec.progress import set_quiet

    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    world = tmp_path / "w"
    generate_world("small", 7, world, overrides=["click.w_cover=3.0", "n_users=400",
                                                 "n_notes=2000", "n_events=80000"])
    res = bench_adsee(str(world), tmp_path / "b", backbone="hash",
                      overrides=["train.threads=1"], cache=tmp_path / "cache")["results"]
    assert res["ads"] > 10 and res["impressions"] >= res["ads"]
    assert res["median_uplift"] > 0 and res["share_improved"] > 0.5, res
    assert res["true_ctr_after"] > res["true_ctr_before"]
    assert res["median_uplift"] > res["random_median_uplift"]       # better than a random retouch
    run = tmp_path / "b" / "runs" / "w" / "seed0"
    with pytest.raises(SystemExit) as e:
        main(["--quiet", "adsee", "suggest", str(run), "--note", "-5"])
    assert e.value.code == 2 and "no such note" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="world:covers"):
        bench_adsee("recbole:ml-1m", tmp_path / "x")
