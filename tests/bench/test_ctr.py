"""`snsrec bench ctr`: leaderboard maths, files, determinism and bad input, on the tiny world."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from snsrec.bench.ctr import bench_ctr, features_line, summarise
from snsrec.bench.runner import data_slug, mean_std, pm
from snsrec.cli import main
from snsrec.progress import set_quiet

MODELS = ["lr", "deepfm"]
# Small and quick: 1 epoch, a narrow MLP (the peers get the same).
FAST = ["train.epochs=1", "train.batch_size=2048", "model.params.hidden_units=[32]"]


@pytest.fixture(scope="module")
def bench(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    root = tmp_path_factory.mktemp("bench_ctr")
    cache = tiny_cache(root)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_ctr(["world:tiny"], MODELS, 2, root / "a", overrides=FAST, cache=cache,
                    peer_data=("world_tiny",))
    return res, root, cache


def test_mean_std_is_mean_and_sample_std() -> None:
    m, s = mean_std([0.7, 0.8, 0.9])
    assert m == pytest.approx(0.8) and s == pytest.approx(0.1)       # ddof = 1
    assert mean_std([0.75]) == (0.75, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))
    assert pm(0.81234, 0.00111) == "0.8123 ± 0.0011"
    assert pm(0.81234, 0.0, seeds=1) == "0.8123"          # one seed: no spread to show
    assert pm(0.7337, 0.0, seeds=5) == "0.7337 ± 0.0000"  # five seeds that agree


def test_features_line_names_each_models_file() -> None:
    one = {"features": "f.yaml", "model_features": {"lr": "f.yaml", "fm": "f.yaml"}}
    assert features_line(one) == "`f.yaml`"
    two = {"features": "f.yaml", "model_features": {"din": "s.yaml", "lr": "f.yaml",
                                                     "qin": "s.yaml"}}
    assert features_line(two) == "`s.yaml` (din, qin); `f.yaml` (lr)"
    assert features_line({"features": "default"}) == "`default`"    # older records


def test_summarise_sorts_by_mean_auc_and_averages_seeds() -> None:
    runs = [{"model": m, "auc": a, "logloss": ll, "params": p, "train_time_s": t, "config": "c"}
            for m, a, ll, p, t in [("lr", 0.70, 0.50, 10, 1.0), ("lr", 0.72, 0.48, 10, 3.0),
                                   ("fm", 0.75, 0.45, 20, 2.0), ("fm", 0.77, 0.47, 20, 2.0)]]
    board = summarise(runs)
    assert [r["model"] for r in board] == ["fm", "lr"]
    lr = board[1]
    assert lr["auc_mean"] == pytest.approx(0.71) and lr["seeds"] == 2
    assert lr["auc_std"] == pytest.approx(np.std([0.70, 0.72], ddof=1))
    assert lr["logloss_mean"] == pytest.approx(0.49) and lr["train_time_s"] == pytest.approx(2.0)


def test_data_slug_names_configs() -> None:
    assert data_slug("world:small") == "world_small"
    assert data_slug("world:tiny:3") == "world_tiny_3"
    assert data_slug("recbole:ml-1m") == "ml-1m"
    assert data_slug("bars:/data/BARS/Frappe_x1") == "frappe_x1"


def test_leaderboard_json_and_markdown(bench: tuple[dict, Path, Path]) -> None:
    res, root, _ = bench
    out = root / "a"
    saved = json.loads((out / "leaderboard.json").read_text())
    md = (out / "leaderboard.md").read_text()
    assert md == res["markdown"]
    block = saved["data"]["world_tiny"]
    assert block["spec"] == "world:tiny" and len(block["runs"]) == len(MODELS) * 2
    assert sorted(r["model"] for r in block["leaderboard"]) == sorted(MODELS)
    aucs = [r["auc_mean"] for r in block["leaderboard"]]
    assert aucs == sorted(aucs, reverse=True)
    for row in block["leaderboard"]:
        mine = [r for r in block["runs"] if r["model"] == row["model"]]
        assert sorted(r["seed"] for r in mine) == [0, 1] and row["seeds"] == 2
        assert row["auc_mean"] == pytest.approx(np.mean([r["auc"] for r in mine]))
        assert row["auc_std"] == pytest.approx(np.std([r["auc"] for r in mine], ddof=1))
        assert row["logloss_mean"] == pytest.approx(np.mean([r["logloss"] for r in mine]))
        assert row["params"] > 0 and 0.5 < row["auc_mean"] <= 1.0
        assert f"| {row['model']} | {pm(row['auc_mean'], row['auc_std'])} |" in md
        for k in (0, 1):
            assert (out / "runs" / "world_tiny" / row["model"] / f"seed{k}" / "metrics.json"
                    ).is_file()
    # Seeds differ: the two seeds of a model do not give the very same run.
    lr = [r["auc"] for r in block["runs"] if r["model"] == "lr"]
    assert lr[0] != lr[1]
    assert "snsrec bench ctr --data world:tiny --models lr,deepfm --seeds 2" in md
    assert "--set train.epochs=1" in saved["command"]
    assert block["features"].endswith("features/world.yaml")


def test_oracle_and_trivial_rows_beside_the_models(bench: tuple[dict, Path, Path]) -> None:
    from sklearn.metrics import roc_auc_score

    from snsrec.bench.references import split_rows
    from snsrec.data.tables import load_tables
    from snsrec.eval.oracle import impression_truth, load_truth
    from snsrec.train.pipeline import load_run_config, run_splits

    res, root, cache = bench
    saved = json.loads((root / "a" / "leaderboard.json").read_text())["data"]["world_tiny"]
    refs = {r["model"]: r for r in saved["references"]}
    assert list(refs) == ["oracle", "popularity", "constant"]
    oracle, const = refs["oracle"], refs["constant"]
    # On the very test rows the runs were scored on.
    run = json.loads((root / "a" / "runs" / "world_tiny" / "lr" / "seed0" / "metrics.json")
                     .read_text())
    assert oracle["rows"] == const["rows"] == run["test"]["n"]
    # The oracle's AUC is sklearn's AUC of the truth's click probabilities.
    world = Path(saved["path"])
    cfg = load_run_config(None, base={"name": "x", "data": str(world), "model": {"name": "lr"}})
    test = split_rows(run_splits(load_tables(world), cfg)["test"])
    p = impression_truth(load_truth(world), test)["click"]
    assert oracle["auc_mean"] == pytest.approx(roc_auc_score(test["click"], p), abs=1e-12)
    assert const["auc_mean"] == 0.5 and const["logloss_mean"] > oracle["logloss_mean"]
    assert 0.5 < refs["popularity"]["auc_mean"] < oracle["auc_mean"]
    for row in saved["leaderboard"]:
        assert row["auc_mean"] < oracle["auc_mean"]
        assert row["auc_share"] == pytest.approx((row["auc_mean"] - 0.5)
                                                 / (oracle["auc_mean"] - 0.5))
        assert row["logloss_share"] == pytest.approx(
            (const["logloss_mean"] - row["logloss_mean"])
            / (const["logloss_mean"] - oracle["logloss_mean"]))
        assert set(row["by_scenario"]) == set(oracle["by_scenario"]) == {
            "feed", "search", "discover", "ads"}
        for s, m in row["by_scenario"].items():
            best = oracle["by_scenario"][s]["auc_mean"]
            assert m["auc_share"] == pytest.approx((m["auc_mean"] - 0.5) / (best - 0.5))
        assert row["gauc_mean"] < oracle["gauc_mean"]
    assert (oracle["auc_share"], const["auc_share"], const["logloss_share"]) == (1.0, 0.0, 0.0)
    md = res["markdown"]
    assert f"| *oracle* | {oracle['auc_mean']:.4f} | 100.0% |" in md
    assert "| *constant* | 0.5000 | 0.0% |" in md and "| model | feed AUC |" in md


def test_same_seed_twice_gives_same_auc(bench: tuple[dict, Path, Path]) -> None:
    res, root, cache = bench
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    again = bench_ctr(["world:tiny"], MODELS, 1, root / "b", overrides=FAST, cache=cache)
    first = {r["model"]: r for r in res["results"]["data"]["world_tiny"]["runs"]
             if r["seed"] == 0}
    for r in again["results"]["data"]["world_tiny"]["runs"]:
        assert abs(r["auc"] - first[r["model"]]["auc"]) < 1e-6
        assert abs(r["logloss"] - first[r["model"]]["logloss"]) < 1e-6


def test_cli_unknown_model_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "ctr", "--data", "world:tiny", "--models", "lr,deepfmm", "--seeds", "1",
              "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deepfmm" in err and "registered" in err and "lr" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("spec", ["nosuch:thing", "world:tiny:seven", "bars:"])
def test_cli_bad_data_spec_is_one_line_exit_2(spec: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "ctr", "--data", spec, "--models", "lr", "--seeds", "1",
              "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "data" in err
    assert not (tmp_path / "out").exists()


def test_rerun_into_same_dir_reuses_finished_runs(bench: tuple[dict, Path, Path]) -> None:
    res, root, cache = bench
    stamps = sorted((root / "a" / "runs").rglob("bench.json"))
    before = [p.stat().st_mtime_ns for p in stamps]
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    again = bench_ctr(["world:tiny"], MODELS, 2, root / "a", overrides=FAST, cache=cache,
                      peer_data=())
    assert len(stamps) == len(MODELS) * 2
    assert [p.stat().st_mtime_ns for p in stamps] == before        # nothing retrained
    assert again["results"]["data"]["world_tiny"]["leaderboard"] == \
        res["results"]["data"]["world_tiny"]["leaderboard"]
    # The oracle and trivial rows need no run: a board rebuilt from reused runs has them.
    assert again["results"]["data"]["world_tiny"]["references"] == \
        res["results"]["data"]["world_tiny"]["references"]


def test_peer_rows_beside_the_best_peer_model(bench: tuple[dict, Path, Path]) -> None:
    block = bench[0]["results"]["data"]["world_tiny"]
    peers = block["peers"]
    assert peers["model"] == "deepfm"          # lr is not a model the peers have
    assert {r["peer"] for r in peers["rows"]} == {"torch-rechub", "deepctr-torch"}
    for row in peers["rows"]:
        assert row["seeds"] == 2 and 0.5 < row["auc_mean"] <= 1.0
        assert "user_id" in row["fields"] and "hashtags" not in row["fields"]   # categorical only
    assert "| torch-rechub |" in bench[0]["markdown"]


def test_rerun_reuses_the_peers_results_while_their_settings_hold(
        bench: tuple[dict, Path, Path]) -> None:
    res, root, cache = bench
    stamps = sorted((root / "a" / "runs").rglob("peer-*.json"))
    assert len(stamps) == 2 * 2                    # two peers × two seeds, beside the runs
    before = [p.stat().st_mtime_ns for p in stamps]
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    again = bench_ctr(["world:tiny"], MODELS, 2, root / "a", overrides=FAST, cache=cache,
                      peer_data=("world_tiny",))
    assert [p.stat().st_mtime_ns for p in stamps] == before          # no peer ran again
    assert again["results"]["data"]["world_tiny"]["peers"] == \
        res["results"]["data"]["world_tiny"]["peers"]


def _bars_folder(root: Path) -> Path:
    """A tiny BARS-style folder: label + categorical ints + one float column per split."""
    rng = np.random.default_rng(0)
    folder = root / "Toy_x1"
    folder.mkdir()
    for split, n in (("train", 600), ("valid", 200), ("test", 200)):
        a, b = rng.integers(0, 5, n), rng.integers(0, 4, n)
        x = rng.normal(size=n)
        label = (rng.random(n) < 0.2 + 0.12 * a + 0.05 * x.clip(-1, 1)).astype(int)
        lines = ["label,user,color,score"] + [f"{y},{u},{c},{s:.4f}"
                                               for y, u, c, s in zip(label, a, b, x, strict=True)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_bars_folder_uses_every_column_but_label_and_split(tmp_path: Path) -> None:
    folder = _bars_folder(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_ctr([f"bars:{folder}"], ["lr"], 1, tmp_path / "out",
                    overrides=["train.epochs=1", "train.batch_size=256"],
                    cache=tmp_path / "cache")
    block = res["results"]["data"]["toy_x1"]
    spec = yaml.safe_load(Path(block["features"]).read_text())
    names = {f["name"] for group in ("categorical", "numeric", "multi") for f in spec[group]}
    assert names == {"user", "color", "score"} and spec["labels"] == ["click"]   # no label leak
    assert block["leaderboard"][0]["auc_mean"] > 0.55
    # No truth there: the constant answer only, and no share of an oracle.
    assert [r["model"] for r in block["references"]] == ["constant"]
    assert block["references"][0]["auc_mean"] == 0.5
    assert block["leaderboard"][0]["auc_share"] is None          # no oracle: no share
    assert block["runs"][0]["by_scenario"] == {}      # no scenario column, no "ads" row
    assert "| *constant* | 0.5000 |" in res["markdown"]
    assert "oracle" not in res["markdown"]


def test_a_run_recorded_before_a_new_default_setting_is_still_reused() -> None:
    from snsrec.bench.runner import _same_config
    from snsrec.train.pipeline import RunConfig

    cfg = RunConfig.model_validate({"name": "r", "data": "world:tiny",
                                    "model": {"name": "lr"}})
    now = cfg.model_dump(mode="json")
    older = json.loads(json.dumps(now))
    del older["train"]["precision"]           # a record written before the setting existed
    assert _same_config(cfg, now, now) and _same_config(cfg, older, now)
    older["train"]["threads"] = 1             # how fast, not what: still the same run
    assert _same_config(cfg, older, now)
    older["train"]["lr"] = 0.5                # a different setting is a different run
    assert not _same_config(cfg, older, now)
    assert not _same_config(cfg, {"train": {"no_such_key": 1}}, now)
    assert not _same_config(cfg, None, now)


def test_an_interrupted_run_resumes_from_its_checkpoint(bench: tuple[dict, Path, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from snsrec.train.trainer import Trainer

    _, root, cache = bench
    two = ["train.epochs=2", "train.batch_size=2048", "train.early_stop_patience=2"]
    evaluate = Trainer.evaluate
    calls = []

    def stop_in_epoch_two(self, model, arrays):      # the benchmark killed after epoch 1
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(self, model, arrays)

    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    monkeypatch.setattr(Trainer, "evaluate", stop_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        bench_ctr(["world:tiny"], ["lr"], 1, root / "cut", overrides=two, cache=cache)
    run_dir = root / "cut" / "runs" / "world_tiny" / "lr" / "seed0"
    assert (run_dir / "bench.pending.json").is_file() and (run_dir / "checkpoint").is_dir()
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    resumed = bench_ctr(["world:tiny"], ["lr"], 1, root / "cut", overrides=two, cache=cache)
    whole = bench_ctr(["world:tiny"], ["lr"], 1, root / "whole", overrides=two, cache=cache)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed"] is True and not (run_dir / "bench.pending.json").exists()
    (a,), (b,) = (r["results"]["data"]["world_tiny"]["runs"] for r in (resumed, whole))
    assert a["auc"] == pytest.approx(b["auc"], abs=1e-6) and a["epochs_run"] == 2


def test_records_from_before_the_mark_are_the_benchmarks_own(bench: tuple[dict, Path, Path]
                                                              ) -> None:
    """bench/<name>/ in git holds records (leaderboard, each run's bench.json, config.yaml,
    metrics.json) but no .snsrec marks and no weights: a rerun there writes its files and
    replaces the runs it trains again without --force."""
    import shutil

    _, root, cache = bench
    old = root / "committed"
    shutil.copytree(root / "a", old)
    for p in [*old.rglob(".snsrec"), *old.rglob("*.safetensors")]:
        p.unlink()
    (old / "notes.md").write_text("kept")        # anything else in the folder stays
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_ctr(["world:tiny"], ["lr"], 1, old, overrides=[*FAST[:2], "train.lr=0.02"],
                    cache=cache, peer_data=())
    run_dir = old / "runs" / "world_tiny" / "lr" / "seed0"
    assert json.loads((run_dir / "bench.json").read_text())["config"]["train"]["lr"] == 0.02
    assert (run_dir / "model.safetensors").is_file() and (run_dir / ".snsrec").is_file()
    assert (old / "notes.md").read_text() == "kept" and (old / ".snsrec").is_file()
    assert [r["model"] for r in res["results"]["data"]["world_tiny"]["runs"]] == ["lr"]
