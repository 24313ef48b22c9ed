"""SDIM: the bucket means by hand, serving from a precomputed user state equals the batch
forward, and it learns whether the candidate is in the history (LR cannot)."""

import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.registry import build_model


def _model(toy, **params):
    torch.manual_seed(0)
    return build_model("sdim", toy.cross_feature_map(), embedding_dim=8, **params).eval()


def test_a_copy_of_the_target_always_collides_its_opposite_never(toy):
    model = _model(toy, num_hashes=4, hash_bits=3)
    table = model.embedding.tables["c"].weight
    with torch.no_grad():
        table[3] = -table[2]                    # id 3 points away from id 2
    batch = to_tensors(toy.cross_arrays(4, 0))
    batch["c"] = torch.full((4,), 2, dtype=torch.int32)
    batch["hist"] = torch.tensor([[2, 0, 0, 0], [3, 0, 0, 0], [2, 2, 3, 0], [0, 0, 0, 0]],
                                 dtype=torch.int32)
    with torch.no_grad():
        emb = model.embedding(batch)
        got = model.interests(emb, model.user_state(batch))[:, 0]
    torch.testing.assert_close(got[0], table[2])            # the mean of the one collision
    assert got[1].abs().max() == 0 and got[3].abs().max() == 0
    torch.testing.assert_close(got[2], table[2])            # 2, 2 collide; 3 never does


def test_serving_from_a_user_state_equals_the_batch_forward(toy):
    model = _model(toy)
    batch = to_tensors(toy.cross_arrays(30, 1))
    user = {k: v[:1] for k, v in batch.items()}
    cands = {**batch, "hist": user["hist"].expand(30, -1)}   # one user, 30 candidates
    with torch.no_grad():
        state = model.user_state(user)                       # once per user
        served = model.score(cands, [tuple(s.expand(30, *s.shape[1:]) for s in part)
                                     for part in state])
        direct = model(cands)["logit"]
    torch.testing.assert_close(served, direct)
    sums, counts = state[0]
    assert sums.shape == (1, 8, 8, 8) and counts.shape == (1, 8, 8)   # m, 2^τ, dim: not L


def test_sdim_learns_whether_the_target_is_in_the_history(toy):
    lr = toy.fit_membership_auc("lr")
    sdim = toy.fit_membership_auc("sdim", embedding_dim=8, hidden_units=[32])
    assert lr < 0.6 and sdim > 0.8, (lr, sdim)


def test_bad_hash_settings_are_errors(toy):
    with pytest.raises(ModelError, match="hash_bits"):
        build_model("sdim", toy.cross_feature_map(), hash_bits=0)
