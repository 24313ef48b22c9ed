"""`snsrec train` / `snsrec evaluate` of a RED-Rec run on the tiny world, through the CLI."""

import json

REDREC = {"dim": 16, "width": 32, "layers": 1, "heads": 2, "negatives": 50,
          "text": {"backbone": "hash", "buckets": 1 << 14, "dim": 16}}


def _config(runs, tmp_path, tiny_world, **train):
    import yaml

    path = runs.write_config(tmp_path, tiny_world, name="redrec_run", model="redrec",
                             params=REDREC, **{"epochs": 1, "batch_size": 256, "lr": 0.003,
                                               "loss": "window_nce", "monitor": "hr@100",
                                               **train})
    cfg = yaml.safe_load(path.read_text())
    cfg["retrieval"] = {"window": 4, "cutoffs_per_user": 5,
                        "sequence": {"blocks": {"feed": 16, "search": 8, "discover": 8,
                                                "ads": 8}}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_then_evaluate_a_redrec_run(tiny_world, tmp_path, capsys, runs):
    cfg = _config(runs, tmp_path, tiny_world)
    code, out, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "redrec_run"
    for f in ("config.yaml", "corpus.parquet", "corpus_queries.parquet", "model.safetensors",
              "metrics.json", "log.jsonl", "report.md"):
        assert (run_dir / f).is_file(), f
    m = json.loads((run_dir / "metrics.json").read_text())
    assert set(m["test"]) == {"feed", "search", "ads"} and "hr@100" in m["valid"]
    assert 0 <= m["test"]["feed"]["all"]["cold_users"] <= m["test"]["feed"]["all"]["queries"]
    assert "test feed" in out and "hr@100" in out
    code, out, err = runs.cli(["evaluate", str(run_dir), "--split", "test"], capsys)
    assert code == 0, err
    from snsrec.train.pipeline import evaluate_run

    again = evaluate_run(run_dir, "test")["metrics"]
    for target, parts in m["test"].items():
        for part, metrics in parts.items():
            assert again[target][part]["hr@100"] == metrics["hr@100"], (target, part)

    # The run's notes into an exact index: its top 100 are the full-corpus ranking's.
    code, out, err = runs.cli(["index", "build", str(run_dir), "--kind", "flat"], capsys)
    assert code == 0 and "indexed" in out, err
    import numpy as np
    import torch

    from snsrec.eval.protocols import corpus_vectors
    from snsrec.index.ann import AnnIndex
    from snsrec.runs import load_run

    index = AnnIndex.load(run_dir / "index-flat")
    run = load_run(run_dir)
    items = corpus_vectors(run.model, len(run.feature_map)).numpy()
    assert len(index) == len(items)
    _, ids = index.search(items[:3], 1)
    np.testing.assert_array_equal(ids[:, 0], run.feature_map.note_ids[:3])
    with torch.no_grad():
        assert torch.isfinite(torch.from_numpy(items)).all()


def test_a_fresh_channel_run_serves_its_new_notes_from_a_second_index(tiny_world, tmp_path,
                                                                      capsys, runs):
    """fresh_every 4: the notes created after the training cut-off go to a flat index of
    their own, and the served list takes every 4th place from it, in the order the
    evaluation's blended ranking gives."""
    import numpy as np
    import yaml

    from snsrec.eval.metrics import blended_ranks
    from snsrec.index.build import RunIndex
    from snsrec.runs import load_run

    path = _config(runs, tmp_path, tiny_world)
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["params"]["fresh_every"] = 4
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = runs.cli(["train", str(path), "--out", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "redrec_run"
    code, out, err = runs.cli(["index", "build", str(run_dir), "--kind", "flat"], capsys)
    assert code == 0 and "fresh-note index" in out, err
    run = load_run(run_dir)
    fresh = run.feature_map.fresh()
    assert 0 < fresh.sum() < len(fresh)
    index = RunIndex.load(run_dir / "index-flat")
    assert index.fresh_every == 4 and len(index.fresh) == fresh.sum()
    assert len(index) == len(fresh)
    interests = np.eye(1, run.model.dim, dtype=np.float32)     # one interest vector
    _, ids = index.search_interests(interests, 12)
    is_fresh = np.isin(ids, run.feature_map.note_ids[fresh])
    assert is_fresh.tolist() == [(p + 1) % 4 == 0 for p in range(12)]
    # The same places as the protocol's ranking of those scores.
    from snsrec.eval.protocols import corpus_vectors

    scores = (corpus_vectors(run.model, len(fresh)).numpy() @ interests[0])[None, :]
    rows = np.searchsorted(run.feature_map.note_ids, ids)
    places = blended_ranks(np.repeat(scores, len(rows), 0), rows, fresh, 4)
    assert places.tolist() == list(range(12))


def test_a_ctr_monitor_on_a_retrieval_run_is_one_line(tiny_world, tmp_path, capsys, runs):
    cfg = _config(runs, tmp_path, tiny_world, monitor="auc")
    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and "train.monitor 'auc'" in err and err.count("\n") == 1
    assert not (tmp_path / "runs" / "redrec_run").exists()


def test_counted_baselines_run_through_the_same_command(tiny_world, tmp_path, capsys, runs):
    import yaml

    for name, params in (("itemcf", {"neighbours": 50}), ("toppop", {}),
                         ("category", {"fresh_every": 4})):
        path = _config(runs, tmp_path, tiny_world)
        cfg = yaml.safe_load(path.read_text())
        cfg["name"], cfg["model"] = name, {"name": name, "params": params}
        path.write_text(yaml.safe_dump(cfg))
        code, out, err = runs.cli(["train", str(path), "--out", str(tmp_path / "runs")], capsys)
        assert code == 0, err
        m = json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
        assert m["epochs_run"] == 0 and set(m["test"]) == {"feed", "search", "ads"}
        assert 0.0 <= m["test"]["feed"]["all"]["hr@100"] <= 1.0


def test_sasrec_trains_on_next_item_sequences_through_the_same_command(tiny_world, tmp_path,
                                                                        capsys, runs):
    import yaml

    path = _config(runs, tmp_path, tiny_world, loss="next_item_ce")
    cfg = yaml.safe_load(path.read_text())
    cfg["name"], cfg["model"] = "sasrec", {"name": "sasrec", "params": {
        "dim": 16, "max_len": 12, "heads": 2, "inner": 32, "dropout": 0.2}}
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = runs.cli(["train", str(path), "--out", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "runs" / "sasrec" / "metrics.json").read_text())
    assert m["steps"] > 0 and m["rows"]["train"]["mean_targets"] > 1
    assert set(m["test"]) == {"feed", "search", "ads"}
    assert 0.0 <= m["test"]["feed"]["all"]["hr@100"] <= 1.0
    # The window-NCE loss is not SASRec's: one line naming the loss it trains with.
    cfg["train"]["loss"] = "window_nce"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = runs.cli(["train", str(path), "--out", str(tmp_path / "runs2")], capsys)
    assert code == 2 and "train.loss=next_item_ce" in err and err.count("\n") == 1
