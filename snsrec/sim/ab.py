"""`snsrec sim ab`: an online A/B test of two serving configurations against the world's
ground-truth users.

The world's user model (``snsrec.data.world.usermodel``) — the same one that wrote
the training logs — answers every served slate. Day by day from the world's test
start (the runs trained on the days before it), a sample of users makes requests
at random times: a feed, discover or ads request asks the arm for a slate; a search
request sends a query the world writes from the user's current intent (or, without
one, from a topic the user likes). The ground truth draws clicks and conversions on
the slate as shown (position by position), and the arm receives every impression,
click and conversion as events, so its next response reads them.

Both arms see the same users, request times, scenarios and queries, and the same
uniform draws decide their clicks (common random numbers): what differs is only
what each arm served. Each in-process arm has its own SQLite store holding the
world's events before the test start; an arm with ``url`` is a running
`snsrec serve` reached over HTTP.

Moderation is measured out of sample: the n-gram baseline is fitted on the notes
created before the start only (``snsrec.serve.service.baseline``, kept in the
output directory), so a note posted during the simulated days is judged by a
moderator that never saw it. A precomputed table (``moderation_scores``, e.g. from
`snsrec llm moderate`) does not record what its model was trained on: the report
says so.

Reported per arm, with 95% confidence intervals from a bootstrap over users (and
the B − A difference from the paired bootstrap): feed CTR (clicks / feed
impressions), search click-page rate (share of searches with a click), ads
conversion rate (conversions / ads impressions), harmful exposure rate (share of
all impressions on notes the world made harmful), split into the share on notes
created after the start (never seen by the moderator) and on the older ones (the
two sum to it), the share of impressions on notes created after the start, and
catalogue coverage (distinct notes shown / notes in the world). Beside them, each
arm's moderator's precision and recall of "harmful" at its threshold on the notes
created in the simulated days, against the world's flags.

Paths in an arm's YAML (``run``, ``retriever``, ``ranker``, ``moderation_scores``)
are relative to ``runs`` (``--runs``, default ``runs``), so the shipped arms in
``configs/sim/`` run against any copy of the runs they name; every path is
checked before the first arm starts.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.config import PlainName, StrictModel, load_config
from snsrec.data.schema import SCENARIOS
from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.eval.metrics import binary_prf
from snsrec.progress import Progress, echo
from snsrec.serve.service import assemble, baseline, resolve_runs

DAY = 86_400
PATH_KEYS = ("run", "retriever", "ranker", "moderation_scores")   # relative to --runs
EVENT_BASE = 10 ** 13          # simulated event ids start here (above any world's)


class ArmConfig(StrictModel):
    """One arm: a demo run (``run``) or ``retriever`` + ``ranker`` runs, or ``url``. Paths
    are relative to the runs root (``--runs``)."""

    name: PlainName                 # its store goes to OUT/<name>/
    run: str | None = None
    retriever: str | None = None
    ranker: str | None = None
    # A `snsrec llm moderate` table (note_id, p_harmful) instead of the n-gram baseline.
    moderation_scores: str | None = None
    # platform: the retriever's candidates; popularity: the most clicked notes before the
    # test start (search then ranks by text relevance alone: no personal interests).
    candidates: str = "platform"
    moderation: bool = True
    threshold: float = 0.5
    personalize: float = 0.5
    click_weight: float = 1.0
    retrieve_k: int = 200
    per_topic: int = 3
    index: str = "hnsw"
    url: str | None = None          # a running `snsrec serve`; token from SNSREC_TOKEN
    token: str | None = None


class SimConfig(StrictModel):
    days: int = 2
    users_per_day: int = 300
    requests_per_user: int = 4
    seed: int = 0


# -- arms -----------------------------------------------------------------------------------

class InProcess:
    """An arm served by a ``Platform`` in this process."""

    def __init__(self, platform: Any):
        self.platform = platform

    def slate(self, user: int, scenario: str, k: int, now: int, query: str | None
              ) -> list[int]:
        p = self.platform
        out = p.search(user, query, k, now) if scenario == "search" else \
            p.feed(user, k, now, scenario)
        return [i["note_id"] for i in out["items"]]

    def events(self, rows: list[dict[str, Any]]) -> None:
        self.platform.store.add_events(rows)


class Http:
    """An arm behind a running `snsrec serve` (the simulated clock is sent as event ts)."""

    def __init__(self, url: str, token: str):
        import httpx

        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=60)
        self.auth = {"Authorization": f"Bearer {token}"}
        try:
            self.client.get("/healthz").raise_for_status()
        except httpx.HTTPError as e:
            raise ConfigError(f"arm url {url}: no snsrec service answers ({e}); start it with "
                              "`snsrec serve RUN_DIR`") from None

    def slate(self, user: int, scenario: str, k: int, now: int, query: str | None
              ) -> list[int]:
        r = self.client.post("/v1/search", json={"user_id": user, "query": query, "k": k}) \
            if scenario == "search" else \
            self.client.get("/v1/feed", params={"user_id": user, "k": k, "scenario": scenario})
        r.raise_for_status()
        return [i["note_id"] for i in r.json()["items"]]

    def events(self, rows: list[dict[str, Any]]) -> None:
        for s in range(0, len(rows), 1000):
            self.client.post("/v1/events", json={"events": rows[s:s + 1000]},
                             headers=self.auth).raise_for_status()


class Popular:
    """The popularity candidates of an arm: the notes with the most clicks before the test
    start, best first; search keeps the retriever's text tower (relevance only)."""

    def __init__(self, retriever: Any, clicks: dict[int, int]):
        self.inner = retriever
        order = sorted(clicks.items(), key=lambda kv: (-kv[1], kv[0]))
        self.ranked = [n for n, _ in order]
        self._within: tuple[tuple[int, int], set[int]] | None = None   # an index's ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def retrieve(self, interests: np.ndarray, k: int, exclude: set[int] | None = None,
                 index: Any = None) -> list[dict[str, Any]]:
        exclude = exclude or set()
        within = None
        if index is not None:                   # e.g. the ads only; its ids, kept
            key = (id(index), len(index))
            if self._within is None or self._within[0] != key:
                self._within = (key, set(index.ids().tolist()))
            within = self._within[1]
        out = []
        for rank, n in enumerate(self.ranked):
            if n not in exclude and (within is None or n in within):
                out.append({"note_id": n, "score": -float(rank), "interest": 0})
                if len(out) == k:
                    break
        return out


def resolve_arm(cfg: ArmConfig, source: Path, runs: Path) -> ArmConfig:
    """``cfg`` with its paths under ``runs`` (absolute ones kept) and, for an in-process arm,
    ``retriever`` and ``ranker`` resolved from ``run``: checked before any arm runs, so a
    config naming a missing run fails at once, naming the file and the key."""
    if cfg.url:
        return cfg
    if cfg.run is None and (cfg.retriever is None or cfg.ranker is None):
        raise ConfigError(f"{source}: give run (a `snsrec demo` directory), or retriever and "
                          "ranker (run directories), or url")
    if cfg.candidates not in ("platform", "popularity"):
        raise ConfigError(f"{source}: candidates {cfg.candidates!r}; use platform or "
                          "popularity")
    paths = {k: runs / getattr(cfg, k) for k in PATH_KEYS if getattr(cfg, k) is not None}
    for key, path in paths.items():
        if not path.exists():
            raise ConfigError(f"{source}: {key} {path} does not exist (arm paths are relative "
                              f"to --runs {runs}); the config's comment names the command "
                              "that writes it")
    try:
        retriever, ranker = resolve_runs(paths["run"], paths.get("retriever"),
                                         paths.get("ranker")) if "run" in paths else \
            (paths["retriever"], paths["ranker"])
    except ModelError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg.model_copy(update={k: str(v) for k, v in {
        **paths, "retriever": retriever, "ranker": ranker}.items()})


def _arm(cfg: ArmConfig, tables: Any, start: int, folder: Path, baseline_dir: Path
         ) -> tuple[Any, Any]:
    """(the arm, its platform or None over HTTP) of a resolved ``cfg``; the n-gram baseline
    (the moderator unless ``moderation_scores``) fitted before ``start`` in ``baseline_dir``."""
    if cfg.url:
        token = cfg.token or os.environ.get("SNSREC_TOKEN", "")
        if not token:
            raise ConfigError(f"arm {cfg.name}: url needs a write token (token: or "
                              "SNSREC_TOKEN) to send events")
        return Http(cfg.url, token), None
    from snsrec.serve.store import import_events, open_store

    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / "store.sqlite"
    if store_path.exists():
        store_path.unlink()
        for extra in folder.glob("store.sqlite-*"):
            extra.unlink()
    store = open_store(f"sqlite:{store_path}")
    import_events(store, tables.events, until=start)
    popular = cfg.candidates == "popularity"
    platform = assemble(
        store, tables, Path(cfg.retriever), Path(cfg.ranker), baseline_dir,
        moderation=_p(cfg.moderation_scores), moderation_before=start,
        threshold=cfg.threshold, index_kind=cfg.index,
        candidates=(lambda r: Popular(r, _clicks_before(tables, start))) if popular else None,
        retrieve_k=cfg.retrieve_k, per_topic=cfg.per_topic,
        personalize=0.0 if popular else cfg.personalize, click_weight=cfg.click_weight)
    platform.moderation.enabled = cfg.moderation
    return InProcess(platform), platform


def _p(x: str | None) -> Path | None:
    return Path(x) if x else None


def _clicks_before(tables: Any, start: int) -> dict[int, int]:
    import polars as pl

    c = (tables.events.filter((pl.col("click") == 1) & (pl.col("ts").dt.epoch("s") < start))
         .group_by("note_id").len().collect())
    return dict(zip(c["note_id"].to_list(), c["len"].to_list(), strict=True))


# -- the schedule ----------------------------------------------------------------------------

def schedule(world: Path, cfg: SimConfig, start: int, um: Any) -> list[dict[str, Any]]:
    """Every simulated request, in time order: user, ts, scenario, slate size, and for
    search the query text and its (topic, global subcategory). The same for both arms."""
    from snsrec.data.world.generate import _taxonomy
    from snsrec.data.world.text import make_query
    from snsrec.io import read_json, read_parquet

    wcfg = read_json(world / "world.json")["config"]
    mix = np.array([wcfg["scenario_mix"][s] for s in SCENARIOS], np.float64)
    slate = {s: int(wcfg["slate"][s]) for s in SCENARIOS}
    lang = read_parquet(world / "truth" / "users.parquet").sort_by("user_id")["language"] \
        .to_numpy(zero_copy_only=False)
    tax = _taxonomy()
    t = um.truth
    rng = np.random.default_rng([cfg.seed, 7_117])
    out = []
    for day in range(cfg.days):
        rows = rng.choice(len(t.user_ids), size=min(cfg.users_per_day, len(t.user_ids)),
                          replace=False)
        n = len(rows) * cfg.requests_per_user
        users = np.repeat(rows, cfg.requests_per_user)
        ts = start + day * DAY + np.sort(rng.integers(0, DAY, n))
        scen = rng.choice(len(SCENARIOS), size=n, p=mix / mix.sum())
        it_topic, it_sub, _, _ = um.intents.at(users, ts)
        for i in np.argsort(ts, kind="stable").tolist():
            s = SCENARIOS[scen[i]]
            req = {"user": int(t.user_ids[users[i]]), "row": int(users[i]), "ts": int(ts[i]),
                   "scenario": s, "k": slate[s]}
            if s == "search":
                topic = int(it_topic[i])
                if topic < 0:            # no current intent: a topic the user likes
                    w = np.exp(3.0 * t.interests[users[i]])
                    topic = int(rng.choice(len(w), p=w / w.sum()))
                    sub = int(tax.random_subcat(rng, np.array([topic]))[0])
                else:
                    sub = int(it_sub[i]) if rng.random() < 0.7 else \
                        int(tax.random_subcat(rng, np.array([topic]))[0])
                text, _ = make_query(rng, topic, sub - int(tax.sub_off[topic]),
                                     language=str(lang[users[i]]))
                req.update(query=text, query_topic=topic, query_subcat=sub)
            out.append(req)
    return out


# -- the run ---------------------------------------------------------------------------------

def simulate(arm: Any, requests: list[dict[str, Any]], um: Any, seed: int, label: str,
             new_note: np.ndarray) -> dict[str, Any]:
    """Serve every request through ``arm``; the ground truth clicks. Per-request records
    (``new_note``: per row of the truth's notes, created after the start)."""
    recs: list[dict[str, Any]] = []
    next_event = EVENT_BASE
    with Progress(f"sim {label}", total=len(requests), unit="req") as bar:
        for i, req in enumerate(requests):
            ids = arm.slate(req["user"], req["scenario"], req["k"], req["ts"], req.get("query"))
            n = len(ids)
            clicks = conv = np.zeros(0, np.int8)
            if n:
                q = req.get("query_topic")
                probs = um.probabilities(
                    np.full(n, req["user"]), np.asarray(ids, np.int64), req["scenario"],
                    np.arange(n), np.full(n, req["ts"]),
                    query_topic=None if q is None else np.full(n, q),
                    query_subcat=None if q is None else np.full(n, req["query_subcat"]))
                # The same draws for every arm: request i's uniforms, by slot.
                draws = um.sample(probs, np.random.default_rng([seed, i]))
                clicks, conv = draws["click"], draws["convert"]
                rows = [{"event_id": next_event + j, "user_id": req["user"], "note_id": nid,
                         "scenario": req["scenario"], "query": req.get("query"),
                         "request_id": next_event, "position": j, "ts": req["ts"],
                         "click": int(clicks[j]), "like": int(draws["like"][j]),
                         "convert": int(conv[j])} for j, nid in enumerate(ids)]
                next_event += n
                arm.events(rows)
            rows_n = um.note_rows(np.asarray(ids, np.int64)) if n else np.zeros(0, np.int64)
            harmful, new = um.truth.harmful[rows_n], new_note[rows_n]
            recs.append({"user": req["user"], "scenario": req["scenario"], "shown": n,
                         "clicks": int(clicks.sum()), "conversions": int(conv.sum()),
                         "harmful": int(harmful.sum()), "harmful_new": int((harmful & new).sum()),
                         "new": int(new.sum()), "notes": ids})
            bar.update()
    return {"records": recs}


def user_totals(recs: list[dict[str, Any]], users: list[int]) -> dict[str, np.ndarray]:
    """Per-user numerators and denominators of each metric, users in ``users`` order."""
    at = {u: i for i, u in enumerate(users)}
    keys = ("feed_clicks", "feed_shown", "searches", "search_pages_clicked", "ads_shown",
            "ads_conversions", "harmful", "harmful_new", "new_shown", "shown")
    t = {k: np.zeros(len(users)) for k in keys}
    for r in recs:
        i = at[r["user"]]
        t["shown"][i] += r["shown"]
        t["harmful"][i] += r["harmful"]
        t["harmful_new"][i] += r["harmful_new"]
        t["new_shown"][i] += r["new"]
        if r["scenario"] == "feed":
            t["feed_clicks"][i] += r["clicks"]
            t["feed_shown"][i] += r["shown"]
        elif r["scenario"] == "search":
            t["searches"][i] += 1
            t["search_pages_clicked"][i] += r["clicks"] > 0
        elif r["scenario"] == "ads":
            t["ads_shown"][i] += r["shown"]
            t["ads_conversions"][i] += r["conversions"]
    t["harmful_old"] = t["harmful"] - t["harmful_new"]
    return t


RATIOS = {"feed_ctr": ("feed_clicks", "feed_shown"),
          "search_click_page_rate": ("search_pages_clicked", "searches"),
          "ads_conversion_rate": ("ads_conversions", "ads_shown"),
          "harmful_exposure_rate": ("harmful", "shown"),
          # The two parts of the rate above (over all impressions, so they sum to it): on
          # notes created after the start — never seen by the moderator — and on the rest.
          "harmful_exposure_new_notes": ("harmful_new", "shown"),
          "harmful_exposure_old_notes": ("harmful_old", "shown"),
          "new_notes_shown": ("new_shown", "shown")}


def _ratio(t: dict[str, np.ndarray], metric: str, idx: np.ndarray | slice) -> np.ndarray:
    num, den = RATIOS[metric]
    n, d = t[num][idx], t[den][idx]
    d_sum = d.sum(axis=-1)
    return np.where(d_sum > 0, n.sum(axis=-1) / np.maximum(d_sum, 1e-12), np.nan)


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_notes: int,
            cov: tuple[float, float], seed: int, n_boot: int = 1000) -> dict[str, Any]:
    """Each ratio metric per arm with its 95% bootstrap interval over users, and B − A with
    the paired bootstrap's interval; coverage as a plain share."""
    rng = np.random.default_rng([seed, 99])
    n = len(a["shown"])
    boot = rng.integers(0, n, size=(n_boot, n))
    out: dict[str, Any] = {}
    for m in RATIOS:
        va, vb = float(_ratio(a, m, slice(None))), float(_ratio(b, m, slice(None)))
        ba, bb = _ratio(a, m, boot), _ratio(b, m, boot)
        diff = bb - ba

        def ci(x: np.ndarray) -> list[float]:
            x = x[np.isfinite(x)]
            return [float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))] if len(x) \
                else [float("nan")] * 2
        out[m] = {"a": va, "a_ci": ci(ba), "b": vb, "b_ci": ci(bb), "diff": vb - va,
                  "diff_ci": ci(diff),
                  "relative": (vb - va) / va if va and np.isfinite(va) else None}
    out["coverage"] = {"a": cov[0] / n_notes, "b": cov[1] / n_notes, "diff":
                       (cov[1] - cov[0]) / n_notes}
    return out


def note_created(tables: Any, note_ids: np.ndarray) -> np.ndarray:
    """Creation time (epoch seconds) of each of ``note_ids`` (every one a world note)."""
    t = tables.notes.select("note_id", "created_at").collect().sort("note_id")
    ids, created = t["note_id"].to_numpy(), t["created_at"].dt.epoch("s").to_numpy()
    at = np.searchsorted(ids, note_ids)
    return created[np.clip(at, 0, len(ids) - 1)]


def moderation_quality(scores: dict[int, float], threshold: float, note_ids: np.ndarray,
                       harmful: np.ndarray) -> dict[str, Any]:
    """Precision and recall of "harmful" when a note is blocked at ``p_harmful >=
    threshold`` (a note without a score passes, as in serving), against the world's flags
    ``harmful``; None where undefined (nothing blocked / nothing harmful)."""
    blocked = np.array([scores.get(int(n), 0.0) >= threshold for n in note_ids], bool)
    harmful = np.asarray(harmful, bool)
    precision, recall, _ = binary_prf(blocked, harmful)
    return {"blocked": int(blocked.sum()), "precision": precision if blocked.any() else None,
            "recall": recall if harmful.any() else None}


def _moderator(cfg: ArmConfig, platform: Any, fitted: dict[str, Any], sim_notes: np.ndarray,
               sim_harmful: np.ndarray) -> dict[str, Any]:
    """What moderates the arm, what it learnt from, and its quality on the simulated days'
    notes (unknown for an arm over HTTP)."""
    out: dict[str, Any] = {"enabled": cfg.moderation, "threshold": cfg.threshold}
    if platform is None:
        return {**out, "moderator": f"the service at {cfg.url}"}
    if cfg.moderation_scores:
        # Nothing in a scores table says which notes its model was trained on.
        out.update(moderator=f"scores table {cfg.moderation_scores}", fitted_before=None,
                   train_notes=None, latest_train_note=None)
    else:
        out.update(moderator="n-gram baseline", **fitted)
    m = platform.moderation
    return {**out, **moderation_quality(m.scores, m.threshold, sim_notes, sim_harmful)}


def run_ab(world: str | Path, a: str | Path, b: str | Path, out: str | Path, *,
           overrides: list[str] | None = None, days: int | None = None,
           runs: str | Path = "runs", force: bool = False) -> dict[str, Any]:
    """Both arms on the same requests into ``out`` (snsrec's or new, or any folder with
    ``force``: each arm's fresh store replaces the last one in ``out/<arm>/``)."""
    from snsrec.data.tables import load_tables
    from snsrec.data.world.usermodel import UserModel
    from snsrec.io import out_dir, read_json
    from snsrec.records import write_record

    started = time.time()
    world, out, runs = Path(world), Path(out), Path(runs)
    if not (world / "truth" / "params.json").is_file():
        raise DataError(f"{world}: not a world directory with its truth (truth/params.json); "
                        "generate one with `snsrec world generate`")
    cfg = load_config(SimConfig, None, overrides)
    if days is not None:
        cfg = cfg.model_copy(update={"days": days})
    if cfg.days < 1 or cfg.users_per_day < 1 or cfg.requests_per_user < 1:
        raise ConfigError("sim: days, users_per_day and requests_per_user must be >= 1")
    arms = [resolve_arm(load_config(ArmConfig, p), Path(p), runs) for p in (a, b)]
    if arms[0].name == arms[1].name:
        raise ConfigError(f"--a and --b are both named {arms[0].name!r}; give the arms "
                          "different names")
    out = out_dir(out, "sim ab", force=force, legacy=["ab.json"], inputs=[world])
    meta = read_json(world / "world.json")
    start = int(np.datetime64(meta["split"]["test_start"], "s").astype(np.int64))
    end = start + cfg.days * DAY
    um = UserModel.load(world)
    tables = load_tables(world)
    created = note_created(tables, um.truth.note_ids)
    new_note = created >= start
    in_days = (created >= start) & (created < end)
    sim_notes, sim_harmful = um.truth.note_ids[in_days], um.truth.harmful[in_days]
    # One moderator for every in-process arm: fitted on the notes before the start only.
    fitted = baseline(tables, out, before=start)[2] if any(not x.url for x in arms) else {}
    requests = schedule(world, cfg, start, um)
    t0 = time.perf_counter()
    results, totals, covered, moderation = {}, {}, [], {}
    users = sorted({r["user"] for r in requests})
    for arm_cfg in arms:
        echo(f"sim: arm {arm_cfg.name}")
        arm, platform = _arm(arm_cfg, tables, start, out / arm_cfg.name, out)
        moderation[arm_cfg.name] = _moderator(arm_cfg, platform, fitted, sim_notes,
                                              sim_harmful)
        res = simulate(arm, requests, um, cfg.seed, arm_cfg.name, new_note)
        totals[arm_cfg.name] = user_totals(res["records"], users)
        covered.append(len({n for r in res["records"] for n in r["notes"]}))
        results[arm_cfg.name] = res
    stats = compare(totals[arms[0].name], totals[arms[1].name], len(um.truth.note_ids),
                    (covered[0], covered[1]), cfg.seed)
    report = {"benchmark": "sim-ab", "world": str(world), "runs": str(runs),
              "config": cfg.model_dump(), "arms":
              [x.model_dump() for x in arms], "requests": len(requests), "users": len(users),
              "start": meta["split"]["test_start"], "metrics": stats,
              "moderation": {"notes_from": meta["split"]["test_start"],
                             "notes_until": str(np.datetime64(end, "s")),
                             "notes": len(sim_notes), "harmful": int(sim_harmful.sum()),
                             "arms": moderation},
              "seconds": round(time.perf_counter() - t0, 1)}
    command = shlex.join(["snsrec", "sim", "ab", "--world", str(world), "--a", str(a), "--b",
                          str(b), "--days", str(cfg.days), "--out", str(out), "--runs",
                          str(runs), *[x for s in overrides or [] for x in ("--set", s)]])
    report, _ = write_record(out, "ab", report, markdown, default_command=command,
                             started=started, seeds=[cfg.seed])
    return report


def markdown(r: dict[str, Any]) -> str:
    a, b = (x["name"] for x in r["arms"])
    lines = [f"# A/B: {a} (A) vs {b} (B)", "",
             f"{r['requests']:,} requests of {r['users']:,} users over {r['config']['days']} "
             f"day(s) from {r['start']} (world {r['world']}); 95% intervals: bootstrap over "
             "users (B − A paired).", "",
             f"| metric | {a} | {b} | B − A | relative |", "|---|---|---|---|---|"]

    # A missing value (NaN in memory, null in the record's strict JSON) is "–".
    def f(v: float | None, sign: str = "") -> str:
        return f"{v:{sign}.4f}" if v is not None and np.isfinite(v) else "–"
    for m in RATIOS:
        s = r["metrics"][m]
        rel = f"{100 * s['relative']:+.1f}%" if s["relative"] is not None else "–"
        lines.append(f"| {m} | {f(s['a'])} [{f(s['a_ci'][0])}, {f(s['a_ci'][1])}] | "
                     f"{f(s['b'])} [{f(s['b_ci'][0])}, {f(s['b_ci'][1])}] | "
                     f"{f(s['diff'], '+')} [{f(s['diff_ci'][0], '+')}, "
                     f"{f(s['diff_ci'][1], '+')}] | {rel} |")
    c = r["metrics"]["coverage"]
    lines.append(f"| coverage | {f(c['a'])} | {f(c['b'])} | {f(c['diff'], '+')} | |")
    lines += ["", "harmful_exposure_new_notes + harmful_exposure_old_notes = "
              "harmful_exposure_rate: the harmful impressions on notes created after the start "
              "(never seen by the moderator) and before it, over all impressions; "
              "new_notes_shown: the share of impressions on notes created after the start.",
              "", moderation_markdown(r["moderation"])]
    return "\n".join(lines)


def moderation_markdown(mod: dict[str, Any]) -> str:
    """Each arm's moderator, what it learnt from, and its precision / recall on the notes
    created in the simulated days."""
    from snsrec.report.markdown import markdown_table

    arms = mod["arms"]
    head = (f"Moderation on the {mod['notes']:,} notes created from {mod['notes_from']} to "
            f"{mod['notes_until']} ({mod['harmful']:,} harmful), at each arm's threshold (a "
            "note is blocked at p_harmful ≥ it):")

    def learnt(m: dict[str, Any]) -> str:
        if m["moderator"] != "n-gram baseline":
            return "not recorded: out of sample only if its model never saw these notes" \
                if m["moderator"].startswith("scores table") else "unknown"
        return f"{m['train_notes']:,} notes created before {m['fitted_before']}"

    rows = [[name, "on" if m["enabled"] else "off", m["threshold"], m["moderator"],
             learnt(m), m.get("blocked"), m.get("precision"), m.get("recall")]
            for name, m in arms.items()]
    return head + "\n\n" + markdown_table(
        ["arm", "filter", "threshold", "moderator", "fitted on", "blocked", "precision",
         "recall"], rows)
