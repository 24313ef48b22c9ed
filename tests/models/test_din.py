"""DIN: target attention learns "is the candidate in the history", which LR cannot; padding
gets no weight; the weights are not normalised; bad sequence choices are one-line errors."""

import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.errors import ModelError
from snsrec.eval.metrics import auc
from snsrec.models.registry import build_model
from snsrec.train.trainer import TrainConfig, Trainer


def _membership(toy, n, seed):
    """The toy's arrays with clicks at log-odds ±3 by whether c (the target of ``hist``, which
    holds c's ids) is among the user's history ids; every field alone is uninformative."""
    arrays = toy.cross_arrays(n, seed)
    rng = np.random.default_rng(seed + 100)
    inside = (arrays["hist"] == arrays["c"][:, None]).any(1)
    logit = np.where(inside, 3.0, -3.0)
    arrays["click"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return arrays


def _fit(toy, name, **params):
    torch.manual_seed(0)
    model = build_model(name, toy.cross_feature_map(), **params)
    train, valid = _membership(toy, 6000, 1), _membership(toy, 2000, 2)
    trainer = Trainer(TrainConfig(epochs=8, batch_size=256, lr=1e-2, early_stop_patience=2,
                                  threads=1))
    trainer.fit(model, TensorBatches({k: v for k, v in train.items() if not k.startswith("_")},
                                     256, shuffle=True), valid)
    return auc(valid["click"], trainer.predict(model, valid))


def test_din_learns_whether_the_target_is_in_the_history(toy):
    lr = _fit(toy, "lr")
    din = _fit(toy, "din", embedding_dim=8, hidden_units=[32])
    assert lr < 0.6 and din > 0.85, (lr, din)


def test_padding_gets_no_weight_and_the_weights_are_not_normalised(toy):
    torch.manual_seed(0)
    model = build_model("din", toy.cross_feature_map(), embedding_dim=8).eval()
    assert [s.name for s, _ in model.sequences] == ["hist"]
    assert [t.name for _, t in model.sequences] == ["c"]
    batch = to_tensors(toy.cross_arrays(6, 0))
    batch["hist"] = torch.tensor([[3, 0, 0, 0]] * 3 + [[0, 0, 0, 0]] * 3, dtype=torch.int32)
    with torch.no_grad():
        emb = model.embedding(batch)
        one = model.interests(batch, emb)[:, 0]
        batch["hist"][:3, 1] = 3                  # the same behaviour twice: twice the sum
        two = model.interests(batch, emb)[:, 0]
    torch.testing.assert_close(two[:3], 2 * one[:3])
    assert one[3:].abs().max() == 0                 # no history pools to zeros
    assert model(batch)["logit"].shape == (6,)


def test_bad_sequence_choices_are_errors(toy):
    fmap = toy.cross_feature_map()
    with pytest.raises(ModelError, match="'a' is not a sequence field"):
        build_model("din", fmap, sequences=["a"])
    with pytest.raises(ModelError, match="no target field"):
        build_model("din", fmap, sequences=["hist"], fields=["a", "b", "hist"])
    with pytest.raises(ModelError, match="activation 'dice' needs the layer width"):
        from snsrec.models.layers import make_activation
        make_activation("dice")
