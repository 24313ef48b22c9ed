"""`snsrec bench conversion`: click → conversion models on a world's ads impressions.

Each variant is a run config under ``configs/bench/conversion/<variant>.yaml``
(without ``data``; the bench sets it and the seed): ESMM and MMoE trained with
the entire-space loss (``esmm``) and the same networks with their CVR head
fit to clicked impressions only (``click_cvr``, the "naive" CVR model). Runs
go through ``snsrec train`` into ``OUT/runs/<data>/<variant>/seed<k>/`` and
are reused when unchanged (``snsrec.bench.ctr.run_one``).

Every test impression is scored, clicked or not. Beside the logged labels
(CTR AUC, CVR AUC on clicked impressions, CTCVR AUC) a synthetic world knows
each impression's true P(convert | click): ``cvr_auc_entire`` is the AUC of
pCVR over **all** impressions against that probability (``soft_auc``: the AUC
expected over labels drawn from it) — the space ESMM is about, where a CVR
model trained on clicks alone has never looked. Target (Ranking II issue):
ESMM beats the naive CVR model there.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec import __version__
from snsrec.bench.ctr import (
    DEFAULT_CACHE,
    data_slug,
    mean_std,
    pm,
    run_one,
    shipped,
    variant_config,
)
from snsrec.errors import ConfigError
from snsrec.io import out_dir, write_json, write_text
from snsrec.progress import echo

CONFIG_DIR = Path("configs/bench/conversion")
FEATURES = Path("configs/features/world_conversion.yaml")     # labels [click, convert]
VARIANTS = ("esmm", "esmm_naive", "mmoe", "mmoe_naive")
COLUMNS = {"auc": "CTR AUC", "cvr_auc": "CVR AUC (clicked)",
           "cvr_auc_entire": "CVR AUC (all, vs truth)", "ctcvr_auc": "CTCVR AUC"}
TARGET = ("esmm", "esmm_naive", "cvr_auc_entire")     # (model, baseline, metric): beat it


def resolve(variant: str, data: str, seed: int, overrides: Sequence[str] | None,
            cache: Path) -> Any:
    return variant_config("conversion", CONFIG_DIR, variant, data, seed, overrides,
                          {"cache": str(cache), "features": str(shipped(FEATURES))})


def _truth(cfg: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the test arrays, the world's true click and convert probabilities of their rows)."""
    from snsrec.data.world.usermodel import UserModel
    from snsrec.train.pipeline import prepare_data

    data = prepare_data(cfg)
    test = data.arrays["test"]
    truth = UserModel.load(data.root).probabilities(
        test["_user_id"], test["_note_id"], test["_scenario"], test["_position"], test["_ts"])
    return test, truth


def _against(truth: dict[str, np.ndarray], p_click: np.ndarray, p_convert: np.ndarray
             ) -> dict[str, float]:
    from snsrec.eval.metrics import soft_auc

    q_click, q_convert = truth["click"], truth["convert"]
    return {"cvr_auc_entire": soft_auc(q_convert, p_convert),
            "ctr_auc_truth": soft_auc(q_click, p_click),
            "ctcvr_auc_truth": soft_auc(q_click * q_convert, p_click * p_convert)}


def truth_metrics(cfg: Any, run_dir: Path) -> dict[str, float]:
    """AUCs of a trained run's test predictions against the world's true probabilities:
    CVR over every impression, CTR and CTCVR likewise."""
    from snsrec.train.trainer import Trainer, load_run

    test, truth = _truth(cfg)
    heads = Trainer(cfg.train.model_copy(update={"device": "cpu"})).predict_heads(
        load_run(run_dir).model, test)
    return _against(truth, heads["logit"], heads["cvr_logit"])


def ceiling(cfg: Any) -> dict[str, float]:
    """The same AUCs of the truth itself: the best any model can reach on these rows (below 1
    where the true probabilities overlap)."""
    _, truth = _truth(cfg)
    return _against(truth, truth["click"], truth["convert"])


def record_of(cfg: Any, run_dir: Path):
    def record(metrics: dict[str, Any]) -> dict[str, Any]:
        test = metrics["test"]
        return {**{k: float(test[k]) for k in ("auc", "cvr_auc", "ctcvr_auc")},
                **truth_metrics(cfg, run_dir), "rows": int(metrics["rows"]["test"]),
                "clicks": int(test["clicks"]), "conversions": int(test["conversions"]),
                "params": int(metrics["params"]), "train_time_s": float(metrics["train_time_s"])}
    return record


def bench_conversion(data: list[str], variants: list[str], seeds: int, out: Path, *,
                     overrides: list[str] | None = None,
                     cache: Path = DEFAULT_CACHE, force: bool = False) -> dict[str, Any]:
    if seeds < 1 or not data or not variants:
        raise ConfigError("bench conversion: give --data, --models and --seeds >= 1")
    bad = [d for d in data if not d.startswith("world:")]
    if bad:
        raise ConfigError(f"bench conversion: --data {', '.join(bad)}: the entire-space CVR "
                          "needs a world's true conversion probabilities; use world:PRESET")
    plan = {(d, v, k): resolve(v, d, k, overrides, cache)
            for d in data for v in variants for k in range(seeds)}   # bad variants fail here
    out = out_dir(out, "bench conversion", force=force, legacy=["leaderboard.json"])
    result: dict[str, Any] = {
        "benchmark": "conversion", "version": __version__,
        "command": shlex.join(["snsrec", "bench", "conversion",
                               *[x for d in data for x in ("--data", d)], "--models",
                               ",".join(variants), "--seeds", str(seeds), "--out", str(out),
                               *[x for s in overrides or [] for x in ("--set", s)]]),
        "data": {}}
    done = 0
    for d in data:
        runs = []
        for k in range(seeds):
            for v in variants:
                done += 1
                echo(f"bench conversion [{done}/{len(plan)}]: {v} on {d}, seed {k}")
                run_dir = out / "runs" / data_slug(d) / v / f"seed{k}"
                cfg = plan[(d, v, k)]
                runs.append({"variant": v, "seed": k,
                             **run_one(cfg, run_dir, record=record_of(cfg, run_dir))})
        result["data"][data_slug(d)] = {"spec": d, "leaderboard": leaderboard(runs),
                                        "runs": runs, "target": verdict(runs),
                                        "truth": ceiling(plan[(d, variants[0], 0)])}
    md = markdown(result)
    write_json(out / "leaderboard.json", result)
    write_text(out / "leaderboard.md", md)
    return {"markdown": md, "results": result}


def leaderboard(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for v in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == v]
        rows.append({"variant": v, "seeds": len(mine), "params": mine[0]["params"],
                     "train_time_s": mean_std([r["train_time_s"] for r in mine])[0],
                     **{m: mean_std([r[m] for r in mine]) for m in COLUMNS}})
    return rows


def verdict(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    model, base, metric = TARGET
    got = {v: mean_std([r[metric] for r in runs if r["variant"] == v]) for v in (model, base)}
    if any(r is None or r[0] != r[0] for r in got.values()):       # a variant not run
        return None
    return {"model": model, "baseline": base, "metric": metric, "model_mean": got[model][0],
            "baseline_mean": got[base][0], "met": got[model][0] > got[base][0]}


def markdown(result: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    parts = ["# Click → conversion benchmark\n",
             f"Command: `{result['command']}`  (snsrec {result['version']})\n",
             "Test impressions of the ads scenario, clicked or not; mean ± sample std over "
             "seeds. CVR AUC (all, vs truth): pCVR over every impression against the world's "
             "true P(convert | click) (the AUC expected over labels drawn from it).\n"]
    for block in result["data"].values():
        runs = block["runs"]
        parts.append(f"## {block['spec']}\n")
        if runs:
            r = runs[0]
            parts.append(f"{r['rows']:,} test impressions, {r['clicks']:,} clicks, "
                         f"{r['conversions']:,} conversions.\n")
        truth = block["truth"]
        parts.append(markdown_table(
            ["variant", *COLUMNS.values(), "params", "train s", "seeds"],
            [[r["variant"], *[pm(*r[m]) for m in COLUMNS], f"{r['params']:,}",
              f"{r['train_time_s']:.0f}", r["seeds"]] for r in block["leaderboard"]]
            + [["*the truth (ceiling)*", "", "", f"{truth['cvr_auc_entire']:.4f}", "", "", "",
                ""]]))
        t = block["target"]
        if t:
            parts.append(f"\nTarget — {t['model']} beats {t['baseline']} on {t['metric']}: "
                         f"{t['model_mean']:.4f} vs {t['baseline_mean']:.4f} — "
                         f"{'met' if t['met'] else 'NOT met'}.\n")
    return "\n".join(parts)
