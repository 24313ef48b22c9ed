import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches
from snsrec.errors import DataError


def _arrays(n=10):
    return {"x": np.arange(n, dtype=np.int64), "y": np.arange(n, dtype=np.float32) * 2,
            "h": np.arange(2 * n, dtype=np.int64).reshape(n, 2)}


def _rows(batches):
    return [b["x"].tolist() for b in batches]


def test_in_order_batches_are_contiguous_slices():
    tb = TensorBatches(_arrays(), batch_size=4)
    got = list(tb)
    assert len(tb) == 3 and tb.n_rows == 10
    assert _rows(got) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert got[0]["h"].shape == (4, 2) and got[0]["y"].dtype == torch.float32
    # a slice is a view of the one pre-built tensor, not a per-row copy
    assert got[1]["x"].untyped_storage().data_ptr() == tb.tensors["x"].untyped_storage().data_ptr()
    assert _rows(TensorBatches(_arrays(), 4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_is_a_seeded_permutation_per_epoch():
    a, b = TensorBatches(_arrays(), 3, shuffle=True, seed=1), \
        TensorBatches(_arrays(), 3, shuffle=True, seed=1)
    e0, e1 = _rows(a), _rows(a)
    assert e0 == _rows(b) and e1 == _rows(b)               # same seed, same epochs
    assert sorted(x for b in e0 for x in b) == list(range(10)) and e0 != e1
    for batch in TensorBatches(_arrays(), 3, shuffle=True, seed=1):
        assert (batch["y"] == batch["x"] * 2).all()       # rows stay aligned across keys
    a.set_epoch(0)
    assert _rows(a) == e0
    assert _rows(TensorBatches(_arrays(), 3, shuffle=True, seed=2)) != e0


@pytest.mark.parametrize("shuffle", [False, True])
def test_resume_mid_epoch_is_exact(shuffle):
    ref = TensorBatches(_arrays(23), 4, shuffle=shuffle, seed=5)
    full = _rows(ref) + _rows(ref)
    run = TensorBatches(_arrays(23), 4, shuffle=shuffle, seed=5)
    seen = _rows(run)                                       # epoch 0
    it = iter(run)
    seen += [next(it)["x"].tolist() for _ in range(2)]      # two batches of epoch 1
    state = run.state_dict()
    resumed = TensorBatches(_arrays(23), 4, shuffle=shuffle, seed=5)
    resumed.load_state_dict(state)
    assert seen + _rows(resumed) == full
    with pytest.raises(DataError, match="same seed"):
        TensorBatches(_arrays(23), 4, seed=6).load_state_dict(state)


@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_disjoint_and_equal(shuffle):
    full = TensorBatches(_arrays(11), 2, shuffle=shuffle, seed=3)
    shards = [full.shard(r, 3) for r in range(3)]
    rows = [[x for b in _rows(s) for x in b] for s in shards]
    assert [len(r) for r in rows] == [3, 3, 3] and all(s.n_rows == 3 for s in shards)
    assert len({x for r in rows for x in r}) == 9
    assert len(shards[0]) == 2
    with pytest.raises(DataError):
        shards[0].shard(0, 2)


def test_bad_arrays_are_data_errors():
    with pytest.raises(DataError, match="differ in length"):
        TensorBatches({"a": np.zeros(3), "b": np.zeros(4)}, 2)
    with pytest.raises(DataError, match="not numeric"):
        TensorBatches({"a": np.array(["x", "y"], dtype=object)}, 2)
    with pytest.raises(DataError, match="batch_size"):
        TensorBatches(_arrays(), 0)


def test_accepts_tensors_and_transform_output_dtypes():
    arrays = {"t": torch.arange(5), "_scenario": np.zeros(5, np.int8),
              "_position": np.arange(5, dtype=np.int32)}
    (batch,) = list(TensorBatches(arrays, 8))
    assert batch["_scenario"].dtype == torch.int8 and batch["t"].tolist() == [0, 1, 2, 3, 4]


def test_bucketed_batches_group_similar_lengths_and_still_cover_every_row():
    n, b = 400, 10
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, n)
    arrays = {"x": np.arange(n, dtype=np.int64)}
    plain = TensorBatches(arrays, b, shuffle=True, seed=4)
    tb = TensorBatches(arrays, b, shuffle=True, seed=4, lengths=lengths, bucket=8)
    e0, e1 = _rows(tb), _rows(tb)
    for epoch in (e0, e1):
        assert sorted(x for batch in epoch for x in batch) == list(range(n))

    def spread(epoch):          # mean (longest - shortest) length within a batch
        return np.mean([np.ptp(lengths[batch]) for batch in epoch])

    assert spread(e0) < spread(_rows(plain)) / 4 and e0 != e1
    # Short and long batches are interleaved, not sorted over the epoch.
    means = [lengths[batch].mean() for batch in e0]
    assert means != sorted(means)
    # Seeded, and resumable mid-epoch like the plain shuffle.
    again = TensorBatches(arrays, b, shuffle=True, seed=4, lengths=lengths, bucket=8)
    it = iter(again)
    first = [next(it)["x"].tolist() for _ in range(3)]
    resumed = TensorBatches(arrays, b, shuffle=True, seed=4, lengths=lengths, bucket=8)
    resumed.load_state_dict(again.state_dict())
    assert first + _rows(resumed) == e0
    with pytest.raises(DataError, match="one length per row"):
        TensorBatches(arrays, b, lengths=lengths[:5])
