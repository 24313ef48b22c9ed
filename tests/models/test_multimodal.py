"""Multimodal items (FeatureMap vector fields) in the target-attention models: the vectors
carry what a model learnt to items no training row had; without them it cannot."""

import numpy as np
import pytest
import torch

from snsrec.models.registry import build_model


def _cluster_world(n_items=200, clusters=8, dim=4, seed=0):
    """A FeatureMap with a vector field ``item`` (each item's vector: its cluster's centre plus
    noise) and a history ``hist`` over it; ``arrays(lo, hi)`` clicks at ±3 log-odds by
    whether the target's cluster is among the history's, items drawn from [lo, hi)."""
    from snsrec.data.features import FeatureMap, FeatureSpec, SequenceSpec, VectorSpec, Vocab

    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n_items)
    centres = rng.normal(size=(clusters, dim)) * 3
    vectors = np.zeros((n_items + 2, dim), np.float32)
    vectors[2:] = centres[cluster] + rng.normal(size=(n_items, dim)) * 0.3
    spec = FeatureSpec(categorical=[], numeric=[], multi=[], text=[], labels=["click"],
                       vectors=[VectorSpec(name="item", path="unused.parquet")],
                       sequences=[SequenceSpec(name="hist", max_len=4, share_vocab_with="item")])
    fmap = FeatureMap(spec, {"item": Vocab("int", list(range(n_items)))}, {},
                      {"item": vectors})

    def arrays(lo, hi, n, s):
        r = np.random.default_rng(s)
        item = r.integers(lo, hi, n)
        hist = r.integers(lo, hi, (n, 4))
        inside = (cluster[hist] == cluster[item][:, None]).any(1)
        click = r.random(n) < 1 / (1 + np.exp(-np.where(inside, 3.0, -3.0)))
        return {"item": (item + 2).astype(np.int32), "hist": (hist + 2).astype(np.int32),
                "click": click.astype(np.float32)}
    return fmap, arrays


@pytest.mark.parametrize("multimodal", [True, False])
@pytest.mark.parametrize("name", ["qin", "din"])
def test_multimodal_items_carry_to_items_never_trained(name, multimodal, tmp_path):
    from snsrec.data.batches import TensorBatches
    from snsrec.eval.metrics import auc
    from snsrec.train.trainer import TrainConfig, Trainer

    fmap, arrays = _cluster_world()
    torch.manual_seed(0)
    model = build_model(name, fmap, embedding_dim=8, multimodal=multimodal)
    assert len(model.items.projections) == int(multimodal)
    train, valid = arrays(0, 100, 6000, 1), arrays(0, 100, 1000, 2)
    trainer = Trainer(TrainConfig(epochs=8, batch_size=256, lr=1e-2, early_stop_patience=2,
                                  threads=1))
    trainer.fit(model, TensorBatches(train, 256, shuffle=True), valid)
    unseen = arrays(100, 200, 2000, 3)              # items no training row had
    score = auc(unseen["click"], trainer.predict(model, unseen))
    if multimodal:
        assert score > 0.8, (name, score)
        from snsrec.runs import load_run, save_run

        save_run(tmp_path / "run", model, fmap, {"note": name}, {})
        assert (tmp_path / "run" / "feature_map.vectors.npz").is_file()
        back = load_run(tmp_path / "run").model
        np.testing.assert_array_equal(trainer.predict(back, unseen),
                                      trainer.predict(model, unseen))
    else:
        assert score < 0.65, (name, score)
