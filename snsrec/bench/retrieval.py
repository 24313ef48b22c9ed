"""`snsrec bench retrieval`: every retriever × seed on a data set, full-corpus leaderboards.

Each entry of ``--models`` is a variant with its YAML under
``configs/bench/retrieval/<variant>.yaml`` (a run config without ``data``:
the bench sets it) — RED-Rec, its single-scenario and ID ablations, the
mean-pool two-tower, ItemCF, category popularity and most-popular. Every run goes through
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
from snsrec.bench.ctr import DEFAULT_CACHE, data_slug, mean_std, pm, run_one, variant_config
from snsrec.errors import ConfigError
from snsrec.io import out_dir, write_json, write_text
from snsrec.progress import echo

CONFIG_DIR = Path("configs/bench/retrieval")
VARIANTS = ("toppop", "itemcf", "category", "dssm", "sasrec", "redrec", "redrec_feed",
            "redrec_id")
PEERS = ("recbole",)
PEER_VARIANT = "recbole_sasrec"     # RecBole's SASRec, trained with the sasrec variant's config
METRICS = ("hr@10", "hr@100", "ndcg@10", "mrr")
PARTS = ("all", "cold")


def resolve(variant: str, data: str, seed: int, overrides: Sequence[str] | None,
            cache: Path) -> Any:
    from snsrec.train.retrieval import is_retrieval_model

    def retrieval_only(cfg: Any, path: Path) -> None:
        if not is_retrieval_model(cfg.model.name):
            raise ConfigError(f"{path}: model '{cfg.model.name}' is not a retrieval model")

    return variant_config("retrieval", CONFIG_DIR, variant, data, seed, overrides,
                          {"cache": str(cache)}, check=retrieval_only)


def retrieval_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the leaderboard keeps of a run: test metrics, size, and training speed in next-item
    targets per second (targets of an epoch × epochs / training wall time, validation
    included) — the unit both SASRec libraries share."""
    keep = {t: {p: {m: parts[p].get(m) for m in (*METRICS, "queries")} for p in parts}
            for t, parts in metrics["test"].items()}
    train = metrics.get("rows", {}).get("train", {})
    targets = train.get("rows", 0) * train.get("mean_targets", 1.0)
    epochs, seconds = metrics.get("epochs_run", 0), float(metrics["train_time_s"])
    return {"test": keep, "params": int(metrics["params"]), "train_time_s": seconds,
            "epochs_run": epochs,
            "targets_per_s": targets * epochs / seconds if seconds > 0 and epochs else None}


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
                    row[m] = mean_std([g[m] for g in got])
                rows.append(row)
            if rows:
                out[f"{target}/{part}"] = sorted(rows, key=lambda r: -r["hr@100"][0])
    return out


def bench_retrieval(data: list[str], variants: list[str], seeds: int, out: Path, *,
                    overrides: list[str] | None = None, peers: Sequence[str] = PEERS,
                    cache: Path = DEFAULT_CACHE, force: bool = False) -> dict[str, Any]:
    """Every variant × seed on every data set (see the module doc). ``peers``: "recbole"
    also trains RecBole's SASRec with the sasrec variant's config (when sasrec is run)."""
    from snsrec.bench import recbole_sasrec

    if seeds < 1 or not data or not variants:
        raise ConfigError("bench retrieval: give --data, --models and --seeds >= 1")
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise ConfigError(f"bench retrieval: unknown peer {', '.join(bad)}; peers: "
                          f"{', '.join(PEERS)} (or --peers none)")
    peer = "recbole" in peers and "sasrec" in variants
    if peer and not recbole_sasrec.available():     # say so before any training
        raise ConfigError(f"bench retrieval: the recbole peer needs RecBole; "
                          f"{recbole_sasrec.INSTALL}, or pass --peers none")
    if peer:
        recbole_sasrec.import_recbole()
    plan = {(d, v, k): resolve(v, d, k, overrides, cache)
            for d in data for v in variants for k in range(seeds)}   # bad variants fail here
    out = out_dir(out, "bench retrieval", force=force, legacy=["leaderboard.json"])
    result: dict[str, Any] = {"benchmark": "retrieval", "version": __version__,
                              "command": shlex.join(
                                  ["snsrec", "bench", "retrieval",
                                   *[x for d in data for x in ("--data", d)], "--models",
                                   ",".join(variants), "--seeds", str(seeds), "--out",
                                   str(out), "--peers", ",".join(peers) or "none",
                                   *[x for s in overrides or [] for x in ("--set", s)]]),
                              "data": {}}
    total, done = len(plan) + (len(data) * seeds if peer else 0), 0
    for d in data:
        runs = []
        for k in range(seeds):
            jobs = [(v, plan[(d, v, k)], None) for v in variants]
            if peer:
                jobs.append((PEER_VARIANT, plan[(d, "sasrec", k)],
                             recbole_sasrec.run_recbole_sasrec))
            for v, cfg, train in jobs:
                done += 1
                echo(f"bench retrieval [{done}/{total}]: {v} on {d}, seed {k}")
                rec = run_one(cfg, out / "runs" / data_slug(d) / v / f"seed{k}",
                              record=retrieval_record, train=train)
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
        speed = sasrec_speed(block["runs"])
        if speed:
            parts.append("### SASRec: snsrec and RecBole on the same split\n")
            parts.append("Training speed in next-item targets per second (each epoch's "
                         "targets × epochs / training wall time, validation included); "
                         "feed NDCG@10 as above.\n")
            parts.append(markdown_table(
                ["library", "feed ndcg@10", "train time (s)", "epochs", "targets/s", "seeds"],
                [[r["variant"], pm(*r["ndcg@10"]), f"{r['train_time_s']:.0f}",
                  f"{r['epochs']:.1f}", f"{r['targets_per_s']:,.0f}", r["seeds"]]
                 for r in speed]))
    return "\n".join(parts)


def sasrec_speed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per SASRec library (ours, RecBole's): feed NDCG@10 (mean, std), mean train time,
    epochs and targets/s — only when both ran."""
    rows = []
    for v in ("sasrec", PEER_VARIANT):
        got = [r for r in runs if r["variant"] == v and r.get("targets_per_s")
               and "all" in r["test"].get("feed", {})]
        if not got:
            return []
        rows.append({"variant": v, "seeds": len(got),
                     "ndcg@10": mean_std([g["test"]["feed"]["all"]["ndcg@10"] for g in got]),
                     **{k: float(np.mean([g[key] for g in got])) for k, key in
                        (("train_time_s", "train_time_s"), ("epochs", "epochs_run"),
                         ("targets_per_s", "targets_per_s"))}})
    return rows


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
