"""`snsrec demo` end to end on the tiny world, through the CLI."""

import json

import pytest

from snsrec.cli import main
from snsrec.errors import ConfigError


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr()


def test_demo_end_to_end_on_tiny(tiny_world, tmp_path, capsys):
    out = tmp_path / "runs" / "demo"
    try:
        main(["--quiet", "demo", "--preset", "tiny", "--out", str(out), "--world", str(tiny_world)])
    except SystemExit as e:
        assert e.code in (0, None)
    printed = capsys.readouterr().out
    from snsrec.demo import load_demo_config

    ranker = load_demo_config().ranker.name
    assert "popularity" in printed and "lr" in printed and "report.md" in printed
    assert ranker in printed
    report = (out / "report.md").read_text()
    assert "| lr |" in report and "| popularity |" in report and f"| {ranker} |" in report
    assert "![CTR by position](figures/ctr_by_position.png)" in report
    assert (out / "figures" / "ctr_by_position.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"world", "ctr", "retrieval", "retrievers", "train", "position", "timing"} <= set(metrics)
    # RED-Rec and its baselines: retrieval runs per target, their run directories kept.
    # ...and the world's truth ranking every note (the oracle row, no run directory).
    assert set(metrics["retrievers"]) == {"toppop", "itemcf", "category", "redrec", "oracle"}
    for name, r in metrics["retrievers"].items():
        assert 0.0 <= r["test"]["feed"]["all"]["hr@100"] <= 1.0, name
        assert (out / "models" / name / "metrics.json").is_file() == (name != "oracle")
    assert (out / "models" / "redrec" / "corpus.parquet").is_file()
    assert "## Cross-scenario retrieval" in report and "| redrec |" in report
    assert "HR@100" in printed and "redrec" in printed
    assert not list(out.parent.glob(".demo-retrievers-*"))
    for model in ("popularity", "lr"):
        assert {"auc", "gauc", "logloss", "calibration", "by_scenario"} <= set(metrics["ctr"][model])
        assert {"hr@10", "ndcg@10", "hr@50", "ndcg@50", "mrr"} <= set(metrics["retrieval"][model])
    # Test AUC of the tiny demo by seed (7, the test's; 1-5), measured with the full
    # recipe's ranker:
    #   ranker (optinter) 0.734 0.705 0.740 0.710 0.688 0.511
    #   lr                0.708 0.685 0.678 0.688 0.687 0.540
    #   popularity        0.541 0.523 0.507 0.517 0.512 0.519
    # LR beats popularity on every seed (by 0.021 at least); the ranker does not beat LR on
    # every seed (a tie at 4, below it at 5), so that is not asserted on the tiny world.
    assert metrics["ctr"]["lr"]["auc"] > metrics["ctr"]["popularity"]["auc"] + 0.01
    # The truth and the constant answer scored on the same test day, and the shares.
    assert metrics["ctr"]["constant"]["auc"] == 0.5 and metrics["ctr"]["oracle"]["auc_share"] == 1
    assert metrics["ctr"]["oracle"]["auc"] > metrics["ctr"]["lr"]["auc"]
    assert metrics["ctr"]["lr"]["auc_share"] == pytest.approx(
        (metrics["ctr"]["lr"]["auc"] - 0.5) / (metrics["ctr"]["oracle"]["auc"] - 0.5))
    # The demo's record: its provenance, and its Markdown is what the docs render from it.
    from snsrec.demo import markdown as demo_markdown

    record = json.loads((out / "demo.json").read_text())
    assert record["benchmark"] == "demo" and record["provenance"]["seeds"] == [7]
    assert (out / "demo.md").read_text().startswith(demo_markdown(record).rstrip())
    # the ranker is trained and scored on CTR like LR; it does not rank all notes
    assert {"auc", "gauc", "logloss"} <= set(metrics["ctr"][ranker])
    assert set(metrics["train"]) == {"lr", ranker} and ranker not in metrics["retrieval"]
    assert metrics["retrieval"]["queries"] > 0
    for f in ("config.yaml", "feature_map.json", "log.jsonl"):
        assert (out / f).is_file()
    for model in ("popularity", "lr", ranker):
        assert (out / "models" / model / "model.safetensors").is_file()
    # The saved LR reloads by name and scores like the demo's model.
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables
    from snsrec.runs import load_run
    from snsrec.train.trainer import Trainer

    run = load_run(out / "models" / "lr")
    tables = load_tables(tiny_world)
    test = run.feature_map.transform(tables, split_events(tables)["test"])
    assert Trainer().evaluate(run.model, test)["auc"] == pytest.approx(
        metrics["ctr"]["lr"]["auc"], abs=1e-9)
    # The demo's output is what `snsrec serve` serves: its RED-Rec run and its ranker.
    assert f"snsrec serve {out}" in printed
    from snsrec.serve.service import build_platform

    platform = build_platform(out, f"sqlite:{tmp_path / 'serve.sqlite'}", index_kind="flat")
    user = int(tables.events.select("user_id").head(1).collect().item())
    now = int(platform.retriever.corpus.created.max()) + 1
    items = platform.feed(user, 5, now)["items"]
    assert len(items) == 5 and all(0 < i["score"] < 1 for i in items)


def test_bad_config_key_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    import snsrec.demo

    bad = tmp_path / "demo.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    monkeypatch.setattr(snsrec.demo, "DEMO_CONFIG", bad)
    code, cap = _cli(["demo", "--preset", "tiny", "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'train.epochz'" in lines[0] and "epochs" in lines[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "worlds").exists()


def test_bad_override_and_model_parameter_fail_before_any_work(tmp_path):
    from snsrec.demo import run_demo
    from snsrec.errors import ModelError

    with pytest.raises(ConfigError, match="unknown key 'retrieval.kss'; did you mean 'ks'"):
        run_demo(tmp_path / "run", preset="tiny", overrides=["retrieval.kss=[5]"])
    with pytest.raises(ModelError, match="unknown parameter 'half_life'"):
        run_demo(tmp_path / "run", preset="tiny", overrides=["popularity.half_life=3"])
    with pytest.raises(ConfigError, match="retrievers.redrec: 'deepfm' is not a retrieval"):
        run_demo(tmp_path / "run", preset="tiny", overrides=["retrievers.redrec.model.name=deepfm"])
    with pytest.raises(ModelError, match="unknown parameter 'widht'"):
        run_demo(tmp_path / "run", preset="tiny",
                 overrides=["retrievers.redrec.model.params.widht=64"])
    assert not any(tmp_path.iterdir())
