"""`--resume`: SIGKILL a training process mid-epoch, resume it, get the uninterrupted metrics."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from snsrec.train.trainer import checkpoint_dir_of


def _strip(history):
    """Epoch lines without the wall-clock fields (time differs, arithmetic must not)."""
    return [{k: v for k, v in h.items() if "time" not in k and "per_s" not in k}
            for h in history]


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tiny_world, tmp_path, capsys, runs):
    # Small batches: ~280 steps per epoch, so the kill lands long before the end.
    cfg = runs.write_config(tmp_path, tiny_world, name="resumable", epochs=3, batch_size=64,
                            early_stop_patience=3, checkpoint_every=50, schedule="cosine",
                            warmup_steps=20)
    out = tmp_path / "runs"
    run_dir = out / "resumable"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "snsrec.cli", "--quiet", "train", str(cfg),
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while checkpoint_dir_of(run_dir / "checkpoint") is None:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (run_dir / "metrics.json").exists()     # interrupted: not marked complete
    state = json.loads((checkpoint_dir_of(run_dir / "checkpoint") / "state.json").read_text())
    assert state["fit"]["samples"] > 0                  # the checkpoint is mid-epoch
    assert state["fit"]["step"] < 3 * 280

    code, _, err = runs.cli(["train", str(cfg), "--out", str(out), "--resume"], capsys)
    assert code == 0, err
    resumed = runs.metrics(run_dir)
    assert resumed["resumed"] is True and not (run_dir / "checkpoint").exists()

    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "ref")], capsys)
    assert code == 0, err
    ref = runs.metrics(tmp_path / "ref" / "resumable")
    for split in ("valid", "test"):
        for key in ("auc", "gauc", "logloss", "calibration"):
            assert resumed[split][key] == pytest.approx(ref[split][key], abs=1e-6), (split, key)
    assert resumed["steps"] == ref["steps"] and resumed["best_epoch"] == ref["best_epoch"]
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    ref_log = [json.loads(x) for x in (tmp_path / "ref" / "resumable" / "log.jsonl")
               .read_text().splitlines()]
    assert len(log) == len(ref_log)
    for a, b in zip(_strip(log), _strip(ref_log), strict=True):
        assert a == pytest.approx(b, abs=1e-9)

    # Resuming a complete run says so; so does a run without a checkpoint.
    code, _, err = runs.cli(["train", str(cfg), "--out", str(out), "--resume"], capsys)
    assert code == 2 and "already complete" in err and err.count("\n") == 1
    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "none"), "--resume"],
                            capsys)
    assert code == 2 and "no checkpoint" in err and err.count("\n") == 1
