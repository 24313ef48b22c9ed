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


def _plain_unit(att, behaviours, target, mask):
    """The activation unit as the paper writes it: an MLP over [e, t, e − t, e ⊙ t]."""
    t = target.unsqueeze(1).expand_as(behaviours)
    x = torch.cat([behaviours, t, behaviours - t, behaviours * t], dim=-1)
    return ((att.unit.net(x).squeeze(-1) * mask).unsqueeze(-1) * behaviours).sum(1)


@pytest.mark.parametrize("training", [True, False])
def test_split_activation_unit_matches_the_concatenated_one(training, monkeypatch):
    from snsrec.models.ranking.din import TargetAttention

    torch.manual_seed(0)
    att = TargetAttention(8, units=(12, 6)).train(training)
    for dice in (m for m in att.unit.net if hasattr(m, "alpha")):
        dice.alpha.data.uniform_(-0.5, 0.5)
        dice.bn.running_mean.uniform_(-1, 1)
        dice.bn.running_var.uniform_(0.5, 2)
    monkeypatch.setattr(TargetAttention, "EVAL_CHUNK", 50)        # several chunks of 5 rows
    behaviours, target = torch.randn(23, 10, 8), torch.randn(23, 8)
    mask = (torch.rand(23, 10) > 0.3).float()
    with torch.set_grad_enabled(training):
        torch.testing.assert_close(att(behaviours, target, mask),
                                   _plain_unit(att, behaviours, target, mask))


def test_dice_inference_path_is_the_formula():
    from snsrec.models.layers import Dice

    torch.manual_seed(0)
    dice = Dice(5).eval()
    dice.alpha.data.uniform_(-1, 1)
    dice.bn.running_mean.uniform_(-1, 1)
    dice.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(4, 3, 5)
    p = torch.sigmoid((x - dice.bn.running_mean) / torch.sqrt(dice.bn.running_var + dice.bn.eps))
    with torch.no_grad():
        torch.testing.assert_close(dice(x), p * x + (1 - p) * dice.alpha * x)
    torch.testing.assert_close(dice(x), p * x + (1 - p) * dice.alpha * x)   # with autograd


def test_dice_training_step_matches_batch_norm_and_autograd():
    from snsrec.models.layers import Dice

    torch.manual_seed(0)
    fused, plain = Dice(4), Dice(4)
    fused.alpha.data.uniform_(-1, 1)
    plain.load_state_dict(fused.state_dict())
    x = (torch.randn(50, 3, 4) * 2 + 1).requires_grad_()
    y = fused(x)
    p = torch.sigmoid(plain.bn(x.reshape(-1, 4)).view_as(x))          # the reference formula
    ref = p * x + (1 - p) * plain.alpha * x
    torch.testing.assert_close(y, ref)
    g = torch.randn_like(y)
    for a, b in zip(torch.autograd.grad(y, (x, fused.alpha), g),
                    torch.autograd.grad(ref, (x, plain.alpha), g), strict=True):
        torch.testing.assert_close(a, b)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fused.bn, name), getattr(plain.bn, name))
