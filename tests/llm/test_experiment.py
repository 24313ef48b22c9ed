"""`snsrec llm experiment --quick`: every variant trained and scored into one table; a
second run reuses every run and evaluation."""

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from snsrec.cli import app, main
from snsrec.llm.experiment import VARIANTS


def test_quick_experiment_table_and_resume(tiny_world, tmp_path):
    out = tmp_path / "exp"
    args = ["llm", "experiment", "--quick", "--out", str(out), "--set", f"world={tiny_world}",
            "--set", "suite.tasks=[Note-Gender, Note-QueryCorr-explain]"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    r = json.loads((out / "experiment.json").read_text())
    assert r["tasks"] == ["Note-Gender", "Note-QueryCorr-explain"]
    for v in VARIANTS:
        assert set(r["scores"][v]) == set(r["tasks"])
        assert r["average"][v] == pytest.approx(sum(r["scores"][v].values()) / 2)
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "cpt", "cpt-sft-multi", "cpt-sft-multi-dpo", "sft-Note-Gender",
        "sft-Note-QueryCorr-explain", "sft-multi"]
    # A single-task model is trained on its task alone and scored on it alone.
    single = json.loads((out / "runs" / "sft-Note-Gender" / "metrics.json").read_text())
    assert set(single["examples"]) == {"Note-Gender", "general"}
    assert list(json.loads((out / "eval" / "sft-Note-Gender" / "eval.json").read_text())
                ["results"]) == ["Note-Gender"]
    md = (out / "experiment.md").read_text()
    assert "| cpt+multi-task+dpo |" in md and "Reproduce: `snsrec llm experiment --quick" in md
    assert "minutes from start to table" in md

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("llm experiment: reusing") == 6       # every evaluation
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]

    # A fresh clone has the records (metrics.json, config.yaml, eval.json) but no weights:
    # nothing is trained again.
    for run in (out / "runs").iterdir():
        shutil.rmtree(run / "model")
    third = CliRunner().invoke(app, args)
    assert third.exit_code == 0, third.output
    assert not re.findall(r"^llm (cpt|sft|dpo): \S+ \(\d+ steps", third.output, re.M)
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]

    # A changed DPO setting trains DPO again, and first the runs it starts from, whose
    # weights are gone; their evaluations are still reused.
    changed = CliRunner().invoke(app, [*args, "--set", "dpo.dpo.beta=0.2"])
    assert changed.exit_code == 0, changed.output
    assert re.findall(r"^llm (cpt|sft|dpo): \S+ \(\d+ steps", changed.output, re.M) == \
        ["cpt", "sft", "dpo"]
    assert changed.output.count("llm experiment: reusing") == 5


def test_quick_and_a_config_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["llm", "experiment", "x.yaml", "--quick"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "give a CONFIG or --quick, not both" in err


def test_jobs_run_the_chains_side_by_side_and_threads_do_not_count(tiny_world, tmp_path):
    out = tmp_path / "exp"
    args = ["llm", "experiment", "--quick", "--out", str(out), "--set", f"world={tiny_world}",
            "--set", "suite.tasks=[Note-Gender, Note-QueryCorr-explain]"]
    res = CliRunner().invoke(app, [*args, "--set", "jobs=2", "--set", "threads=1"])
    assert res.exit_code == 0, res.output
    # Five chains (CPT → SFT → DPO, multi-task SFT, base, two single-task models) ran in
    # two processes; the table is then made of their records alone.
    assert "5 chains of stages on 2 jobs, 1 thread(s) each" in res.output
    assert res.output.count("llm experiment: reusing") == 6
    r = json.loads((out / "experiment.json").read_text())
    for v in VARIANTS:
        assert set(r["scores"][v]) == {"Note-Gender", "Note-QueryCorr-explain"}
    assert "2 jobs side by side, 1 thread(s) each" in (out / "experiment.md").read_text()

    # The thread count says how a run was computed, not what it is: records made on one
    # thread serve a run on two, and nothing is trained or scored again.
    again = CliRunner().invoke(app, [*args, "--set", "jobs=2", "--set", "threads=2"])
    assert again.exit_code == 0, again.output
    assert "chains of stages" not in again.output          # no chain had work left
    assert again.output.count("llm experiment: reusing") == 6
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]
