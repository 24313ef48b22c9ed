"""QIN: ReLU-sparse target attention (padding and unrelated behaviours get exactly zero), the
quadratic layer by hand, and learning whether the candidate is in the history."""

import numpy as np
import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.ranking.qin import QuadraticLayer
from snsrec.models.registry import build_model


def test_sparse_attention_weights(toy):
    torch.manual_seed(0)
    model = build_model("qin", toy.cross_feature_map(), embedding_dim=8).eval()
    (att,) = model.attention
    batch = to_tensors(toy.cross_arrays(64, 0))
    with torch.no_grad():
        emb = model.embedding(batch)
        seq, target = model.sequences[0]
        t = emb[:, model.embedding.field_names.index(target.name)]
        ids = batch["hist"]
        w = att.weights(model.embedding.embed_sequence(seq, ids), t, (ids > 0).float())
        scores = torch.einsum("ba,bla->bl", att.q(t),
                              att.k(model.embedding.embed_sequence(seq, ids))) * att.scale
    assert (w >= 0).all() and (w[ids == 0] == 0).all()
    assert ((w == 0) == ((scores <= 0) | (ids == 0))).all()     # zero exactly where unrelated
    assert (w > 0).any() and (w == 0).any()


def test_quadratic_layer_by_hand():
    layer = QuadraticLayer(3, rows=2)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    with torch.no_grad():
        h = layer.linear(x).view(2, 3)
    torch.testing.assert_close(layer(x), x * (h[0] + h[1]))


def test_qin_learns_whether_the_target_is_in_the_history(toy):
    lr = toy.fit_membership_auc("lr")
    qin = toy.fit_membership_auc("qin", embedding_dim=8)
    assert lr < 0.6 and qin > 0.8, (lr, qin)
    with pytest.raises(ModelError, match="layers"):
        build_model("qin", toy.cross_feature_map(), layers=0)


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
def test_multimodal_items_carry_to_items_never_trained(multimodal):
    from snsrec.data.batches import TensorBatches
    from snsrec.eval.metrics import auc
    from snsrec.train.trainer import TrainConfig, Trainer

    fmap, arrays = _cluster_world()
    torch.manual_seed(0)
    model = build_model("qin", fmap, embedding_dim=8, multimodal=multimodal)
    assert len(model.projections) == int(multimodal)
    train, valid = arrays(0, 100, 6000, 1), arrays(0, 100, 1000, 2)
    trainer = Trainer(TrainConfig(epochs=8, batch_size=256, lr=1e-2, early_stop_patience=2,
                                  threads=1))
    trainer.fit(model, TensorBatches(train, 256, shuffle=True), valid)
    unseen = arrays(100, 200, 2000, 3)              # items no training row had
    score = auc(unseen["click"], trainer.predict(model, unseen))
    if multimodal:
        assert score > 0.8, score
    else:
        assert score < 0.65, score
