"""DDP: two CPU processes (gloo) through torchrun's runner, against one process."""

import os
import socket
import subprocess
import sys

import pytest

# Tolerance: with 2 ranks each optimizer step averages the gradients of two
# half-batches drawn from the same epoch permutation, so the rows grouped into
# a step differ from the single-process run and the weights end up close but
# not equal. On the tiny world that moves AUC by a few 1e-4; 0.02 still catches
# a broken setup (unsynchronised ranks, a rank seeing all rows, a lost shard).
TOLERANCE = 0.02


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
