"""Bad input to `snsrec train`: one line on stderr, exit 2, no run marked complete."""

import json
import shutil

import polars as pl
import pytest

import snsrec.train.pipeline as pipeline


def _copy_world(tiny_world, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(tiny_world, dst)
    return dst


def _events(world, fn):
    path = world / "events.parquet"
    pl.read_parquet(path).pipe(fn).write_parquet(path)


def _one_line_error(runs, capsys, argv, *needles):
    code, out, err = runs.cli(argv, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def test_unknown_model_lists_the_registered_ones(tiny_world, tmp_path, capsys, runs):
    cfg = runs.write_config(tmp_path, tiny_world)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r"), "--set",
                                   "model.name=deepfmm"], "unknown model 'deepfmm'", "lr")
    assert not (tmp_path / "r").exists()


def test_feature_missing_from_the_data(tiny_world, tmp_path, capsys, runs):
    features = tmp_path / "features.yaml"
    features.write_text("categorical:\n  - {name: mood, column: users.mood}\n")
    cfg = runs.write_config(tmp_path, tiny_world)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r"), "--set",
                                   f"features={features}"], "'mood'", "users")
    assert not (tmp_path / "r").exists()


def test_labels_outside_0_1(tiny_world, tmp_path, capsys, runs):
    world = _copy_world(tiny_world, tmp_path, "w")
    _events(world, lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) % 100 == 0).then(2).otherwise(pl.col("click"))
        .cast(df.schema["click"]).alias("click")))
    cfg = runs.write_config(tmp_path, world)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r")],
                    "events.parquet", "'click'", "outside {0, 1}")


def test_nonfinite_numeric_is_an_error_or_filled_per_config(tiny_world, tmp_path, capsys, runs):
    world = _copy_world(tiny_world, tmp_path, "w")
    # An extra float column becomes a numeric feature of the default spec.
    _events(world, lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 0).then(float("nan"))
        .when(pl.int_range(pl.len()) % 77 == 0).then(float("inf"))
        .otherwise(pl.col("position").cast(pl.Float64)).alias("score")))
    cfg = runs.write_config(tmp_path, world, epochs=1)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r")],
                    "'score'", "NaN/inf", "nonfinite: fill")
    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "r"), "--set",
                             "nonfinite=fill"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "r" / "run" / "metrics.json").read_text())
    assert m["test"]["auc"] > 0.5


def test_empty_split(tiny_world, tmp_path, capsys, runs):
    world = _copy_world(tiny_world, tmp_path, "w")
    meta = json.loads((world / "world.json").read_text())
    meta["split"]["test_start"] = "2100-01-01T00:00:00"
    (world / "world.json").write_text(json.dumps(meta))
    cfg = runs.write_config(tmp_path, world)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r")],
                    "test split is empty")


def test_checkpoint_of_another_model_or_feature_map(tiny_world, tmp_path, capsys, runs,
                                                    monkeypatch):
    cfg = runs.write_config(tmp_path, tiny_world, name="ck", epochs=2)
    out = tmp_path / "runs"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt   # dies after training, before the run dir is written

    with monkeypatch.context() as m:
        m.setattr(pipeline, "save_run", crash)
        with pytest.raises(KeyboardInterrupt):
            pipeline.train_from_config(cfg, runs_root=out)
    capsys.readouterr()   # drop the interrupted run's progress lines
    run_dir = out / "ck"
    assert (run_dir / "checkpoint" / "state.json").is_file()   # epoch 1's checkpoint
    assert not (run_dir / "metrics.json").exists()

    features = tmp_path / "features.yaml"
    features.write_text("categorical:\n  - {name: note_id, column: events.note_id}\n"
                        "numeric: []\nmulti: []\nsequences: []\n")
    base = ["train", str(cfg), "--out", str(out), "--resume"]
    _one_line_error(runs, capsys, [*base, "--set", "model.params.fields=[note_id]"],
                    "another run", "model.params")
    _one_line_error(runs, capsys, [*base, "--set", f"features={features}"],
                    "another run", "feature_map")
    assert not (run_dir / "metrics.json").exists()
    # With its own config the checkpoint resumes and completes the run.
    code, _, err = runs.cli(base, capsys)
    assert code == 0, err
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2


def _conversion_config(runs, tmp_path, world, **top):
    import yaml

    from snsrec.bench.runner import REPO_ROOT

    path = runs.write_config(tmp_path, world, name="esmm", model="esmm",
                             params={"embedding_dim": 4, "hidden_units": [8]}, loss="esmm")
    cfg = yaml.safe_load(path.read_text())
    cfg.update({"features": str(REPO_ROOT / "configs/features/world_conversion.yaml"),
                "scenarios": ["ads"], **top})
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_conversion_without_a_click_names_an_event(tiny_world, tmp_path, capsys, runs):
    world = _copy_world(tiny_world, tmp_path, "w")
    first = {}

    def convert_unclicked(df):
        row = df.with_row_index("i").filter((pl.col("click") == 0) & (pl.col("scenario") == "ads"))
        first["event"] = int(row["event_id"][0])
        return df.with_columns(pl.when(pl.col("event_id") == first["event"]).then(1)
                               .otherwise(pl.col("convert")).cast(df.schema["convert"])
                               .alias("convert"))

    _events(world, convert_unclicked)
    cfg = _conversion_config(runs, tmp_path, world)
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r")],
                    "events.parquet", "convert = 1 without a click",
                    f"event_id {first['event']}")
    assert not (tmp_path / "r").exists()


def test_unknown_scenario_is_one_line(tiny_world, tmp_path, capsys, runs):
    cfg = _conversion_config(runs, tmp_path, tiny_world, scenarios=["adz"])
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r")],
                    "scenarios", "adz", "ads")


def test_a_conversion_run_on_the_ads_scenario(tiny_world, tmp_path, capsys, runs):
    cfg = _conversion_config(runs, tmp_path, tiny_world)
    code, out, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    m = runs.metrics(tmp_path / "r" / "esmm")
    assert {"cvr_auc", "ctcvr_auc", "cvr_logloss"} <= set(m["test"])
    assert set(m["test"]["by_scenario"]) == {"ads"}
    assert "cvr_auc" in out                              # the summary table shows them


def test_max_rows_samples_the_splits_and_rejects_zero(tiny_world, tmp_path, capsys, runs):
    cfg = runs.write_config(tmp_path, tiny_world, name="few")
    code, _, err = runs.cli(["train", str(cfg), "--out", str(tmp_path / "r"), "--set",
                             "max_rows={train: 2000, test: 500}"], capsys)
    assert code == 0, err
    assert runs.metrics(tmp_path / "r" / "few")["rows"]["train"] == 2000
    _one_line_error(runs, capsys, ["train", str(cfg), "--out", str(tmp_path / "r2"), "--set",
                                   "max_rows={train: 0}"], "max_rows", "positive")
    assert not (tmp_path / "r2").exists()
