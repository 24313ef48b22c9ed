"""`snsrec bench retrieval`: every retriever × seed on a data set, full-corpus leaderboards.

Each entry of ``--models`` is a variant with its YAML under
``configs/bench/retrieval/<variant>.yaml`` (a run config without ``data``:
the bench sets it) — RED-Rec, its single-scenario and ID ablations, the
mean-pool two-tower, ItemCF, category popularity and most-popular. Every run goes through
``snsrec train`` (the retrieval run: samples, the shared trainer, the
full-corpus protocol of ``snsrec.eval.protocols``) into
``OUT/runs/<data>/<variant>/seed<k>/``; finished runs are reused and an
interrupted one resumes (``snsrec.bench.runner.run_one``). The leaderboard gives,
per target (feed next click, search click, ads conversion) and per note set
(all, cold: created after the training cut-off), the mean ± sample std over
seeds of HR@10, HR@100, NDCG@10 and MRR.

On a world each table also has an **oracle** row, computed at leaderboard time
without training (so a board rebuilt from reused runs has it): the same query rows
(``snsrec.train.retrieval.eval_parts``, as the first variant's seed-0 config
draws them), every note existing at the query time ranked by the world's truth —
that user's P(click) at that time in the target's scenario at the top slot,
× P(convert | click) for the ads-conversion target (``snsrec.eval.oracle``) —
scored with the same ``rank_of_targets`` / ``retrieval_metrics``. The eval rows
carry no search query (a model sees only the target scenario), so neither does
the oracle. Each row's ``<metric>_share`` is model / oracle.

Unlike the CTR oracle this one is no ceiling: a test target is a click on a note the
world's logging policy chose to show (by popularity, freshness, a noisy interest
estimate), while the truth ranks by the user's preference alone. A model that learns
what gets shown can pass it (on world:small's feed most do), so shares above 100%
occur and mean exactly that.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec import __version__
from snsrec.bench.runner import data_slug, mean_std, percent, pm, run_one, variant_config
from snsrec.data.datasets import DEFAULT_CACHE
from snsrec.errors import ConfigError
from snsrec.eval.metrics import retrieval_metrics
from snsrec.eval.oracle import has_truth, load_truth, oracle_share, truth_ranks
from snsrec.io import out_dir
from snsrec.progress import echo
from snsrec.records import write_record

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


ORACLE = "every note ranked by the world's true P(click) (× P(convert | click) for ads)"


def oracle_record(cfg: Any) -> dict[str, Any] | None:
    """The oracle's test metrics shaped like a run's (``[target][part]``: the PARTS a
    leaderboard shows); None for data without truth. No training."""
    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.sequences import BehaviourLog, Corpus
    from snsrec.data.tables import load_tables
    from snsrec.eval.protocols import KS
    from snsrec.train.retrieval import TARGETS, _split_times, eval_parts

    root = resolve_dataset(cfg.data, cfg.cache)
    if not has_truth(root):
        return None
    tables = load_tables(root)
    valid_start, test_start = _split_times(tables)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, valid_start)
    end = int(log.ts.max()) + 1                 # the runs' test period (train_retrieval_run)
    truth = load_truth(root)
    out: dict[str, Any] = {}
    for target, (scenario, conversion) in TARGETS.items():
        parts = eval_parts(log, corpus, test_start, end, target, cfg.retrieval, valid_start,
                           cfg.train.seed)
        out[target] = {}
        for part in PARTS:
            rows = parts[part]
            if len(rows["target"]):
                ranks = truth_ranks(truth, rows["_user"], rows["_ts"], scenario,
                                    rows["target"], corpus.note_ids, corpus.created,
                                    conversion=conversion)
                out[target][part] = {**retrieval_metrics(ranks, KS), "queries": len(ranks)}
    return out


def add_oracle(board: dict[str, Any], oracle: dict[str, Any] | None) -> None:
    """An ``oracle`` row under each table and every row's ``<metric>_share`` (model /
    oracle), in place; nothing without an oracle."""
    if oracle is None:
        return
    for key, rows in board.items():
        target, part = key.split("/")
        got = oracle.get(target, {}).get(part)
        if got is None:
            continue
        rows.append({"variant": "oracle", "reference": ORACLE, "queries": got["queries"],
                     **{m: (float(got[m]), 0.0) for m in METRICS}})
        for r in rows:
            for m in METRICS:
                r[f"{m}_share"] = oracle_share(r[m][0], got[m])


def bench_retrieval(data: list[str], variants: list[str], seeds: int, out: Path, *,
                    overrides: list[str] | None = None, peers: Sequence[str] = PEERS,
                    cache: Path = DEFAULT_CACHE, rerun: bool = False,
                force: bool = False) -> dict[str, Any]:
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
    started = time.time()
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
                              record=retrieval_record, train=train, rerun=rerun)
                runs.append({"variant": v, "seed": k, **rec})
        board = leaderboard(runs)
        echo(f"bench retrieval: the oracle on {d}")
        oracle = oracle_record(plan[(d, variants[0], 0)])
        add_oracle(board, oracle)
        result["data"][data_slug(d)] = {"spec": d, "leaderboard": board, "runs": runs,
                                        "oracle": oracle}
    result, md = write_record(out, "leaderboard", result, markdown,
                              default_command=result["command"], started=started,
                              seeds=list(range(seeds)))
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
                [[r["variant"] if "reference" not in r else f"*{r['variant']}*", r["queries"],
                  *[cell(r, m) for m in METRICS], r.get("seeds", "")] for r in rows]))
        if block.get("oracle"):
            parts.append(f"*oracle*: {ORACLE}, for that user at the query time in the "
                         "target's scenario at the top slot; no training. In brackets: the "
                         "share of the oracle (model / oracle). No ceiling: the targets are "
                         "clicks on notes the logging policy chose to show, and the truth "
                         "ranks by preference alone, so a model that learns what gets shown "
                         "can pass it (a share above 100%).\n")
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


def cell(row: dict[str, Any], metric: str) -> str:
    """``mean ± std`` (the value alone for the oracle) and the share of the oracle."""
    value = pm(*row[metric], seeds=row.get("seeds", 1))
    share = row.get(f"{metric}_share")
    return value if share is None else f"{value} ({percent(share)})"


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
