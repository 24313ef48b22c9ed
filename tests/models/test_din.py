"""DIN: target attention learns "is the candidate in the history", which LR cannot; padding
gets no weight; the weights are not normalised; bad sequence choices are one-line errors."""

import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.registry import build_model


def test_din_learns_whether_the_target_is_in_the_history(toy):
    lr = toy.fit_membership_auc("lr")
    din = toy.fit_membership_auc("din", embedding_dim=8, hidden_units=[32])
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
