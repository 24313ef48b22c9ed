"""The trainer's optimizer: lazy row updates for sparse embedding gradients, fused dense Adam."""

import pytest
import torch
from torch import nn

from snsrec.models.layers import MLP
from snsrec.train.optim import Adam, AdamW, clip_grad_norm, set_sparse_embeddings


class Tiny(nn.Module):
    def __init__(self, sparse: bool):
        super().__init__()
        self.emb = nn.Embedding(50, 4, padding_idx=0, sparse=sparse)
        self.out = nn.Linear(4, 1)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(1)).squeeze(-1)


def _steps(model, opt, batches):
    for ids, y in batches:
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _batches(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    # ids 1..20 only: rows 21..49 are never looked up
    return [(torch.randint(1, 21, (16, 3), generator=g), torch.randint(0, 2, (16,),
                                                                      generator=g).float())
            for _ in range(n)]


def test_lazy_rows_equal_adam_when_always_seen_and_rest_when_not():
    # Rows 1..20 are in every batch, row 21 only in the first, rows 22.. never.
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(6):
        ids = torch.cat([torch.randperm(20, generator=g).reshape(4, 5) + 1,
                         torch.randint(1, 21, (4, 5), generator=g)])
        if i == 0:
            ids[0, 0] = 21
        batches.append((ids, torch.randint(0, 2, (len(ids),), generator=g).float()))
    torch.manual_seed(0)
    lazy, dense = Tiny(sparse=True), Tiny(sparse=False)
    dense.load_state_dict(lazy.state_dict())
    before = lazy.emb.weight.detach().clone()
    opt = Adam([{"params": [lazy.emb.weight]}, {"params": list(lazy.out.parameters())}], lr=0.05)
    _steps(lazy, opt, batches[:1])
    after_first = lazy.emb.weight.detach().clone()
    _steps(lazy, opt, batches[1:])
    _steps(dense, torch.optim.Adam(dense.parameters(), lr=0.05), batches)
    torch.testing.assert_close(lazy.emb.weight[1:21], dense.emb.weight[1:21], rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(lazy.out.weight, dense.out.weight, rtol=1e-5, atol=1e-6)
    assert not torch.equal(after_first[21], before[21])          # seen once: moved once,
    assert torch.equal(lazy.emb.weight[21], after_first[21])     # then left alone (lazy)
    assert not torch.equal(dense.emb.weight[21], after_first[21])  # dense Adam's momentum
    assert torch.equal(lazy.emb.weight[22:], before[22:])
    assert torch.equal(lazy.emb.weight[0], before[0])            # padding row
    state = opt.state_dict()["state"][0]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and float(state["step"]) == 6


def test_dense_gradients_take_plain_adam():
    torch.manual_seed(1)
    a, b = Tiny(sparse=False), Tiny(sparse=False)
    b.load_state_dict(a.state_dict())
    batches = _batches(seed=3)
    _steps(a, Adam(a.parameters(), lr=0.01, fused=True), batches)
    _steps(b, torch.optim.Adam(b.parameters(), lr=0.01), batches)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_weight_decay_moves_only_the_batch_rows(cls):
    def run(wd):
        torch.manual_seed(2)
        m = Tiny(sparse=True)
        opt = cls([{"params": [m.emb.weight], "weight_decay": wd},
                   {"params": list(m.out.parameters())}], lr=0.01)
        _steps(m, opt, _batches(2))
        return m.emb.weight.detach()

    plain, decayed = run(0.0), run(0.5)
    assert torch.equal(plain[21:], decayed[21:])           # rows never looked up
    assert not torch.allclose(plain[1:21], decayed[1:21])  # the batch rows felt the decay


def test_adamw_decay_is_decoupled_on_sparse_rows():
    # With a zero gradient signal for a row the only change is the decay w *= (1 - lr*wd).
    w = nn.Parameter(torch.ones(5, 2))
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.sparse_coo_tensor(torch.tensor([[2]]), torch.zeros(1, 2), (5, 2),
                                     check_invariants=False)
    opt.step()
    torch.testing.assert_close(w[2], torch.full((2,), 0.95))
    torch.testing.assert_close(w[[0, 1, 3, 4]], torch.ones(4, 2))


def test_clip_grad_norm_with_sparse_and_dense_gradients():
    w, v = nn.Parameter(torch.zeros(4, 2)), nn.Parameter(torch.zeros(2))
    # duplicate row 1 sums to (6, 8) before the norm; dense part (0, 0)
    w.grad = torch.sparse_coo_tensor(torch.tensor([[1, 1]]), torch.tensor([[3.0, 4.0]] * 2),
                                     (4, 2), check_invariants=False)
    v.grad = torch.zeros(2)
    total = clip_grad_norm([w, v], 5.0)
    assert total == pytest.approx(10.0)
    torch.testing.assert_close(w.grad.to_dense()[1], torch.tensor([3.0, 4.0]), rtol=1e-5,
                               atol=1e-5)


def test_set_sparse_embeddings_switches_every_table():
    m = Tiny(sparse=False)
    old = set_sparse_embeddings(m, True)
    assert old == [False] and m.emb.sparse


def test_mlp_eval_folds_batch_norm_to_the_same_outputs():
    torch.manual_seed(3)
    mlp = MLP(12, [16, 8], dropout=0.2, batch_norm=True, out_dim=1)
    mlp.train()
    for _ in range(5):                        # move the running statistics off their start
        mlp(torch.randn(64, 12) * 3 + 1)
    with torch.no_grad():
        for m in mlp.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    mlp.eval()
    x = torch.randn(32, 12)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), mlp.net(x), rtol=1e-5, atol=1e-5)
