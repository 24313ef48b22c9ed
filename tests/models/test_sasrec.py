"""SASRec: next-item sequences, causal attention, history compaction and learning a chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.data.sequences import NOTE, QUERY, BehaviourLog, Corpus
from snsrec.eval.protocols import full_corpus
from snsrec.models.registry import build_model
from snsrec.train.retrieval import RetrievalDataConfig, sequence_samples
from snsrec.train.trainer import TrainConfig, Trainer

N = 60


def corpus(n: int = N) -> Corpus:
    return Corpus(np.arange(n, dtype=np.int64), [f"note {i}" for i in range(n)],
                  np.zeros(n, np.int64), [], np.full(n, -np.log(n), np.float32))


def log_of(clicks: dict[int, list[int]], queries_at: dict[int, int] | None = None
           ) -> BehaviourLog:
    """A log from each user's clicked corpus rows (one per second, feed scenario)."""
    user, ts, item, kind = [], [], [], []
    for u, rows in clicks.items():
        for t, r in enumerate(rows):
            user.append(u), ts.append(t), item.append(r), kind.append(NOTE)
    for u, t in (queries_at or {}).items():
        user.append(u), ts.append(t), item.append(0), kind.append(QUERY)
    user, ts = np.array(user, np.int64), np.array(ts, np.int64)
    order = np.lexsort((ts, user))
    n = len(user)
    return BehaviourLog(user[order], ts[order], np.zeros(n, np.int8),
                        np.array(kind, np.int8)[order], np.array(item, np.int64)[order],
                        np.zeros(n, bool), np.arange(N, dtype=np.int64), ["q"])


def test_sequence_samples_make_every_click_but_the_first_a_target_once():
    clicks = {1: list(range(10, 17)), 2: [3, 4], 3: [5]}          # 7 clicks, 2, 1
    s = sequence_samples(log_of(clicks), train_end=100, config=RetrievalDataConfig(),
                         max_len=3)
    # User 1: targets 11..16 in chunks of 3 from the newest: [13,14,15,16], [10,11,12,13];
    # user 2: [3, 4]; user 3 (one click): nothing.
    seqs = {tuple(r) for r in s["seq"]}
    assert seqs == {(14, 15, 16), (11, 12, 13), (4, 0, 0)}, seqs        # row + 1, 0 pads
    targets = sorted(int(t) for t in s["next"][s["next"] >= 0])
    assert targets == [4, 11, 12, 13, 14, 15, 16]
    for seq, nxt in zip(s["seq"], s["next"], strict=True):          # next = the row after
        real = nxt >= 0
        np.testing.assert_array_equal(seq[real][1:] - 1, nxt[real][:-1])
    assert set(s["_user"]) == {1, 2}
    # Nothing at or after the training end.
    late = sequence_samples(log_of(clicks), train_end=3, config=RetrievalDataConfig(),
                            max_len=3)
    assert late["next"].max() <= 12 and 16 not in late["next"]


def test_history_arrays_compact_to_the_last_notes_right_padded():
    model = build_model("sasrec", corpus(), dim=8, max_len=3, heads=2, inner=16)
    kind = torch.tensor([[0, 0, NOTE, QUERY, NOTE, NOTE, NOTE],
                         [0, 0, 0, 0, 0, QUERY, NOTE],
                         [0, 0, 0, 0, 0, 0, 0]])
    item = torch.tensor([[0, 0, 5, 9, 6, 7, 8], [0, 0, 0, 0, 0, 1, 2], [0] * 7])
    seq, lengths = model.sequences({"hist_kind": kind, "hist_item": item})
    assert seq.tolist() == [[7, 8, 9], [3, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]


def test_attention_is_causal_and_the_user_vector_is_the_last_click():
    torch.manual_seed(0)
    model = build_model("sasrec", corpus(), dim=16, max_len=6, heads=2, inner=32).eval()
    seq = torch.tensor([[3, 4, 5, 6, 0, 0]])
    h = model.hidden(seq)
    changed = seq.clone()
    changed[0, 3] = 9
    h2 = model.hidden(changed)
    torch.testing.assert_close(h[0, :3], h2[0, :3])                # the past does not see it
    assert not torch.allclose(h[0, 3], h2[0, 3])
    batch = {"hist_kind": torch.tensor([[0, NOTE, NOTE, NOTE, NOTE]]),
             "hist_item": torch.tensor([[0, 2, 3, 4, 5]])}
    torch.testing.assert_close(model.user_vectors(batch)[0, 0], h[0, 3])


def test_learns_a_chain_through_the_trainer():
    """Each note has one successor (a fixed permutation): the next click is predictable
    from the last one only if the model learns the item-to-item transition."""
    rng = np.random.default_rng(0)
    succ = rng.permutation(N)

    def walks(n_users: int, length: int, seed: int) -> np.ndarray:
        r = np.random.default_rng(seed)
        out = np.empty((n_users, length), np.int64)
        out[:, 0] = r.integers(0, N, n_users)
        for t in range(1, length):
            out[:, t] = succ[out[:, t - 1]]
        return out

    train = sequence_samples(log_of({u: list(w) for u, w in enumerate(walks(300, 12, 1))}),
                             train_end=100, config=RetrievalDataConfig(), max_len=10)
    w = walks(100, 9, 2)
    valid = {"hist_item": w[:, :8], "hist_kind": np.full((100, 8), NOTE, np.int8),
             "target": w[:, 8], "_ts": np.ones(100, np.int64)}
    torch.manual_seed(0)
    model = build_model("sasrec", corpus(), dim=32, max_len=10, heads=2, inner=64, dropout=0.1)
    ks = (1, 10)
    trainer = Trainer(TrainConfig(epochs=15, batch_size=64, lr=5e-3, loss="next_item_ce",
                                  monitor="hr@1", early_stop_patience=15, seed=0),
                      evaluator=lambda m, a: full_corpus(m, a, ks=ks))
    before = full_corpus(model, valid, ks=ks)
    inputs = {k: v for k, v in train.items() if not k.startswith("_")}
    fit = trainer.fit(model, TensorBatches(inputs, 64, shuffle=True, seed=0), valid)
    after = full_corpus(model, valid, ks=ks)
    assert after["hr@1"] > 0.9 and before["hr@1"] < 0.2, (before, after)
    assert fit["valid"]["hr@1"] == pytest.approx(after["hr@1"])


def test_the_loss_needs_logits_and_labels():
    from snsrec.errors import ModelError
    from snsrec.train.losses import LOSSES

    with pytest.raises(ModelError, match="next_item_ce.*logits"):
        LOSSES["next_item_ce"]({"user_emb": torch.zeros(1)}, {})
    model = build_model("sasrec", corpus(), dim=8, max_len=4, heads=2, inner=16)
    out = model(to_tensors({"seq": np.array([[1, 2, 0, 0]]), "next": np.array([[1, 5, -1, -1]])}))
    assert out["logits"].shape == (2, N) and out["labels"].tolist() == [1, 5]
    assert float(LOSSES["next_item_ce"](out, {}).detach()) == pytest.approx(np.log(N), rel=0.05)
