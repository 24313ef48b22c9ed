"""Generate the synthetic SNS world: notes, users, events, queries and truth/.

The world is simulated day by day in time-ordered *slots* (groups of sessions
sized so one slot holds about ``chunk_events`` impressions). Within a slot every
request of one (session rank, request round) is handled at once: candidate
matrices [R, C], scores by matrix ops, top-k with argpartition, clicks from the
ground-truth ``UserModel``. Events are sorted per slot and streamed to Parquet;
events whose timestamp runs past the next slot's start wait for that slot, so the
file is globally sorted by (ts, request, position) while memory stays bounded by
the slot size.

Every random draw comes from a Generator keyed by (seed, stage, day, slot), so the
same preset and seed give byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from snsrec import __version__
from snsrec.config import StrictModel, load_config
from snsrec.data.schema import COVER_FIELDS, EVENTS, HARM_TYPES, NOTES, QUERIES, SCENARIOS, USERS
from snsrec.data.world import text as wtext
from snsrec.data.world.usermodel import (
    SCENARIO_INDEX,
    ClickParams,
    Intents,
    Truth,
    UserModel,
    examination,
)
from snsrec.data.world.vocab import CITIES, N_TOPICS, TOPIC_NAMES, TOPICS
from snsrec.errors import ConfigError
from snsrec.io import ParquetChunkWriter, atomic_dir, write_json, write_parquet
from snsrec.progress import Progress, echo

DAY = 86400
SEARCH, FEED, DISCOVER, ADS = (SCENARIO_INDEX[s] for s in ("search", "feed", "discover", "ads"))
LANGUAGES = ("en", "zh", "mixed")
AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
# Share of sessions starting in each hour of the day: a morning bump and an evening peak.
DIURNAL = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 5, 5, 6, 7, 6, 5, 5, 6, 7, 8, 9, 10, 10, 8, 5],
                   np.float64)


# ---- configuration ------------------------------------------------------------------------
class PerScenario(StrictModel):
    feed: float
    search: float
    discover: float
    ads: float

    def array(self) -> np.ndarray:
        return np.array([getattr(self, s) for s in SCENARIOS], np.float64)


class LoggingPolicy(StrictModel):
    """The production rankers whose choices the logs record (not the truth)."""

    popularity: float = 0.5       # weight of log1p(clicks so far)
    interest: float = 3.0         # weight of the policy's noisy estimate of user interest
    interest_noise: float = 0.15  # std of that estimate's error
    relevance: float = 2.0        # search: weight of topic / subcategory match with the query
    noise: float = 0.8            # Gumbel noise scale on every score
    # New-note traffic: weight of exp(-age / freshness_days) on the feed, discover and ads
    # scores (search ranks by relevance), so a note with no clicks yet still reaches users,
    # as a platform's new-note pool does, and cold-start notes have behaviour to evaluate
    # on. 0 = rank by clicks so far only.
    freshness: float = 3.0
    freshness_days: float = 1.0


class WorldConfig(StrictModel):
    """Every knob of the world; presets fill sizes, ``--set key=value`` changes any."""

    n_users: int
    n_notes: int
    n_events: int
    days: int = 14
    start: str = "2024-06-01"
    history_days: int = 60                 # notes may be created this long before the logs
    new_note_share: float = 0.3            # notes created during the log period (cold start)
    language_mix: tuple[float, float, float] = (0.75, 0.15, 0.10)
    harm_share: float = 0.04
    ad_share: float = 0.06
    secondary_topic_share: float = 0.35
    interest_alpha: float = 0.2            # Dirichlet concentration: small = sparse interests
    gender_skew: float = 1.2               # how strongly gender tilts interests via gender_appeal
    scenario_mix: PerScenario = PerScenario(feed=0.5, search=0.22, discover=0.16, ads=0.12)
    slate: PerScenario = PerScenario(feed=10, search=10, discover=6, ads=3)
    candidates: PerScenario = PerScenario(feed=48, search=40, discover=24, ads=12)
    requests_per_session: float = 3.0
    max_requests_per_session: int = 8
    request_gap_s: float = 40.0
    intent_switch: float = 0.35            # P(a session starts a new intent)
    emerging_rate: float = 0.15            # P(a new intent is an emerging, off-profile topic)
    emerging_switch: float = 0.12          # emerging intents persist longer
    emerging_search: float = 0.6           # P(search) for a request on a fresh emerging intent
    chunk_events: int = 1_000_000          # impressions per slot (bounds memory)
    note_chunk: int = 50_000               # notes per text-generation chunk
    click: ClickParams = ClickParams()
    logging: LoggingPolicy = LoggingPolicy()


PRESETS: dict[str, dict] = {
    "tiny": {"n_users": 200, "n_notes": 1_000, "n_events": 20_000},
    "small": {"n_users": 5_000, "n_notes": 20_000, "n_events": 1_000_000},
    # The small world's notes and events over 250 heavy users (median ~640 clicks each):
    # long behaviour sequences for the sequence models (`snsrec bench sequence`).
    "heavy": {"n_users": 250, "n_notes": 20_000, "n_events": 1_000_000},
    # The small world where a note's cover style itself draws clicks (click.w_cover): the
    # ground truth AdSEE's cover edits are judged by (`snsrec adsee bench`).
    "covers": {"n_users": 5_000, "n_notes": 20_000, "n_events": 1_000_000,
               "click": {"w_cover": 1.0}},
    "medium": {"n_users": 100_000, "n_notes": 200_000, "n_events": 10_000_000},
    "large": {"n_users": 1_000_000, "n_notes": 2_000_000, "n_events": 100_000_000,
                  "chunk_events": 2_000_000},
}


def world_config(preset: str, overrides: list[str] | None = None) -> WorldConfig:
    """The resolved config of ``preset`` with ``key=value`` overrides applied."""
    if preset not in PRESETS:
        raise ConfigError(f"preset '{preset}': unknown; use one of {', '.join(PRESETS)}")
    # The full resolved preset is the base, so nested overrides (slate.feed=8) merge into it.
    base = WorldConfig(**PRESETS[preset]).model_dump(mode="json")
    cfg = load_config(WorldConfig, None, overrides, base=base)
    _check(cfg)
    return cfg


def _check(cfg: WorldConfig) -> None:
    for key in ("n_users", "n_notes", "n_events", "days", "chunk_events", "note_chunk"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"world setting '{key}' must be >= 1 (got {getattr(cfg, key)})")
    if cfg.logging.freshness_days <= 0 or cfg.logging.freshness < 0:
        raise ConfigError("world settings 'logging.freshness' must be >= 0 and "
                          f"'logging.freshness_days' > 0 (got {cfg.logging.freshness}, "
                          f"{cfg.logging.freshness_days})")
    if cfg.days < 3:
        raise ConfigError(f"world setting 'days' must be >= 3 for train/valid/test (got {cfg.days})")
    for key in ("harm_share", "ad_share", "new_note_share", "secondary_topic_share",
                "intent_switch", "emerging_rate", "emerging_switch", "emerging_search"):
        if not 0.0 <= getattr(cfg, key) <= 1.0:
            raise ConfigError(f"world setting '{key}' must be in [0, 1] (got {getattr(cfg, key)})")
    if min(cfg.language_mix) < 0 or sum(cfg.language_mix) <= 0:
        raise ConfigError("world setting 'language_mix' needs three non-negative shares (en, zh, "
                          f"mixed), got {cfg.language_mix}")
    if min(cfg.slate.array()) < 1 or (cfg.candidates.array() < cfg.slate.array()).any():
        raise ConfigError("world settings 'slate.*' must be >= 1 and <= 'candidates.*'")
    try:
        _start_ts(cfg)
    except ValueError:
        raise ConfigError(f"world setting 'start' must be a date YYYY-MM-DD (got {cfg.start!r})") \
            from None


def _start_ts(cfg: WorldConfig) -> int:
    d = datetime.strptime(cfg.start, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(d.timestamp())


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None).isoformat()


def _rng(seed: int, *key: int) -> np.random.Generator:
    """A Generator keyed by (seed, stage, ...) — independent of processing order."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


STAGE_USERS, STAGE_NOTES, STAGE_TEXT, STAGE_SESSIONS, STAGE_SLOT, STAGE_POLICY = range(6)


# ---- taxonomy helpers ---------------------------------------------------------------------
@dataclass(frozen=True)
class Taxonomy:
    n_sub: np.ndarray        # subcategories per topic
    sub_off: np.ndarray      # first global subcategory index of each topic
    sub_topic: np.ndarray    # topic of each global subcategory
    sub_names: tuple[str, ...]
    appeal: np.ndarray       # Topic.gender_appeal
    popularity: np.ndarray   # relative size of each topic (Zipf-like)

    def random_subcat(self, rng: np.random.Generator, topic: np.ndarray) -> np.ndarray:
        return (self.sub_off[topic] + (rng.random(topic.shape) * self.n_sub[topic])).astype(np.int32)


def _taxonomy() -> Taxonomy:
    n_sub = np.array([len(t.subcategories) for t in TOPICS])
    off = np.concatenate([[0], np.cumsum(n_sub)[:-1]])
    pop = 1.0 / np.arange(1, N_TOPICS + 1) ** 0.6
    return Taxonomy(n_sub=n_sub, sub_off=off, sub_topic=np.repeat(np.arange(N_TOPICS), n_sub),
                    sub_names=tuple(s for t in TOPICS for s in t.subcategories),
                    appeal=np.array([t.gender_appeal for t in TOPICS]),
                    popularity=pop / pop.sum())


def _sample_rows(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws per row from unnormalised row weights [R, K] by inverse CDF → [R, n]."""
    r, k = weights.shape
    cum = np.cumsum(weights, axis=1, dtype=np.float64)
    cum /= cum[:, -1:]
    # Offsetting row r by r turns R searches into one sorted searchsorted.
    flat = (cum + np.arange(r)[:, None]).ravel()
    u = rng.random((r, n)) * (1 - 1e-12) + np.arange(r)[:, None]
    idx = np.searchsorted(flat, u.ravel(), side="right").reshape(r, n)
    return np.minimum(idx - np.arange(r)[:, None] * k, k - 1)


# ---- users and notes ----------------------------------------------------------------------
def _make_users(cfg: WorldConfig, seed: int, tax: Taxonomy) -> tuple[pa.Table, dict]:
    rng = _rng(seed, STAGE_USERS)
    n = cfg.n_users
    gender = rng.choice(3, size=n, p=[0.55, 0.4, 0.05])            # f, m, u
    sign = np.array([1.0, -1.0, 0.0])[gender]
    # Interests: sparse Dirichlet via normalised Gammas, tilted by gender and topic size.
    alpha = (cfg.interest_alpha * N_TOPICS * tax.popularity[None, :]
             * np.exp(cfg.gender_skew * sign[:, None] * tax.appeal[None, :]))
    g = rng.standard_gamma(alpha) + 1e-6
    interests = (g / g.sum(axis=1, keepdims=True)).astype(np.float32)
    activity = rng.lognormal(0.0, 0.8, n)
    activity /= activity.mean()
    start = _start_ts(cfg)
    truth = {
        "interests": interests,
        "susceptibility": rng.gamma(2.0, 0.5, n).astype(np.float32),
        "sensitivity": rng.lognormal(0.0, 0.3, n).astype(np.float32),
        "gender_sign": sign.astype(np.float32),
        "activity": activity.astype(np.float32),
        "language": rng.choice(3, size=n, p=np.asarray(cfg.language_mix) / sum(cfg.language_mix)),
    }
    users = pa.table({
        "user_id": np.arange(1, n + 1, dtype=np.int64),
        "gender": pa.array(np.array(["f", "m", "u"])[gender]),
        "age_bucket": pa.array(np.array(AGE_BUCKETS)[rng.choice(5, n, p=[.3, .35, .2, .1, .05])]),
        "city": pa.array(np.array(CITIES)[rng.integers(0, len(CITIES), n)]),
        "signup_at": pa.array(start - rng.integers(DAY, 3 * 365 * DAY, n), pa.timestamp("s")),
    }, schema=USERS)
    return users, truth


def _make_notes(cfg: WorldConfig, seed: int, tax: Taxonomy) -> dict[str, np.ndarray]:
    """Numeric note attributes (text comes later, chunk by chunk)."""
    rng = _rng(seed, STAGE_NOTES)
    n = cfg.n_notes
    topic = rng.choice(N_TOPICS, size=n, p=tax.popularity).astype(np.int16)
    has2 = rng.random(n) < cfg.secondary_topic_share
    topic2 = np.where(has2, (topic + rng.integers(1, N_TOPICS, n)) % N_TOPICS, topic).astype(np.int16)
    topic_w = np.where(has2, rng.uniform(0.6, 0.85, n), 1.0).astype(np.float32)
    harmful = rng.random(n) < cfg.harm_share
    is_ad = ~harmful & (rng.random(n) < cfg.ad_share)
    quality = rng.beta(2.5, 2.0, n)
    quality = np.where(harmful, quality * 0.5, quality)
    clickbait = np.where(harmful, rng.beta(5.0, 2.0, n), rng.beta(1.3, 4.0, n))
    start = _start_ts(cfg)
    is_new = rng.random(n) < cfg.new_note_share
    # Cold-start notes keep arriving through the log period, the test day included.
    created = np.where(is_new, start + rng.integers(0, cfg.days * DAY, n),
                       start - rng.integers(DAY // 24, cfg.history_days * DAY, n))
    n_authors = max(1, min(cfg.n_users, n // 5))
    author = (rng.zipf(1.6, n) - 1) % n_authors
    author = rng.permutation(cfg.n_users)[:n_authors][author] + 1
    age_days = np.maximum(start - created, 0) / DAY
    # Popularity the logging policy already saw before the logs start.
    prior = rng.poisson(0.5 * np.sqrt(age_days) * np.exp(1.5 * quality + clickbait))
    cover = _cover(rng, quality, clickbait)
    return {
        "topic": topic, "topic2": topic2, "topic_w": topic_w, "subcat": tax.random_subcat(rng, topic),
        "quality": quality.astype(np.float32), "clickbait": clickbait.astype(np.float32),
        "harmful": harmful, "is_ad": is_ad,
        "harm_type": np.where(harmful, rng.integers(0, len(HARM_TYPES), n), -1),
        "gender_appeal": np.clip(tax.appeal[topic] + rng.normal(0, 0.25, n), -1, 1).astype(np.float32),
        "created": created.astype(np.int64), "author": author.astype(np.int64),
        "language": rng.choice(3, size=n, p=np.asarray(cfg.language_mix) / sum(cfg.language_mix)),
        "n_tokens": rng.integers(30, 201, n), "prior_clicks": prior.astype(np.float64), "cover": cover,
        "ad_bid": rng.lognormal(0.0, 0.5, n),
    }


def _cover(rng: np.random.Generator, quality: np.ndarray, clickbait: np.ndarray) -> np.ndarray:
    """Cover style floats in [0, 1] that correlate with quality and click-bait."""
    n = len(quality)
    z = rng.normal(0, 1, (n, len(COVER_FIELDS)))
    load = {  # (quality, clickbait) loadings per field: attractive covers are learnable
        "brightness": (1.0, 0.8), "saturation": (0.3, 1.5), "contrast": (0.5, 1.0),
        "warmth": (0.4, 0.0), "faces": (0.2, 1.2), "text_overlay": (-0.3, 2.0),
        "clutter": (-1.5, 0.8), "closeup": (0.8, 0.5),
    }
    w = np.array([load[f] for f in COVER_FIELDS])              # [F, 2]
    signal = np.stack([quality - 0.5, clickbait - 0.3], 1) @ w.T * 2.0
    return (1.0 / (1.0 + np.exp(-(signal + 0.8 * z)))).astype(np.float32)


def _topic_mix(notes: dict) -> np.ndarray:
    n = len(notes["topic"])
    mix = np.zeros((n, N_TOPICS), np.float32)
    rows = np.arange(n)
    mix[rows, notes["topic2"]] = 1.0 - notes["topic_w"]
    mix[rows, notes["topic"]] = notes["topic_w"]
    return mix


# ---- note text ----------------------------------------------------------------------------
class TermIndex:
    """Which query key terms occur in which note, as sorted int64 keys (note row × term id).

    A term hit only matters when the note shares the query's topic and subcategory
    (``text.relevance_labels``), so each note is checked against the key-term
    vocabulary of its own (topic, subcategory) only; that keeps the index small.
    """

    def __init__(self, tax: Taxonomy) -> None:
        self.term_id: dict[str, int] = {}
        # Per global subcategory: (ascii terms, CJK terms) as (id, term); English notes skip CJK.
        self.sub_terms: list[tuple[list[tuple[int, str]], list[tuple[int, str]]]] = []
        for g, topic in enumerate(tax.sub_topic):
            t, local = TOPICS[topic], g - int(tax.sub_off[topic])
            terms = [*t.sub_words_en[local], *t.sub_words_zh[local], *t.words_en, *t.words_zh,
                     *t.brands, *t.places, *t.products, *t.people]
            ids = [(self.term_id.setdefault(w, len(self.term_id)), w)
                   for w in dict.fromkeys(x.lower() for x in terms if x)]
            self.sub_terms.append(([x for x in ids if x[1].isascii()],
                                   [x for x in ids if not x[1].isascii()]))
        self._parts: list[np.ndarray] = []
        self.keys = np.zeros(0, np.int64)

    def add(self, row: int, subcat: int, text: str, cjk: bool) -> None:
        low = text.lower()
        ascii_terms, cjk_terms = self.sub_terms[subcat]
        hits = [i for i, w in ascii_terms if w in low]
        if cjk:
            hits += [i for i, w in cjk_terms if w in low]
        if hits:
            self._parts.append(row * (1 << 24) + np.asarray(hits, np.int64))

    def finish(self) -> None:
        if self._parts:
            keys = np.sort(np.concatenate(self._parts))
            self.keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        self._parts = []

    def ids(self, terms: list[str]) -> list[int]:
        return [self.term_id[w] for w in dict.fromkeys(x.lower() for x in terms)
                if w in self.term_id]

    def hit(self, note_rows: np.ndarray, term_ids: np.ndarray) -> np.ndarray:
        """[P] note rows × [P, K] term ids (-1 pad) → does any term occur in the note."""
        q = note_rows[:, None].astype(np.int64) * (1 << 24) + term_ids
        i = np.clip(np.searchsorted(self.keys, q), 0, max(len(self.keys) - 1, 0))
        found = (self.keys[i] == q) if len(self.keys) else np.zeros(q.shape, bool)
        return (found & (term_ids >= 0)).any(axis=1)


def _write_notes(cfg: WorldConfig, seed: int, notes: dict, tax: Taxonomy, td: Path,
                 out: Path) -> tuple[TermIndex, dict[str, int]]:
    """Text per note (Python, chunked) → notes.parquet + truth text tables."""
    index = TermIndex(tax)
    n = cfg.n_notes
    rows = {"entities": 0, "qa": 0, "highlights": 0}
    ent_schema = pa.schema([("note_id", pa.int64()), ("field", pa.string()), ("start", pa.int32()),
                            ("end", pa.int32()), ("label", pa.string()), ("text", pa.string())])
    qa_schema = pa.schema([("note_id", pa.int64()), ("question", pa.string()),
                           ("answer", pa.string())])
    hl_schema = pa.schema([("note_id", pa.int64()), ("word", pa.string())])
    with ParquetChunkWriter(out / "notes.parquet", NOTES) as w_notes, \
            ParquetChunkWriter(td / "entities.parquet", ent_schema) as w_ent, \
            ParquetChunkWriter(td / "qa.parquet", qa_schema) as w_qa, \
            ParquetChunkWriter(td / "highlights.parquet", hl_schema) as w_hl, \
            Progress("notes", total=n, unit="notes") as bar:
        for c, lo in enumerate(range(0, n, cfg.note_chunk)):
            hi = min(n, lo + cfg.note_chunk)
            rng = _rng(seed, STAGE_TEXT, c)
            cols: dict[str, list] = {k: [] for k in ("title", "body", "hashtags")}
            ent: dict[str, list] = {k: [] for k in ent_schema.names}
            qa: dict[str, list] = {k: [] for k in qa_schema.names}
            hl: dict[str, list] = {k: [] for k in hl_schema.names}
            for i in range(lo, hi):
                t, t2 = int(notes["topic"][i]), int(notes["topic2"][i])
                ht = int(notes["harm_type"][i])
                nt = wtext.make_note_text(
                    rng, t, int(notes["subcat"][i] - tax.sub_off[t]),
                    language=LANGUAGES[notes["language"][i]], n_tokens=int(notes["n_tokens"][i]),
                    harm_type=HARM_TYPES[ht] if ht >= 0 else None,
                    clickbait=float(notes["clickbait"][i]),
                    secondary_topic=t2 if t2 != t else None,
                    is_ad=bool(notes["is_ad"][i]))
                cols["title"].append(nt.title)
                cols["body"].append(nt.body)
                cols["hashtags"].append(nt.hashtags)
                index.add(i, int(notes["subcat"][i]), nt.title + "\n" + nt.body,
                          cjk=notes["language"][i] != 0)
                nid = i + 1
                for field, s, e, label, txt in nt.entities:
                    for k, v in zip(ent_schema.names, (nid, field, s, e, label, txt), strict=False):
                        ent[k].append(v)
                for q, a in nt.qa:
                    qa["note_id"].append(nid)
                    qa["question"].append(q)
                    qa["answer"].append(a)
                hl["note_id"].extend([nid] * len(nt.highlights))
                hl["word"].extend(nt.highlights)
            w_notes.write(_notes_table(notes, tax, lo, hi, cols))
            for w, d, sch, key in ((w_ent, ent, ent_schema, "entities"), (w_qa, qa, qa_schema, "qa"),
                                   (w_hl, hl, hl_schema, "highlights")):
                w.write(pa.table(d, schema=sch))
                rows[key] += len(d["note_id"])
            bar.update(hi - lo)
    index.finish()
    return index, rows


def _notes_table(notes: dict, tax: Taxonomy, lo: int, hi: int, text: dict) -> pa.Table:
    sl = slice(lo, hi)
    ht = notes["harm_type"][sl]
    cover = notes["cover"][sl]
    cover_arr = pa.StructArray.from_arrays([pa.array(cover[:, j]) for j in range(cover.shape[1])],
                                           fields=list(NOTES.field("cover").type))
    return pa.table({
        "note_id": np.arange(lo + 1, hi + 1, dtype=np.int64),
        "author_id": notes["author"][sl],
        "created_at": pa.array(notes["created"][sl], pa.timestamp("s")),
        "language": pa.array(np.array(LANGUAGES)[notes["language"][sl]]),
        "title": pa.array(text["title"], pa.string()),
        "body": pa.array(text["body"], pa.string()),
        "hashtags": pa.array(text["hashtags"], pa.list_(pa.string())),
        "category": pa.array(np.array(TOPIC_NAMES)[notes["topic"][sl]]),
        "subcategory": pa.array(np.array(tax.sub_names)[notes["subcat"][sl]]),
        "is_ad": notes["is_ad"][sl],
        "harmful": notes["harmful"][sl],
        "harm_type": pa.array(np.array([*HARM_TYPES, ""], dtype=object)[ht], pa.string(),
                              mask=ht < 0),
        "cover": cover_arr,
    }, schema=NOTES)


def _write_truth_tables(cfg: WorldConfig, users: dict, notes: dict, tax: Taxonomy,
                        td: Path) -> None:
    u = cfg.n_users
    write_parquet(td / "users.parquet", pa.table({
        "user_id": np.arange(1, u + 1, dtype=np.int64),
        "interests": _fixed_list(users["interests"]),
        "clickbait_susceptibility": users["susceptibility"],
        "position_sensitivity": users["sensitivity"],
        "activity": users["activity"],
        "gender_sign": users["gender_sign"],
        "language": pa.array(np.array(LANGUAGES)[users["language"]]),
    }))
    schema = None
    with_rows = 250_000
    writer = None
    for lo in range(0, cfg.n_notes, with_rows):
        hi = min(cfg.n_notes, lo + with_rows)
        part = {k: v[lo:hi] for k, v in notes.items()}
        tbl = pa.table({
            "note_id": np.arange(lo + 1, hi + 1, dtype=np.int64),
            "topic_mix": _fixed_list(_topic_mix(part)),
            "topic": part["topic"], "subcat": part["subcat"],
            "category": pa.array(np.array(TOPIC_NAMES)[part["topic"]]),
            "subcategory": pa.array(np.array(tax.sub_names)[part["subcat"]]),
            "quality": part["quality"], "clickbait": part["clickbait"],
            "gender_appeal": part["gender_appeal"], "harmful": part["harmful"],
            "is_ad": part["is_ad"],
        })
        if writer is None:
            schema = tbl.schema
            writer = ParquetChunkWriter(td / "notes.parquet", schema)
        writer.write(tbl)
    assert writer is not None
    writer.close()
    pos = np.arange(max(int(cfg.slate.array().max()), 1))
    scen = np.repeat(np.arange(len(SCENARIOS)), len(pos))
    posr = np.tile(pos, len(SCENARIOS))
    write_parquet(td / "examination.parquet", pa.table({
        "scenario": pa.array(np.array(SCENARIOS)[scen]),
        "position": posr.astype(np.int32),
        "exam": examination(cfg.click, scen, posr).astype(np.float32),
    }))
    write_json(td / "params.json", cfg.click.model_dump(mode="json"))


def _fixed_list(m: np.ndarray) -> pa.Array:
    return pa.ListArray.from_arrays(np.arange(0, m.size + 1, m.shape[1], dtype=np.int32),
                                    pa.array(m.ravel(), pa.float32()))


# ---- the logging policy: candidate pools and ranking ---------------------------------------
def _csr(order: np.ndarray, mask: np.ndarray, key: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Rows of ``mask`` grouped by ``key`` (``order`` = a stable argsort of key)."""
    members = order[mask[order]]
    off = np.concatenate([[0], np.cumsum(np.bincount(key[members], minlength=k))])
    return off, members


class Pools:
    """Live notes grouped for candidate sampling; rebuilt at each slot start."""

    def __init__(self, notes: dict, orders: tuple[np.ndarray, np.ndarray], n_subcats: int,
                 t: int, clicks: np.ndarray):
        self.t = t
        live = notes["created"] <= t
        organic, ads = live & ~notes["is_ad"], live & notes["is_ad"]
        self.by_topic = _csr(orders[0], organic, notes["topic"], N_TOPICS)
        self.by_sub = _csr(orders[1], organic, notes["subcat"], n_subcats)
        self.ads_by_topic = _csr(orders[0], ads, notes["topic"], N_TOPICS)
        self.organic = np.flatnonzero(organic)
        self.ads = np.flatnonzero(ads)
        self.pop_cum = np.cumsum((clicks[self.organic] + 1.0) ** 0.8)


def _from_groups(rng: np.random.Generator, groups: np.ndarray, csr: tuple[np.ndarray, ...],
                 fallback: np.ndarray) -> np.ndarray:
    """A uniform member of each group (same shape as ``groups``); empty groups use fallback."""
    off, members = csr
    lo, size = off[groups], off[groups + 1] - off[groups]
    u = rng.random(groups.shape)
    out = np.full(groups.shape, -1, np.int64)
    if len(members):
        out = members[np.minimum(lo + (u * size).astype(np.int64), len(members) - 1)]
    empty = size == 0
    if len(fallback):
        out = np.where(empty, fallback[(u * len(fallback)).astype(np.int64)], out)
    else:
        out = np.where(empty, -1, out)
    return out


def _uniform(rng: np.random.Generator, pool: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if not len(pool):
        return np.full(shape, -1, np.int64)
    return pool[rng.integers(0, len(pool), shape)]


def _top_k(cands: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` distinct candidates per row, best first → (notes [R, k], valid [R, k])."""
    scores = np.where(cands < 0, -np.inf, scores)
    # Sampling is with replacement: keep one copy of each note per row.
    o = np.argsort(cands, axis=1, kind="stable")
    s = np.take_along_axis(cands, o, axis=1)
    dup = np.zeros(cands.shape, bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    mask = np.zeros(cands.shape, bool)
    np.put_along_axis(mask, o, dup, axis=1)
    scores[mask] = -np.inf
    k = min(k, cands.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(scores, part, axis=1)
    top = np.take_along_axis(part, np.argsort(-ps, axis=1, kind="stable"), axis=1)
    return np.take_along_axis(cands, top, axis=1), np.isfinite(np.take_along_axis(scores, top, 1))


@dataclass
class Policy:
    cfg: WorldConfig
    notes: dict
    est: np.ndarray          # the policy's noisy view of user interests [U, T]
    pools: Pools
    clicks: np.ndarray

    def _score(self, rng: np.random.Generator, cands: np.ndarray, extra: np.ndarray,
               fresh: bool = True) -> np.ndarray:
        lp = self.cfg.logging
        c = np.maximum(cands, 0)
        score = lp.popularity * np.log1p(self.clicks[c]) + extra \
            + lp.noise * rng.gumbel(size=cands.shape)
        if lp.freshness and fresh:
            age = np.maximum(self.pools.t - self.notes["created"][c], 0) / DAY
            score += lp.freshness * np.exp(-age / lp.freshness_days)
        return score

    def feed(self, rng, users: np.ndarray, k: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.pools
        half = c // 2
        topics = _sample_rows(rng, self.est[users], half)
        by_interest = _from_groups(rng, topics, p.by_topic, p.organic)
        if len(p.organic):
            pick = np.searchsorted(p.pop_cum, rng.random((len(users), c - half)) * p.pop_cum[-1],
                                   side="right")
            popular = p.organic[np.minimum(pick, len(p.organic) - 1)]
        else:
            popular = np.full((len(users), c - half), -1, np.int64)
        cands = np.concatenate([by_interest, popular], axis=1)
        interest = self.est[users[:, None], self.notes["topic"][np.maximum(cands, 0)]]
        return _top_k(cands, self._score(rng, cands, self.cfg.logging.interest * interest), k)

    def search(self, rng, qt: np.ndarray, qs: np.ndarray, k: int, c: int):
        p = self.pools
        n_sub, n_top = int(c * 0.4), int(c * 0.35)
        r = len(qt)
        cands = np.concatenate([
            _from_groups(rng, np.repeat(qs[:, None], n_sub, 1), p.by_sub, p.organic),
            _from_groups(rng, np.repeat(qt[:, None], n_top, 1), p.by_topic, p.organic),
            _uniform(rng, p.organic, (r, c - n_sub - n_top))], axis=1)
        cc = np.maximum(cands, 0)
        rel = 2.0 * (self.notes["topic"][cc] == qt[:, None]) + (self.notes["subcat"][cc] == qs[:, None])
        return _top_k(cands, self._score(rng, cands, self.cfg.logging.relevance * rel,
                                         fresh=False), k)

    def discover(self, rng, seeds: np.ndarray, k: int, c: int):
        p = self.pools
        half = c // 2
        sub = np.repeat(self.notes["subcat"][seeds][:, None], half, 1)
        top = np.repeat(self.notes["topic"][seeds][:, None], c - half, 1)
        cands = np.concatenate([_from_groups(rng, sub, p.by_sub, p.organic),
                                _from_groups(rng, top, p.by_topic, p.organic)], axis=1)
        cands = np.where(cands == seeds[:, None], -1, cands)   # never the note just read
        same = self.notes["subcat"][np.maximum(cands, 0)] == self.notes["subcat"][seeds][:, None]
        return _top_k(cands, self._score(rng, cands, 1.0 * same), k)

    def ads(self, rng, users: np.ndarray, k: int, c: int):
        p = self.pools
        half = c // 2
        topics = _sample_rows(rng, self.est[users], half)
        cands = np.concatenate([_from_groups(rng, topics, p.ads_by_topic, p.ads),
                                _uniform(rng, p.ads, (len(users), c - half))], axis=1)
        cc = np.maximum(cands, 0)
        interest = self.est[users[:, None], self.notes["topic"][cc]]
        extra = self.cfg.logging.interest * interest + np.log(self.notes["ad_bid"][cc])
        return _top_k(cands, self._score(rng, cands, extra), k)


# ---- sessions -----------------------------------------------------------------------------
@dataclass
class UserState:
    """Per-user state that flows across sessions and days."""

    it_topic: np.ndarray
    it_sub: np.ndarray
    it_start: np.ndarray
    it_em: np.ndarray
    last_click: np.ndarray
    intents: list[tuple[np.ndarray, ...]]

    @classmethod
    def new(cls, n: int) -> UserState:
        return cls(np.full(n, -1, np.int16), np.full(n, -1, np.int32), np.zeros(n, np.int64),
                   np.zeros(n, bool), np.full(n, -1, np.int64), [])

    def start_sessions(self, rng: np.random.Generator, cfg: WorldConfig, tax: Taxonomy,
                       interests: np.ndarray, users: np.ndarray, ts: np.ndarray) -> None:
        """Keep or replace each user's intent at a session start (users are unique here)."""
        switch = np.where(self.it_em[users], cfg.emerging_switch, cfg.intent_switch)
        new = (self.it_topic[users] < 0) | (rng.random(len(users)) < switch)
        u = users[new]
        if not len(u):
            return
        emerging = rng.random(len(u)) < cfg.emerging_rate
        regular = _sample_rows(rng, interests[u], 1)[:, 0]
        # An emerging intent is a topic the user has shown (almost) no interest in.
        off_profile = tax.popularity[None, :] * (interests[u] < 0.02) + 1e-9
        fresh = _sample_rows(rng, off_profile, 1)[:, 0]
        topic = np.where(emerging, fresh, regular).astype(np.int16)
        sub = tax.random_subcat(rng, topic)
        self.it_topic[u], self.it_sub[u], self.it_start[u], self.it_em[u] = topic, sub, ts[new], \
            emerging
        self.intents.append((u, ts[new], topic, sub, emerging))

    def intents_table(self, end_ts: int) -> pa.Table:
        parts = list(zip(*self.intents, strict=False)) if self.intents else [[np.zeros(0, np.int64)]] * 5
        u, st, topic, sub, em = (np.concatenate(p) for p in parts)
        o = np.lexsort((st, u))
        u, st, topic, sub, em = u[o], st[o], topic[o], sub[o], em[o]
        nxt = np.r_[u[1:] == u[:-1], False]
        end = np.where(nxt, np.r_[st[1:], 0], end_ts)
        return pa.table({
            "user_id": (u + 1).astype(np.int64),
            "start_ts": pa.array(st.astype(np.int64), pa.timestamp("s")),
            "end_ts": pa.array(end.astype(np.int64), pa.timestamp("s")),
            "topic": topic.astype(np.int16),
            "subcat": sub.astype(np.int32),
            "category": pa.array(np.array(TOPIC_NAMES)[topic.astype(np.int64)]),
            "emerging": em.astype(bool),
        })


def _choose_scenarios(rng, cfg: WorldConfig, state: UserState, users: np.ndarray,
                      ts: np.ndarray) -> np.ndarray:
    """Scenario per request; fresh emerging intents send the user to search first."""
    p = np.tile(cfg.scenario_mix.array(), (len(users), 1))
    fresh = state.it_em[users] & (ts - state.it_start[users] < DAY)
    rest = 1.0 - cfg.emerging_search
    p[fresh] = p[fresh] * rest / (p[fresh].sum(1, keepdims=True) - p[fresh][:, [SEARCH]])
    p[fresh, SEARCH] = cfg.emerging_search
    scen = _sample_rows(rng, p, 1)[:, 0]
    # Discover needs a note to relate to: without a previous click it is a feed request.
    return np.where((scen == DISCOVER) & (state.last_click[users] < 0), FEED, scen).astype(np.int8)


@dataclass
class Ctx:
    """Everything a slot needs, fixed for the whole run."""

    cfg: WorldConfig
    tax: Taxonomy
    model: UserModel
    notes: dict
    user_lang: np.ndarray
    index: TermIndex
    slate: np.ndarray
    cands: np.ndarray


def _search_queries(rng, ctx: Ctx, state: UserState, users: np.ndarray) -> dict[str, np.ndarray]:
    """Query text per search request (Python per request) written from the intent."""
    qt = state.it_topic[users].astype(np.int64)
    keep = rng.random(len(users)) < 0.7
    qs = np.where(keep, state.it_sub[users], ctx.tax.random_subcat(rng, qt)).astype(np.int64)
    text, lang, terms = [], [], []
    for t, s, lg in zip(qt.tolist(), qs.tolist(), ctx.user_lang[users].tolist(), strict=False):
        q, key_terms = wtext.make_query(rng, t, s - int(ctx.tax.sub_off[t]),
                                        language=LANGUAGES[lg])
        text.append(q)
        lang.append(LANGUAGES[lg])
        terms.append(ctx.index.ids(key_terms)[:6])
    width = max([len(x) for x in terms] + [1])
    term_ids = np.full((len(users), width), -1, np.int64)
    for i, ids in enumerate(terms):
        term_ids[i, :len(ids)] = ids
    return {"qt": qt, "qs": qs, "text": np.array(text, object), "lang": np.array(lang, object),
                "term_ids": term_ids}


def _request_round(rng, ctx: Ctx, policy: Policy, state: UserState, users: np.ndarray,
                   ts: np.ndarray, sess: np.ndarray, req: np.ndarray) -> dict[str, np.ndarray]:
    """All requests of one round (one per user) → their impressions with outcomes."""
    scen = _choose_scenarios(rng, ctx.cfg, state, users, ts)
    parts = []
    for s in (FEED, SEARCH, DISCOVER, ADS):
        rows = np.flatnonzero(scen == s)
        if not len(rows):
            continue
        u, k, c = users[rows], int(ctx.slate[s]), int(ctx.cands[s])
        q = None
        if s == FEED:
            shown, valid = policy.feed(rng, u, k, c)
        elif s == SEARCH:
            q = _search_queries(rng, ctx, state, u)
            shown, valid = policy.search(rng, q["qt"], q["qs"], k, c)
        elif s == DISCOVER:
            shown, valid = policy.discover(rng, state.last_click[u], k, c)
        else:
            shown, valid = policy.ads(rng, u, k, c)
        r_idx, pos = np.nonzero(valid)
        part = {"user": u[r_idx], "note": shown[r_idx, pos], "pos": pos.astype(np.int32),
                    "scen": np.full(len(r_idx), s, np.int8), "ts": ts[rows][r_idx],
                    "sess": sess[rows][r_idx], "req": req[rows][r_idx],
                    "qt": np.full(len(r_idx), -1, np.int64), "qs": np.full(len(r_idx), -1, np.int64),
                    "query": np.full(len(r_idx), None, object), "qlang": np.full(len(r_idx), None, object),
                    "rel": np.full(len(r_idx), -1, np.int8)}
        if q is not None:
            part["qt"], part["qs"] = q["qt"][r_idx], q["qs"][r_idx]
            part["query"], part["qlang"] = q["text"][r_idx], q["lang"][r_idx]
            hit = ctx.index.hit(part["note"], q["term_ids"][r_idx])
            part["rel"] = _relevance(part["qt"], part["qs"], ctx.notes["topic"][part["note"]],
                                     ctx.notes["subcat"][part["note"]], hit, ctx.tax)
        parts.append(part)
    if not parts:
        return {}
    imp = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    u, n = imp["user"], imp["note"]
    probs = ctx.model.core(u, n, imp["scen"], imp["pos"], imp["ts"], state.it_topic[u],
                           state.it_sub[u], state.it_start[u], state.it_em[u],
                           query_topic=imp["qt"], query_subcat=imp["qs"])
    imp.update(ctx.model.sample(probs, rng))
    clicked = np.flatnonzero(imp["click"] == 1)
    if len(clicked):
        # The last clicked slot of each user's request seeds their next discover request.
        o = clicked[np.lexsort((imp["pos"][clicked], u[clicked]))]
        last = np.r_[u[o][1:] != u[o][:-1], True]
        state.last_click[u[o][last]] = n[o][last]
    return imp


def _relevance(qt, qs, nt, ns, hit, tax: Taxonomy) -> np.ndarray:
    """4-level labels; text.py takes per-topic (local) subcategory indices."""
    return np.asarray(wtext.relevance_labels(qt, qs - tax.sub_off[qt], nt, ns - tax.sub_off[nt],
                                             hit), np.int8)


def _run_slot(rng, ctx: Ctx, policy: Policy, state: UserState, users: np.ndarray,
              starts: np.ndarray, nreq: np.ndarray, sess_ids: np.ndarray,
              req_base: int) -> tuple[dict[str, np.ndarray], int]:
    """Simulate the sessions of one slot; a user's sessions in the slot run in order."""
    o = np.lexsort((starts, users))
    first = np.r_[True, users[o][1:] != users[o][:-1]]
    rank = np.empty(len(users), np.int64)
    rank[o] = np.arange(len(users)) - np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
    out = []
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        s = np.flatnonzero(rank == r)
        state.start_sessions(rng, ctx.cfg, ctx.tax, ctx.model.truth.interests, users[s], starts[s])
        kmax = int(nreq[s].max())
        gaps = ctx.cfg.request_gap_s * (0.25 + rng.exponential(1.0, (len(s), kmax)))
        offs = np.concatenate([np.zeros((len(s), 1)), np.cumsum(gaps, 1)[:, :-1]], 1).astype(np.int64)
        for k in range(kmax):
            act = np.flatnonzero(nreq[s] > k)
            ss = s[act]
            req = req_base + np.arange(len(ss), dtype=np.int64)
            req_base += len(ss)
            imp = _request_round(rng, ctx, policy, state, users[ss], starts[ss] + offs[act, k],
                                 sess_ids[ss], req)
            if imp:
                out.append(imp)
    if not out:
        return {}, req_base
    return {key: np.concatenate([p[key] for p in out]) for key in out[0]}, req_base


# ---- streaming the sorted logs --------------------------------------------------------------
REL_SCHEMA = pa.schema([("query_id", pa.int64()), ("note_id", pa.int64()), ("label", pa.int8())])


class LogWriter:
    """Sorts impressions, assigns final ids in time order and streams three tables."""

    def __init__(self, out: Path, td: Path, sub_names: tuple[str, ...]):
        self.sub_names = np.array(sub_names)
        self.events = ParquetChunkWriter(out / "events.parquet", EVENTS)
        self.queries = ParquetChunkWriter(out / "queries.parquet", _QUERIES_OUT)
        self.relevance = ParquetChunkWriter(td / "relevance.parquet", REL_SCHEMA)
        self.next_event = self.next_request = self.next_query = 0

    def emit(self, imp: dict[str, np.ndarray]) -> None:
        n = len(imp["req"])
        if not n:
            return
        req, scen = imp["req"], imp["scen"]
        new_req = np.r_[True, req[1:] != req[:-1]]
        request_id = self.next_request + np.cumsum(new_req) - 1
        search = scen == SEARCH
        first_q = new_req & search
        query_id = self.next_query + np.cumsum(first_q) - 1
        ts = pa.array(imp["ts"], pa.timestamp("s"))
        self.events.write(pa.table({
            "event_id": self.next_event + np.arange(n, dtype=np.int64),
            "request_id": request_id, "session_id": imp["sess"],
            "user_id": imp["user"] + 1, "note_id": imp["note"] + 1,
            "scenario": pa.array(np.array(SCENARIOS)[scen]),
            "query": pa.array(imp["query"], pa.string()),
            "position": imp["pos"], "ts": ts,
            **{k: imp[k] for k in ("click", "like", "collect", "comment", "share", "dwell_ms",
                                   "convert")},
        }, schema=EVENTS))
        q = np.flatnonzero(first_q)
        self.queries.write(pa.table({
            "query_id": query_id[q], "request_id": request_id[q], "session_id": imp["sess"][q],
            "user_id": imp["user"][q] + 1, "ts": ts.take(q),
            "query": pa.array(imp["query"][q], pa.string()),
            "language": pa.array(imp["qlang"][q], pa.string()),
            "category": pa.array(np.array(TOPIC_NAMES)[imp["qt"][q]]),
            "subcategory": pa.array(self.sub_names[imp["qs"][q]]),
        }, schema=_QUERIES_OUT))
        s = np.flatnonzero(search)
        self.relevance.write(pa.table({"query_id": query_id[s], "note_id": imp["note"][s] + 1,
                                       "label": imp["rel"][s]}, schema=REL_SCHEMA))
        self.next_event += n
        self.next_request += int(new_req.sum())
        self.next_query += int(first_q.sum())

    def close(self) -> None:
        for w in (self.events, self.queries, self.relevance):
            w.close()

    def abort(self) -> None:
        for w in (self.events, self.queries, self.relevance):
            w.abort()


_QUERIES_OUT = pa.schema([*QUERIES, pa.field("subcategory", pa.string())])


def _take(d: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in d.items()}


def _concat(a: dict, b: dict) -> dict:
    if not a:
        return b
    if not b:
        return a
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _expected_requests(cfg: WorldConfig) -> float:
    """E[min(1 + Poisson(m - 1), max)] requests per session."""
    lam = max(cfg.requests_per_session - 1.0, 0.0)
    ks = np.arange(cfg.max_requests_per_session)
    pmf = np.exp(-lam + ks * np.log(max(lam, 1e-12)) - np.array([math.lgamma(k + 1) for k in ks]))
    pmf[-1] = max(1.0 - pmf[:-1].sum(), 0.0)
    return float(((ks + 1) * pmf).sum())


def _simulate(cfg: WorldConfig, seed: int, ctx: Ctx, state: UserState, writer: LogWriter,
              activity: np.ndarray) -> None:
    notes = ctx.notes
    mix = cfg.scenario_mix.array() / cfg.scenario_mix.array().sum()
    per_session = _expected_requests(cfg) * float((mix * ctx.slate).sum())
    rate = cfg.n_events / (cfg.n_users * cfg.days * per_session) * activity
    prng = _rng(seed, STAGE_POLICY)
    interests = ctx.model.truth.interests
    est = (np.clip(interests + prng.normal(0, cfg.logging.interest_noise, interests.shape), 0, None)
           + 0.01).astype(np.float32)
    clicks = notes["prior_clicks"].copy()
    orders = (np.argsort(notes["topic"], kind="stable"), np.argsort(notes["subcat"], kind="stable"))
    n_subcats = len(ctx.tax.sub_names)
    start = _start_ts(cfg)
    diurnal = DIURNAL / DIURNAL.sum()
    carry: dict[str, np.ndarray] = {}
    next_session = req_base = 0
    with Progress("events", total=cfg.n_events, unit="ev") as bar:
        for day in range(cfg.days):
            rng = _rng(seed, STAGE_SESSIONS, day)
            day0 = start + day * DAY
            users = np.repeat(np.arange(cfg.n_users), rng.poisson(rate))
            starts = day0 + rng.choice(24, size=len(users), p=diurnal) * 3600 + \
                rng.integers(0, 3600, len(users))
            nreq = np.minimum(1 + rng.poisson(max(cfg.requests_per_session - 1, 0), len(users)),
                              cfg.max_requests_per_session)
            o = np.lexsort((users, starts))
            users, starts, nreq = users[o], starts[o], nreq[o]
            sess_ids = next_session + np.arange(len(users), dtype=np.int64)
            next_session += len(users)
            n_slots = max(1, math.ceil(nreq.sum() * per_session / _expected_requests(cfg)
                                       / cfg.chunk_events))
            bounds = np.linspace(0, len(users), n_slots + 1).astype(np.int64)
            for j in range(n_slots):
                a, b = int(bounds[j]), int(bounds[j + 1])
                boundary = int(starts[b]) if b < len(users) else day0 + DAY
                t0 = int(starts[a]) if b > a else boundary
                policy = Policy(cfg, notes, est, Pools(notes, orders, n_subcats, t0, clicks), clicks)
                imp, req_base = _run_slot(_rng(seed, STAGE_SLOT, day, j), ctx, policy, state,
                                          users[a:b], starts[a:b], nreq[a:b], sess_ids[a:b],
                                          req_base)
                if imp:
                    clicks += np.bincount(imp["note"][imp["click"] == 1], minlength=len(clicks))
                merged = _concat(carry, imp)
                if not merged:
                    continue
                o = np.lexsort((merged["pos"], merged["req"], merged["ts"]))
                merged = _take(merged, o)
                last = day == cfg.days - 1 and j == n_slots - 1
                cut = len(o) if last else int(np.searchsorted(merged["ts"], boundary))
                writer.emit(_take(merged, np.arange(cut)))
                carry = _take(merged, np.arange(cut, len(o)))
                bar.update(len(imp["req"]) if imp else 0)


def _truth(users: dict, notes: dict) -> Truth:
    return Truth(
        user_ids=np.arange(1, len(users["activity"]) + 1, dtype=np.int64),
        interests=users["interests"], susceptibility=users["susceptibility"],
        sensitivity=users["sensitivity"], gender_sign=users["gender_sign"],
        note_ids=np.arange(1, len(notes["topic"]) + 1, dtype=np.int64),
        topic=notes["topic"], topic2=notes["topic2"], topic_w=notes["topic_w"],
        subcat=notes["subcat"], quality=notes["quality"], clickbait=notes["clickbait"],
        harmful=notes["harmful"], is_ad=notes["is_ad"], gender_appeal=notes["gender_appeal"],
        cover=notes["cover"])


def _empty_intents() -> Intents:
    z = np.zeros(0, np.int64)
    return Intents(user=z, start=z, end=z, topic=z.astype(np.int16), subcat=z.astype(np.int32),
                   emerging=z.astype(bool))


def generate_world(preset: str, seed: int, out: str | Path, *,
                   overrides: list[str] | None = None, force: bool = False) -> dict:
    """Generate the world into ``out`` (replaced atomically when it is snsrec's, or with
    ``force``); return the world.json dict."""
    cfg = world_config(preset, overrides)
    out = Path(out)
    tax = _taxonomy()
    start = _start_ts(cfg)
    end = start + cfg.days * DAY
    echo(f"world {preset} seed {seed}: {cfg.n_users:,} users, {cfg.n_notes:,} notes, "
         f"~{cfg.n_events:,} events over {cfg.days} days")
    with atomic_dir(out, "world generate", force=force, legacy=["world.json"]) as tmp:
        td = tmp / "truth"
        td.mkdir()
        users_tbl, ut = _make_users(cfg, seed, tax)
        write_parquet(tmp / "users.parquet", users_tbl)
        notes = _make_notes(cfg, seed, tax)
        index, text_rows = _write_notes(cfg, seed, notes, tax, td, tmp)
        _write_truth_tables(cfg, ut, notes, tax, td)
        model = UserModel(_truth(ut, notes), _empty_intents(), cfg.click)
        ctx = Ctx(cfg=cfg, tax=tax, model=model, notes=notes, user_lang=ut["language"],
                  index=index, slate=cfg.slate.array().astype(np.int64),
                  cands=cfg.candidates.array().astype(np.int64))
        state = UserState.new(cfg.n_users)
        writer = LogWriter(tmp, td, tax.sub_names)
        try:
            _simulate(cfg, seed, ctx, state, writer, ut["activity"])
        except BaseException:
            writer.abort()
            raise
        writer.close()
        intents = state.intents_table(end)
        write_parquet(td / "intents.parquet", intents)
        info = {
            "preset": preset, "seed": seed, "snsrec_version": __version__,
            "config": cfg.model_dump(mode="json"),
            "rows": {"users": cfg.n_users, "notes": cfg.n_notes, "events": writer.events.rows,
                     "queries": writer.queries.rows, "relevance": writer.relevance.rows,
                     "intents": intents.num_rows, **text_rows},
            "start": _iso(start), "end": _iso(end),
            "split": {"valid_start": _iso(end - 2 * DAY), "test_start": _iso(end - DAY)},
            "topics": [{"name": t.name, "zh": t.zh, "subcategories": list(t.subcategories)}
                       for t in TOPICS],
            "languages": list(LANGUAGES),
        }
        write_json(tmp / "world.json", info)
    return info
