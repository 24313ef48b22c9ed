"""The synthetic world: determinism, schemas, sizes and honesty checks against truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from snsrec.data.schema import validate_file
from snsrec.data.world.generate import generate_world, world_config
from snsrec.data.world.usermodel import UserModel
from snsrec.errors import ConfigError

TABLES = ("notes", "users", "events", "queries")
TRUTH = ("users", "notes", "examination", "relevance", "entities", "qa", "highlights", "intents")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _day(col: str, start: str) -> pl.Expr:
    return ((pl.col(col) - pl.lit(np.datetime64(start))).dt.total_seconds() // 86400).alias("day")


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> dict:
    info = json.loads((tiny_world / "world.json").read_text())
    ev = pl.read_parquet(tiny_world / "events.parquet")
    notes = pl.read_parquet(tiny_world / "notes.parquet")
    return {"dir": tiny_world, "info": info, "events": ev, "notes": notes}


def test_same_seed_same_bytes_other_seed_differs(tiny_world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_world("tiny", 7, again)
    a, b = _files(tiny_world), _files(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    other = tmp_path / "other"
    generate_world("tiny", 8, other)
    c = _files(other)
    assert c["events.parquet"] != a["events.parquet"]
    assert c["notes.parquet"] != a["notes.parquet"]


def test_tables_match_the_schema(world: dict) -> None:
    d = world["dir"]
    for kind in TABLES:
        validate_file(d / f"{kind}.parquet", kind)
    for name in TRUTH:
        assert pq.read_metadata(d / "truth" / f"{name}.parquet").num_rows > 0, name
    params = json.loads((d / "truth" / "params.json").read_text())
    assert "w_interest" in params
    info = world["info"]
    assert info["preset"] == "tiny" and info["seed"] == 7 and len(info["topics"]) >= 24
    assert info["split"]["valid_start"] < info["split"]["test_start"]
    for kind in TABLES:
        assert info["rows"][kind] == pq.read_metadata(d / f"{kind}.parquet").num_rows


def test_sizes_order_and_ids(world: dict) -> None:
    ev, notes, info = world["events"], world["notes"], world["info"]
    assert info["rows"]["users"] == 200 and notes.height == 1000
    assert 12_000 <= ev.height <= 32_000
    assert ev["event_id"].to_list() == list(range(ev.height))
    key = ev.select("ts", "request_id", "position")
    assert key.equals(key.sort("ts", "request_id", "position"))
    assert set(ev["scenario"].unique()) == {"feed", "search", "discover", "ads"}
    slate = ev.group_by("request_id").agg(pl.len(), pl.col("position").max(),
                                          pl.col("scenario").first())
    assert (slate["position"] == slate["len"] - 1).all()          # 0-based, no gaps
    assert slate.filter(pl.col("scenario") == "ads")["len"].max() <= 3
    assert ev.filter(pl.col("scenario") == "search")["query"].null_count() == 0
    assert ev.filter(pl.col("scenario") != "search")["query"].null_count() == \
        ev.filter(pl.col("scenario") != "search").height
    q = pl.read_parquet(world["dir"] / "queries.parquet")
    assert q.height == slate.filter(pl.col("scenario") == "search").height
    # No note is shown before it exists; some notes are born on the test day (cold start).
    j = ev.join(notes.select("note_id", "created_at", "is_ad", "harmful"), on="note_id")
    assert (j["ts"] >= j["created_at"]).all()
    assert notes.filter(pl.col("created_at") >= np.datetime64(info["split"]["test_start"])).height > 0
    assert j.filter(pl.col("scenario") == "ads")["is_ad"].all()
    assert not j.filter(pl.col("scenario") != "ads")["is_ad"].any()
    assert 0.01 <= notes["harmful"].mean() <= 0.08
    assert set(notes["language"].unique()) == {"en", "zh", "mixed"}


def test_engagement_follows_clicks(world: dict) -> None:
    ev = world["events"]
    no = ev.filter(pl.col("click") == 0)
    assert no.select(pl.sum_horizontal("like", "collect", "comment", "share", "convert",
                                       "dwell_ms").sum()).item() == 0
    assert (ev.filter(pl.col("click") == 1)["dwell_ms"] > 0).all()
    assert ev.filter((pl.col("convert") == 1) & (pl.col("scenario") != "ads")).height == 0
    assert ev.filter(pl.col("scenario") == "ads")["convert"].sum() > 0


@pytest.mark.parametrize("scenario", ["feed", "search"])
def test_ctr_falls_with_position(world: dict, scenario: str) -> None:
    ctr = (world["events"].filter(pl.col("scenario") == scenario)
           .group_by("position").agg(pl.col("click").mean()).sort("position")["click"].to_numpy())
    assert ctr[0] > ctr[len(ctr) // 2] > ctr[-1]
    # Monotone, not linear (position bias falls like 1/rank): a rank correlation.
    rank = np.argsort(np.argsort(ctr))
    assert np.corrcoef(np.arange(len(ctr)), rank)[0, 1] < -0.8


def test_harmful_notes_draw_more_clicks(world: dict) -> None:
    j = world["events"].join(world["notes"].select("note_id", "harmful"), on="note_id")
    ctr = j.group_by("harmful").agg(pl.col("click").mean(),
                                    pl.col("dwell_ms").filter(pl.col("click") == 1).mean())
    harm, safe = (ctr.filter(pl.col("harmful") == v) for v in (True, False))
    assert harm["click"].item() > safe["click"].item()
    assert harm["dwell_ms"].item() < safe["dwell_ms"].item()       # and they read short


def test_oracle_beats_popularity_on_test_day(world: dict) -> None:
    ev, info = world["events"], world["info"]
    test_start = np.datetime64(info["split"]["test_start"])
    train = ev.filter(pl.col("ts") < test_start)
    test = ev.filter(pl.col("ts") >= test_start)
    pop = train.group_by("note_id").agg(pl.col("click").sum().alias("pop"))
    test = test.join(pop, on="note_id", how="left").with_columns(pl.col("pop").fill_null(0))
    model = UserModel.load(world["dir"])
    probs = model.probabilities(test["user_id"].to_numpy(), test["note_id"].to_numpy(),
                                test["scenario"].to_numpy(), test["position"].to_numpy(),
                                test["ts"].to_numpy())
    y = test["click"].to_numpy()
    oracle = roc_auc_score(y, probs["attract"])
    popularity = roc_auc_score(y, test["pop"].to_numpy())
    assert oracle > popularity + 0.05, (oracle, popularity)


def test_search_intents_predict_next_day_feed_clicks(world: dict) -> None:
    ev, info = world["events"], world["info"]
    start = info["start"]
    q = (pl.read_parquet(world["dir"] / "queries.parquet").with_columns(_day("ts", start))
         .select("user_id", "day", "category").unique()
         .with_columns(pl.col("day") + 1))                          # the next day
    clicks = (ev.filter((pl.col("scenario") == "feed") & (pl.col("click") == 1))
              .join(world["notes"].select("note_id", pl.col("category").alias("clicked")),
                    on="note_id").with_columns(_day("ts", start)))
    m = q.join(clicks.select("user_id", "day", "clicked"), on=["user_id", "day"])
    assert m.height > 100
    hit = (m["clicked"] == m["category"]).mean()
    base = (clicks.group_by("day", "clicked").agg(pl.len().alias("n"))
            .with_columns(pl.col("n") / pl.col("n").sum().over("day"))
            .rename({"clicked": "category"}))
    chance = q.join(base, on=["day", "category"], how="left")["n"].fill_null(0).mean()
    assert hit > 2 * chance, (hit, chance)


def test_emerging_intents_show_in_search_before_feed(world: dict) -> None:
    it = pl.read_parquet(world["dir"] / "truth" / "intents.parquet")
    assert 0.03 < it["emerging"].mean() < 0.4
    assert (it["end_ts"] > it["start_ts"]).all()


def test_presets_and_overrides() -> None:
    assert world_config("medium").n_events == 10_000_000
    assert world_config("tiny", ["harm_share=0.1", "slate.feed=8"]).slate.feed == 8
    with pytest.raises(ConfigError, match="harm_share"):
        world_config("tiny", ["harm_shar=0.1"])
    with pytest.raises(ConfigError, match="tiny"):
        world_config("huge")
    with pytest.raises(ConfigError, match="harm_share"):
        world_config("tiny", ["harm_share=2"])
    with pytest.raises(ConfigError):
        generate_world("nope", 1, Path("/nonexistent/never-written"))


def test_emerging_intents_lift_search_before_feed(tmp_path: Path) -> None:
    """Behaviour, not just truth: an emerging intent shows in search at once, in the feed later."""
    root = tmp_path / "w"
    generate_world("tiny", 11, root, overrides=["n_users=1500", "n_notes=3000",
                                                "n_events=150000"])
    notes = pl.read_parquet(root / "notes.parquet").select("note_id", "category")
    it = (pl.read_parquet(root / "truth" / "intents.parquet").filter(pl.col("emerging"))
          .select("user_id", "start_ts", "end_ts", "category"))
    ev = (pl.read_parquet(root / "events.parquet").join(notes, on="note_id")
          .join(it, on=["user_id", "category"])
          .filter((pl.col("ts") >= pl.col("start_ts")) & (pl.col("ts") < pl.col("end_ts")))
          .with_columns(((pl.col("ts") - pl.col("start_ts")).dt.total_seconds() / 3600)
                        .alias("hours")))
    # Impressions of notes on the user's emerging topic while that intent is active.
    early = ev.filter(pl.col("hours") < 12)
    late = ev.filter(pl.col("hours") >= 36)

    def ctr(df: pl.DataFrame, scenario: str) -> float:
        return df.filter(pl.col("scenario") == scenario)["click"].mean()

    assert early.filter(pl.col("scenario") == "feed").height > 50
    assert late.filter(pl.col("scenario") == "feed").height > 50
    assert ctr(late, "feed") > 1.3 * ctr(early, "feed")          # feed catches up later
    assert ctr(early, "search") > 2 * ctr(early, "feed")         # search shows it at once
    searches = early["scenario"].value_counts(normalize=True)
    share = dict(zip(searches["scenario"].to_list(), searches["proportion"].to_list(), strict=True))
    assert share.get("search", 0) > share.get("feed", 0)         # where the new intent is seen
