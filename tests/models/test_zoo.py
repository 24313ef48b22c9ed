"""The CTR zoo, every trained model of the registry's ranking family: a float32 logit
under bf16 autocast, save/load round trip, and learning a two-field interaction (the parity
of a + b) that LR cannot fit. Their shapes and gradients: test_families.py.

The cases are read from the registry, so a new ranking model is covered without editing
this file.
"""

import inspect

import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.eval.metrics import auc
from snsrec.models.registry import build_model, get_model_class, list_models
from snsrec.runs import load_run, save_run
from snsrec.train.trainer import TrainConfig, Trainer

# Models this file's authors ship; they must stay registered.
REQUIRED = {"lr", "fm", "deepfm", "dcnv2", "autoint", "autoint_plus", "gdcn"}
# Ranking models counted by ``fit``, not trained: test_popularity.py.
FITTED = {"popularity"}
# Structural variants worth their own case.
VARIANTS = [("dcnv2", {"structure": "stacked"}), ("dcnv2", {"low_rank": 8, "num_experts": 2}),
            ("gdcn", {"structure": "stacked"})]


def _ranking_models() -> list[str]:
    """The trained ranking models that build on any feature map (not those that ``require``
    more, e.g. AdSEE's vector field: tests/test_adsee.py)."""
    return [n for n in list_models(family="ranking")
            if n not in FITTED and not getattr(get_model_class(n), "requires", None)]


def _cases(include_lr: bool = True):
    names = [n for n in _ranking_models() if include_lr or n != "lr"]
    cases = [(n, {}) for n in names] + [v for v in VARIANTS if v[0] in names]
    return [pytest.param(n, p, id=n + "".join(f"-{k}={v}" for k, v in p.items()))
            for n, p in cases]


def _inputs(arrays):
    return {k: v for k, v in arrays.items() if not k.startswith("_")}


def test_required_models_are_registered():
    assert set(_ranking_models()) >= REQUIRED


@pytest.mark.parametrize(("name", "params"), _cases())
def test_logit_stays_float32_under_bf16_autocast(toy, name, params):
    # train.precision=bf16 runs the forward under autocast; the logit layer stays float32,
    # so predictions are not rounded to bf16's 8-bit mantissa (ties would cost AUC).
    torch.manual_seed(0)
    model = build_model(name, toy.cross_feature_map(), **small(name, params)).eval()
    batch = to_tensors(toy.cross_arrays(64, 3))
    with torch.no_grad():
        exact = model(batch)["logit"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(batch)["logit"]
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=0.05, atol=0.05)


@pytest.mark.parametrize(("name", "params"), _cases())
def test_save_load_round_trip(toy, tmp_path, name, params):
    fmap = toy.cross_feature_map()
    torch.manual_seed(1)
    model = build_model(name, fmap, **params)
    with torch.no_grad():                 # move every weight off its initial value
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.eval()
    save_run(tmp_path / "run", model, fmap, {"note": "zoo"}, {"auc": 0.5})
    run = load_run(tmp_path / "run")
    assert type(run.model) is type(model) and run.model.model_params == params
    batch = to_tensors(toy.cross_arrays(50, 2))
    with torch.no_grad():
        torch.testing.assert_close(run.model(batch)["logit"], model(batch)["logit"],
                                   rtol=0, atol=0)


def small(name, params):
    """``params`` plus small sizes for the toy (8-dim embeddings, 64-64 MLPs): fast tests."""
    cls = get_model_class(name)
    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}
    out = {"embedding_dim": 8} if "embedding_dim" in defaults else {}
    out.update({k: [64, 64] for k, v in defaults.items()
                if k.endswith("hidden_units") and isinstance(v, (tuple, list)) and v})
    if "attention_dim" in defaults:
        out["attention_dim"] = 8
    if "channels" in defaults:          # FGCNN: two small conv blocks for a 2-field toy
        out.update(channels=[6, 8], kernel_heights=[3, 3], pooling_sizes=[2, 2],
                   recombined_channels=[2, 2])
    return {**out, **params}


def _fit_auc(toy, name, params, seed=0, precision="fp32"):
    fmap = toy.cross_feature_map()
    train, valid = toy.cross_arrays(4000, 10 + seed), toy.cross_arrays(1500, 20 + seed)
    torch.manual_seed(seed)
    model = build_model(name, fmap, **small(name, params))
    trainer = Trainer(TrainConfig(epochs=6, batch_size=256, lr=1e-2, early_stop_patience=2,
                                  seed=seed, precision=precision))
    trainer.fit(model, TensorBatches(_inputs(train), 256, shuffle=True, seed=seed), valid)
    return auc(valid["click"], trainer.predict(model, valid))


@pytest.fixture(scope="module")
def lr_auc(toy):
    return _fit_auc(toy, "lr", {})


def test_lr_cannot_fit_the_interaction(lr_auc):
    assert lr_auc < 0.6


@pytest.mark.parametrize(("name", "params"), _cases(include_lr=False))
def test_learns_a_two_field_interaction(toy, lr_auc, name, params):
    score = _fit_auc(toy, name, params)
    assert np.isfinite(score)
    assert score > 0.8 and score > lr_auc + 0.15, f"{name} {params}: AUC {score:.3f}"


@pytest.mark.parametrize("name", ["deepfm", "dcnv2"])
def test_bf16_training_learns_the_interaction_too(toy, lr_auc, name):
    fp32 = _fit_auc(toy, name, {})
    bf16 = _fit_auc(toy, name, {}, precision="bf16")
    assert bf16 > lr_auc + 0.15 and bf16 > fp32 - 0.02, f"{name}: bf16 {bf16:.3f}, fp32 {fp32:.3f}"
