"""`snsrec sim ab`: ground-truth users answer what each arm serves, with common draws; the
moderator learns only from the notes before the start; the shipped arms run."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.metrics import precision_score, recall_score

from snsrec.cli import main
from snsrec.errors import ConfigError, DataError
from snsrec.sim.ab import compare, moderation_quality, run_ab, schedule, user_totals

ROOT = Path(__file__).resolve().parents[2]


def _arm(tmp_path, served, name, **kw):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "retriever": str(served["retriever"].run_dir),
                                    "ranker": str(served["ranker"].run_dir), "index": "flat",
                                    **kw}))
    return path


SMALL = ["users_per_day=15", "requests_per_user=3"]


def test_an_aa_test_shows_no_difference_and_the_schedule_is_fixed(served, tmp_path):
    world = served["tables"].root
    r = run_ab(world, _arm(tmp_path, served, "a"), _arm(tmp_path, served, "a2"),
               tmp_path / "out", overrides=SMALL, days=1)
    assert r["requests"] == 45 and (tmp_path / "out" / "ab.md").is_file()
    for m in ("feed_ctr", "search_click_page_rate", "harmful_exposure_rate"):
        s = r["metrics"][m]
        # Same pipeline, same users, same draws: the arms cannot differ.
        assert s["a"] == s["b"] and s["diff"] == 0 and s["diff_ci"] == [0.0, 0.0]
    assert r["metrics"]["coverage"]["a"] > 0
    from snsrec.data.world.usermodel import UserModel
    from snsrec.sim.ab import SimConfig

    um, cfg = UserModel.load(world), SimConfig(users_per_day=15, requests_per_user=3, days=1)
    one, two = schedule(world, cfg, 10**9, um), schedule(world, cfg, 10**9, um)
    assert one == two and [q["ts"] for q in one] == sorted(q["ts"] for q in one)
    assert all(q["query"] and q["query_topic"] >= 0 for q in one if q["scenario"] == "search")


def test_moderation_off_exposes_what_on_filters(served, tmp_path):
    world = served["tables"].root
    on = _arm(tmp_path, served, "on", threshold=0.05)
    off = _arm(tmp_path, served, "off", moderation=False)
    r = run_ab(world, on, off, tmp_path / "out", overrides=SMALL, days=1)
    scores = pl.read_parquet(tmp_path / "out" / "moderation.parquet")
    assert scores.height == len(served["notes"])
    s = r["metrics"]["harmful_exposure_rate"]
    assert s["a"] <= s["b"]                        # filtering at 0.05 never adds harm
    # The two parts of the harmful exposure sum to it, in each arm.
    m = r["metrics"]
    for arm in ("a", "b"):
        assert m["harmful_exposure_new_notes"][arm] + m["harmful_exposure_old_notes"][arm] == \
            pytest.approx(s[arm], abs=1e-12)
    assert 0 < m["new_notes_shown"]["b"] < 1

    # The moderator learnt from exactly the notes created before the start.
    notes = pl.read_parquet(world / "notes.parquet")
    start = np.datetime64(r["start"], "ms")
    before = notes.filter(pl.col("created_at") < start)
    assert 0 < before.height < notes.height
    mod = r["moderation"]["arms"]
    for arm in mod.values():
        assert arm["moderator"] == "n-gram baseline"
        assert arm["train_notes"] == before.height and arm["fitted_before"] == r["start"]
        assert arm["latest_train_note"] < r["start"]
        assert arm["latest_train_note"] == str(before["created_at"].max().replace(
            microsecond=0).isoformat())
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / "moderation-baseline.safetensors"), "pt") as f:
        assert f.metadata()["before"] == r["start"]
    # Its precision and recall at each arm's threshold on the notes created in the simulated
    # day, as scikit-learn computes them from the kept scores and the world's flags.
    new = notes.filter((pl.col("created_at") >= start) & (
        pl.col("created_at") < start + np.timedelta64(1, "D"))).join(scores, on="note_id")
    assert r["moderation"]["notes"] == new.height > 0
    assert r["moderation"]["harmful"] == new["harmful"].sum()
    for name, threshold in (("on", 0.05), ("off", 0.5)):
        blocked = (new["p_harmful"] >= threshold).to_numpy()
        assert mod[name]["blocked"] == blocked.sum() and mod[name]["threshold"] == threshold
        if blocked.any():
            assert mod[name]["precision"] == pytest.approx(
                precision_score(new["harmful"].to_numpy(), blocked))
        if new["harmful"].any():
            assert mod[name]["recall"] == pytest.approx(
                recall_score(new["harmful"].to_numpy(), blocked))
    assert mod["on"]["enabled"] and not mod["off"]["enabled"]
    md = (tmp_path / "out" / "ab.md").read_text()
    assert f"{before.height:,} notes created before {r['start']}" in md
    # Asked again for the same cut-off, the kept baseline is reused, not refitted.
    from snsrec.serve.service import baseline

    weights = tmp_path / "out" / "moderation-baseline.safetensors"
    stamp = weights.stat().st_mtime_ns
    cut = int(start.astype("datetime64[s]").astype(np.int64))
    assert baseline(served["tables"], tmp_path / "out", before=cut)[2] == {
        k: mod["on"][k] for k in ("fitted_before", "train_notes", "latest_train_note")}
    assert weights.stat().st_mtime_ns == stamp


def test_moderation_quality_on_a_hand_checked_case():
    # Notes 1-6; 1, 2 and 5 are harmful. At 0.5: 1 (0.9), 3 (0.6) and 4 (0.5) are blocked,
    # 6 has no score and passes. Blocked and harmful: note 1 alone, so precision 1/3 and
    # recall 1/3 (2 and 5 missed).
    scores = {1: 0.9, 2: 0.4, 3: 0.6, 4: 0.5, 5: 0.1}
    ids, harmful = np.arange(1, 7), np.array([1, 1, 0, 0, 1, 0], bool)
    q = moderation_quality(scores, 0.5, ids, harmful)
    assert q == {"blocked": 3, "precision": pytest.approx(1 / 3), "recall": pytest.approx(1 / 3)}
    q = moderation_quality(scores, 0.35, ids, harmful)          # 2 is now blocked too
    assert (q["precision"], q["recall"]) == (pytest.approx(2 / 4), pytest.approx(2 / 3))
    # Nothing blocked: precision is undefined, not 0; no harmful note: recall is undefined.
    q = moderation_quality(scores, 0.95, ids, harmful)
    assert q["precision"] is None and q["recall"] == 0.0 and q["blocked"] == 0
    assert moderation_quality(scores, 0.5, ids, np.zeros(6, bool))["recall"] is None


def test_popularity_candidates_and_bad_input(served, tmp_path):
    world = served["tables"].root
    with pytest.raises(DataError, match="truth"):
        run_ab(tmp_path, _arm(tmp_path, served, "a"), _arm(tmp_path, served, "b"), tmp_path)
    with pytest.raises(ConfigError, match="different names"):
        run_ab(world, _arm(tmp_path, served, "a"), _arm(tmp_path, served, "a"), tmp_path)
    with pytest.raises(ConfigError, match="candidates"):
        run_ab(world, _arm(tmp_path, served, "a"), _arm(tmp_path, served, "b", candidates="x"),
               tmp_path / "o", overrides=SMALL, days=1)
    r = run_ab(world, _arm(tmp_path, served, "redrec"),
               _arm(tmp_path, served, "popular", candidates="popularity"), tmp_path / "p",
               overrides=SMALL, days=1)
    assert set(r["metrics"]) >= {"feed_ctr", "coverage"}


def test_bootstrap_intervals_cover_the_estimate():
    users = [1, 2, 3, 4]
    recs = [{"user": u, "scenario": "feed", "shown": 10, "clicks": c, "conversions": 0,
             "harmful": h, "harmful_new": hn, "new": 2, "notes": []}
            for u, c, h, hn in zip(users, (1, 2, 3, 4), (0, 1, 0, 2), (0, 1, 0, 1), strict=True)]
    a = user_totals(recs, users)
    assert a["harmful_old"].tolist() == [0, 0, 0, 1]
    b = user_totals([{**r, "clicks": r["clicks"] + 1} for r in recs], users)
    out = compare(a, b, 100, (10, 20), seed=0)
    s = out["feed_ctr"]
    assert s["a"] == pytest.approx(0.25) and s["b"] == pytest.approx(0.35)
    assert s["a_ci"][0] <= s["a"] <= s["a_ci"][1] and s["diff"] == pytest.approx(0.1)
    assert s["diff_ci"] == pytest.approx([0.1, 0.1])      # every user gained one click in 10
    assert out["coverage"] == {"a": 0.1, "b": 0.2, "diff": 0.1}
    # 3 harmful impressions in 40: 2 on new notes, 1 on old ones.
    assert out["harmful_exposure_rate"]["a"] == pytest.approx(3 / 40)
    assert out["harmful_exposure_new_notes"]["a"] == pytest.approx(2 / 40)
    assert out["harmful_exposure_old_notes"]["a"] == pytest.approx(1 / 40)
    assert out["new_notes_shown"]["a"] == pytest.approx(8 / 40)
    assert np.isnan(out["ads_conversion_rate"]["a"])


# -- the shipped arms ----------------------------------------------------------------------

# The README's A/B tables: each pair is one `snsrec sim ab` run of configs/sim/.
TABLES = {"moderation": ("moderation-on", "moderation-off"),
          "redrec-feed": ("redrec-feed", "redrec"), "popularity": ("popularity", "redrec")}
# The documented commands, made small for the tiny world (the same recipes, fewer epochs
# and a narrower user tower).
SMALL_REDREC = ["train.epochs=1", "model.params.width=32", "model.params.layers=1",
                "model.params.negatives=50", "retrieval.cutoffs_per_user=5"]
SMALL_DEMO = ["train.epochs=1", "ranker.train.epochs=1", "ranker.params.hidden_units=[16]",
              "ranker.params.memorise_buckets=1024",
              *(f"retrievers.redrec.{x}" for x in SMALL_REDREC)]


def _sets(pairs):
    return [a for x in pairs for a in ("--set", x)]


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--quiet", *argv])
    return e.value.code, capsys.readouterr()


def test_every_shipped_arm_runs_on_the_runs_its_comment_names(tmp_path, capsys, monkeypatch):
    """`snsrec demo --full` and `snsrec train configs/train/redrec_feed_world_small.yaml`, as the
    arms' comments say, into a runs folder of the tiny world; every config in configs/sim/
    runs against it through `--runs`."""
    from snsrec.serve import service

    # Each sim fits its own moderator; on a sample of 300 notes (the cap's code path) the
    # three fits take seconds instead of most of this test's time.
    monkeypatch.setattr(service, "BASELINE_MAX_NOTES", 300)
    shipped = {p.stem: p for p in (ROOT / "configs" / "sim").glob("*.yaml")}
    assert set(shipped) == {a for pair in TABLES.values() for a in pair}
    runs = tmp_path / "runs"
    code, _ = _cli(["demo", "--full", "--preset", "tiny", "--out", str(runs / "demo"),
                    *_sets(SMALL_DEMO)], capsys)
    assert code == 0
    world = runs / "worlds" / "tiny-seed7"                 # where the demo puts its world
    code, _ = _cli(["train", str(ROOT / "configs" / "train" / "redrec_feed_world_small.yaml"),
                    "--out", str(runs), *_sets([f"data={world}", *SMALL_REDREC])], capsys)
    assert code == 0 and (runs / "redrec_feed_world_small" / "corpus.parquet").is_file()
    for table, (a, b) in TABLES.items():
        out = tmp_path / "sim" / table
        code, io = _cli(["sim", "ab", "--world", str(world), "--runs", str(runs), "--a",
                         str(shipped[a]), "--b", str(shipped[b]), "--days", "1", "--out",
                         str(out), *_sets(["users_per_day=4", "requests_per_user=2"])], capsys)
        assert code == 0, io.err
        r = json.loads((out / "ab.json").read_text())
        arms = {x["name"]: x for x in r["arms"]}
        assert list(arms) == [a, b] and r["requests"] == 8
        for arm in arms.values():                        # the demo's ranker ranks every arm
            assert Path(arm["ranker"]) == runs / "demo" / "models" / "optinter"
        assert r["moderation"]["arms"][a]["fitted_before"] == r["start"]
    assert Path(arms["redrec"]["retriever"]) == runs / "demo" / "models" / "redrec"
    # A runs folder without them: the first arm's file and key, before anything runs.
    code, io = _cli(["sim", "ab", "--world", str(world), "--runs", str(tmp_path / "none"),
                     "--a", str(shipped["redrec"]), "--b", str(shipped["redrec-feed"]),
                     "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and len(io.err.strip().splitlines()) == 1
    assert "redrec.yaml: run" in io.err and "--runs" in io.err
    assert not (tmp_path / "x").exists()


def test_the_feed_only_redrec_is_the_demos_recipe_on_the_feed():
    """Only what the redrec-feed arm varies differs from the full demo's RED-Rec: the
    scenarios."""
    from snsrec.demo import load_demo_config
    from snsrec.train.pipeline import load_run_config

    demo = load_demo_config(ROOT / "configs" / "demo_full.yaml").retrievers["redrec"]
    feed = load_run_config(ROOT / "configs" / "train" / "redrec_feed_world_small.yaml")
    assert feed.model == demo.model
    assert feed.train == demo.train.model_copy(update={"seed": 7})   # the demo's --seed
    keep = {"target_scenarios", "sequence"}
    assert feed.retrieval.model_dump(exclude=keep) == demo.retrieval.model_dump(exclude=keep)
    assert feed.retrieval.target_scenarios == ["feed"]
    assert set(feed.retrieval.sequence.blocks) == {"feed"}
