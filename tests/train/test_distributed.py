"""DDP: two CPU processes (gloo) through torchrun's runner, against one process; and one
optimizer step's gradient on two ranks, against the same rows in one process."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from snsrec.data.batches import TensorBatches
from snsrec.models.registry import build_model
from snsrec.train.losses import bce
from snsrec.train.trainer import TrainConfig, Trainer

# Tolerance of the end-to-end run. With 2 ranks each optimizer step averages the gradients of
# two half-batches drawn from the same epoch permutation, so the rows grouped into a step differ
# from the single-process run, and Adam amplifies the difference (a parameter whose gradient
# is near zero, like the output bias started at the training CTR's log-odds, moves by ±lr with
# the sign of noise). Measured |AUC(2 ranks) − AUC(1 process)| over 16 valid / test pairs (LR,
# this config at seeds 0–4 on the tiny world 7, seed 0 on worlds 1 and 2, and 3 epochs of
# batch 256): 5e-5 … 4.4e-3, the same with dense Adam in both (sparse_embeddings false); this
# test's own config: 6e-4 valid, 1.1e-3 test. 0.01 is 2.3× the largest. It catches a run
# that trains or evaluates the wrong rows badly, not unsynchronised gradients: with the DDP
# wrapper removed, rank 0's model (its half of the rows) differed by 2e-3 … 1.25e-2. The
# gradient test below checks the synchronisation exactly.
TOLERANCE = 0.01


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(tiny_world, tmp_path, capsys, runs):
    cfg = runs.write_config(tmp_path, tiny_world, name="ddp", epochs=2, batch_size=512)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", str(_free_port()), "-m", "snsrec.cli", "--quiet",
                        "train", str(cfg), "--out", str(tmp_path / "ddp")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp = runs.metrics(tmp_path / "ddp" / "ddp")
    assert ddp["world_size"] == 2
    assert r.stdout.count("trained in") == 1          # only rank 0 reports (and writes)

    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "one")], capsys)
    assert code == 0, err
    one = runs.metrics(tmp_path / "one" / "ddp")
    assert one["world_size"] == 1
    # Same number of optimizer steps: the global batch is batch_size in both.
    assert ddp["steps"] == one["steps"]
    for split in ("valid", "test"):
        assert ddp[split]["auc"] == pytest.approx(one[split]["auc"], abs=TOLERANCE)
        assert ddp[split]["n"] == one[split]["n"]     # every row evaluated once (gathered)


BATCH = 64


def _model(toy) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("deepfm", toy.ToyFeatureMap(), embedding_dim=4, hidden_units=[8])


def _rank_step(rank: int, init: str, toy, arrays, results) -> None:
    """One training step of this rank through the trainer's DDP path: the rows it trained on
    and the gradient it holds after the backward pass (DDP's all-reduce)."""
    torch.set_num_threads(1)     # a forked child must not enter the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        net, shard = Trainer(TrainConfig(threads=1))._parallel(
            _model(toy), TensorBatches(arrays, BATCH, shuffle=True, seed=3))
        batch = next(iter(shard))
        bce(net({k: v for k, v in batch.items() if not k.startswith("_")}), batch).backward()
        model = getattr(net, "module", net)
        results[rank] = (batch["_row"], {n: p.grad for n, p in model.named_parameters()})
    finally:
        dist.destroy_process_group()


def test_a_ddp_step_applies_the_gradient_of_both_ranks_rows(toy, tmp_path):
    """Each rank trains a disjoint half of the global batch and, after the backward pass,
    holds the gradient of the whole global batch: the one a single process computes over the
    same rows (to float rounding: the all-reduce sums in another order)."""
    arrays = {**toy.toy_arrays(1000, 0), "_row": np.arange(1000)}
    # DDP's constructor imports torch._dynamo (~3 s): once here, not in each forked rank.
    import torch._dynamo  # noqa: F401

    results = mp.Manager().dict()
    mp.start_processes(_rank_step, args=(f"file://{tmp_path / 'store'}", toy, arrays, results),
                       nprocs=2, join=True, start_method="fork")
    (rows0, grads0), (rows1, grads1) = results[0], results[1]
    assert len(rows0) == len(rows1) == BATCH // 2
    assert not set(rows0.tolist()) & set(rows1.tolist())        # disjoint shards
    rows = torch.cat([rows0, rows1])
    model = _model(toy)
    batch = {k: torch.as_tensor(v)[rows] for k, v in arrays.items() if not k.startswith("_")}
    bce(model(batch), batch).backward()
    # Measured: the ranks' gradients differ from this one by 4e-9 at most (entries up to 0.1);
    # a rank that skips the all-reduce is off by its own half's share, ~1e-2.
    for name, p in model.named_parameters():
        for grads in (grads0, grads1):
            torch.testing.assert_close(grads[name], p.grad, rtol=1e-6, atol=1e-8, msg=name)
