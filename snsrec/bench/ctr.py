"""The open CTR benchmark: ``snsrec bench ctr``.

For every data set × model × seed the run goes through the one trainer
(``snsrec.train.pipeline.train_run``) into ``OUT/runs/<data>/<model>/seed<k>/``;
the test AUC / logloss, parameter count and train time of the seeds are then
summarised as mean ± sample standard deviation (ddof = 1; 0 for one seed) in
``OUT/leaderboard.json`` and ``OUT/leaderboard.md``, one table per data set
sorted by mean AUC.

Configs (every hyper-parameter recorded), in layers under ``configs/bench/ctr/``:
``base.yaml`` (the training settings every model shares), ``models/<model>.yaml``
(the model's parameters; a model without one runs with its own defaults), then the
model's entry in ``data/<data>.yaml`` where the data set has one (what differs
there: sequence features, a setting chosen on that data's validation split), over
the data set's feature YAML (``FEATURES``; for a BARS folder every column but the
label and the split). ``<data>`` is the data set's slug (``world:small`` →
``world_small``, ``recbole:ml-1m`` → ``ml-1m``, ``bars:/x/Frappe_x1`` → ``frappe_x1``).

``--set`` overrides apply to every run; ``train.seed`` is then set to the seed.
A finished run whose resolved config is unchanged is reused (``bench.json`` in
its run directory), so an interrupted benchmark continues where it stopped.

Under the models each table carries reference rows (``references`` in the JSON),
computed afresh at leaderboard time on the same test split (as the first model's
config cuts it; every shipped config takes the whole split) with the models' own
metric function, so they need no run and appear in a board rebuilt from reused
runs: on a world the **oracle** (the world's own click probability of each test
impression, ``snsrec.eval.oracle``) and **popularity** (the note's smoothed
training CTR); everywhere the **constant** answer (the training CTR). On a world
each row also gets its share of the oracle (``auc_share``: (AUC − 0.5) / (oracle
− 0.5); ``logloss_share``: (constant − logloss) / (constant − oracle); the same
AUC share per scenario); without truth (MovieLens, BARS) the shares are null.

On MovieLens-1M the best model (by mean AUC) is also run through the peer
libraries (``snsrec.bench.peers``) on the same arrays with the same embedding
size, MLP, batch size, learning rate and epochs, and reported beside it.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from snsrec import __version__
from snsrec.config import deep_merge
from snsrec.data.datasets import DEFAULT_CACHE, resolve_dataset
from snsrec.data.schema import SCENARIOS
from snsrec.errors import ConfigError, DataError
from snsrec.eval.oracle import (
    constant_scores,
    has_truth,
    impression_truth,
    load_truth,
    oracle_share,
    popularity_scores,
)
from snsrec.io import check_out, out_dir, read_json, write_json, write_text
from snsrec.progress import echo
from snsrec.records import write_record

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = Path("configs/bench/ctr")
PEER_DATA = ("ml-1m",)         # data sets whose best model is also run through the peers
# Feature YAML per data-set family (files under CONFIG_DIR/features/).
FEATURES = {"world": "world.yaml", "ml-1m": "movielens.yaml"}


# -- data sets and configs ---------------------------------------------------

def data_slug(data: str) -> str:
    """A file-name-safe name for a data spec: ``world:small`` → ``world_small``."""
    kind, _, rest = data.partition(":")
    if kind == "recbole" and rest:
        name = rest
    elif kind == "bars" and rest:
        name = Path(rest).name
    elif kind == "world" and rest:
        name = "world_" + rest.replace(":", "_")
    else:
        name = Path(data).name
    return re.sub(r"[^a-z0-9_.-]+", "_", name.lower()).strip("_") or "data"


def shipped(path: str | Path) -> Path:
    """A shipped file or folder (a relative path such as ``configs/...``) in the working
    directory, else in the source checkout: the benchmarks run from anywhere."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def config_dir() -> Path:
    """``configs/bench/ctr`` of the working directory, else of the source checkout."""
    return shipped(CONFIG_DIR)


def variant_config(bench: str, folder: Path, variant: str, data: str, seed: int,
                   overrides: Sequence[str] | None, base: dict[str, Any], *, tag: str = "",
                   check: Callable[[Any, Path], None] | None = None) -> Any:
    """The RunConfig of one run of a benchmark variant: ``folder/<variant>.yaml`` (shipped)
    over ``base`` (what the bench sets: data, cache, features, ...) with ``overrides``, the
    seed and the data; named ``<variant>[-<tag>]-<data>-seed<k>``. ``check(cfg, path)`` may
    refuse it before its model parameters are checked."""
    from snsrec.train.pipeline import check_run_config, load_run_config

    folder = shipped(folder)
    path = folder / f"{variant}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "features")
        raise ConfigError(f"bench {bench}: no config {path} for variant '{variant}'; "
                          f"variants: {', '.join(have)}")
    cfg = load_run_config(path, [*(overrides or []), f"train.seed={seed}", f"data={data}"],
                          {"name": variant, "data": data, **base})
    if check is not None:
        check(cfg, path)
    check_run_config(cfg)
    name = "-".join(x for x in (variant, tag, data_slug(data), f"seed{seed}") if x)
    return cfg.model_copy(update={"name": name})


def features_for(data: str, root: Path, out: Path) -> Path | None:
    """The feature YAML of a data set; for a BARS folder one is derived and written to ``out``."""
    slug = data_slug(data)
    family = "world" if data.startswith("world:") else slug
    if family in FEATURES:
        return config_dir() / "features" / FEATURES[family]
    if data.startswith("bars:"):
        return write_bars_features(root, out / "features" / f"{slug}.yaml")
    return None  # a data directory: the pipeline's default features


def bars_spec(root: Path) -> dict[str, Any]:
    """Exactly the BARS feature columns (``dataset.json`` fields.features) as the FeatureMap spec.

    The types are ``default_spec``'s (ints / strings → categorical, floats →
    numeric); the label column, the split and the derived ``user_id`` / ``note_id``
    / ``*_token`` copies of the user and item columns are not features.
    """
    from snsrec.data.features import default_spec
    from snsrec.data.tables import load_tables

    tables = load_tables(root)
    wanted = {f"events.{c}" for c in tables.meta.get("fields", {}).get("features", [])}
    if not wanted:
        raise DataError(f"{root / 'dataset.json'}: no fields.features list; re-import the BARS "
                        f"folder with `snsrec data import bars PATH`")
    spec = default_spec(tables).model_dump(mode="json")
    groups = {g: [f for f in spec[g] if f["column"] in wanted]
              for g in ("categorical", "numeric", "multi")}
    return {**spec, **groups, "sequences": [], "text": []}


def write_bars_features(root: Path, path: Path) -> Path:
    head = f"# Derived by snsrec bench ctr from {root}: every column but the label and split.\n"
    write_text(path, head + yaml.safe_dump(bars_spec(root), sort_keys=False))
    return path


def config_layers(data: str, model: str) -> tuple[dict[str, Any], str]:
    """The shipped layers of ``model``'s config on ``data`` merged (base, model, the data
    set's entry for the model) and the files they came from, as the leaderboard names them."""
    folder = config_dir()
    merged = _yaml(folder / "base.yaml")
    used = ["base.yaml"]
    if (folder / "models" / f"{model}.yaml").is_file():
        merged = deep_merge(merged, _yaml(folder / "models" / f"{model}.yaml"))
        used.append(f"models/{model}.yaml")
    overlay = folder / "data" / f"{data_slug(data)}.yaml"
    entry = (_yaml(overlay).get(model) if overlay.is_file() else None) or {}
    if entry:
        merged = deep_merge(merged, entry)
        used.append(f"data/{overlay.name}[{model}]")
    return merged, " + ".join(used)


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a mapping; a bench config is YAML keys and values")
    return data


PARAM_PREFIX = "model.params."


def overrides_for(model: str, overrides: Sequence[str] | None) -> list[str]:
    """The ``--set`` overrides that apply to ``model``.

    ``model.params.KEY=...`` goes only to models that have that parameter (``--set
    model.params.embedding_dim=8`` must not break LR, which has none).
    """
    from snsrec.models.registry import get_model_class, model_params

    valid = set(model_params(get_model_class(model)))
    return [s for s in overrides or [] if not s.startswith(PARAM_PREFIX)
            or s[len(PARAM_PREFIX):].partition("=")[0].partition(".")[0] in valid]


def check_param_overrides(models: Sequence[str], overrides: Sequence[str] | None) -> None:
    """ConfigError for a ``--set model.params.KEY`` that none of the models accepts (a typo)."""
    for s in overrides or []:
        if s.startswith(PARAM_PREFIX) and not any(s in overrides_for(m, [s]) for m in models):
            key = s.partition("=")[0]
            raise ConfigError(f"--set {s}: none of the models ({', '.join(models)}) has the "
                              f"parameter '{key[len(PARAM_PREFIX):]}'; check the key")


def resolve_config(data: str, model: str, seed: int, features: Path | None,
                   overrides: Sequence[str] | None = None,
                   cache: Path = DEFAULT_CACHE) -> tuple[Any, str]:
    """The RunConfig of one benchmark run and the config files it came from
    (``config_layers``)."""
    from snsrec.train.pipeline import check_run_config, load_run_config

    layers, used = config_layers(data, model)
    base = deep_merge({"name": f"{model}-{data_slug(data)}", "data": data, "cache": str(cache),
                       "features": None if features is None else str(features),
                       "model": {"name": model, "params": {}}}, layers)
    sets = [*overrides_for(model, overrides), f"train.seed={seed}"]
    cfg = load_run_config(None, sets, base)
    if cfg.model.name != model or cfg.data != data:
        raise ConfigError(f"{config_dir()}/{used}: runs model '{cfg.model.name}' on "
                          f"'{cfg.data}' but the bench asked for '{model}' on '{data}'; fix "
                          "its model.name / data")
    check_run_config(cfg)   # unknown model parameters fail before any training
    update: dict[str, Any] = {"name": f"{model}-{data_slug(data)}-seed{seed}"}
    if cfg.features is not None and shipped(cfg.features).is_file():
        # The shipped YAMLs name features relative to the checkout; run from anywhere.
        update["features"] = shipped(cfg.features)
    return cfg.model_copy(update=update), used


# -- one run -----------------------------------------------------------------

def _dump(cfg: Any) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def _same_config(cfg: Any, old: Any, resolved: dict[str, Any]) -> bool:
    """Whether a finished run's recorded config is ``cfg``'s.

    The old record is re-read through ``cfg``'s config class, so a setting
    added to snsrec after that run (absent from its record) counts as its
    default — the behaviour the run had. Settings of how fast a run goes
    (``RUNTIME_KEYS``: threads, device, ...) do not count.
    """
    from pydantic import ValidationError

    from snsrec.train.trainer import RUNTIME_KEYS

    def what(c: dict[str, Any]) -> dict[str, Any]:
        train = {k: v for k, v in c.get("train", {}).items() if k not in RUNTIME_KEYS}
        return {**c, "train": train}

    if old == resolved:
        return True
    try:
        return what(_dump(type(cfg).model_validate(old))) == what(resolved)
    except ValidationError:
        return False


def ctr_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the CTR leaderboard keeps of a run's metrics.json."""
    test = metrics["test"]
    return {"auc": float(test["auc"]), "logloss": float(test["logloss"]),
            "gauc": float(test.get("gauc", math.nan)),
            "by_scenario": {s: {"auc": float(m["auc"])}
                            for s, m in test.get("by_scenario", {}).items()},
            "params": int(metrics["params"]), "train_time_s": float(metrics["train_time_s"]),
            "best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run")}


# The code a training run's numbers depend on: the training path and every model file.
TRAIN_CODE = ("snsrec.train.pipeline", "snsrec.models")


def run_one(cfg: Any, run_dir: Path,
            record: Callable[[dict[str, Any]], dict[str, Any]] = ctr_record,
            train: Callable[..., dict[str, Any]] | None = None, *,
            code: Sequence[str] = (), rerun: bool = False) -> dict[str, Any]:
    """Train (or reuse) one run; the benchmark's ``record`` of its metrics.

    ``train(cfg, run_dir, resume=...)`` is ``snsrec train``'s by default (a peer library's
    run passes its own; it resumes only if it leaves a checkpoint in ``run_dir``).
    A finished run is reused while its config and the fingerprint of its code are
    unchanged (``snsrec.records.code_fingerprint`` over the training path, ``train``'s
    module and the modules in ``code`` — those of a ``record`` that measures the model,
    not just reads its metrics); ``rerun`` trains it again regardless.
    """
    from snsrec.records import code_fingerprint, provenance
    from snsrec.runs import RUN_LEGACY
    from snsrec.train.pipeline import train_run
    from snsrec.train.trainer import checkpoint_dir_of

    roots = (*TRAIN_CODE, *([train.__module__] if train is not None else []), *code)
    fingerprint = code_fingerprint(tuple(dict.fromkeys(roots)))
    stamp = run_dir / "bench.json"
    resolved = _dump(cfg)
    if stamp.is_file() and not rerun:
        old = read_json(stamp)
        same_code = (old.get("code") or {}).get("sha256") == fingerprint["sha256"]
        if _same_config(cfg, old.get("config"), resolved) and same_code \
                and (run_dir / "metrics.json").is_file():
            echo(f"bench: reusing {run_dir}")
            return old["record"]
        if not same_code:
            echo(f"bench: {run_dir} was made by other code; training it again")
    # The run's folder inside the benchmark's: new, marked, or one an earlier snsrec wrote.
    out_dir(run_dir, "bench (run)", legacy=[*RUN_LEGACY, "bench.json", "bench.pending.json"])
    # A run interrupted earlier (the benchmark killed) resumes from its last checkpoint,
    # if the code is the same.
    pending = run_dir / "bench.pending.json"
    began = pending_state(pending)
    resume = not rerun and began is not None and _same_config(cfg, began.get("config"), resolved) \
        and began.get("code") == fingerprint["sha256"] \
        and any(checkpoint_dir_of(p) is not None for p in run_dir.glob("checkpoint*"))
    if resume:
        echo(f"bench: resuming {run_dir} from its checkpoint")
    else:
        began = {"config": resolved, "code": fingerprint["sha256"], "started": time.time()}
        write_json(pending, began)
    metrics = (train or train_run)(cfg, run_dir, resume=resume)   # replaces run_dir
    pending.unlink(missing_ok=True)
    rec = record(metrics)
    seed = getattr(getattr(cfg, "train", None), "seed", None)
    write_json(stamp, {"config": resolved, "record": rec, "code": fingerprint,
                       "provenance": provenance(f"snsrec train ({cfg.name})",
                                                started=began["started"],
                                                seeds=None if seed is None else [seed])})
    return rec


def pending_state(path: Path) -> dict[str, Any] | None:
    """What a started, unfinished run recorded at its start (None: nothing started)."""
    if not path.is_file():
        return None
    began = read_json(path)
    # Before the code fingerprint the file held the resolved config alone.
    return began if "config" in began and "started" in began else None


# -- aggregation -------------------------------------------------------------

def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model (mean ± std over its seeds), sorted by mean AUC, best first."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == model]
        auc_m, auc_s = mean_std([r["auc"] for r in mine])
        ll_m, ll_s = mean_std([r["logloss"] for r in mine])
        # Records written before gAUC / per-scenario AUC were kept have none: nan, shown "–".
        scens = dict.fromkeys(s for r in mine for s in r.get("by_scenario", {}))
        by = {s: dict(zip(("auc_mean", "auc_std"), mean_std(
            [r.get("by_scenario", {}).get(s, {}).get("auc", math.nan) for r in mine]),
            strict=True)) for s in scens}
        rows.append({"model": model, "auc_mean": auc_m, "auc_std": auc_s,
                     "logloss_mean": ll_m, "logloss_std": ll_s,
                     "gauc_mean": mean_std([r.get("gauc", math.nan) for r in mine])[0],
                     "by_scenario": by, "params": mine[0]["params"],
                     "train_time_s": mean_std([r["train_time_s"] for r in mine])[0],
                     "seeds": len(mine), "config": mine[0]["config"]})
    # Ties broken by name so the order never depends on the order models were given in.
    return sorted(rows, key=lambda r: (-r["auc_mean"], r["model"]))


def pm(mean: float, std: float, digits: int = 4, seeds: int | None = None) -> str:
    """``mean ± std``; the mean alone for one seed (a spread of one value is no spread).
    A missing mean (NaN, or None as a record's strict JSON keeps it) is "–"."""
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if seeds == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (as configs name
    files), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def features_line(block: dict[str, Any]) -> str:
    """Which features file each model read: one when all share it (a config may name its
    own, e.g. the sequence models' click histories)."""
    by_file: dict[str, list[str]] = {}
    for model, f in block.get("model_features", {}).items():
        by_file.setdefault(f, []).append(model)
    if len(by_file) <= 1:
        return f"`{next(iter(by_file), block['features'])}`"
    return "; ".join(f"`{f}` ({', '.join(sorted(ms))})" for f, ms in by_file.items())


# -- the oracle and the trivial answers --------------------------------------

# What each reference row is, for the tables.
REFERENCES = {"oracle": "the world's true P(click) (truth/, no training)",
              "popularity": "the note's training CTR, smoothed",
              "constant": "the training CTR for every impression"}
# Events columns a reference row reads, under the names of the FeatureMap's meta arrays.
META_COLUMNS = {"_user_id": "user_id", "_note_id": "note_id", "_request_id": "request_id",
                "_position": "position"}


def split_rows(frame: pl.LazyFrame) -> dict[str, np.ndarray]:
    """The click label and the meta arrays a FeatureMap gives a split (``_user_id``,
    ``_scenario``, ``_ts``, ...), read straight from its events: the references need no
    features. Columns the data lacks are left out."""
    from snsrec.eval.protocols import LABEL

    names = frame.collect_schema().names()
    cols = [pl.col(LABEL).cast(pl.Float32).fill_null(0)]
    cols += [pl.col(c).alias(k) for k, c in META_COLUMNS.items() if c in names]
    if "ts" in names:
        cols.append(pl.col("ts").dt.epoch("s").alias("_ts"))
    if "scenario" in names:
        cols.append(pl.col("scenario").cast(pl.String).replace_strict(
            list(SCENARIOS), list(range(len(SCENARIOS))), default=-1,
            return_dtype=pl.Int8).alias("_scenario"))
    df = frame.select(cols).collect()
    return {c: df[c].to_numpy() for c in df.columns}


def reference_rows(cfg: Any) -> list[dict[str, Any]]:
    """The rows every model is measured against, on ``cfg``'s test split and scored with
    the models' own metrics (``evaluate_predictions``): on a world the oracle and
    popularity, everywhere the constant answer. No training; the truth is read here, after
    every run, and never reaches one."""
    from snsrec.data.tables import load_tables
    from snsrec.eval.protocols import LABEL, evaluate_predictions
    from snsrec.train.pipeline import run_splits, sample_rows

    root = resolve_dataset(cfg.data, cfg.cache)
    splits = run_splits(load_tables(root), cfg)
    test = split_rows(sample_rows(splits["test"], cfg.max_rows.get("test")))
    train = split_rows(splits["train"])
    scores = {}
    if has_truth(root):
        scores["oracle"] = impression_truth(load_truth(root), test)["click"]
        scores["popularity"] = popularity_scores(train["_note_id"], train[LABEL],
                                                 test["_note_id"])
    scores["constant"] = constant_scores(train[LABEL], len(test[LABEL]))
    return [reference_row(name, evaluate_predictions(test, p)) for name, p in scores.items()]


def auc_references(cfg: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``reference_rows(cfg)``, with every row of a table keeping its AUC as ``(mean, std)``
    under ``"auc"`` (bench sequence, multimodal) and every reference given its share of the
    oracle's AUC lift over 0.5 (``auc_share``), in place."""
    refs = reference_rows(cfg)
    best = next((r["auc_mean"] for r in refs if r["model"] == "oracle"), math.nan)
    for r in rows:
        r["auc_share"] = oracle_share(r["auc"][0], best, 0.5)
    for r in refs:
        r["auc_share"] = oracle_share(r["auc_mean"], best, 0.5)
    return refs


def reference_row(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A reference as a leaderboard row (one value, no spread, no training)."""
    return {"model": name, "reference": REFERENCES[name], "auc_mean": metrics["auc"],
            "auc_std": 0.0, "logloss_mean": metrics["logloss"], "logloss_std": 0.0,
            "gauc_mean": metrics.get("gauc", math.nan), "rows": metrics["n"],
            "by_scenario": {s: {"auc_mean": m["auc"], "auc_std": 0.0}
                            for s, m in metrics.get("by_scenario", {}).items()}}


def add_shares(rows: list[dict[str, Any]], references: list[dict[str, Any]]) -> None:
    """Each row's share of the oracle, in place: AUC (and per-scenario AUC) over 0.5,
    logloss over the constant answer's; nan where the data has no oracle."""
    ref = {r["model"]: r for r in references}
    oracle = ref.get("oracle", {})
    floor = ref["constant"]["logloss_mean"]
    for r in [*rows, *references]:
        r["auc_share"] = oracle_share(r["auc_mean"], oracle.get("auc_mean", math.nan), 0.5)
        r["logloss_share"] = oracle_share(r["logloss_mean"],
                                          oracle.get("logloss_mean", math.nan), floor)
        for s, m in r.get("by_scenario", {}).items():
            best = oracle.get("by_scenario", {}).get(s, {}).get("auc_mean", math.nan)
            m["auc_share"] = oracle_share(m["auc_mean"], best, 0.5)


# -- peers -------------------------------------------------------------------

def peer_model(board: list[dict[str, Any]], peer_models: Sequence[str]) -> dict[str, Any] | None:
    """The best-ranked leaderboard row whose model the peers implement (deepfm, dcnv2)."""
    return next((r for r in board if r["model"] in peer_models), None)


def peer_rows(row: dict[str, Any], runs: list[dict[str, Any]],
              configs: dict[int, Any]) -> list[dict[str, Any]]:
    """``row``'s model through each installed peer, one run per seed, on that run's own arrays.

    The peers take categorical fields only (``CtrArrays``), so multi-valued fields
    (ML-1M's genres) are left out on their side; embedding size, MLP, batch size,
    learning rate and seed are the snsrec run's, epochs its best epoch.
    """
    from snsrec.bench import peers
    from snsrec.train.pipeline import prepare_data

    out: list[dict[str, Any]] = []
    for name in peers.PEERS:
        if not peers.peer_available(name):
            out.append({"peer": name, "status": "not installed (pip install '.[bench]')"})
            continue
        aucs, lls, fields = [], [], []
        for r in runs:
            cfg = configs[r["seed"]]
            prep = prepare_data(cfg)    # cached: the arrays the snsrec run trained on
            data = peers.ctr_arrays_from_features(prep.arrays["train"], prep.arrays["test"],
                                                  prep.feature_map)
            fields = data.fields
            params = {**_model_defaults(cfg.model.name), **cfg.model.params}
            settings = {"peer": name, "model": row["model"], "fields": list(fields),
                        "embedding_dim": int(params["embedding_dim"]),
                        "mlp": list(params["hidden_units"]),
                        "batch_size": cfg.train.batch_size, "lr": cfg.train.lr,
                        "seed": r["seed"], "epochs": int(r.get("best_epoch") or 1),
                        "train_rows": data.n_train, "test_rows": data.n_test}
            # Kept beside the snsrec run: a rerun of the benchmark reuses it while every
            # setting the peer saw is the same (peers are minutes a seed).
            stamp = Path(r["run_dir"]) / f"peer-{name}.json" if r.get("run_dir") else None
            old = read_json(stamp) if stamp is not None and stamp.is_file() else {}
            if old.get("settings") == settings:
                echo(f"bench ctr: reusing {row['model']} through {name}, seed {r['seed']}")
                res = old["result"]
            else:
                echo(f"bench ctr: {row['model']} through {name}, seed {r['seed']}")
                res = peers.run_peer(name, row["model"], data,
                                     embedding_dim=settings["embedding_dim"],
                                     mlp=tuple(settings["mlp"]),
                                     batch_size=cfg.train.batch_size, lr=cfg.train.lr,
                                     seed=r["seed"], epochs=settings["epochs"])
                if stamp is not None:
                    write_json(stamp, {"settings": settings, "result": {
                        "test_auc": float(res["test_auc"]),
                        "test_logloss": float(res["test_logloss"])}})
            aucs.append(float(res["test_auc"]))
            lls.append(float(res["test_logloss"]))
        auc_m, auc_s = mean_std(aucs)
        ll_m, ll_s = mean_std(lls)
        out.append({"peer": name, "status": f"ran on {len(fields)} categorical fields",
                    "fields": fields, "auc_mean": auc_m, "auc_std": auc_s,
                    "logloss_mean": ll_m, "logloss_std": ll_s, "seeds": len(aucs)})
    return out


def peer_block(board: list[dict[str, Any]], runs: list[dict[str, Any]],
               configs: dict[tuple[str, int], Any]) -> dict[str, Any]:
    """The peer comparison of a data set: which model, why, and one row per peer."""
    from snsrec.bench import peers

    row = peer_model(board, peers.MODELS)
    if row is None:
        return {"model": None, "note": f"no benchmarked model is one the peers have "
                                        f"({', '.join(peers.MODELS)}); add one to --models",
                "rows": []}
    note = "best model" if row is board[0] else \
        f"best model the peers have ({', '.join(peers.MODELS)}); overall best: {board[0]['model']}"
    mine = [r for r in runs if r["model"] == row["model"]]
    cfgs = {r["seed"]: configs[(row["model"], r["seed"])] for r in mine}
    return {"model": row["model"], "note": note, "rows": peer_rows(row, mine, cfgs)}


def _model_defaults(name: str) -> dict[str, Any]:
    import inspect

    from snsrec.models.registry import get_model_class

    sig = inspect.signature(get_model_class(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.default is not inspect.Parameter.empty}


# -- report ------------------------------------------------------------------

def command_line(data: Sequence[str], models: Sequence[str], seeds: int, out: Path,
                 overrides: Sequence[str] | None) -> str:
    parts = ["snsrec", "bench", "ctr"]
    for d in data:
        parts += ["--data", d]
    parts += ["--models", ",".join(models), "--seeds", str(seeds), "--out", str(out)]
    for s in overrides or []:
        parts += ["--set", s]
    return shlex.join(parts)


def leaderboard_markdown(result: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    parts = ["# CTR benchmark\n", f"Command: `{result['command']}`  (snsrec {result['version']})\n",
             "AUC and logloss on each data set's test split: mean ± sample std over seeds. "
             "Train time: mean seconds per run (fit incl. validation).\n"]
    for block in result["data"].values():
        parts.append(f"## {block['spec']}\n")
        refs = block.get("references", [])
        oracle = any(r["model"] == "oracle" for r in refs)
        rows = [[r["model"], *cells(r, "auc", oracle), *cells(r, "logloss", oracle),
                 r["params"], f"{r['train_time_s']:.1f}", r["seeds"], f"`{r['config']}`"]
                for r in block["leaderboard"]]
        rows += [[f"*{r['model']}*", *cells(r, "auc", oracle), *cells(r, "logloss", oracle),
                  "", "", "", r["reference"]] for r in refs]
        shares = ["share of oracle"] if oracle else []
        parts.append(markdown_table(["model", "test AUC", *shares, "test logloss", *shares,
                                     "params", "train time (s)", "seeds", "config"], rows))
        if oracle:
            parts.append(ORACLE_NOTE)
            parts.append(scenario_markdown(block))
        parts.append(f"Features: {features_line(block)}. Runs: `{block['runs_dir']}`.\n")
        if "peers" in block:
            parts.append(peer_markdown(block))
    return "\n".join(parts)


ORACLE_NOTE = ("*oracle*: the world's own click model scoring each test impression (its "
               "user, note, scenario, position, time and search query) — the best any model "
               "can expect on these rows. Share of oracle: AUC (model − 0.5) / (oracle − 0.5); "
               "logloss (constant − model) / (constant − oracle).\n")


def cells(row: dict[str, Any], metric: str, oracle: bool) -> list[str]:
    """A row's ``metric`` (mean ± std) and, where the data has an oracle, its share of it."""
    value = pm(row[f"{metric}_mean"], row[f"{metric}_std"], seeds=row.get("seeds", 1))
    return [value, percent(row[f"{metric}_share"])] if oracle else [value]


def percent(share: float) -> str:
    """A share of the oracle as a percentage (``–`` when undefined)."""
    return "–" if share is None or math.isnan(share) else f"{100 * share:.1f}%"


def scenario_markdown(block: dict[str, Any]) -> str:
    """Test AUC per scenario with each row's share of the oracle there, and gAUC."""
    from snsrec.report.markdown import markdown_table

    rows = [*block["leaderboard"], *block.get("references", [])]
    scens = [s for s in SCENARIOS if any(s in r.get("by_scenario", {}) for r in rows)]

    def cell(r: dict[str, Any], s: str) -> str:
        m = r.get("by_scenario", {}).get(s)
        if m is None or math.isnan(m["auc_mean"]):
            return "–"
        return f"{m['auc_mean']:.4f} ({percent(m['auc_share'])})"

    body = [[r["model"] if "reference" not in r else f"*{r['model']}*",
             *[cell(r, s) for s in scens],
             "–" if math.isnan(r.get("gauc_mean", math.nan)) else f"{r['gauc_mean']:.4f}"]
            for r in rows]
    return ("Test AUC by scenario (share of the oracle there; mean over seeds) and gAUC "
            "(impression-weighted AUC per user):\n\n"
            + markdown_table(["model", *[f"{s} AUC" for s in scens], "gAUC"], body))


def peer_markdown(block: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    peers = block["peers"]
    if peers["model"] is None:
        return f"Peer libraries: not run; {peers['note']}.\n"
    row = next(r for r in block["leaderboard"] if r["model"] == peers["model"])
    rows = [["snsrec", pm(row["auc_mean"], row["auc_std"], seeds=row["seeds"]),
             pm(row["logloss_mean"], row["logloss_std"], seeds=row["seeds"]), row["seeds"],
             "all fields"]]
    rows += [[p["peer"], pm(p.get("auc_mean", math.nan), p.get("auc_std", math.nan),
                            seeds=p.get("seeds")),
              pm(p.get("logloss_mean", math.nan), p.get("logloss_std", math.nan),
                 seeds=p.get("seeds")),
              p.get("seeds", 0), p["status"]] for p in peers["rows"]]
    return (f"`{peers['model']}` ({peers['note']}) on {block['spec']} beside the peer "
            "libraries, each run through its own training loop on the same train / test rows "
            "with the same embedding size, MLP, batch size, learning rate and seeds, for "
            "snsrec's best epoch count (no early stopping on the peers' side):\n\n"
            + markdown_table(["library", "test AUC", "test logloss", "seeds", "status"], rows))


# -- the benchmark -----------------------------------------------------------

def _check_models(models: Sequence[str]) -> None:
    from snsrec.models.registry import get_model_class

    if not models:
        raise ConfigError("bench ctr: no models given; e.g. --models lr,fm,deepfm")
    for m in models:
        get_model_class(m)   # ModelError listing the registered models


def bench_ctr(data: list[str], models: list[str], seeds: int, out: Path, *,
              overrides: list[str] | None = None, cache: Path = DEFAULT_CACHE,
              peer_data: Sequence[str] = PEER_DATA, rerun: bool = False,
                force: bool = False) -> dict[str, Any]:
    """Run every data set × model × seed; write ``leaderboard.json`` / ``.md`` into ``out``.

    ``peer_data``: slugs of the data sets whose best peer-supported model is also run
    through the peer libraries (default: MovieLens-1M).
    """
    if seeds < 1:
        raise ConfigError(f"bench ctr: --seeds {seeds}; give at least 1")
    if not data:
        raise ConfigError("bench ctr: no --data given; e.g. --data world:small")
    _check_models(models)
    check_param_overrides(models, overrides)
    started = time.time()
    check_out(out, force=force, legacy=["leaderboard.json"])    # refused before the data work
    slugs = [data_slug(d) for d in data]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"bench ctr: data sets {data} share a name ({slugs}); give each once")
    roots = {d: resolve_dataset(d, cache) for d in data}   # bad data spec fails before training
    out = out_dir(out, "bench ctr", force=force, legacy=["leaderboard.json"])
    features = {d: features_for(d, roots[d], out) for d in data}
    # Every config is resolved (and validated) before the first run trains.
    plan = {(d, m, k): resolve_config(d, m, k, features[d], overrides, cache)
            for d in data for m in models for k in range(seeds)}
    result: dict[str, Any] = {"benchmark": "ctr", "version": __version__,
                              "command": command_line(data, models, seeds, out, overrides),
                              "seeds": list(range(seeds)), "models": list(models), "data": {}}
    total, done = len(plan), 0
    for d, slug in zip(data, slugs, strict=True):
        runs = []
        # Seed-major: an interrupted benchmark leaves whole seeds of every model, and a
        # re-run into the same directory reuses them (run_one).
        for k in range(seeds):
            for m in models:
                cfg, used = plan[(d, m, k)]
                run_dir = out / "runs" / slug / m / f"seed{k}"
                done += 1
                echo(f"bench ctr [{done}/{total}]: {m} on {d}, seed {k}")
                rec = run_one(cfg, run_dir, rerun=rerun)
                runs.append({"data": d, "model": m, "seed": k, **rec, "run_dir": str(run_dir),
                             "config": used})
        board = summarise(runs)
        # Computed afresh each time (no training): a board rebuilt from reused runs has them.
        echo(f"bench ctr: the oracle and trivial answers on {d}")
        refs = reference_rows(plan[(d, models[0], 0)][0])
        add_shares(board, refs)
        block = {"spec": d, "path": str(roots[d]),
                 "features": str(features[d]) if features[d] else "default",
                 "runs_dir": str(out / "runs" / slug), "leaderboard": board,
                 "references": refs, "runs": runs,
                 "configs": {m: str(plan[(d, m, 0)][1] or "default") for m in models},
                 "model_features": {m: shown_path(plan[(d, m, 0)][0].features)
                                    if plan[(d, m, 0)][0].features else "default"
                                    for m in models}}
        if slug in peer_data:
            block["peers"] = peer_block(board, runs, {(m, k): plan[(dd, m, k)][0] for (dd, m, k)
                                                      in plan if dd == d})
        result["data"][slug] = block
    result, md = write_record(out, "leaderboard", result, leaderboard_markdown,
                              default_command=result["command"], started=started,
                              seeds=list(range(seeds)))
    return {"markdown": md, "results": result}

