"""QIN: ReLU-sparse target attention (padding and unrelated behaviours get exactly zero), the
quadratic layer by hand, and learning whether the candidate is in the history."""

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

