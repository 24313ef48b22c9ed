"""What every training benchmark shares: where shipped configs are, a variant's config,
one run trained or reused (``run_one``), and the mean ± std of its seeds.

A benchmark is runs × seeds. ``run_one`` trains a run into its folder under the
benchmark's ``OUT/runs/`` and stamps it (``bench.json``: the resolved config, the
record the benchmark keeps, the code fingerprint, provenance); a later benchmark
reuses the run while its config and the code it depends on are unchanged, resumes
one cut short from its checkpoint, and ``rerun`` trains it again regardless.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.errors import ConfigError
from snsrec.io import out_dir, read_json, write_json
from snsrec.progress import echo

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def pm(mean: float, std: float, digits: int = 4, seeds: int | None = None) -> str:
    """``mean ± std``; the mean alone for one seed (a spread of one value is no spread).
    A missing mean (NaN, or None as a record's strict JSON keeps it) is "–"."""
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if seeds == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def percent(share: float) -> str:
    """A share of the oracle as a percentage (``–`` when undefined)."""
    return "–" if share is None or math.isnan(share) else f"{100 * share:.1f}%"


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (as configs name
    files), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
