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
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from snsrec import __version__
from snsrec.bench.references import add_shares, reference_rows
from snsrec.bench.runner import data_slug, mean_std, percent, pm, run_one, shipped, shown_path
from snsrec.config import deep_merge, read_mapping
from snsrec.data.datasets import DEFAULT_CACHE, resolve_dataset
from snsrec.data.schema import SCENARIOS
from snsrec.errors import ConfigError, DataError
from snsrec.io import check_out, out_dir, read_json, write_json, write_text
from snsrec.progress import echo
from snsrec.records import write_record

CONFIG_DIR = Path("configs/bench/ctr")
PEER_DATA = ("ml-1m",)         # data sets whose best model is also run through the peers
# Feature YAML per data-set family (files under CONFIG_DIR/features/).
FEATURES = {"world": "world.yaml", "ml-1m": "movielens.yaml"}


# -- data sets and configs ---------------------------------------------------


def config_dir() -> Path:
    """``configs/bench/ctr`` of the working directory, else of the source checkout."""
    return shipped(CONFIG_DIR)


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
    merged = read_mapping(folder / "base.yaml")
    used = ["base.yaml"]
    if (folder / "models" / f"{model}.yaml").is_file():
        merged = deep_merge(merged, read_mapping(folder / "models" / f"{model}.yaml"))
        used.append(f"models/{model}.yaml")
    overlay = folder / "data" / f"{data_slug(data)}.yaml"
    entry = (read_mapping(overlay).get(model) if overlay.is_file() else None) or {}
    if entry:
        merged = deep_merge(merged, entry)
        used.append(f"data/{overlay.name}[{model}]")
    return merged, " + ".join(used)


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


# -- aggregation -------------------------------------------------------------


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

