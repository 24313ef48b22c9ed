"""layers.py: the one-table FeatureEmbedding and the interaction layers against their formulas."""

import itertools

import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.layers import (
    CrossAndDeep,
    CrossNetV2,
    FeatureEmbedding,
    FMInteraction,
    GatedCrossNet,
    MultiHeadSelfAttention,
)


def _random_embedding(fmap, dim=4, fields=None):
    torch.manual_seed(0)
    emb = FeatureEmbedding(fmap, dim, fields=fields)
    with torch.no_grad():
        for shard in emb.shards:
            shard.weight.normal_()
        emb.numeric_weight.normal_()
        for t in emb.tables.values():
            t.weight[0].zero_()
    return emb


# One shard for all; one per owner (10 rows x 4 dims); two owners per shard.
@pytest.mark.parametrize(("shard_floats", "n_shards"), [(1 << 22, 1), (40, 5), (80, 3)])
def test_shared_tables_match_per_field_lookups(toy, monkeypatch, shard_floats, n_shards):
    monkeypatch.setattr(FeatureEmbedding, "SHARD_FLOATS", shard_floats)
    fmap = toy.cross_feature_map()
    emb = _random_embedding(fmap)
    assert set(emb.tables) == {"a", "b", "c", "d", "tags"}          # hist shares c's rows
    assert len(emb.shards) == n_shards
    assert sum(s.num_embeddings for s in emb.shards) == \
        sum(t.num_embeddings for t in emb.tables.values())
    arrays = toy.cross_arrays(16, 0)
    arrays["hist"][0] = 0                                           # an all-padding history
    batch = to_tensors(arrays)
    out = emb(batch)
    assert out.shape == (16, 7, 4) and emb.field_names == ["a", "b", "c", "d", "x", "tags", "hist"]
    for i, name in enumerate("abcd"):
        torch.testing.assert_close(out[:, i], emb.tables[name].weight[batch[name].long()])
    torch.testing.assert_close(out[:, 4], batch["x"][:, None] * emb.numeric["x"])
    for i, name, owner in ((5, "tags", "tags"), (6, "hist", "c")):
        ids = batch[name].long()
        rows = emb.tables[owner].weight[ids]                     # pad rows are zero
        mean = rows.sum(1) / (ids > 0).sum(1, keepdim=True).clamp(min=1)
        torch.testing.assert_close(out[:, i], mean)
    assert torch.all(out[0, 6] == 0)
    # embed_one agrees with the batched path
    for i, f in enumerate(emb.fields):
        torch.testing.assert_close(emb.embed_one(f, batch[f.name]), out[:, i])


def test_padding_rows_stay_zero_and_field_order_follows_the_request(toy, monkeypatch):
    monkeypatch.setattr(FeatureEmbedding, "SHARD_FLOATS", 40)       # b and c in two shards
    fmap = toy.cross_feature_map()
    emb = FeatureEmbedding(fmap, 3, fields=["hist", "x", "b"])
    assert emb.field_names == ["hist", "x", "b"]
    batch = {"hist": torch.tensor([[0, 0, 2, 2]]), "x": torch.tensor([1.0]),
             "b": torch.tensor([0])}
    out = emb(batch)
    assert torch.all(out[0, 2] == 0)                                # categorical id 0 = padding
    torch.testing.assert_close(out[0, 0], emb.tables["c"].weight[2])
    torch.testing.assert_close(out[0, 1], emb.numeric["x"])
    out.sum().backward()
    for shard, start, _ in emb._blocks.values():
        assert torch.all(emb.shards[shard].weight.grad[start] == 0)
    with pytest.raises(ModelError, match=r"batch lacks feature\(s\) \['x'\]"):
        emb({"hist": batch["hist"], "b": batch["b"]})


def test_fm_interaction_is_the_sum_over_pairs():
    e = torch.randn(5, 4, 3)
    brute = sum((e[:, i] * e[:, j]).sum(-1) for i, j in itertools.combinations(range(4), 2))
    torch.testing.assert_close(FMInteraction()(e), brute)


def test_cross_net_v2_full_rank_formula_and_low_rank_shapes():
    torch.manual_seed(0)
    net = CrossNetV2(6, num_layers=2)
    x0 = torch.randn(3, 6)
    x1 = x0 * net.layers[0](x0) + x0
    torch.testing.assert_close(net(x0), x0 * net.layers[1](x1) + x1)
    mix = CrossNetV2(6, num_layers=2, low_rank=2, num_experts=3)
    assert mix(x0).shape == (3, 6) and mix.out_dim == 6
    with pytest.raises(ModelError, match="low_rank"):
        CrossNetV2(6, low_rank=0)


def test_gated_cross_net_formula_and_recorded_gates():
    torch.manual_seed(0)
    net = GatedCrossNet(6, num_layers=2)
    c0 = torch.randn(3, 6)
    g0 = torch.sigmoid(net.gate[0](c0))
    c1 = c0 * net.cross[0](c0) * g0 + c0
    g1 = torch.sigmoid(net.gate[1](c1))
    torch.testing.assert_close(net(c0), c0 * net.cross[1](c1) * g1 + c1)
    assert len(net.last_gates) == 2 and not net.last_gates[0].requires_grad
    torch.testing.assert_close(net.last_gates[1], g1.detach())


def test_self_attention_matches_the_unscaled_formula():
    torch.manual_seed(0)
    att = MultiHeadSelfAttention(4, attention_dim=3, num_heads=2)
    x = torch.randn(2, 5, 4)
    q, k, v = att.qkv(x).split(6, dim=-1)
    heads = []
    for h in range(2):
        s = slice(3 * h, 3 * h + 3)
        w = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2), dim=-1)
        heads.append(w @ v[..., s])
    want = torch.relu(torch.cat(heads, dim=-1) + att.residual(x))
    torch.testing.assert_close(att(x), want)


def test_unknown_structure_is_a_model_error():
    with pytest.raises(ModelError, match="structure 'sideways' is unknown; choose one of "
                                         "stacked, parallel"):
        CrossAndDeep(CrossNetV2(4), 4, "sideways", [8], 0.0, "relu", False)


def test_sparse_lookup_gradient_is_coalesced_rows_without_padding():
    from snsrec.models.layers import _Gather, _SparseGather

    w = torch.randn(9, 3, requires_grad=True)
    rows = torch.tensor([[4, 0, 4], [7, 2, 0]])
    g = torch.randn(2, 3, 3)
    (_SparseGather.apply(w, rows) * g).sum().backward()
    sparse = w.grad
    w.grad = None
    (_Gather.apply(w, rows) * g).sum().backward()
    assert sparse.is_sparse
    assert sparse._indices()[0].tolist() == [2, 4, 7]         # each row once, no padding row
    torch.testing.assert_close(sparse.to_dense(), w.grad)
