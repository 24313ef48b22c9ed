"""`snsrec demo`: world → features → popularity, LR and the best ranker; RED-Rec and its
baselines → evaluation → report.

What it measures (the protocols, stated):

- **CTR** on the test day (the world's last day): AUC, gAUC (grouped by user,
  impression-weighted, single-class users skipped), logloss and calibration,
  overall and per scenario, for the popularity baseline (smoothed note CTR),
  logistic regression and the ranker (``ranker.name``: by default the model
  that leads ``snsrec bench ctr`` on the small world), both trained with the
  shared trainer (early stopping on the validation day).
- **Next-click retrieval** on the test day: every feed click is a query (a
  seeded sample of ``retrieval.max_queries`` when there are more); the clicked
  note is ranked among ALL notes. Popularity ranks by training clicks; LR
  scores each (user, note) pair with the query event's user and context
  features and each candidate's note features (note age measured at the start
  of the test day). Notes created after the click are left out of its
  ranking; ties count against the target (pessimistic). HR@K, NDCG@K, MRR.
- **Cross-scenario retrieval** (``retrievers``: RED-Rec, ItemCF, category
  popularity and most popular by default): each is a retrieval run (``snsrec train``'s, see
  ``snsrec.train.retrieval``) on the same world, scored by the full-corpus
  protocol per target — feed next click, search click, ads conversion — and
  on cold-start notes (created after the training cut-off).

Everything is written into ``out`` atomically; the world is generated into
``<out>/../worlds/<preset>-seed<seed>`` and reused when its world.json matches
preset, seed and version.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field as PField

from snsrec.bench.retrieval import oracle_record
from snsrec.config import PlainName, StrictModel, dump_config, load_config
from snsrec.data.batches import to_tensors
from snsrec.data.datasets import ensure_world
from snsrec.data.schema import SCENARIOS
from snsrec.errors import ConfigError
from snsrec.eval.metrics import rank_of_targets, retrieval_metrics
from snsrec.eval.oracle import (
    constant_scores,
    has_truth,
    impression_truth,
    load_truth,
    oracle_share,
)
from snsrec.io import atomic_dir, check_out, jsonable, write_json, write_jsonl, write_text
from snsrec.progress import Progress
from snsrec.records import write_record
from snsrec.runs import save_run
from snsrec.train.pipeline import ModelConfig, RunConfig, train_run
from snsrec.train.retrieval import RetrievalDataConfig
from snsrec.train.trainer import TrainConfig, Trainer

# The shipped config; absent in a wheel install, where the defaults below apply.
# The demo in minutes, and the long recipe (``snsrec demo --full``).
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
DEMO_FULL_CONFIG = DEMO_CONFIG.with_name("demo_full.yaml")
MODELS = ("popularity", "lr")       # the models ranked against all notes (retrieval)


class RetrievalConfig(StrictModel):
    scenario: Literal["feed", "search", "discover", "ads"] = "feed"
    ks: list[int] = PField(default_factory=lambda: [10, 50])
    max_queries: int = PField(2000, ge=1)    # test clicks ranked (seeded sample above this)
    rows_per_batch: int = PField(1 << 18, ge=1)  # (query, note) pairs per LR forward
    ties: Literal["pessimistic", "average"] = "pessimistic"


class RankerConfig(StrictModel):
    name: str = "optinter"                   # any registered ranking model
    params: dict[str, Any] = PField(default_factory=dict)
    train: TrainConfig = PField(default_factory=lambda: TrainConfig(epochs=3, lr=1e-3))


class RetrieverConfig(StrictModel):
    """One retrieval run of the demo (``snsrec train``'s model / train / retrieval keys)."""

    model: ModelConfig
    train: TrainConfig = PField(default_factory=lambda: TrainConfig(
        epochs=2, batch_size=512, lr=1e-3, loss="window_nce", monitor="hr@100",
        early_stop_patience=1))
    retrieval: RetrievalDataConfig = PField(default_factory=RetrievalDataConfig)


def _default_retrievers() -> dict[str, RetrieverConfig]:
    return {"toppop": RetrieverConfig(model=ModelConfig(name="toppop")),
            "itemcf": RetrieverConfig(model=ModelConfig(name="itemcf")),
            "category": RetrieverConfig(model=ModelConfig(name="category",
                                                          params={"fresh_every": 10})),
            "redrec": RetrieverConfig(model=ModelConfig(name="redrec"),
                                      retrieval=RetrievalDataConfig(cutoffs_per_user=5))}


class DemoConfig(StrictModel):
    name: str = "demo"
    features: Path | None = None             # feature YAML; None = the world's default features
    popularity: dict[str, Any] = PField(default_factory=lambda: {"half_life_days": 2.0})
    lr: dict[str, Any] = PField(default_factory=dict)
    train: TrainConfig = PField(default_factory=lambda: TrainConfig(epochs=4, lr=0.01))
    ranker: RankerConfig = PField(default_factory=RankerConfig)
    retrieval: RetrievalConfig = PField(default_factory=RetrievalConfig)
    # Each trains into models/<name>/ of the demo's directory.
    retrievers: dict[PlainName, RetrieverConfig] = PField(default_factory=_default_retrievers)


def load_demo_config(path: Path | None = None, overrides: list[str] | None = None) -> DemoConfig:
    path = path if path is not None else (DEMO_CONFIG if DEMO_CONFIG.is_file() else None)
    return load_config(DemoConfig, path, overrides)


# -- world ----------------------------------------------------------------

# -- retrieval ------------------------------------------------------------

def item_fields(feature_map: Any) -> list[str]:
    """Fields that depend on the note: read from the notes table or the event's note id."""
    from snsrec.data.features import EXPRESSIONS

    spec = feature_map.spec
    out = []
    for f in (*spec.categorical, *spec.numeric, *spec.multi):
        cols = EXPRESSIONS.get(f.column, (f.column,))
        if any(c.startswith("notes.") or c == "events.note_id" for c in cols):
            out.append(f.name)
    return out


def candidate_arrays(feature_map: Any, tables: Any, at: Any
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """All note ids (sorted), their creation times (s) and FeatureMap arrays at time ``at``."""
    notes = tables.notes.select("note_id", "created_at").sort("note_id").collect()
    note_ids = notes["note_id"].to_numpy()
    # A note without a creation time counts as always available.
    created = notes["created_at"].dt.epoch("s").fill_null(np.iinfo(np.int64).min).to_numpy()
    any_user = tables.events.select(pl.col("user_id").first()).collect().item()
    request = {"user_id": any_user, "note_ids": note_ids.tolist(), "scenario": "feed",
               "ts": at, "position": 0}
    return note_ids, created, feature_map.transform_request(tables, request)


@torch.no_grad()
def score_pairs(model: torch.nn.Module, queries: dict[str, torch.Tensor],
                items: dict[str, torch.Tensor], fields: list[str]) -> torch.Tensor:
    """Logits ``[q, n]``: every query row paired with every candidate's item fields.

    A model with a ``pair_logits`` shortcut (e.g. LR, which is additive) is asked
    directly; any other model scores the explicit q*n batch.
    """
    if hasattr(model, "pair_logits"):
        return model.pair_logits(queries, items, fields)
    q = next(iter(queries.values())).shape[0]
    n = next(iter(items.values())).shape[0]
    batch = {k: v.repeat_interleave(n, dim=0) for k, v in queries.items() if k not in fields}
    for k in fields:
        batch[k] = items[k].repeat(q, *([1] * (items[k].dim() - 1)))
    return model(batch)["logit"].reshape(q, n)


def next_click_eval(models: dict[str, torch.nn.Module], feature_map: Any, tables: Any,
                    test: dict[str, np.ndarray], test_start: Any, cfg: RetrievalConfig,
                    seed: int) -> dict[str, Any]:
    """HR/NDCG@K and MRR of each model ranking the clicked note among all notes."""
    scen = SCENARIOS.index(cfg.scenario)
    rows = np.flatnonzero((test["_scenario"] == scen) & (test["click"] > 0))
    if rows.size > cfg.max_queries:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, cfg.max_queries, replace=False))
    note_ids, created, cands = candidate_arrays(feature_map, tables, test_start)
    pos = np.searchsorted(note_ids, test["_note_id"][rows])
    known = (pos < note_ids.size) & (note_ids[np.minimum(pos, note_ids.size - 1)]
                                     == test["_note_id"][rows])
    rows, target = rows[known], pos[known]
    out: dict[str, Any] = {"queries": int(rows.size), "candidates": int(note_ids.size),
                           "scenario": cfg.scenario, "ties": cfg.ties}
    if rows.size == 0:
        return out
    fields = item_fields(feature_map)
    items = to_tensors({k: cands[k] for k in fields})
    queries = to_tensors({k: v[rows] for k, v in test.items() if k not in feature_map.spec.labels})
    query_ts = test["_ts"][rows]
    step = max(1, cfg.rows_per_batch // note_ids.size)
    for name, model in models.items():
        model.eval()
        static = model.item_scores()[torch.as_tensor(cands[model.item_field])].numpy() \
            if hasattr(model, "item_scores") else None     # one score per note (popularity)
        ranks = np.empty(rows.size)
        with Progress(f"rank all notes ({name})", total=rows.size, unit="queries") as bar:
            for s in range(0, rows.size, step):
                qb = {k: v[s:s + step] for k, v in queries.items()}
                scores = (np.tile(static, (len(qb[fields[0]]), 1)) if static is not None
                          else score_pairs(model, qb, items, fields).double().numpy())
                # Notes created after the click did not exist yet: out of the ranking.
                scores[created[None, :] > query_ts[s:s + step, None]] = -np.inf
                ranks[s:s + step] = rank_of_targets(scores, target[s:s + step], ties=cfg.ties)
                bar.update(scores.shape[0])
        out[name] = retrieval_metrics(ranks, cfg.ks)
    return out


# -- report ---------------------------------------------------------------

CTR_COLUMNS = ("auc", "gauc", "logloss", "calibration", "auc_share")


def reference_ctr(root: Path, arrays: dict[str, dict[str, np.ndarray]]
                  ) -> dict[str, dict[str, Any]]:
    """The test day scored by the world's truth (``oracle``: the click model that drew the
    labels) and by the constant answer (the training CTR), with the models' own metrics."""
    from snsrec.eval.protocols import LABEL, evaluate_predictions

    test = arrays["test"]
    out = {}
    if has_truth(root):
        out["oracle"] = evaluate_predictions(test, impression_truth(load_truth(root),
                                                                    test)["click"])
    out["constant"] = evaluate_predictions(test, constant_scores(arrays["train"][LABEL],
                                                                 len(test[LABEL])))
    return out


def auc_share(ctr: dict[str, dict[str, Any]], name: str) -> float:
    """``name``'s share of the oracle's AUC lift over 0.5 (nan without an oracle)."""
    return oracle_share(ctr[name]["auc"], ctr.get("oracle", {}).get("auc", float("nan")), 0.5)


def _ctr_section(ctr: dict[str, dict[str, Any]]) -> str:
    from snsrec.report.markdown import markdown_table, metrics_table

    body = metrics_table(ctr, CTR_COLUMNS, headers={"auc": "AUC", "gauc": "gAUC",
                                                    "auc_share": "share of oracle"})
    rows = []
    for scenario in SCENARIOS:
        per = {m: ctr[m].get("by_scenario", {}).get(scenario) for m in ctr}
        if not any(per.values()):
            continue
        first = next(v for v in per.values() if v)
        rows.append([scenario, first["n"], first["ctr"],
                     *(per[m]["auc"] if per[m] else None for m in ctr),
                     *(per[m]["logloss"] if per[m] else None for m in ctr)])
    header = ["scenario", "impressions", "CTR", *(f"AUC {m}" for m in ctr),
              *(f"logloss {m}" for m in ctr)]
    return body + "\nPer scenario (test day):\n\n" + markdown_table(header, rows)


def _retrieval_section(ret: dict[str, Any], ks: list[int]) -> str:
    from snsrec.report.markdown import metrics_table

    cols = [c for k in ks for c in (f"hr@{k}", f"ndcg@{k}")] + ["mrr"]
    ranked = {m: ret[m] for m in MODELS if m in ret}
    headers = {c: c.upper() for c in cols}
    return (f"{ret['queries']:,} test {ret['scenario']} clicks, each clicked note ranked among "
            f"all {ret['candidates']:,} notes (ties count against it).\n\n"
            + metrics_table(ranked, cols, headers=headers))


# (target, note set) columns of the retrievers' table, and their labels.
RETRIEVER_COLUMNS = (("feed", "all"), ("search", "all"), ("ads", "all"), ("feed", "cold"))
RETRIEVER_LABELS = [f"{t}{' cold' if part == 'cold' else ''}" for t, part in RETRIEVER_COLUMNS]


def _retriever_cells(test: dict[str, Any], metric: str) -> list[float | None]:
    return [test.get(t, {}).get(part, {}).get(metric) for t, part in RETRIEVER_COLUMNS]


def _retrievers_section(retrievers: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    if not retrievers:
        return "No retrievers configured (`retrievers` in the demo config)."
    first = next(iter(retrievers.values()))["test"]
    queries = [first.get(t, {}).get(part, {}).get("queries", 0) for t, part in RETRIEVER_COLUMNS]
    cols = RETRIEVER_LABELS
    rows = [[name, *_retriever_cells(r["test"], "hr@100"), *_retriever_cells(r["test"],
                                                                               "ndcg@10"),
             r["params"], r["train_time_s"] and round(r["train_time_s"], 1)]
            for name, r in retrievers.items()]
    return ("Each test user's first feed click, search click and ads conversion of the test "
            "day, ranked among all notes from the user's cross-scenario history before the "
            "day (no sampled negatives; notes created later left out); *cold*: each user's "
            "first feed click on a note created after the training cut-off. Queries: "
            + ", ".join(f"{c} {q:,}" for c, q in zip(cols, queries, strict=True)) + ".\n\n"
            + markdown_table(["model", *(f"HR@100 {c}" for c in cols),
                              *(f"NDCG@10 {c}" for c in cols), "parameters", "train (s)"],
                             rows))


def _summary_text(out: Path, world: dict, metrics: dict, seconds: float) -> str:
    ks = [k for k in (10, 50) if any(f"hr@{k}" in v for v in metrics["retrieval"].values()
                                     if isinstance(v, dict))]
    head = f"{'model':<12}{'AUC':>8}{'share':>7}{'gAUC':>8}{'logloss':>9}" + "".join(
        f"{'HR@' + str(k):>8}{'NDCG@' + str(k):>9}" for k in ks)
    title = (f"snsrec demo: {world['preset']} world (seed {world['seed']}), "
             f"{world['events']:,} events, test {world['test_events']:,}")
    lines = [title, head]
    for m in metrics["ctr"]:
        c, r = metrics["ctr"][m], metrics["retrieval"].get(m, {})
        share = c.get("auc_share")
        cells = [f"{m:<12}", f"{c['auc']:>8.4f}",
                 f"{share:>7.0%}" if share is not None and share == share else f"{'—':>7}",
                 f"{c['gauc']:>8.4f}", f"{c['logloss']:>9.4f}"]
        cells += [f"{r[f'hr@{k}']:>8.4f}{r[f'ndcg@{k}']:>9.4f}" if f"hr@{k}" in r
                  else f"{'—':>8}{'—':>9}" for k in ks]
        lines.append("".join(cells))
    if metrics.get("retrievers"):
        lines += ["", f"{'HR@100':<12}" + "".join(f"{c:>12}" for c in RETRIEVER_LABELS)]
        for name, r in metrics["retrievers"].items():
            lines.append(f"{name:<12}" + "".join(
                f"{v:>12.4f}" if v is not None else f"{'—':>12}"
                for v in _retriever_cells(r["test"], "hr@100")))
    lines.append(f"report: {out / 'report.md'}  ({seconds:.0f} s)")
    if "redrec" in metrics.get("retrievers", {}):
        lines.append(f"serve it: SNSREC_TOKEN=dev snsrec serve {out}   "
                     "(then http://127.0.0.1:8000/v1/feed?user_id=1&k=10)")
    return "\n".join(lines)


def markdown(record: dict[str, Any]) -> str:
    """demo.md: the demo's record as its CTR and retrieval tables (``snsrec report docs``
    renders the README's from it)."""
    w = record["world"]
    last = ("oracle", "constant")         # the references under the models

    def ordered(d: dict[str, Any]) -> dict[str, Any]:
        return dict(sorted(d.items(), key=lambda kv: (kv[0] in last, last.index(kv[0])
                                                      if kv[0] in last else 0)))
    record = {**record, "ctr": ordered(record["ctr"]),
              "retrievers": ordered(record["retrievers"])}
    return "\n".join([
        f"# snsrec demo — {w['preset']} world (seed {w['seed']})\n",
        f"{w['events']:,} impressions; the test day's {w['test_events']:,} scored.\n",
        "## Ranking the test day's impressions\n", _ctr_section(record["ctr"]),
        "## Retrieval\n", _retrievers_section(record["retrievers"])])


def position_summary(events: pl.LazyFrame, last: int = 9) -> dict[str, dict[str, float]]:
    """Logged CTR at position 0 and at position ``last`` (or the deepest shown) per scenario."""
    from snsrec.report.figures import ctr_by_position, scenario_order

    table = ctr_by_position(events)
    out: dict[str, dict[str, float]] = {}
    for scenario in scenario_order(table["scenario"].unique().to_list()):
        rows = table.filter(pl.col("scenario") == scenario)
        deep = rows.filter(pl.col("position") <= last).tail(1)
        out[scenario] = {"ctr_top": float(rows["ctr"][0]), "position": int(deep["position"][0]),
                         "ctr_deep": float(deep["ctr"][0])}
    return out


def _position_text(summary: dict[str, dict[str, float]]) -> str:
    from snsrec.report.markdown import markdown_table

    rows = [[s, v["ctr_top"], v["position"], v["ctr_deep"],
             v["ctr_top"] / v["ctr_deep"] if v["ctr_deep"] > 0 else None]
            for s, v in summary.items()]
    return ("Click-through rate of the logged events by the slot they were shown in "
            "(all days; the examination bias a ranker must see through).\n\n"
            + markdown_table(["scenario", "CTR at 0", "deep position", "CTR there",
                              "ratio"], rows) + "\n")


def _write_report(tmp: Path, world: dict, fmap_text: str, metrics: dict, cfg: DemoConfig) -> None:
    from snsrec.report.markdown import image, markdown_table, write_report

    train_rows = [[name, fit["best_epoch"], fit["epochs_run"], fit["valid"]["auc"],
                   fit["samples_per_s"], round(fit["train_time_s"], 1)]
                  for name, fit in metrics["train"].items()]
    sections = {
        "Data": (f"Synthetic `{world['preset']}` world, seed {world['seed']} (`{world['path']}`): "
                 f"{world['events']:,} events; train / valid / test = "
                 f"{world['train_events']:,} / {world['valid_events']:,} / "
                 f"{world['test_events']:,} (time split: valid from {world['valid_start']}, "
                 f"test from {world['test_start']}).\n\nFeatures (fitted on train): {fmap_text}."),
        "CTR on the test day": _ctr_section(metrics["ctr"]),
        "Next-click retrieval": _retrieval_section(metrics["retrieval"], cfg.retrieval.ks),
        "Cross-scenario retrieval": _retrievers_section(metrics.get("retrievers", {})),
        "Training": markdown_table(
            ["model", "best epoch", "epochs run", "valid AUC", "samples/s", "train time (s)"],
            train_rows),
        "Logged CTR by position": (_position_text(metrics["position"])
                                   + image("figures/ctr_by_position.png", "CTR by position")),
        "Timing": markdown_table(["stage", "seconds"],
                                 [[k, v] for k, v in metrics["timing"].items()], digits=1),
        "Files": ("`config.yaml` (resolved), `feature_map.json`, `metrics.json`, `log.jsonl` "
                  "(LR epochs), `models/<name>/` (one run directory per model, the "
                  "retrievers' as `snsrec train` writes them: `model.safetensors`, "
                  "`metrics.json`, ...), `figures/`."),
    }
    write_report(tmp, sections, title=f"snsrec demo — {world['preset']} world")


# -- the demo -------------------------------------------------------------

def run_demo(out: Path, *, preset: str = "small", seed: int = 7, world_dir: Path | None = None,
             config: Path | None = None, overrides: list[str] | None = None,
             force: bool = False) -> dict[str, Any]:
    """Run the whole demo into ``out``; return ``{"text": summary, "metrics": ...}``.

    ``seed`` seeds the world, the trainer and the retrieval sample. ``out`` is replaced at
    the end when snsrec wrote it (or with ``force``); otherwise refused before any work.
    """
    from snsrec.data.batches import TensorBatches
    from snsrec.data.features import FeatureMap, FeatureSpec, default_spec
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables
    from snsrec.models.registry import build_model, check_params
    from snsrec.report.figures import ctr_by_position_plot
    from snsrec.seed import seed_everything

    t_start, started = time.perf_counter(), time.time()
    cfg = load_demo_config(config, overrides)        # bad keys fail before any work
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": seed})})
    for name in MODELS:
        check_params(name, getattr(cfg, name))
    check_params(cfg.ranker.name, cfg.ranker.params)
    if cfg.ranker.name in MODELS:
        raise ConfigError(f"ranker.name '{cfg.ranker.name}' is already one of the demo's "
                          f"baselines ({', '.join(MODELS)}); pick a feature-interaction "
                          f"model, e.g. optinter")
    runs = {name: _retriever_run(name, spec, seed) for name, spec in cfg.retrievers.items()}
    where = {"force": force, "legacy": ["metrics.json"], "inputs": [world_dir] if world_dir else []}
    out = check_out(out, **where)
    timing: dict[str, float] = {}

    def lap(stage: str, t0: float) -> float:
        timing[stage] = time.perf_counter() - t0
        return time.perf_counter()

    t = time.perf_counter()
    root = Path(world_dir) if world_dir is not None else ensure_world(
        out.parent / "worlds" / f"{preset}-seed{seed}", preset, seed)
    tables = load_tables(root)
    t = lap("world", t)

    spec = default_spec(tables) if cfg.features is None else load_config(
        FeatureSpec, cfg.features, base=default_spec(tables).model_dump(mode="json"))
    splits = split_events(tables)
    fmap = FeatureMap.fit(tables, spec, train=splits["train"])
    arrays = {name: fmap.transform(tables, frame) for name, frame in splits.items()}
    t = lap("features", t)

    seed_everything(seed)
    models = {"popularity": build_model("popularity", fmap, **cfg.popularity).fit(arrays["train"]),
              "lr": build_model("lr", fmap, **cfg.lr)}
    trainer = Trainer(cfg.train)
    inputs = {k: v for k, v in arrays["train"].items() if not k.startswith("_")}
    batches = TensorBatches(inputs, cfg.train.batch_size, shuffle=True, seed=seed)
    fits = {"lr": trainer.fit(models["lr"], batches, arrays["valid"])}
    t = lap("train lr", t)
    ranker_cfg = cfg.ranker.train.model_copy(update={"seed": seed})
    ranker = cfg.ranker.name
    # fit_phases: a model that trains in phases (OptInter: search, then re-train) runs them all.
    models[ranker], fits[ranker] = Trainer(ranker_cfg).fit_phases(
        build_model(ranker, fmap, **cfg.ranker.params),
        lambda: TensorBatches(inputs, ranker_cfg.batch_size, shuffle=True, seed=seed),
        arrays["valid"])
    t = lap(f"train {ranker}", t)

    # The retrieval runs train into a staging directory beside ``out`` and move into it with
    # the rest of the demo's files (all or nothing).
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-retrievers-", dir=out.parent))
    try:
        retrievers = {}
        for name, run_cfg in runs.items():
            m = train_run(run_cfg.model_copy(update={"data": str(root)}), staging / name)
            retrievers[name] = {"test": m["test"], "params": m["params"],
                                "train_time_s": m["train_time_s"]}
            t = lap(f"train {name}", t)

        ctr = {name: trainer.evaluate(m, arrays["test"]) for name, m in models.items()}
        ctr.update(reference_ctr(root, arrays))
        for name in ctr:
            ctr[name]["auc_share"] = auc_share(ctr, name)
        if runs and has_truth(root):
            first = next(iter(runs.values())).model_copy(update={"data": str(root)})
            retrievers["oracle"] = {"test": oracle_record(first), "params": None,
                                    "train_time_s": None}
        test_start = tables.meta["split"]["test_start"]
        retrieval = next_click_eval({m: models[m] for m in MODELS}, fmap, tables,
                                    arrays["test"], test_start, cfg.retrieval, seed)
        t = lap("evaluate", t)

        world = {"preset": tables.meta.get("preset", preset),
                 "seed": tables.meta.get("seed", seed), "path": str(root),
                 "events": sum(len(a["click"]) for a in arrays.values()),
                 **{f"{s}_events": len(a["click"]) for s, a in arrays.items()},
                 "valid_start": tables.meta["split"]["valid_start"], "test_start": test_start}
        train_info = {name: {k: v for k, v in fit.items() if k != "history"}
                      for name, fit in fits.items()}
        logged = tables.events.select("scenario", "position", "click")
        metrics: dict[str, Any] = {"world": world, "ctr": ctr, "retrieval": retrieval,
                                   "retrievers": retrievers, "train": train_info,
                                   "position": position_summary(logged), "timing": timing}
        with atomic_dir(out, "demo", **where) as tmp:
            write_text(tmp / "config.yaml", dump_config(cfg))
            fmap.save(tmp / "feature_map.json")
            write_jsonl(tmp / "log.jsonl", fits["lr"]["history"])
            ctr_by_position_plot(logged, tmp / "figures" / "ctr_by_position.png")
            for name, model in models.items():
                save_run(tmp / "models" / name, model, fmap, cfg,
                         {"test": ctr[name], "retrieval": retrieval.get(name, {})},
                         history=fits[name]["history"] if name in fits else None)
            for name in runs:
                shutil.move(staging / name, tmp / "models" / name)
            timing["report"] = time.perf_counter() - t
            timing["total"] = time.perf_counter() - t_start
            _write_report(tmp, world, fmap.describe(), metrics, cfg)
            write_json(tmp / "metrics.json", jsonable(metrics))
            # The demo's record (committed as bench/demo/demo.json: `snsrec demo --out
            # bench/demo`), which the README's table is rendered from.
            write_record(tmp, "demo", {"benchmark": "demo", **metrics}, markdown,
                         default_command=shlex.join(["snsrec", "demo", "--preset", preset,
                                                     "--seed", str(seed), "--out", str(out)]),
                         started=started, seeds=[seed])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"text": _summary_text(out, world, metrics, timing["total"]), "metrics": metrics}


def _retriever_run(name: str, spec: RetrieverConfig, seed: int) -> RunConfig:
    """The RunConfig of one demo retriever; unknown models or parameters fail here."""
    from snsrec.train.pipeline import check_run_config
    from snsrec.train.retrieval import is_retrieval_model

    cfg = RunConfig(name=name, model=spec.model, retrieval=spec.retrieval,
                    train=spec.train.model_copy(update={"seed": seed}))
    if not is_retrieval_model(cfg.model.name):
        raise ConfigError(f"retrievers.{name}: '{cfg.model.name}' is not a retrieval model; "
                          "use redrec, dssm, sasrec, itemcf or toppop")
    check_run_config(cfg)
    return cfg
