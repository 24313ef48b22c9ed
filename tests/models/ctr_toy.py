"""A CTR problem with one pure pairwise interaction, on a real (saveable) FeatureMap.

The click log-odds are ``±3`` by whether fields ``a`` and ``b`` have the same id
parity (an XOR), with noise fields ``c``, ``d``, a numeric and a multi-valued
field. Every single field's click rate is 0.5 in expectation, so LR cannot beat
AUC 0.5; the Bayes AUC is about 0.95. Shared by the interaction models' tests:
load with ``importlib`` (tests run with ``--import-mode=importlib``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.data.features import (
    CategoricalSpec,
    FeatureMap,
    FeatureSpec,
    MultiSpec,
    NumericSpec,
    Vocab,
)
from snsrec.eval.metrics import auc
from snsrec.models.registry import build_model
from snsrec.runs import load_run, save_run
from snsrec.train.trainer import TrainConfig, Trainer

VOCAB = {"a": 12, "b": 12, "c": 6, "d": 6, "tags": 10}    # real values per field
CROSSED = "a|b"


def feature_map() -> FeatureMap:
    spec = FeatureSpec(
        categorical=[CategoricalSpec(name="a", column="events.user_id"),
                     CategoricalSpec(name="b", column="events.note_id"),
                     CategoricalSpec(name="c", column="notes.category"),
                     CategoricalSpec(name="d", column="users.city")],
        numeric=[NumericSpec(name="x", column="hour_of_day")],
        multi=[MultiSpec(name="tags", column="notes.hashtags", max_len=3)],
        sequences=[], text=[], labels=["click"])
    vocabs = {k: Vocab("int", list(range(v))) for k, v in VOCAB.items()}
    return FeatureMap(spec, vocabs, {"x": {"mean": 0.0, "std": 1.0}})


def arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = {k: rng.integers(2, v + 2, n).astype(np.int32) for k, v in VOCAB.items() if k != "tags"}
    tags = rng.integers(0, VOCAB["tags"] + 2, (n, 3)).astype(np.int32)
    logit = np.where(ids["a"] % 2 == ids["b"] % 2, 3.0, -3.0)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return {**ids, "x": rng.normal(size=n).astype(np.float32), "tags": tags, "click": click}


def fit_auc(model: torch.nn.Module, epochs: int = 6, lr: float = 0.01,
            n_train: int = 6000) -> float:
    """Train on the toy with the shared Trainer; the validation AUC of the best epoch."""
    train, valid = arrays(n_train, 1), arrays(2000, 2)
    # One thread: the toy models are tiny, and on a busy machine threads only wait on each other.
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=256, lr=lr, early_stop_patience=2,
                                  threads=1))
    trainer.fit(model, TensorBatches(train, 256, shuffle=True), valid)
    return auc(valid["click"], trainer.predict(model, valid))


@functools.cache
def lr_auc() -> float:
    torch.manual_seed(0)
    return fit_auc(build_model("lr", feature_map()))


def check_shape(model: torch.nn.Module, n: int = 9) -> None:
    out = model(to_tensors(arrays(n, 3)))
    assert set(out) == {"logit"} and out["logit"].shape == (n,)
    assert torch.isfinite(out["logit"]).all()


def check_round_trip(model: torch.nn.Module, run_dir: Path) -> torch.nn.Module:
    """save_run → load_run rebuilds the model by name and params with identical logits."""
    with torch.no_grad():
        for p in model.parameters():   # random weights: a load that drops any would show
            p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    save_run(run_dir, model, feature_map(), {"test": True}, {"auc": 0.5})
    loaded = load_run(run_dir).model
    batch = to_tensors(arrays(64, 4))
    torch.testing.assert_close(loaded(batch)["logit"], model(batch)["logit"], rtol=0, atol=0)
    return loaded


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
