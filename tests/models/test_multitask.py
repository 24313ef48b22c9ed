"""Click → conversion models (esmm, mmoe) and their losses: shapes, round trip, the losses by
hand, and both heads learning their task through the shared trainer's multi-task metrics."""

import math

import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.errors import ModelError
from snsrec.eval.metrics import auc
from snsrec.models.registry import build_model
from snsrec.runs import load_run, save_run
from snsrec.train.losses import LOSSES
from snsrec.train.trainer import TrainConfig, Trainer

MODELS = [("esmm", {"hidden_units": [32]}),
          ("mmoe", {"num_experts": 3, "expert_units": [32], "tower_units": [16]})]


@pytest.mark.parametrize(("name", "params"), MODELS)
def test_two_heads_shapes_and_round_trip(toy, tmp_path, name, params):
    torch.manual_seed(0)
    model = build_model(name, toy.cross_feature_map(), embedding_dim=8, **params).eval()
    batch = to_tensors(toy.conversion_arrays(9, 0))
    out = model(batch)
    assert set(out) == {"logit", "cvr_logit"}
    assert out["logit"].shape == out["cvr_logit"].shape == (9,)
    save_run(tmp_path / "run", model, toy.cross_feature_map(), {"note": name}, {})
    back = load_run(tmp_path / "run").model
    for key in out:
        torch.testing.assert_close(back(batch)[key], out[key], rtol=0, atol=0)
    if name == "mmoe":
        gates = model.gates(batch)
        assert set(gates) == {"logit", "cvr_logit"}
        torch.testing.assert_close(gates["logit"].sum(1), torch.ones(9))


def test_the_losses_by_hand():
    out = {"logit": torch.tensor([0.0, 2.0, -1.0]), "cvr_logit": torch.tensor([1.0, -1.0, 3.0])}
    batch = {"click": torch.tensor([1.0, 0.0, 1.0]), "convert": torch.tensor([1.0, 0.0, 0.0])}
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    ctr = [sig(0.0), sig(2.0), sig(-1.0)]
    cvr = [sig(1.0), sig(-1.0), sig(3.0)]
    bce = lambda y, p: -(y * math.log(p) + (1 - y) * math.log(1 - p))  # noqa: E731
    l_ctr = np.mean([bce(1, ctr[0]), bce(0, ctr[1]), bce(1, ctr[2])])
    l_ctcvr = np.mean([bce(1, ctr[0] * cvr[0]), bce(0, ctr[1] * cvr[1]),
                       bce(0, ctr[2] * cvr[2])])
    assert float(LOSSES["esmm"](out, batch)) == pytest.approx(l_ctr + l_ctcvr, rel=1e-5)
    # click_cvr: the CVR term only on the clicked rows 0 and 2
    l_cvr = np.mean([bce(1, cvr[0]), bce(0, cvr[2])])
    assert float(LOSSES["click_cvr"](out, batch)) == pytest.approx(l_ctr + l_cvr, rel=1e-5)
    no_click = {"click": torch.zeros(3), "convert": torch.zeros(3)}
    assert float(LOSSES["click_cvr"](out, no_click)) == pytest.approx(
        float(torch.nn.functional.binary_cross_entropy_with_logits(out["logit"], torch.zeros(3))))
    with pytest.raises(ModelError, match="return 'cvr_logit'"):
        LOSSES["esmm"]({"logit": out["logit"]}, batch)
    with pytest.raises(ModelError, match="no label 'convert'"):
        LOSSES["click_cvr"](out, {"click": batch["click"]})


@pytest.mark.parametrize("loss", ["esmm", "click_cvr"])
@pytest.mark.parametrize(("name", "params"), MODELS)
def test_both_heads_learn_through_the_trainer(toy, name, params, loss):
    torch.manual_seed(0)
    model = build_model(name, toy.cross_feature_map(), embedding_dim=8, **params)
    train, valid = toy.conversion_arrays(8000, 1), toy.conversion_arrays(3000, 2)
    trainer = Trainer(TrainConfig(epochs=6, batch_size=256, lr=1e-2, loss=loss,
                                  monitor="ctcvr_auc", early_stop_patience=2, threads=1))
    fit = trainer.fit(model, TensorBatches({k: v for k, v in train.items()
                                            if not k.startswith("_")}, 256, shuffle=True),
                      valid)
    m = fit["valid"]
    assert m["auc"] > 0.75 and m["cvr_auc"] > 0.75 and m["ctcvr_auc"] > 0.75, m
    assert m["clicks"] == int(valid["click"].sum())
    # the CVR head ranks by b's parity on every impression, clicked or not
    p_cvr = trainer.predict_heads(model, valid)["cvr_logit"]
    assert auc(valid["_p_cvr"] > 0.3, p_cvr) > 0.9
