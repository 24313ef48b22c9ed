"""`snsrec llm experiment --quick`: every variant trained and scored into one table; a
second run reuses every run and evaluation."""

import json

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

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("llm experiment: reusing") == 6 + 6       # runs, evaluations
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]


def test_quick_and_a_config_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["llm", "experiment", "x.yaml", "--quick"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "give a CONFIG or --quick, not both" in err
