"""`snsrec train` / `snsrec evaluate`: a run config → data → features → model → run directory.

One YAML names everything a run needs (see ``configs/train/``)::

    name: lr_tiny                # the run goes to RUNS/<name>/
    data: world:tiny             # resolve_dataset spec (world:PRESET[:SEED], recbole:ml-1m, ...)
    features: null               # a FeatureSpec YAML; null = the data's default features
    nonfinite: error             # NaN/inf in a numeric feature column: error | fill
    model: {name: lr, params: {}}
    train: {epochs: 5, lr: 0.01, ...}   # TrainConfig

``train_run`` resolves the data, splits it (the split recorded with the data),
fits the FeatureMap on train only, transforms every split, builds the model by
registry name, trains it with the shared ``Trainer`` (checkpointing into
``RUN/checkpoint/``), evaluates the restored best model on valid and test and
writes the run directory atomically, ``metrics.json`` last: a directory
without ``metrics.json`` is an interrupted run that ``--resume`` continues.

Relative paths (``cache``, ``features``) are relative to the working directory.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field as PField
from pydantic import field_validator

from snsrec.config import PlainName, StrictModel, load_config, validate_config
from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.io import check_out
from snsrec.progress import echo
from snsrec.runs import RUN_LEGACY, check_resume, is_complete, save_run, start_fresh
from snsrec.train import distributed
from snsrec.train.retrieval import RetrievalDataConfig, is_retrieval_model
from snsrec.train.trainer import RUNTIME_KEYS, TrainConfig, Trainer, fit_summary

SPLITS = ("train", "valid", "test")
METRIC_COLUMNS = ("auc", "gauc", "logloss", "calibration")
CONVERSION_COLUMNS = ("cvr_auc", "cvr_logloss", "ctcvr_auc")   # a click → conversion model's


class ModelConfig(StrictModel):
    name: str
    params: dict[str, Any] = PField(default_factory=dict)


class RunConfig(StrictModel):
    name: PlainName                      # the run goes to OUT/<name>
    data: str = "world:small"            # resolve_dataset spec
    cache: Path = Path("data")           # where named data sets are built
    features: Path | None = None         # feature YAML (FeatureSpec); None = default_spec
    nonfinite: Literal["error", "fill"] = "error"   # NaN/inf in numeric feature columns
    # Train and evaluate on these scenarios' impressions only (e.g. [ads] for click →
    # conversion); None = every impression.
    scenarios: list[str] | None = None
    # At most this many rows of a split (a seeded random sample, drawn before the features are
    # built; the FeatureMap is still fitted on the whole training split), e.g. {train: 200000}:
    # models whose rows are costly (long behaviour sequences). Unnamed splits are whole.
    max_rows: dict[Literal["train", "valid", "test"], int] = PField(default_factory=dict)
    model: ModelConfig
    train: TrainConfig = PField(default_factory=TrainConfig)
    # Retrieval models (redrec): behaviour sequences, windows and cut-offs.
    retrieval: RetrievalDataConfig = PField(default_factory=RetrievalDataConfig)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, v: list[str] | None) -> list[str] | None:
        from snsrec.data.schema import SCENARIOS

        bad = [s for s in v or [] if s not in SCENARIOS]
        if bad or v == []:
            raise ValueError(f"scenarios {bad or v}: use some of {', '.join(SCENARIOS)} "
                             "(or null for all)")
        return v

    @field_validator("max_rows")
    @classmethod
    def _positive_rows(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if n < 1}
        if bad:
            raise ValueError(f"{bad}: give a positive number of rows per split")
        return v


def load_run_config(path: Path | None, overrides: list[str] | None = None,
                    base: dict | None = None) -> RunConfig:
    """The run YAML at ``path`` over ``base`` with ``--set`` overrides, validated."""
    return load_config(RunConfig, path, overrides, base=base)


def check_run_config(cfg: RunConfig) -> None:
    """Fail on an unknown model or model parameter before any data work."""
    from snsrec.models.registry import check_params

    check_params(cfg.model.name, cfg.model.params)


# -- data -----------------------------------------------------------------

@dataclass
class Prepared:
    root: Path
    tables: Any
    feature_map: Any
    arrays: dict[str, dict[str, np.ndarray]]


# Transformed splits of the last (data, features) pair: a benchmark trains many
# models and seeds on the same data in one process, and fitting + transforming
# is deterministic, so the arrays are shared (read-only) instead of rebuilt.
_CACHE: dict[tuple, Prepared] = {}


def feature_spec(cfg: RunConfig, tables: Any) -> Any:
    from snsrec.data.features import FeatureSpec, default_spec

    base = default_spec(tables)
    if cfg.features is None:
        return base
    return load_config(FeatureSpec, cfg.features, base=base.model_dump(mode="json"))


def check_labels(tables: Any, labels: list[str]) -> None:
    """DataError when a label column holds anything but 0/1 (nulls count as 0)."""
    names = tables.events.collect_schema().names()
    for lab in labels:
        if lab not in names:
            continue
        x = pl.col(lab).cast(pl.Float64, strict=False)
        bad = x.is_not_null() & (x != 0) & (x != 1) | (x.is_null() & pl.col(lab).is_not_null())
        n, example = tables.events.select(bad.sum().alias("n"),
                                          pl.col(lab).filter(bad).first().alias("x")) \
            .collect().row(0)
        if n:
            raise DataError(f"{tables.path('events')}: label column '{lab}' has {n:,} value(s) "
                            f"outside {{0, 1}} (e.g. {example!r}); relabel it as 0/1 "
                            f"(e.g. click = rating >= 4)")
    if {"click", "convert"} <= set(labels) & set(names):
        # A conversion follows a click: one without it is a logging error, not a label.
        bad = (pl.col("convert").fill_null(0) > 0) & (pl.col("click").fill_null(0) <= 0)
        key = "event_id" if "event_id" in names else "row"
        n, first = (tables.events.with_row_index("row")
                    .select(bad.sum(), pl.col(key).filter(bad).first()).collect().row(0))
        if n:
            raise DataError(f"{tables.path('events')}: {n:,} row(s) have convert = 1 without a "
                            f"click (e.g. {key} {first}); a conversion needs its click: fix "
                            "the convert column")


def check_numeric(tables: Any, spec: Any, policy: str) -> None:
    """NaN/inf in a numeric feature column: a DataError, or (``fill``) a note.

    ``fill`` is the FeatureMap's own rule for missing numbers: the training mean
    for ``normalize`` features, the out-of-vocabulary bucket for ``bucketize``.
    """
    for f in spec.numeric:
        table, _, col = f.column.partition(".")
        lf = tables.get(table) if col else None     # derived expressions are never NaN
        if lf is None or col not in lf.collect_schema().names():
            continue
        if not lf.collect_schema()[col].is_float():
            continue
        n = lf.select((~pl.col(col).is_finite() & pl.col(col).is_not_null()).sum()) \
            .collect().item()
        if not n:
            continue
        if policy == "error":
            raise DataError(f"{tables.path(table)}: numeric feature '{f.name}' (column {col}) "
                            f"has {n:,} NaN/inf value(s); clean the column or set "
                            f"`nonfinite: fill` in the run config (fills the training mean)")
        echo(f"{tables.path(table)}: {n:,} NaN/inf value(s) in '{col}' filled "
             f"(nonfinite: fill)")


def check_splits(root: Path, splits: dict[str, pl.LazyFrame]) -> None:
    for name in SPLITS:
        if splits[name].select(pl.len()).collect().item() == 0:
            raise DataError(f"{root}: the {name} split is empty; check the split recorded in "
                            f"world.json / dataset.json (valid_start, test_start) or the data")


def _cache_key(root: Path, cfg: RunConfig) -> tuple:
    events = root / "events.parquet"
    stat = events.stat() if events.is_file() else None
    features = Path(cfg.features).read_text(encoding="utf-8") if cfg.features else None
    return (str(root.resolve()), stat and (stat.st_mtime_ns, stat.st_size), features,
            cfg.nonfinite, tuple(cfg.scenarios or ()), tuple(sorted(cfg.max_rows.items())))


def run_splits(tables: Any, cfg: RunConfig) -> dict[str, pl.LazyFrame]:
    """The data's time split, restricted to ``cfg.scenarios`` when it names some."""
    from snsrec.data.splits import split_events

    splits = split_events(tables)
    if cfg.scenarios:
        splits = {k: v.filter(pl.col("scenario").is_in(cfg.scenarios)) for k, v in splits.items()}
    return splits


def sample_rows(frame: pl.LazyFrame, n: int | None, seed: int = 0) -> pl.LazyFrame:
    """At most ``n`` rows of ``frame``, a seeded random sample in the original order."""
    if n is None:
        return frame
    total = frame.select(pl.len()).collect().item()
    if total <= n:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    return (frame.with_row_index("_sample_row").filter(pl.col("_sample_row").is_in(keep))
            .drop("_sample_row"))


def prepare_data(cfg: RunConfig) -> Prepared:
    """Resolved data, the FeatureMap fitted on train and the arrays of every split."""
    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.features import FeatureMap
    from snsrec.data.tables import load_tables

    root = distributed.main_first(lambda: resolve_dataset(cfg.data, cfg.cache))
    key = _cache_key(root, cfg)
    if key in _CACHE:
        return _CACHE[key]
    tables = load_tables(root)
    spec = feature_spec(cfg, tables)
    check_labels(tables, spec.labels)
    check_numeric(tables, spec, cfg.nonfinite)
    splits = run_splits(tables, cfg)
    check_splits(root, splits)
    fmap = FeatureMap.fit(tables, spec, train=splits["train"])
    arrays = {name: fmap.transform(tables, sample_rows(frame, cfg.max_rows.get(name)))
              for name, frame in splits.items()}
    _CACHE.clear()
    _CACHE[key] = Prepared(root, tables, fmap, arrays)
    return _CACHE[key]


def feature_map_digest(fmap: Any) -> str:
    """sha256 of the saved feature map: vocabularies, statistics, spec (and vectors)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feature_map.json"
        fmap.save(path)
        h = hashlib.sha256(path.read_bytes())
        for vec in sorted(Path(tmp).glob("*.npz")):
            h.update(vec.read_bytes())
        return h.hexdigest()


def fingerprint(cfg: RunConfig, fmap: Any) -> dict[str, Any]:
    """What a checkpoint must match to be resumed by this run."""
    train = cfg.train.model_dump(mode="json", exclude=set(RUNTIME_KEYS))
    return {"model": cfg.model.model_dump(mode="json"), "data": cfg.data,
            "feature_map": feature_map_digest(fmap), "train": train}


def model_inputs(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if not k.startswith("_")}


# -- training -------------------------------------------------------------

def train_run(cfg: RunConfig, run_dir: Path, *, resume: bool = False,
              force: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``; return its metrics (``valid``, ``test``, ``params``, ...).

    An existing ``run_dir`` that snsrec did not write is refused before any work (on every
    rank of a distributed launch alike), unless ``force``."""
    from snsrec.data.batches import TensorBatches
    from snsrec.models.registry import build_model
    from snsrec.seed import seed_everything

    check_run_config(cfg)
    run_dir = check_out(run_dir, force=force, legacy=RUN_LEGACY)
    if is_retrieval_model(cfg.model.name):
        from snsrec.train.retrieval import train_retrieval_run

        return train_retrieval_run(cfg, run_dir, resume=resume, force=force)
    if resume:
        check_resume(run_dir)
    created = distributed.setup(cfg.train.device)
    try:
        tcfg = cfg.train.model_copy(update={"device": distributed.local_device(cfg.train.device)})
        data = prepare_data(cfg)
        seed_everything(tcfg.seed)
        model = build_model(cfg.model.name, data.feature_map, **cfg.model.params)
        if not resume and distributed.is_main():
            start_fresh(run_dir, force)
        trainer = Trainer(tcfg)
        model, fit = trainer.fit_phases(
            model, lambda: TensorBatches(model_inputs(data.arrays["train"]), tcfg.batch_size,
                                         shuffle=True, seed=tcfg.seed),
            data.arrays["valid"], checkpoint_dir=run_dir / "checkpoint", resume=resume,
            fingerprint=fingerprint(cfg, data.feature_map))
        history = fit["history"]
        test = trainer.evaluate(model, data.arrays["test"])
        metrics = {
            "name": cfg.name, "model": cfg.model.name, "data": cfg.data,
            "params": int(sum(p.numel() for p in model.parameters())),
            "valid": fit["valid"], "test": test,
            "rows": {s: len(a["click"]) if "click" in a else 0 for s, a in data.arrays.items()},
            **fit_summary(fit),
            **({"phases": fit["phases"]} if "phases" in fit else {}),
            "world_size": distributed.info().world_size, "resumed": resume,
        }
        if distributed.is_main():
            save_run(run_dir, model, data.feature_map, cfg, metrics, history=history,
                     extra=lambda tmp: write_run_report(tmp, cfg, data, metrics, history),
                     force=force)
        distributed.barrier()
        return metrics
    finally:
        if created:
            distributed.cleanup()


def train_from_config(config: Path, *, overrides: list[str] | None = None,
                      runs_root: Path = Path("runs"), resume: bool = False,
                      force: bool = False) -> dict[str, Any]:
    """`snsrec train CONFIG`: the run goes to ``runs_root/<name>``."""
    cfg = load_run_config(config, overrides)
    run_dir = Path(runs_root) / cfg.name
    metrics = train_run(cfg, run_dir, resume=resume, force=force)
    text = metrics.pop("text", None) or \
        (summary_text(cfg, metrics, run_dir) if distributed.launch_rank() == 0 else "")
    return {"text": text, "run_dir": run_dir, "metrics": metrics}


# -- evaluation -----------------------------------------------------------

def evaluate_run(run_dir: Path, split: str = "test") -> dict[str, Any]:
    """`snsrec evaluate RUN_DIR`: the saved model on a split of the data its config names."""
    from snsrec.data.tables import load_tables
    from snsrec.runs import load_run

    run_dir = Path(run_dir)
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: use one of {', '.join(SPLITS)}")
    if not is_complete(run_dir):
        raise ModelError(f"{run_dir}: not a complete run (no metrics.json); finish it with "
                         f"`snsrec train CONFIG --resume` or train it")
    run = load_run(run_dir)
    cfg = validate_config(RunConfig, run.config, str(run_dir / "config.yaml"))
    from snsrec.data.datasets import resolve_dataset

    if is_retrieval_model(cfg.model.name):
        from snsrec.train.retrieval import evaluate_retrieval_run

        return evaluate_retrieval_run(run, cfg, run_dir, split)

    tables = load_tables(resolve_dataset(cfg.data, cfg.cache))
    frame = run_splits(tables, cfg)[split]
    if frame.select(pl.len()).collect().item() == 0:
        raise DataError(f"{tables.root}: the {split} split is empty; nothing to evaluate")
    arrays = run.feature_map.transform(tables, frame)
    metrics = Trainer(cfg.train.model_copy(update={"device": "cpu"})).evaluate(run.model, arrays)
    text = f"{run_dir} ({cfg.model.name} on {cfg.data}), {split} split\n" + \
        _table({split: metrics})
    return {"text": text, "metrics": metrics}


# -- text and report ------------------------------------------------------

def _num(v: Any, width: int) -> str:
    ok = isinstance(v, (int, float)) and math.isfinite(v)
    return f"{v:>{width}.4f}" if ok else f"{'-':>{width}}"


def metric_columns(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The table columns of a run's metrics: CTR ones, and conversion ones where present."""
    return METRIC_COLUMNS + (CONVERSION_COLUMNS if "cvr_auc" in metrics else ())


def _table(rows: dict[str, dict[str, Any]]) -> str:
    columns = metric_columns(next(iter(rows.values())))
    head = f"{'split':<8}" + "".join(f"{c:>13}" for c in columns)
    lines = [head] + [f"{name:<8}" + "".join(_num(m.get(c), 13) for c in columns)
                      for name, m in rows.items()]
    return "\n".join(lines)


def summary_text(cfg: RunConfig, metrics: dict[str, Any], run_dir: Path) -> str:
    head = (f"run {cfg.name}: {cfg.model.name} ({metrics['params']:,} parameters) on {cfg.data}, "
            f"best epoch {metrics['best_epoch']}/{metrics['epochs_run']}")
    tail = (f"trained in {metrics['train_time_s']:.1f} s ({metrics['samples_per_s']:,.0f} "
            f"samples/s) → {run_dir}")
    return "\n".join([head, _table({"valid": metrics["valid"], "test": metrics["test"]}), tail])


def write_run_report(tmp: Path, cfg: RunConfig, data: Prepared, metrics: dict[str, Any],
                     history: list[dict[str, Any]]) -> None:
    from snsrec.data.schema import SCENARIOS
    from snsrec.report.markdown import markdown_table, metrics_table, write_report

    by = metrics["test"].get("by_scenario", {})
    scen_rows = [[s, by[s]["n"], by[s]["ctr"], by[s]["auc"], by[s]["logloss"]]
                 for s in SCENARIOS if by.get(s)]
    hist = [[h["epoch"], h["train_loss"], h.get("valid_auc"), h.get("valid_logloss"),
             h.get("lr"), h["samples_per_s"]] for h in history]
    rows = metrics["rows"]
    sections = {
        "Run": (f"Model `{cfg.model.name}` ({metrics['params']:,} parameters, params "
                f"`{cfg.model.params}`) on `{cfg.data}` (`{data.root}`): train / valid / test = "
                f"{rows.get('train', 0):,} / {rows.get('valid', 0):,} / {rows.get('test', 0):,} "
                f"rows. Features (fitted on train): {data.feature_map.describe()}."),
        "Metrics": metrics_table({"valid (best epoch)": metrics["valid"],
                                  "test": metrics["test"]}, metric_columns(metrics["test"]),
                                 row_label="split",
                                 headers={"auc": "AUC", "gauc": "gAUC"}),
        "Test by scenario": markdown_table(["scenario", "rows", "CTR", "AUC", "logloss"],
                                           scen_rows) if scen_rows else "No scenario column.",
        "Training": (f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run "
                     f"(early stopping on valid {cfg.train.monitor}), "
                     f"{metrics['train_time_s']:.1f} s, {metrics['samples_per_s']:,.0f} "
                     f"samples/s, {metrics['world_size']} process(es).\n\n"
                     + markdown_table(["epoch", "train loss", "valid AUC", "valid logloss", "lr",
                                       "samples/s"], hist)),
        "Files": "`config.yaml` (resolved), `feature_map.json`, `model.safetensors`, "
                 "`log.jsonl` (epochs), `metrics.json` (written last: the run is complete).",
    }
    write_report(tmp, sections, title=f"snsrec run {cfg.name}")
