"""Benchmark records: provenance, code fingerprints, and reuse only of runs the same code made."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from snsrec import records
from snsrec.bench.ctr import resolve_config
from snsrec.bench.runner import TRAIN_CODE, run_one


def test_the_training_fingerprint_covers_models_and_trainer_not_serving():
    closure = set(records.import_closure(TRAIN_CODE))
    # Every model file (the registry imports them by discovery, not by name), the trainer,
    # the features and the metrics shape a training run's numbers...
    assert {"snsrec.models.ranking.deepfm", "snsrec.models.retrieval.redrec",
            "snsrec.train.trainer", "snsrec.data.features", "snsrec.eval.metrics",
            "snsrec.models.layers"} <= closure
    # ...serving, the simulator and the LLM stages do not.
    assert not {"snsrec.serve.app", "snsrec.sim.ab", "snsrec.llm.post_train",
                "snsrec.cli"} & closure
    fp = records.code_fingerprint(TRAIN_CODE)
    assert fp["modules"] == len(closure) and len(fp["sha256"]) == 64


def test_function_level_and_package_imports_are_followed():
    # snsrec.bench.ctr imports snsrec.bench.peers only inside functions.
    assert "snsrec.bench.peers" in records.import_closure(("snsrec.bench.ctr",))
    # `from snsrec.train import distributed` names a module through its package.
    assert "snsrec.train.distributed" in records.import_closure(("snsrec.train.trainer",))


def test_provenance_names_command_commit_versions_machine():
    p = records.provenance("snsrec bench x", started=time.time() - 2, seeds=[0, 1, 2])
    assert p["command"] == "snsrec bench x" and p["seeds"] == [0, 1, 2] and p["wall_s"] >= 2
    assert len(p["git"]["commit"]) == 40 and isinstance(p["git"]["dirty"], bool)
    assert p["versions"]["torch"].startswith("2.13.0") and p["versions"]["snsrec"]
    assert p["machine"]["cores"] >= 1 and p["machine"]["cpu"]
    line = records.provenance_line({"provenance": p})
    assert "`snsrec bench x`" in line and p["git"]["commit"][:10] in line
    assert "before snsrec kept provenance" in records.provenance_line({})


def test_the_cli_records_its_own_command_line(tmp_path):
    out = tmp_path / "idx"
    subprocess.run([sys.executable, "-m", "snsrec.cli", "--quiet", "bench", "index", "--items",
                    "1000", "--dim", "8", "--users", "5", "--kinds", "flat", "--out", str(out)],
                   check=True, capture_output=True)
    saved = json.loads((out / "index.json").read_text())
    assert saved["provenance"]["command"] == (f"snsrec --quiet bench index --items 1000 --dim 8 "
                                              f"--users 5 --kinds flat --out {out}")
    assert (out / "index.md").read_text().rstrip().endswith(
        records.provenance_line(saved))


def _lr_config(tiny_world):
    cfg, _ = resolve_config(str(tiny_world), "lr", 0, None, ["train.epochs=1"])
    return cfg


def test_a_run_is_reused_only_while_its_code_is_unchanged(tiny_world, tmp_path):
    cfg = _lr_config(tiny_world)
    run_dir = tmp_path / "lr" / "seed0"
    first = run_one(cfg, run_dir)
    stamp = json.loads((run_dir / "bench.json").read_text())
    assert stamp["code"]["sha256"] == records.code_fingerprint(TRAIN_CODE)["sha256"]
    assert stamp["provenance"]["seeds"] == [0]
    trained_at = (run_dir / "metrics.json").stat().st_mtime_ns
    assert run_one(cfg, run_dir) == first                     # same config, same code: reused
    assert (run_dir / "metrics.json").stat().st_mtime_ns == trained_at
    # A record some other code made (as after a change to the trainer) is trained again.
    stamp["code"]["sha256"] = "0" * 64
    (run_dir / "bench.json").write_text(json.dumps(stamp))
    assert run_one(cfg, run_dir)["auc"] == first["auc"]       # deterministic: same numbers
    assert (run_dir / "metrics.json").stat().st_mtime_ns != trained_at
    retrained_at = (run_dir / "metrics.json").stat().st_mtime_ns
    run_one(cfg, run_dir, rerun=True)                         # --rerun: trained regardless
    assert (run_dir / "metrics.json").stat().st_mtime_ns != retrained_at
