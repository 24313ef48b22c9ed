"""`snsrec sim ab`: ground-truth users answer what each arm serves, with common draws."""

import numpy as np
import pytest
import yaml

from snsrec.errors import ConfigError, DataError
from snsrec.sim.ab import compare, run_ab, schedule, user_totals


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
    import polars as pl

    scores = pl.read_parquet(tmp_path / "out" / "moderation.parquet")
    assert scores.height == len(served["notes"])
    s = r["metrics"]["harmful_exposure_rate"]
    assert s["a"] <= s["b"]                        # filtering at 0.05 never adds harm


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
             "harmful": h, "notes": []} for u, c, h in zip(users, (1, 2, 3, 4), (0, 1, 0, 1),
                                                         strict=True)]
    a = user_totals(recs, users)
    b = user_totals([{**r, "clicks": r["clicks"] + 1} for r in recs], users)
    out = compare(a, b, 100, (10, 20), seed=0)
    s = out["feed_ctr"]
    assert s["a"] == pytest.approx(0.25) and s["b"] == pytest.approx(0.35)
    assert s["a_ci"][0] <= s["a"] <= s["a_ci"][1] and s["diff"] == pytest.approx(0.1)
    assert s["diff_ci"] == pytest.approx([0.1, 0.1])      # every user gained one click in 10
    assert out["coverage"] == {"a": 0.1, "b": 0.2, "diff": 0.1}
    assert np.isnan(out["ads_conversion_rate"]["a"])
