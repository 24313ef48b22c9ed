"""`snsrec llm experiment --quick`: every variant trained and scored into one table; a
second run reuses every run and evaluation."""

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from snsrec.cli import app, main
from snsrec.llm.corpus import task_items
from snsrec.llm.experiment import COMPARISONS, VARIANTS
from snsrec.llm.scoring import score_task


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
    _check_significance(out, r, md)

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("llm experiment: reusing") == 6       # every evaluation
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]

    # A fresh clone has the records (metrics.json, config.yaml, eval.json) but no weights:
    # nothing is trained again.
    for run in (out / "runs").iterdir():
        shutil.rmtree(run / "model")
    # An eval.json of before the per-item outputs (no digest, no outputs) is answered again.
    old = out / "eval" / "base" / "eval.json"
    saved = json.loads(old.read_text())
    for res in saved["results"].values():
        del res["digest"], res["outputs"]
    old.write_text(json.dumps(saved))
    third = CliRunner().invoke(app, args)
    assert third.exit_code == 0, third.output
    assert not re.findall(r"^llm (cpt|sft|dpo): \S+ \(\d+ steps", third.output, re.M)
    assert third.output.count("llm experiment: reusing") == 5 and "llm eval:" in third.output
    assert json.loads((out / "experiment.json").read_text())["scores"] == r["scores"]

    # A changed DPO setting trains DPO again, and first the runs it starts from, whose
    # weights are gone; their evaluations are still reused.
    changed = CliRunner().invoke(app, [*args, "--set", "dpo.dpo.beta=0.2"])
    assert changed.exit_code == 0, changed.output
    assert re.findall(r"^llm (cpt|sft|dpo): \S+ \(\d+ steps", changed.output, re.M) == \
        ["cpt", "sft", "dpo"]
    assert changed.output.count("llm experiment: reusing") == 5

    # A record some other code made (its code fingerprint differs: after a change to the
    # post-training or the evaluation code) is made again; the rest is reused.
    stamp = out / "runs" / "sft-Note-Gender" / "bench.json"
    assert json.loads(stamp.read_text())["code"]["roots"] == ["snsrec.llm.post_train"]
    stamp.write_text(json.dumps({"code": {"sha256": "0" * 64}}))
    old = out / "eval" / "sft-multi" / "eval.json"
    saved = json.loads(old.read_text())
    saved["code"]["sha256"] = "0" * 64
    old.write_text(json.dumps(saved))
    fourth = CliRunner().invoke(app, [*args, "--set", "dpo.dpo.beta=0.2"])
    assert fourth.exit_code == 0, fourth.output
    # The run trains again and so does its evaluation; the changed evaluation is made
    # again, from weights trained again (gone since the fresh-clone step above).
    assert [name.rpartition("/")[2] for _, name in re.findall(
        r"^llm (cpt|sft|dpo): (\S+) \(\d+ steps", fourth.output, re.M)] == \
        ["sft-Note-Gender", "sft-multi"]
    assert fourth.output.count("llm experiment: reusing") == 4


def _check_significance(out, r, md):
    """The constant-answer rows, the informative averages and the bootstrap differences of
    a finished experiment, checked against the suite and the per-item records."""
    tasks = r["tasks"]
    test = task_items(out / "suite", "test", tasks, r["config"]["eval"]["limit"])
    best, major = r["baselines"]["best-constant"], r["baselines"]["majority-label"]
    for t in tasks:
        items = test[t]
        assert best["scores"][t] == score_task(t, [best["answers"][t]] * len(items),
                                               items)["score"]
        for other in {*(str(it["answer"]) for it in items), major["answers"][t], ""}:
            assert best["scores"][t] >= score_task(t, [other] * len(items), items)["score"]
        # Every item's output is recorded: the variant's score is recomputed from them.
        saved = json.loads((out / "eval" / "sft-multi" / "eval.json").read_text())
        outputs = [o["output"] for o in saved["results"][t]["outputs"]]
        assert score_task(t, outputs, items)["score"] == r["scores"]["multi-task"][t]
    for v in VARIANTS:
        useful = [t for t in tasks if r["scores"][v][t] > best["scores"][t]]
        assert r["informative"][v] == useful
        assert r["informative_average"][v] == (
            pytest.approx(sum(r["scores"][v][t] for t in useful) / len(useful)) if useful
            else None)
        # The cells a constant answer matches or beats carry †.
        row = next(line for line in md.splitlines() if line.startswith(f"| {v} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:1 + len(tasks)]
        assert [c.endswith("†") for c in cells] == [t not in useful for t in tasks]
    assert [(d["a"], d["b"]) for d in r["differences"]] == [(a, b) for a, b, _ in COMPARISONS]
    for d in r["differences"]:
        assert d["difference"] == pytest.approx(r["average"][d["a"]] - r["average"][d["b"]])
        assert d["low"] <= d["difference"] <= d["high"]
        assert d["tie"] == (d["low"] <= 0 <= d["high"])
    assert r["bootstrap"]["replicates"] >= 1000
    assert "| best-constant |" in md and "| majority-label |" in md
    assert "| cpt+multi-task − multi-task (CPT) |" in md and "Paired bootstrap" in md


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
