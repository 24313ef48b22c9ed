"""The trainer: early stopping with best-state restore, determinism, run directories."""

import json
import math

import pytest
import torch
from pydantic import ValidationError

from snsrec.data.batches import TensorBatches
from snsrec.errors import ModelError
from snsrec.models.registry import build_model
from snsrec.train.losses import LOSSES
from snsrec.train.trainer import TrainConfig, Trainer


def _inputs(arrays):
    return {k: v for k, v in arrays.items() if not k.startswith("_")}


def _fit(toy, train, valid, **cfg):
    torch.manual_seed(0)
    model = build_model("lr", toy.ToyFeatureMap(), fields=["note_id", "quality"])
    config = TrainConfig(batch_size=128, lr=0.05, seed=3, **cfg)
    trainer = Trainer(config)
    fit = trainer.fit(model, TensorBatches(_inputs(train), 128, shuffle=True, seed=3), valid)
    return model, fit, trainer


def test_early_stop_restores_the_best_epoch(toy):
    train = toy.toy_arrays(3000, 1)
    valid = toy.toy_arrays(1000, 2)
    valid["click"] = 1.0 - valid["click"]   # valid disagrees with train: epoch 1 is the best
    model, fit, trainer = _fit(toy, train, valid, epochs=10, early_stop_patience=2)
    assert fit["best_epoch"] == 1 and fit["epochs_run"] == 3 and fit["stopped_early"]
    aucs = [h["valid_auc"] for h in fit["history"]]
    assert aucs[0] == max(aucs) and len(fit["history"]) == 3
    # The restored weights are exactly epoch 1's: compare with a 1-epoch run.
    one, _, _ = _fit(toy, train, valid, epochs=1)
    for (k, v), (_, w) in zip(model.state_dict().items(), one.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    assert trainer.evaluate(model, valid)["auc"] == pytest.approx(aucs[0], abs=1e-12)


def test_same_seed_same_metrics(toy):
    train, valid = toy.toy_arrays(3000, 1), toy.toy_arrays(1000, 2)
    _, a, _ = _fit(toy, train, valid, epochs=2)
    _, b, _ = _fit(toy, train, valid, epochs=2)
    strip = [{k: v for k, v in h.items() if "time" not in k and "per_s" not in k}
             for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if "time" not in k and "per_s" not in k}
                     for h in b["history"]]


def test_evaluate_reports_gauc_and_scenarios(toy):
    train, valid = toy.toy_arrays(3000, 1), toy.toy_arrays(1000, 2)
    model, _, trainer = _fit(toy, train, valid, epochs=1)
    m = trainer.evaluate(model, valid)
    assert {"auc", "gauc", "logloss", "calibration", "n", "ctr", "by_scenario"} <= set(m)
    assert set(m["by_scenario"]) == {"feed", "search", "discover", "ads"}
    assert sum(v["n"] for v in m["by_scenario"].values()) == 1000


def test_rows_without_a_scenario_get_no_scenario_table():
    """ML-1M and BARS have a null scenario column (-1): no "ads" row of their metrics."""
    import numpy as np

    from snsrec.eval.protocols import evaluate_predictions

    y = np.array([0, 1, 0, 1, 1, 0], np.float32)
    p = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.4])
    none = evaluate_predictions({"click": y, "_scenario": np.full(6, -1, np.int8)}, p)
    assert "by_scenario" not in none and none["auc"] == pytest.approx(8 / 9)
    some = evaluate_predictions({"click": y, "_scenario": np.array([-1, 0, 0, 3, 3, 3])}, p)
    assert set(some["by_scenario"]) == {"feed", "ads"}
    assert some["by_scenario"]["ads"]["auc"] == pytest.approx(0.5)     # 0.8 > 0.4 > 0.3
    assert some["by_scenario"]["feed"]["n"] == 2


def test_model_without_parameters_is_refused(toy):
    pop = build_model("popularity", toy.ToyFeatureMap())
    with pytest.raises(ModelError, match="no trainable parameters"):
        Trainer(TrainConfig(epochs=1)).fit(pop, TensorBatches(_inputs(toy.toy_arrays(10, 0)), 4),
                                           toy.toy_arrays(10, 1))


def test_the_loss_is_a_registered_one():
    assert {"bce", "esmm", "click_cvr", "window_nce", "next_item_ce"} <= set(LOSSES)
    assert TrainConfig().loss == "bce" and TrainConfig(loss="esmm").loss == "esmm"
    with pytest.raises(ValidationError, match=f"'bcee' is not a loss; use {', '.join(LOSSES)}"):
        TrainConfig(loss="bcee")


def test_embedding_l2_is_the_embedding_groups_decay(toy):
    from snsrec.train.optim import param_groups

    model = build_model("lr", toy.ToyFeatureMap())
    groups = param_groups(model, TrainConfig(embedding_l2=1e-3, weight_decay=1e-5))
    by = {g["name"]: g for g in groups}
    assert by["embedding"]["weight_decay"] == 1e-3 and by["dense"]["weight_decay"] == 1e-5
    n_emb = sum(p.numel() for p in by["embedding"]["params"])
    assert n_emb == sum(t.weight.numel() for t in model.embedding.tables.values())


def test_embedding_and_dense_groups_have_their_own_lr(toy):
    from snsrec.train.optim import make_optimizer

    model = build_model("lr", toy.ToyFeatureMap())
    opt = make_optimizer(model, TrainConfig(lr=1e-3, embedding_lr=5e-2))
    assert {g["name"]: g["lr"] for g in opt.param_groups} == {"embedding": 5e-2, "dense": 1e-3}


@pytest.mark.parametrize("schedule,expect", [
    ("none", [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]),
    # 2 steps per epoch: x0.5 per epoch on top of the warmup.
    ("step", [0.25, 0.5, 0.375, 0.5, 0.25, 0.25, 0.125, 0.125]),
    # cosine over the 4 steps after warmup: 1, cos^2(pi/8), 1/2, sin^2(pi/8).
    ("cosine", [0.25, 0.5, 0.75, 1.0, 1.0, math.cos(math.pi / 8) ** 2, 0.5,
                math.sin(math.pi / 8) ** 2]),
])
def test_schedule_warmup_then_decay(toy, schedule, expect):
    from snsrec.train.optim import make_optimizer
    from snsrec.train.trainer import LRSchedule

    cfg = TrainConfig(lr=1.0, epochs=4, schedule=schedule, warmup_steps=4, lr_gamma=0.5)
    opt = make_optimizer(build_model("lr", toy.ToyFeatureMap()), cfg)
    sched = LRSchedule(opt, cfg, steps_per_epoch=2)
    assert [sched.factor(s, s // 2) for s in range(8)] == pytest.approx(expect, abs=1e-12)


def test_plateau_decays_after_patience_and_round_trips(toy):
    from snsrec.train.optim import make_optimizer
    from snsrec.train.trainer import LRSchedule

    cfg = TrainConfig(lr=1.0, schedule="plateau", plateau_patience=2, lr_gamma=0.1)
    opt = make_optimizer(build_model("lr", toy.ToyFeatureMap()), cfg)
    sched = LRSchedule(opt, cfg, steps_per_epoch=1)
    for score in (0.7, 0.69, 0.68):
        sched.end_epoch(score)
    assert sched.factor(10, 3) == pytest.approx(0.1)
    other = LRSchedule(opt, cfg, steps_per_epoch=1)
    other.load_state_dict(json.loads(json.dumps(sched.state_dict())))
    assert other.state_dict() == sched.state_dict()


def test_grad_clip_bounds_the_update(toy):
    train, valid = toy.toy_arrays(3000, 1), toy.toy_arrays(1000, 2)
    _, fit, _ = _fit(toy, train, valid, epochs=1, grad_clip=1e-6)
    _, free, _ = _fit(toy, train, valid, epochs=1)
    # Adam normalises the step size, so clipping shows in the loss only through the
    # direction; both must still train without diverging.
    assert math.isfinite(fit["history"][0]["train_loss"]) and fit["history"] != free["history"]


def test_precision_is_fp32_or_bf16():
    assert TrainConfig().precision == "fp32"
    assert TrainConfig(precision="bf16").autocast().fast_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def test_a_failed_fit_leaves_the_embeddings_dense_again(toy):
    from snsrec.train.optim import embedding_modules

    model = build_model("lr", toy.ToyFeatureMap(), fields=["note_id", "quality"])
    assert not any(m.sparse for m in embedding_modules(model))
    train = toy.toy_arrays(500, 1)
    valid = toy.toy_arrays(200, 2)
    del valid["click"]                                  # evaluation fails after epoch 1
    with pytest.raises(KeyError):
        Trainer(TrainConfig(epochs=1, batch_size=128)).fit(
            model, TensorBatches(_inputs(train), 128), valid)
    assert not any(m.sparse for m in embedding_modules(model))


def test_wide_id_rows_evaluate_in_smaller_batches():
    """Eval batches hold at most EVAL_IDS sequence / multi-valued ids (DIN at 200 behaviours
    and 65,536 rows a batch took 20 GB); narrow rows keep ``eval_batch_size``."""
    import numpy as np

    from snsrec.train.trainer import EVAL_IDS, eval_rows_per_batch

    narrow = {"a": np.zeros(10, np.int32), "tags": np.zeros((10, 5), np.int32),
              "x": np.zeros((10, 384), np.float32)}            # a vector field is not ids
    wide = {"a": np.zeros(10, np.int32), "hist": np.zeros((10, 1000), np.int32),
            "hist_category": np.zeros((10, 1000), np.int64)}
    assert eval_rows_per_batch(narrow, 65536) == 65536
    assert eval_rows_per_batch(wide, 65536) == EVAL_IDS // 2000
    assert eval_rows_per_batch(wide, 512) == 512
