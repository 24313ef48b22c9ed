"""`snsrec bench conversion`: click → conversion models on a world's ads impressions.

Each variant is a run config under ``configs/bench/conversion/<variant>.yaml``
(without ``data``; the bench sets it and the seed): ESMM and MMoE trained with
the entire-space loss (``esmm``) and the same networks with their CVR head
fit to clicked impressions only (``click_cvr``, the "naive" CVR model). Runs
go through ``snsrec train`` into ``OUT/runs/<data>/<variant>/seed<k>/`` and
are reused when unchanged (``snsrec.bench.runner.run_one``).

Every test impression is scored, clicked or not. Beside the logged labels
(CTR AUC, CVR AUC on clicked impressions, CTCVR AUC) a synthetic world knows
each impression's true P(convert | click): ``cvr_auc_entire`` is the AUC of
pCVR over **all** impressions against that probability (``soft_auc``: the AUC
expected over labels drawn from it) — the space ESMM is about, where a CVR
model trained on clicks alone has never looked. Target (Ranking II issue):
ESMM beats the naive CVR model there.

Under the variants two reference rows (``references``), scored with the same
metric functions: the **oracle** — the world's true P(click), P(convert | click)
and their product as the CTR, CVR and CTCVR scores (``snsrec.eval.oracle``;
its "vs truth" AUC is below 1 where the true probabilities overlap) — and the
**constant** answer (the training CTR and CVR everywhere: AUC 0.5). Every row
gets its share of the oracle per column: (AUC − 0.5) / (oracle AUC − 0.5).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec import __version__
from snsrec.bench.runner import data_slug, mean_std, percent, pm, run_one, shipped, variant_config
from snsrec.data.datasets import DEFAULT_CACHE
from snsrec.errors import ConfigError
from snsrec.eval.metrics import paired_difference
from snsrec.eval.oracle import constant_scores, impression_truth, load_truth, oracle_share
from snsrec.io import out_dir
from snsrec.progress import echo
from snsrec.records import write_record

CONFIG_DIR = Path("configs/bench/conversion")
FEATURES = Path("configs/features/world_conversion.yaml")     # labels [click, convert]
VARIANTS = ("esmm", "esmm_naive", "mmoe", "mmoe_naive")
COLUMNS = {"auc": "CTR AUC", "cvr_auc": "CVR AUC (clicked)",
           "cvr_auc_entire": "CVR AUC (all, vs truth)", "ctcvr_auc": "CTCVR AUC"}
TARGET = ("esmm", "esmm_naive", "cvr_auc_entire")     # (model, baseline, metric): beat it
REFERENCES = {"oracle": "the world's true P(click), P(convert | click) (truth/, no training)",
              "constant": "the training CTR and CVR for every impression"}


def resolve(variant: str, data: str, seed: int, overrides: Sequence[str] | None,
            cache: Path) -> Any:
    return variant_config("conversion", CONFIG_DIR, variant, data, seed, overrides,
                          {"cache": str(cache), "features": str(shipped(FEATURES))})


def _truth(cfg: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the test arrays, the world's true click and convert probabilities of their rows)."""
    from snsrec.train.pipeline import prepare_data

    data = prepare_data(cfg)
    test = data.arrays["test"]
    return test, impression_truth(load_truth(data.root), test)


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
    from snsrec.runs import load_run
    from snsrec.train.trainer import Trainer

    test, truth = _truth(cfg)
    heads = Trainer(cfg.train.model_copy(update={"device": "cpu"})).predict_heads(
        load_run(run_dir).model, test)
    return _against(truth, heads["logit"], heads["cvr_logit"])


def reference_rows(cfg: Any) -> list[dict[str, Any]]:
    """The oracle (the truth's P(click), P(convert | click) as the two heads) and the
    constant answer (the training CTR and CVR), scored on the test rows exactly as a run's
    heads are; no training."""
    from snsrec.eval.protocols import conversion_metrics, evaluate_predictions
    from snsrec.train.pipeline import prepare_data

    test, truth = _truth(cfg)
    train = prepare_data(cfg).arrays["train"]
    clicked = train["click"] > 0
    n = len(test["click"])
    heads = {"oracle": (truth["click"], truth["convert"]),
             "constant": (constant_scores(train["click"], n),
                          constant_scores(train["convert"][clicked], n))}
    rows = []
    for name, (p_click, p_convert) in heads.items():
        got = {"auc": evaluate_predictions(test, p_click)["auc"],
               **conversion_metrics(test, p_click, p_convert),
               **_against(truth, p_click, p_convert)}
        rows.append({"variant": name, "reference": REFERENCES[name],
                     **{m: (float(got[m]), 0.0) for m in COLUMNS}})
    return rows


def add_shares(rows: list[dict[str, Any]], references: list[dict[str, Any]]) -> None:
    """``<column>_share`` of every row, in place: (AUC − 0.5) / (oracle's − 0.5)."""
    oracle = next(r for r in references if r["variant"] == "oracle")
    for r in [*rows, *references]:
        for m in COLUMNS:
            r[f"{m}_share"] = oracle_share(r[m][0], oracle[m][0], 0.5)


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
                     cache: Path = DEFAULT_CACHE, rerun: bool = False,
                force: bool = False) -> dict[str, Any]:
    if seeds < 1 or not data or not variants:
        raise ConfigError("bench conversion: give --data, --models and --seeds >= 1")
    bad = [d for d in data if not d.startswith("world:")]
    if bad:
        raise ConfigError(f"bench conversion: --data {', '.join(bad)}: the entire-space CVR "
                          "needs a world's true conversion probabilities; use world:PRESET")
    started = time.time()
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
                             **run_one(cfg, run_dir, record=record_of(cfg, run_dir), code=(__name__,),
                                     rerun=rerun)})
        board = leaderboard(runs)
        # Computed afresh each time (no training): a board rebuilt from reused runs has them.
        refs = reference_rows(plan[(d, variants[0], 0)])
        add_shares(board, refs)
        result["data"][data_slug(d)] = {"spec": d, "leaderboard": board, "references": refs,
                                        "runs": runs, "target": verdict(runs)}
    result, md = write_record(out, "leaderboard", result, markdown,
                              default_command=result["command"], started=started,
                              seeds=list(range(seeds)))
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
    """The target, paired by seed (``paired_difference``): met only when the model is
    ahead with an interval that excludes 0 — one seed makes no claim."""
    model, base, metric = TARGET
    got = {v: {r["seed"]: r[metric] for r in runs if r["variant"] == v} for v in (model, base)}
    seeds = sorted(set(got[model]) & set(got[base]))
    if not seeds:                                                    # a variant not run
        return None
    d = paired_difference([got[model][s] for s in seeds], [got[base][s] for s in seeds])
    return {"model": model, "baseline": base, "metric": metric,
            "model_mean": float(np.mean([got[model][s] for s in seeds])),
            "baseline_mean": float(np.mean([got[base][s] for s in seeds])),
            "difference": d, "met": d["reading"] == "a"}


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
        parts.append(markdown_table(
            ["variant", *COLUMNS.values(), "params", "train s", "seeds"],
            [[r["variant"], *[f"{pm(*r[m], seeds=r['seeds'])} ({percent(r[f'{m}_share'])})"
                              for m in COLUMNS],
              f"{r['params']:,}", f"{r['train_time_s']:.0f}", r["seeds"]]
             for r in block["leaderboard"]]
            + [[f"*{r['variant']}*", *[f"{r[m][0]:.4f} ({percent(r[f'{m}_share'])})"
                                       for m in COLUMNS], "", "", ""]
               for r in block["references"]]))
        parts.append("In brackets: the share of the oracle, (AUC − 0.5) / (oracle − 0.5). "
                     f"*oracle*: {REFERENCES['oracle']} as the CTR, CVR and CTCVR scores — "
                     "below 1 where they overlap, the best any model can expect on these rows. "
                     f"*constant*: {REFERENCES['constant']}.\n")
        t = block["target"]
        if t:
            d = t.get("difference") or {}
            paired = (f", paired by seed {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] "
                      f"over {d['n']} seeds") if d.get("n", 0) > 1 else ""
            parts.append(f"\nTarget — {t['model']} beats {t['baseline']} on {t['metric']}: "
                         f"{t['model_mean']:.4f} vs {t['baseline_mean']:.4f}{paired} — "
                         f"{'met' if t['met'] else 'NOT met'}.\n")
    return "\n".join(parts)
