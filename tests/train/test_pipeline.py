"""`snsrec train` / `snsrec evaluate` end to end on the tiny world, through the CLI."""

import json
from pathlib import Path

import pytest
import yaml

from snsrec.train.pipeline import RunConfig, load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def test_train_writes_a_complete_run_and_evaluate_reproduces_it(tiny_world, tmp_path, capsys,
                                                               runs):
    cfg = runs.write_config(tmp_path, tiny_world, name="lr_run", schedule="cosine",
                            warmup_steps=5, grad_clip=5.0, embedding_lr=0.02)
    code, out, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "lr_run"
    assert "valid" in out and "test" in out and str(run_dir) in out
    for f in ("config.yaml", "feature_map.json", "model.safetensors", "metrics.json",
              "log.jsonl", "report.md"):
        assert (run_dir / f).is_file(), f
    assert not (run_dir / "checkpoint").exists()      # a complete run keeps no checkpoint
    m = runs.metrics(run_dir)
    assert {"valid", "test", "params", "train_time_s", "samples_per_s"} <= set(m)
    assert m["test"]["auc"] > 0.6 and m["params"] > 0
    assert "| test |" in (run_dir / "report.md").read_text()
    # The saved config is a valid run config: evaluate finds the data through it.
    saved = RunConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert saved.train.embedding_lr == 0.02
    code, out, err = runs.cli(["evaluate", str(run_dir), "--split", "test"], capsys)
    assert code == 0, err
    from snsrec.train.pipeline import evaluate_run

    again = evaluate_run(run_dir, "test")["metrics"]
    assert again["auc"] == pytest.approx(m["test"]["auc"], abs=1e-9)
    assert f"{m['test']['auc']:.4f}" in out


def test_same_seed_same_metrics_and_schedule_lowers_lr(tiny_world, tmp_path, runs):
    from snsrec.train.pipeline import train_run

    cfg = load_run_config(runs.write_config(tmp_path, tiny_world, schedule="step",
                                            lr_gamma=0.5))
    a = train_run(cfg, tmp_path / "a")
    b = train_run(cfg, tmp_path / "b")
    assert a["test"] == b["test"] and a["valid"] == b["valid"]
    log = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    lrs = [json.loads(line)["lr"] for line in log]
    assert lrs == pytest.approx([0.01, 0.005])


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    cfg = load_run_config(path)
    assert cfg.name == path.stem


def test_optinter_run_searches_then_retrains_the_searched_architecture(tiny_world, tmp_path,
                                                                       runs):
    from snsrec.models.ranking.optinter import CHOICES
    from snsrec.runs import load_run
    from snsrec.train.pipeline import train_run

    params = {"embedding_dim": 4, "hidden_units": [16]}
    cfg = load_run_config(runs.write_config(tmp_path, tiny_world, model="optinter",
                                            params=params))
    m = train_run(cfg, tmp_path / "two")
    search, retrain = m["phases"]
    assert search["phase"] == "search" and retrain["phase"] == "retrain"
    run = load_run(tmp_path / "two")
    arch = run.model.model_params["architecture"]
    assert not run.model.searching
    assert {c: list(arch.values()).count(c) for c in CHOICES} == search["architecture"]
    assert m["train_time_s"] == pytest.approx(search["train_time_s"] + retrain["train_time_s"])
    assert m["valid"] == retrain["valid"]
    log = [json.loads(x) for x in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [h["phase"] for h in log] == [1] * search["epochs_run"] + [2] * retrain["epochs_run"]
    assert not list((tmp_path / "two").glob("checkpoint*"))

    once = train_run(cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"params": {**params, "retrain": False}})}), tmp_path / "one")
    assert "phases" not in once and load_run(tmp_path / "one").model.searching
    assert once["valid"] == search["valid"]        # the same search, stopped there
