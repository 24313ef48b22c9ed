"""The ground-truth user model: loading, calibration against the logs, mechanics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from snsrec.data.world.usermodel import ClickParams, Intents, Truth, UserModel
from snsrec.errors import DataError

DAY = 86400


def _model(n_users: int = 2, n_notes: int = 4, intents: Intents | None = None) -> UserModel:
    """A hand-built world: user 1 likes topic 0; notes 1..4 on topics 0, 1, 2, 2 (4 = ad)."""
    interests = np.zeros((n_users, 3), np.float32)
    interests[:, 0] = 0.9
    interests[:, 1:] = 0.05
    truth = Truth(
        user_ids=np.arange(1, n_users + 1), interests=interests,
        susceptibility=np.ones(n_users, np.float32), sensitivity=np.ones(n_users, np.float32),
        gender_sign=np.zeros(n_users, np.float32), note_ids=np.arange(1, n_notes + 1),
        topic=np.array([0, 1, 2, 2], np.int16), topic2=np.array([0, 1, 2, 2], np.int16),
        topic_w=np.ones(n_notes, np.float32), subcat=np.array([0, 3, 6, 6], np.int32),
        quality=np.full(n_notes, 0.5, np.float32), clickbait=np.zeros(n_notes, np.float32),
        harmful=np.array([False, False, True, False]), is_ad=np.array([False, False, False, True]),
        gender_appeal=np.zeros(n_notes, np.float32))
    if intents is None:
        z = np.zeros(0, np.int64)
        intents = Intents(z, z, z, z.astype(np.int16), z.astype(np.int32), z.astype(bool))
    return UserModel(truth, intents, ClickParams())


def test_examination_falls_with_position() -> None:
    m = _model()
    p = m.probabilities(np.ones(10, np.int64), np.ones(10, np.int64), "feed", np.arange(10),
                        np.zeros(10, np.int64))
    assert (np.diff(p["exam"]) < 0).all() and (np.diff(p["click"]) < 0).all()
    assert np.allclose(p["click"], p["exam"] * p["attract"])


def test_interest_harm_and_conversion() -> None:
    m = _model()
    p = m.probabilities(np.ones(4, np.int64), np.arange(1, 5), "feed", np.zeros(4),
                        np.zeros(4, np.int64))
    assert p["attract"][0] > p["attract"][1]                  # topic 0 is the user's interest
    assert p["attract"][2] > p["attract"][3]                  # harmful appeal, same topic
    assert p["dwell_mu"][2] < p["dwell_mu"][3]                # ... but short reads
    assert (p["convert"][:3] == 0).all() and p["convert"][3] > 0


def test_emerging_intent_reaches_search_first_then_feed() -> None:
    # User 1 starts an emerging intent on topic 2 (subcat 6) at t=0.
    it = Intents(user=np.array([0]), start=np.array([0]), end=np.array([30 * DAY]),
                 topic=np.array([2], np.int16), subcat=np.array([6], np.int32),
                 emerging=np.array([True]))
    m = _model(intents=it)
    before = _model()

    def attract(model: UserModel, scenario: str, t: int) -> float:
        return float(model.probabilities(np.array([1]), np.array([4]), scenario, np.array([0]),
                                         np.array([t]))["attract"][0])

    assert attract(m, "search", 60) > attract(before, "search", 60)
    assert attract(m, "feed", 60) == pytest.approx(attract(before, "feed", 60))
    assert attract(m, "feed", 2 * DAY) > attract(before, "feed", 2 * DAY)
    # Intent lookup: no intent before it starts or after it ends.
    assert m.intents.at(np.array([0, 0, 0]), np.array([-1, 5, 31 * DAY]))[0].tolist() == [-1, 2, -1]


def test_sample_is_deterministic_and_conditioned_on_click() -> None:
    m = _model()
    n = 5000
    p = m.probabilities(np.ones(n, np.int64), np.full(n, 4), "ads", np.zeros(n),
                        np.zeros(n, np.int64))
    a = m.sample(p, np.random.default_rng(1))
    b = m.sample(p, np.random.default_rng(1))
    assert all((a[k] == b[k]).all() for k in a)
    no = a["click"] == 0
    for k in ("like", "collect", "comment", "share", "convert", "dwell_ms"):
        assert (a[k][no] == 0).all()
    assert abs(a["click"].mean() - p["click"].mean()) < 0.03


def test_unknown_ids_and_scenarios_raise() -> None:
    m = _model()
    with pytest.raises(DataError, match="user_id 99"):
        m.probabilities(np.array([99]), np.array([1]), "feed", np.array([0]), np.array([0]))
    with pytest.raises(DataError, match="scenario"):
        m.probabilities(np.array([1]), np.array([1]), "home", np.array([0]), np.array([0]))


def test_loaded_model_is_calibrated_on_the_logs(tiny_world: Path) -> None:
    """The generator logged clicks with this model: mean P(click) ≈ logged CTR per scenario."""
    ev = pl.read_parquet(tiny_world / "events.parquet")
    q = pl.read_parquet(tiny_world / "queries.parquet").select("request_id", "category",
                                                                "subcategory")
    m = UserModel.load(tiny_world)
    ev = ev.join(q, on="request_id", how="left")
    topics = {n: i for i, n in enumerate(
        pl.read_parquet(tiny_world / "truth" / "notes.parquet")
        .select("category", "topic").unique().sort("topic")["category"])}
    subs = dict(pl.read_parquet(tiny_world / "truth" / "notes.parquet")
                .select("subcategory", "subcat").unique().iter_rows())
    qt = np.array([topics.get(c, -1) if c else -1 for c in ev["category"].to_list()])
    qs = np.array([subs.get(c, -1) if c else -1 for c in ev["subcategory"].to_list()])
    p = m.probabilities(ev["user_id"].to_numpy(), ev["note_id"].to_numpy(),
                        ev["scenario"].to_numpy(), ev["position"].to_numpy(), ev["ts"].to_numpy(),
                        query_topic=qt, query_subcat=qs)
    got = ev.with_columns(pl.Series("p", p["click"])).group_by("scenario").agg(
        pl.col("click").mean(), pl.col("p").mean(), pl.len())
    for row in got.iter_rows(named=True):
        tol = 3 * np.sqrt(row["p"] * (1 - row["p"]) / row["len"]) + 0.01
        assert abs(row["click"] - row["p"]) < tol, row


def test_cover_appeal_shape_and_the_w_cover_switch(tiny_world: Path) -> None:
    from snsrec.data.schema import COVER_FIELDS
    from snsrec.data.world.usermodel import COVER_APPEAL, cover_appeal

    half = np.full((1, len(COVER_FIELDS)), 0.5)
    assert cover_appeal(half)[0] == pytest.approx(0.0)
    best = np.array([[COVER_APPEAL[f][2] if COVER_APPEAL[f][0] == "peak" else
                      float(COVER_APPEAL[f][1] > 0) for f in COVER_FIELDS]])
    cluttered = half.copy()
    cluttered[0, COVER_FIELDS.index("clutter")] = 1.0
    assert cover_appeal(best)[0] > 1.0 > 0 > cover_appeal(cluttered)[0]
    m = UserModel.load(tiny_world)
    assert m.truth.cover is not None and m.truth.cover.shape[1] == len(COVER_FIELDS)
    ev = pl.read_parquet(tiny_world / "events.parquet").head(200)
    args = (ev["user_id"].to_numpy(), ev["note_id"].to_numpy(), ev["scenario"].to_numpy(),
            ev["position"].to_numpy(), ev["ts"].to_numpy())
    edited = np.repeat(best, len(ev), 0)
    base = m.probabilities(*args)["click"]
    # the shipped worlds: covers do not cause clicks, an edit changes nothing
    np.testing.assert_array_equal(m.probabilities(*args, cover=edited)["click"], base)
    m.params = m.params.model_copy(update={"w_cover": 1.0})
    on = m.probabilities(*args)["click"]
    assert (m.probabilities(*args, cover=edited)["click"] > on).all()


def test_a_world_with_cover_effects_logs_them(tmp_path: Path) -> None:
    from snsrec.data.schema import COVER_FIELDS, cover_matrix
    from snsrec.data.world.generate import generate_world
    from snsrec.data.world.usermodel import cover_appeal
    from snsrec.io import read_parquet

    def gap(w_cover: float) -> float:
        """CTR of the impressions of the most appealing covers' quarter minus the least's."""
        out = tmp_path / f"w{w_cover}"
        generate_world("tiny", 3, out, overrides=[f"click.w_cover={w_cover}"])
        notes = read_parquet(out / "notes.parquet")
        appeal = dict(zip(notes.column("note_id").to_pylist(),
                          cover_appeal(cover_matrix(notes.column("cover"), COVER_FIELDS)),
                          strict=True))
        ev = pl.read_parquet(out / "events.parquet")
        a = np.array([appeal[n] for n in ev["note_id"].to_list()])
        click = ev["click"].to_numpy()
        return click[a >= np.quantile(a, 0.75)].mean() - click[a <= np.quantile(a, 0.25)].mean()

    # covers also track quality and click-bait, so some gap is there without the effect
    assert gap(3.0) > gap(0.0) + 0.03
