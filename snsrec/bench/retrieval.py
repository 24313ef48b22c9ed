"""`snsrec bench retrieval`: every retriever × seed on a data set, full-corpus leaderboards.

Each entry of ``--models`` is a variant with its YAML under
``configs/bench/retrieval/<variant>.yaml`` (a run config without ``data``:
the bench sets it) — RED-Rec, its single-scenario and ID ablations, the
mean-pool two-tower, ItemCF and most-popular. Every run goes through
``snsrec train`` (the retrieval run: samples, the shared trainer, the
full-corpus protocol of ``snsrec.eval.protocols``) into
``OUT/runs/<data>/<variant>/seed<k>/``; finished runs are reused and an
interrupted one resumes (``snsrec.bench.ctr.run_one``). The leaderboard gives,
per target (feed next click, search click, ads conversion) and per note set
(all, cold: created after the training cut-off), the mean ± sample std over
seeds of HR@10, HR@100, NDCG@10 and MRR.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec import __version__
from snsrec.bench.ctr import DEFAULT_CACHE, REPO_ROOT, data_slug, pm, run_one
from snsrec.errors import ConfigError
from snsrec.io import write_json, write_text
from snsrec.progress import echo

CONFIG_DIR = Path("configs/bench/retrieval")
VARIANTS = ("toppop", "itemcf", "dssm", "redrec", "redrec_feed", "redrec_id")
METRICS = ("hr@10", "hr@100", "ndcg@10", "mrr")
PARTS = ("all", "cold")


def config_dir() -> Path:
    return CONFIG_DIR if CONFIG_DIR.is_dir() else REPO_ROOT / CONFIG_DIR


def resolve(variant: str, data: str, seed: int, overrides: Sequence[str] | None,
            cache: Path) -> Any:
    from snsrec.train.pipeline import check_run_config, load_run_config
    from snsrec.train.retrieval import is_retrieval_model

    path = config_dir() / f"{variant}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in config_dir().glob("*.yaml"))
        raise ConfigError(f"bench retrieval: no config {path} for variant '{variant}'; "
                          f"variants: {', '.join(have)}")
    base = {"name": variant, "data": data, "cache": str(cache)}
    cfg = load_run_config(path, [*(overrides or []), f"train.seed={seed}", f"data={data}"],
                          base)
    if not is_retrieval_model(cfg.model.name):
        raise ConfigError(f"{path}: model '{cfg.model.name}' is not a retrieval model")
    check_run_config(cfg)
    return cfg.model_copy(update={"name": f"{variant}-{data_slug(data)}-seed{seed}"})


def retrieval_record(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = {t: {p: {m: parts[p].get(m) for m in (*METRICS, "queries")} for p in parts}
            for t, parts in metrics["test"].items()}
    return {"test": keep, "params": int(metrics["params"]),
            "train_time_s": float(metrics["train_time_s"])}


def leaderboard(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per target and note set: one row per variant, mean ± std over its seeds."""
    out: dict[str, Any] = {}
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    from snsrec.train.retrieval import TARGETS

    # The protocol's order (records read back from JSON have their keys sorted).
    targets = [t for t in TARGETS if any(t in r["test"] for r in runs)]
    for target in targets:
        for part in PARTS:
            rows = []
            for v in variants:
                got = [r["test"][target][part] for r in runs
                       if r["variant"] == v and part in r["test"].get(target, {})]
                if not got:
                    continue
                row: dict[str, Any] = {"variant": v, "seeds": len(got),
                                       "queries": int(got[0]["queries"])}
                for m in METRICS:
                    x = np.array([g[m] for g in got], dtype=float)
                    row[m] = (float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0)
                rows.append(row)
            if rows:
                out[f"{target}/{part}"] = sorted(rows, key=lambda r: -r["hr@100"][0])
    return out


def bench_retrieval(data: list[str], variants: list[str], seeds: int, out: Path, *,
                    overrides: list[str] | None = None,
                    cache: Path = DEFAULT_CACHE) -> dict[str, Any]:
    if seeds < 1 or not data or not variants:
        raise ConfigError("bench retrieval: give --data, --models and --seeds >= 1")
    out = Path(out)
    plan = {(d, v, k): resolve(v, d, k, overrides, cache)
            for d in data for v in variants for k in range(seeds)}
    result: dict[str, Any] = {"benchmark": "retrieval", "version": __version__,
                              "command": shlex.join(
                                  ["snsrec", "bench", "retrieval",
                                   *[x for d in data for x in ("--data", d)], "--models",
                                   ",".join(variants), "--seeds", str(seeds), "--out",
                                   str(out), *[x for s in overrides or [] for x in ("--set", s)]]),
                              "data": {}}
    total, done = len(plan), 0
    for d in data:
        runs = []
        for k in range(seeds):
            for v in variants:
                done += 1
                echo(f"bench retrieval [{done}/{total}]: {v} on {d}, seed {k}")
                rec = run_one(plan[(d, v, k)], out / "runs" / data_slug(d) / v / f"seed{k}",
                              record=retrieval_record)
                runs.append({"variant": v, "seed": k, **rec})
        result["data"][data_slug(d)] = {"spec": d, "leaderboard": leaderboard(runs),
                                        "runs": runs}
    md = markdown(result)
    write_json(out / "leaderboard.json", _finite(result))
    write_text(out / "leaderboard.md", md)
    return {"markdown": md, "results": result}


def markdown(result: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    parts = ["# Retrieval benchmark\n", f"Command: `{result['command']}`  (snsrec "
             f"{result['version']})\n", "Full-corpus ranking of each test user's first target "
             "note (no sampled negatives; notes created later left out): mean ± sample std "
             "over seeds. *cold*: targets created after the training cut-off.\n"]
    for block in result["data"].values():
        parts.append(f"## {block['spec']}\n")
        for key, rows in block["leaderboard"].items():
            target, part = key.split("/")
            parts.append(f"### {target}" + (" — cold-start notes" if part == "cold" else "")
                         + "\n")
            parts.append(markdown_table(
                ["model", "queries", *METRICS, "seeds"],
                [[r["variant"], r["queries"], *[pm(*r[m]) for m in METRICS], r["seeds"]]
                 for r in rows]))
    return "\n".join(parts)


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
