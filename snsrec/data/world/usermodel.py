"""The ground-truth user of the synthetic world.

One vectorised click model answers "would this user click / like / convert on
this note, shown here, now?". The generator writes its logs with it and the
online simulator later answers served slates with it, so offline logs and
online A/B tests share one truth:

    P(click)   = examination(scenario, position, user sensitivity)
               × attractiveness(interests + current intent vs note topics,
                                quality, click-bait × susceptibility, harm,
                                cover appeal — off unless click.w_cover > 0)
    then like / collect / comment / share / dwell conditioned on the click,
    and P(convert | click) for ads, driven by the match with the current intent.

The current intent comes from the intents timeline (``truth/intents.parquet``).
An *emerging* intent lifts search at once but reaches the feed only after a
delay, so what a user searched today predicts tomorrow's feed clicks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from snsrec.config import StrictModel
from snsrec.data.schema import COVER_FIELDS, SCENARIOS
from snsrec.errors import DataError
from snsrec.io import parquet_columns, read_json, read_parquet

SCENARIO_INDEX = {s: i for i, s in enumerate(SCENARIOS)}
GENDER_SIGN = {"f": 1.0, "m": -1.0, "u": 0.0}


def _per_scenario(feed: float, search: float, discover: float, ads: float) -> list[float]:
    return [feed, search, discover, ads]


class ClickParams(StrictModel):
    """Coefficients of the click model; lists are indexed like ``SCENARIOS``."""

    exam_top: list[float] = _per_scenario(0.95, 0.98, 0.9, 0.85)
    exam_decay: list[float] = _per_scenario(0.55, 0.85, 0.5, 0.6)
    bias: list[float] = _per_scenario(-2.4, -3.4, -1.9, -2.6)
    w_interest: float = 4.0
    w_intent: float = 1.6
    w_query_topic: float = 2.2
    w_query_subcat: float = 0.8
    w_quality: float = 1.6
    w_clickbait: float = 2.0
    w_harm: float = 0.5
    w_gender: float = 0.5
    # How much a note's cover style itself draws clicks (``cover_appeal``); 0 in the
    # shipped presets, where the cover is only a symptom of quality and click-bait. With
    # it on, editing a cover changes the true click probability (AdSEE's premise).
    w_cover: float = 0.0
    # An emerging intent reaches feed/discover/ads only after this delay, ramping in.
    emerging_delay_s: float = 12 * 3600
    emerging_ramp_s: float = 24 * 3600
    like_bias: float = -2.2
    like_quality: float = 2.5
    like_interest: float = 2.0
    collect_bias: float = -3.0
    collect_quality: float = 3.0
    comment_bias: float = -4.0
    share_bias: float = -4.2
    share_clickbait: float = 1.0
    harm_interest: float = -1.5
    dwell_ms: float = 18000.0
    dwell_sigma: float = 0.6
    harm_dwell: float = 0.3
    convert_bias: float = -3.2
    convert_intent: float = 2.8
    convert_interest: float = 1.5
    convert_quality: float = 1.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# cover_appeal's shape per COVER_FIELDS entry: (kind, a, b). "peak": -a·(x - b)², best at b;
# "linear": a·(x - 0.5). A cover of all 0.5 scores 0; the best one about +1.4.
COVER_APPEAL = {"brightness": ("peak", 3.0, 0.65), "saturation": ("peak", 2.0, 0.55),
                "contrast": ("linear", 0.8, 0.0), "warmth": ("linear", 0.4, 0.0),
                "faces": ("linear", 1.0, 0.0), "text_overlay": ("peak", 3.0, 0.35),
                "clutter": ("linear", -1.5, 0.0), "closeup": ("linear", 0.6, 0.0)}


def cover_appeal(cover: np.ndarray) -> np.ndarray:
    """``[n]`` how attractive ``[n, len(COVER_FIELDS)]`` cover styles are (0 at all 0.5):
    some fields help the more the better (faces, contrast), clutter hurts, brightness,
    saturation and text overlay have a best value in between."""
    cover = np.asarray(cover, dtype=np.float64)
    out = np.zeros(cover.shape[0])
    for j, field in enumerate(COVER_FIELDS):
        kind, a, b = COVER_APPEAL[field]
        x = cover[:, j]
        out += -a * ((x - b) ** 2 - (0.5 - b) ** 2) if kind == "peak" else a * (x - 0.5)
    return out


@dataclass
class Truth:
    """Hidden arrays the click model reads, indexed by row (not raw id)."""

    user_ids: np.ndarray          # int64 [U], sorted
    interests: np.ndarray         # float32 [U, T]
    susceptibility: np.ndarray    # float32 [U]
    sensitivity: np.ndarray       # float32 [U] position-bias sensitivity
    gender_sign: np.ndarray       # float32 [U] +1 women, -1 men, 0 unknown
    note_ids: np.ndarray          # int64 [N], sorted
    topic: np.ndarray             # int16 [N] main topic
    topic2: np.ndarray            # int16 [N] secondary topic (== topic when none)
    topic_w: np.ndarray           # float32 [N] weight of the main topic
    subcat: np.ndarray            # int32 [N] global subcategory index
    quality: np.ndarray           # float32 [N]
    clickbait: np.ndarray         # float32 [N]
    harmful: np.ndarray           # bool [N]
    is_ad: np.ndarray             # bool [N]
    gender_appeal: np.ndarray     # float32 [N]
    cover: np.ndarray | None = None   # float32 [N, len(COVER_FIELDS)] (public note data)


@dataclass
class Intents:
    """The intents timeline, sorted by (user row, start)."""

    user: np.ndarray      # int64 user row
    start: np.ndarray     # int64 seconds
    end: np.ndarray       # int64 seconds
    topic: np.ndarray     # int16
    subcat: np.ndarray    # int32 global subcategory index
    emerging: np.ndarray  # bool

    def at(self, user_rows: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, ...]:
        """(topic, subcat, start, emerging) of the intent active at ``ts``; topic -1 if none."""
        n = len(user_rows)
        if len(self.user) == 0:
            return (np.full(n, -1, np.int16), np.full(n, -1, np.int32), np.zeros(n, np.int64),
                    np.zeros(n, bool))
        # One sorted key (user, start) lets searchsorted find the last intent started by ts.
        key = self.user.astype(np.int64) * (1 << 40) + self.start
        q = user_rows.astype(np.int64) * (1 << 40) + ts.astype(np.int64)
        i = np.searchsorted(key, q, side="right") - 1
        ic = np.clip(i, 0, None)
        ok = (i >= 0) & (self.user[ic] == user_rows) & (ts < self.end[ic])
        topic = np.where(ok, self.topic[ic], -1).astype(np.int16)
        return (topic, np.where(ok, self.subcat[ic], -1).astype(np.int32),
                np.where(ok, self.start[ic], 0), ok & self.emerging[ic])


def examination(params: ClickParams, scen: np.ndarray, positions: np.ndarray,
                sensitivity: np.ndarray | float = 1.0) -> np.ndarray:
    """P(the user looks at slot ``position``) — a power-law decay per scenario."""
    top = np.asarray(params.exam_top, np.float64)[scen]
    decay = np.asarray(params.exam_decay, np.float64)[scen]
    return top * np.power(1.0 + positions, -decay * sensitivity)


def _scenario_index(scenario: str | np.ndarray, n: int) -> np.ndarray:
    if isinstance(scenario, str):
        if scenario not in SCENARIO_INDEX:
            raise DataError(f"scenario '{scenario}': unknown; use one of {list(SCENARIOS)}")
        return np.full(n, SCENARIO_INDEX[scenario], np.int8)
    arr = np.asarray(scenario)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int8)
    lut = dict(SCENARIO_INDEX.items())
    bad = set(np.unique(arr).tolist()) - set(lut)
    if bad:
        raise DataError(f"scenario {sorted(bad)}: unknown; use one of {list(SCENARIOS)}")
    out = np.zeros(len(arr), np.int8)
    for s, i in lut.items():
        out[arr == s] = i
    return out


class UserModel:
    """Vectorised ground truth over (user, note, scenario, position, time) rows."""

    def __init__(self, truth: Truth, intents: Intents, params: ClickParams):
        self.truth, self.intents, self.params = truth, intents, params

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, world_dir: str | Path) -> UserModel:
        """Rebuild the in-memory truth the generator used from ``world_dir/truth``."""
        world_dir = Path(world_dir)
        td = world_dir / "truth"
        params = ClickParams.model_validate(read_json(td / "params.json"))
        users = read_parquet(td / "users.parquet").sort_by("user_id")
        notes = read_parquet(td / "notes.parquet").sort_by("note_id")
        it = read_parquet(td / "intents.parquet")
        user_ids = users["user_id"].to_numpy()
        mix = _list_matrix(notes["topic_mix"])
        order = np.argsort(-mix, axis=1, kind="stable")[:, :2]
        rows = np.arange(len(mix))
        w1 = mix[rows, order[:, 0]]
        topic = notes["topic"].to_numpy().astype(np.int16)
        topic2 = np.where(mix[rows, order[:, 1]] > 0, order[:, 1], topic).astype(np.int16)
        truth = Truth(
            user_ids=user_ids,
            interests=_list_matrix(users["interests"]),
            susceptibility=users["clickbait_susceptibility"].to_numpy().astype(np.float32),
            sensitivity=users["position_sensitivity"].to_numpy().astype(np.float32),
            gender_sign=users["gender_sign"].to_numpy().astype(np.float32),
            note_ids=notes["note_id"].to_numpy(),
            topic=topic, topic2=topic2, topic_w=w1.astype(np.float32),
            subcat=notes["subcat"].to_numpy().astype(np.int32),
            quality=notes["quality"].to_numpy().astype(np.float32),
            clickbait=notes["clickbait"].to_numpy().astype(np.float32),
            harmful=notes["harmful"].to_numpy().astype(bool),
            is_ad=notes["is_ad"].to_numpy().astype(bool),
            gender_appeal=notes["gender_appeal"].to_numpy().astype(np.float32),
            cover=_covers(world_dir, notes["note_id"].to_numpy()),
        )
        urow = np.searchsorted(user_ids, it["user_id"].to_numpy())
        start = _seconds(it["start_ts"])
        order_i = np.lexsort((start, urow))
        intents = Intents(user=urow[order_i], start=start[order_i],
                          end=_seconds(it["end_ts"])[order_i],
                          topic=it["topic"].to_numpy()[order_i].astype(np.int16),
                          subcat=it["subcat"].to_numpy()[order_i].astype(np.int32),
                          emerging=it["emerging"].to_numpy()[order_i].astype(bool))
        return cls(truth, intents, params)

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        return _rows(self.truth.user_ids, np.asarray(user_ids), "user_id")

    def note_rows(self, note_ids: np.ndarray) -> np.ndarray:
        return _rows(self.truth.note_ids, np.asarray(note_ids), "note_id")

    # ---- the model ------------------------------------------------------------------------
    def probabilities(self, user_ids: np.ndarray, note_ids: np.ndarray,
                      scenario: str | np.ndarray, positions: np.ndarray, ts: np.ndarray, *,
                      query_topic: np.ndarray | None = None,
                      query_subcat: np.ndarray | None = None,
                      cover: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Probabilities per row; ``ts`` in seconds (int) or datetime64.

        ``query_topic`` (topic index, -1 for none) applies to search rows;
        ``query_subcat`` is the global subcategory index of the query. ``cover``
        (``[rows, len(COVER_FIELDS)]``) replaces the notes' own covers: what the same
        impression would do with an edited cover (counts only with ``w_cover`` > 0).
        """
        u = self.user_rows(user_ids)
        n = self.note_rows(note_ids)
        ts_s = _as_seconds(np.asarray(ts))
        it_topic, it_sub, it_start, it_em = self.intents.at(u, ts_s)
        scen = _scenario_index(scenario, len(u))
        return self.core(u, n, scen, np.asarray(positions), ts_s, it_topic, it_sub, it_start,
                         it_em, query_topic=query_topic, query_subcat=query_subcat,
                         cover=cover)

    def core(self, u: np.ndarray, n: np.ndarray, scen: np.ndarray, positions: np.ndarray,
             ts: np.ndarray, it_topic: np.ndarray, it_sub: np.ndarray, it_start: np.ndarray,
             it_emerging: np.ndarray, *, query_topic: np.ndarray | None = None,
             query_subcat: np.ndarray | None = None,
             cover: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The click model on row indices with the intent given explicitly.

        The generator calls this directly with its live intent state; ``probabilities``
        looks the intent up in the timeline first. Both share every coefficient.
        """
        t, p = self.truth, self.params
        tm, t2, w = t.topic[n], t.topic2[n], t.topic_w[n]
        interest = t.interests[u, tm] * w + t.interests[u, t2] * (1.0 - w)
        # Emerging intents reach non-search scenarios only after a delay (search first).
        ramp = np.clip((ts - it_start - p.emerging_delay_s) / p.emerging_ramp_s, 0.0, 1.0)
        ramp = np.where(it_emerging & (scen != SCENARIO_INDEX["search"]), ramp, 1.0)
        topic_hit = (tm == it_topic) | ((t2 == it_topic) & (w < 1.0))
        intent = (topic_hit + 0.5 * (t.subcat[n] == it_sub)) * (it_topic >= 0) * ramp
        logit = (np.asarray(p.bias)[scen] + p.w_interest * interest + p.w_intent * intent
                 + p.w_quality * (t.quality[n] - 0.5)
                 + p.w_clickbait * t.clickbait[n] * t.susceptibility[u]
                 + p.w_harm * t.harmful[n] + p.w_gender * t.gender_appeal[n] * t.gender_sign[u])
        if p.w_cover:               # 0 in the shipped presets: nothing computed, logs unchanged
            if cover is None and t.cover is None:
                raise DataError("click.w_cover > 0 needs the notes' covers (Truth.cover)")
            logit = logit + p.w_cover * cover_appeal(t.cover[n] if cover is None else cover)
        if query_topic is not None:
            qt = np.asarray(query_topic)
            qmatch = p.w_query_topic * (tm == qt)
            if query_subcat is not None:
                qmatch = qmatch + p.w_query_subcat * (t.subcat[n] == np.asarray(query_subcat))
            logit = logit + np.where(qt >= 0, qmatch, 0.0)
        exam = examination(p, scen, positions, t.sensitivity[u])
        attract = _sigmoid(logit)
        q, harm = t.quality[n], t.harmful[n]
        out = {
            "exam": exam,
            "attract": attract,
            "click": exam * attract,
            "like": _sigmoid(p.like_bias + p.like_quality * (q - 0.5) + p.like_interest * interest
                             + p.harm_interest * harm),
            "collect": _sigmoid(p.collect_bias + p.collect_quality * (q - 0.5) + interest
                                + 2 * p.harm_interest * harm),
            "comment": _sigmoid(p.comment_bias + interest + q - 0.5),
            "share": _sigmoid(p.share_bias + interest + p.share_clickbait * t.clickbait[n]),
            "dwell_mu": np.log(p.dwell_ms * (0.4 + q) * (0.6 + interest)
                               * np.where(harm, p.harm_dwell, 1.0)
                               * (1.0 - 0.5 * t.clickbait[n])),
            "convert": np.where(
                t.is_ad[n],
                _sigmoid(p.convert_bias + p.convert_intent * intent
                         + p.convert_interest * interest + p.convert_quality * (q - 0.5)),
                0.0),
        }
        return out

    def sample(self, probs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw click, then interestment conditioned on the click (all int8; dwell in ms)."""
        n = len(probs["click"])
        u = rng.random((6, n))
        click = u[0] < probs["click"]
        out = {"click": click.astype(np.int8)}
        for i, k in enumerate(("like", "collect", "comment", "share", "convert"), start=1):
            out[k] = (click & (u[i] < probs[k])).astype(np.int8)
        dwell = np.exp(probs["dwell_mu"] + self.params.dwell_sigma * rng.standard_normal(n))
        out["dwell_ms"] = np.where(click, np.minimum(dwell, 600_000), 0).astype(np.int32)
        return out


def _covers(world_dir: Path, note_ids: np.ndarray) -> np.ndarray | None:
    """The notes' public cover styles (``notes.parquet``) in ``note_ids`` order, or None
    for a world without them."""
    from snsrec.data.schema import cover_matrix

    path = world_dir / "notes.parquet"
    if not path.is_file() or "cover" not in parquet_columns(path):
        return None
    table = read_parquet(path, columns=["note_id", "cover"])     # not the texts
    ids = np.asarray(table.column("note_id").to_numpy(), dtype=np.int64)
    order = np.argsort(ids)
    rows = order[np.searchsorted(ids[order], note_ids)]
    return cover_matrix(table.column("cover"), COVER_FIELDS)[rows]


def _rows(ids: np.ndarray, query: np.ndarray, name: str) -> np.ndarray:
    i = np.searchsorted(ids, query)
    ic = np.clip(i, 0, len(ids) - 1)
    bad = ids[ic] != query
    if bad.any():
        raise DataError(f"{name} {query[bad][0]}: not in this world; use ids from its tables")
    return ic


def _list_matrix(col: pa.ChunkedArray) -> np.ndarray:
    """A list<float> column of fixed width → a dense float32 matrix."""
    arr = col.combine_chunks()
    width = len(arr[0]) if len(arr) else 0
    return arr.flatten().to_numpy().astype(np.float32).reshape(len(arr), width)


def _seconds(col: pa.ChunkedArray) -> np.ndarray:
    return col.cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()


def _as_seconds(ts: np.ndarray) -> np.ndarray:
    if np.issubdtype(ts.dtype, np.datetime64):
        return ts.astype("datetime64[s]").astype(np.int64)
    return ts.astype(np.int64)
