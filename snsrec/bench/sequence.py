"""`snsrec bench sequence`: DeepFM, DIN and SDIM over click histories of 50 … 2000 behaviours.

Data: a world whose users have long histories (``world:heavy``: the small
world's events over 250 users, median ~640 clicks each). Features:
``configs/bench/sequence/features.yaml`` — the CTR benchmark's fields plus one
click history across every scenario (``hist``, the most recent ``L``
behaviours strictly before each impression); DeepFM gets the same fields
without ``hist`` (the no-sequence reference, trained once). Each model ×
length × seed is a ``snsrec train`` run (``configs/bench/sequence/<model>.yaml``)
on a seeded sample of the splits (``--rows`` training rows, ``--eval-rows``
validation and test rows: a row of 2,000 behaviours is costly), reused when
unchanged.

Latency: per request, one test user's history and ``--candidates`` candidate
notes scored in one batch on one thread, p50 / p99 over ``--requests``
requests. SDIM's behaviour side (``user_state``) is computed ahead of the
request, as a serving system would keep it; its time is reported apart.
Targets (Ranking II issue): DIN and SDIM beat DeepFM's AUC; at 1,000+
behaviours SDIM is within 0.002 AUC of DIN and ≥ 5× faster per request.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from snsrec import __version__
from snsrec.bench.references import auc_references
from snsrec.bench.runner import data_slug, mean_std, percent, pm, run_one, shipped, variant_config
from snsrec.data.datasets import DEFAULT_CACHE
from snsrec.errors import ConfigError
from snsrec.eval.metrics import paired_difference
from snsrec.io import out_dir, write_text
from snsrec.progress import echo
from snsrec.records import write_record

CONFIG_DIR = Path("configs/bench/sequence")
LENGTHS = (50, 200, 1000, 2000)
MODELS = ("deepfm", "din", "sdim")
HIST = "hist"
TARGET = {"auc_gap": 0.002, "speedup": 5.0, "long": 1000}


def features_file(out: Path, length: int | None) -> Path:
    """The bench's feature YAML with every sequence (``hist`` and those beside it) at
    ``length`` behaviours (None: without sequences)."""
    spec = yaml.safe_load((shipped(CONFIG_DIR) / "features.yaml").read_text())
    seqs = spec.get("sequences") or []
    if not any(s.get("name") == HIST for s in seqs):
        raise ConfigError(f"{shipped(CONFIG_DIR) / 'features.yaml'}: no sequence '{HIST}'")
    spec["sequences"] = [] if length is None else [{**s, "max_len": length} for s in seqs]
    path = out / "features" / (f"{HIST}-{length}.yaml" if length else "no-history.yaml")
    write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return path


def resolve(model: str, data: str, length: int | None, seed: int, out: Path, rows: int,
            eval_rows: int, overrides: Sequence[str] | None, cache: Path) -> Any:
    base = {"cache": str(cache), "features": str(features_file(out, length)),
            "max_rows": {"train": rows, "valid": eval_rows, "test": eval_rows}}
    return variant_config("sequence", CONFIG_DIR, model, data, seed, overrides, base,
                          tag=f"L{length}" if length else "nohist")


@torch.no_grad()
def request_latency(model: torch.nn.Module, test: dict[str, np.ndarray], candidates: int,
                    requests: int, seed: int = 0) -> dict[str, float]:
    """p50 / p99 milliseconds to score ``candidates`` notes for one user, over ``requests``
    requests: each takes a test row with the longest histories as the user (its ``hist*``
    sequences and ``user_id``) and ``candidates`` other test rows as the candidates. SDIM's user
    state is computed first and timed apart (``state_ms``)."""
    from snsrec.data.batches import to_tensors
    from snsrec.train.pipeline import model_inputs

    model.eval()
    inputs = to_tensors(model_inputs(test))
    n = len(next(iter(inputs.values())))
    rng = np.random.default_rng(seed)
    lengths = (inputs[HIST] > 0).sum(1).numpy() if HIST in inputs else np.zeros(n)
    seq_fields = [k for k in inputs if k.startswith(HIST)]     # hist and its attributes
    users = np.argsort(-lengths, kind="stable")[:requests]
    times, state_times = [], []
    for i, u in enumerate([users[0], *users] if len(users) else []):   # the first: warm-up
        rows = torch.as_tensor(rng.choice(n, candidates, replace=n < candidates))
        batch = {k: v[rows] for k, v in inputs.items()}
        for key in (*seq_fields, "user_id"):
            if key in batch:
                batch[key] = inputs[key][int(u)].expand_as(batch[key]).contiguous()
        if hasattr(model, "user_state"):
            t0 = time.perf_counter()
            state = model.user_state({k: v[int(u):int(u) + 1] for k, v in inputs.items()})
            t1 = time.perf_counter()
            model.score(batch, [tuple(s.expand(candidates, *s.shape[1:]) for s in part)
                                for part in state])
            t2 = time.perf_counter()
            if i:
                state_times.append(t1 - t0)
        else:
            t1 = time.perf_counter()
            model(batch)
            t2 = time.perf_counter()
        if i:
            times.append(t2 - t1)
    ms = np.asarray(times) * 1e3
    out = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
           "mean_history": float(lengths[users].mean()) if len(users) else 0.0}
    if state_times:
        out["state_ms"] = float(np.median(state_times) * 1e3)
    return out


def record_of(cfg: Any, run_dir: Path, candidates: int, requests: int):
    def record(metrics: dict[str, Any]) -> dict[str, Any]:
        from snsrec.runs import load_run
        from snsrec.train.pipeline import prepare_data

        test = prepare_data(cfg).arrays["test"]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            latency = request_latency(load_run(run_dir).model, test, candidates, requests)
        finally:
            torch.set_num_threads(threads)
        hist = test.get(HIST)
        full = float(((hist > 0).sum(1) == hist.shape[1]).mean()) if hist is not None else None
        return {"auc": float(metrics["test"]["auc"]), "logloss": float(metrics["test"]["logloss"]),
                "params": int(metrics["params"]), "train_time_s": float(metrics["train_time_s"]),
                "rows": metrics["rows"], "full_history_share": full, **latency}
    return record


def bench_sequence(data: list[str], models: list[str], lengths: list[int], seeds: int,
                   out: Path, *, rows: int = 400_000, eval_rows: int = 50_000,
                   candidates: int = 500, requests: int = 20,
                   overrides: list[str] | None = None,
                   cache: Path = DEFAULT_CACHE, rerun: bool = False,
                force: bool = False) -> dict[str, Any]:
    if seeds < 1 or not data or not models or not lengths or min(lengths) < 1:
        raise ConfigError("bench sequence: give --data, --models, --lengths (>= 1) and "
                          "--seeds >= 1")
    if min(rows, eval_rows, candidates, requests) < 1:
        raise ConfigError("bench sequence: --rows, --eval-rows, --candidates and --requests "
                          "must be >= 1")
    started = time.time()
    out = out_dir(out, "bench sequence", force=force, legacy=["sequence.json"])
    plan = []
    for d in data:
        for m in models:
            for length in ([None] if m == "deepfm" else lengths):
                for k in range(seeds):
                    plan.append((d, m, length, k, resolve(m, d, length, k, out, rows, eval_rows,
                                                          overrides, cache)))
    result: dict[str, Any] = {
        "benchmark": "sequence", "version": __version__, "target": TARGET,
        "command": shlex.join(["snsrec", "bench", "sequence",
                               *[x for d in data for x in ("--data", d)], "--models",
                               ",".join(models), "--lengths", ",".join(map(str, lengths)),
                               "--seeds", str(seeds), "--rows", str(rows), "--eval-rows",
                               str(eval_rows), "--candidates", str(candidates), "--requests",
                               str(requests), "--out", str(out),
                               *[x for s in overrides or [] for x in ("--set", s)]]),
        "data": {}}
    runs: dict[str, list[dict[str, Any]]] = {}
    for i, (d, m, length, k, cfg) in enumerate(plan, 1):
        echo(f"bench sequence [{i}/{len(plan)}]: {m} on {d}, history {length or '-'}, seed {k}")
        tag = f"L{length}" if length else "nohist"
        run_dir = out / "runs" / data_slug(d) / f"{m}-{tag}" / f"seed{k}"
        rec = run_one(cfg, run_dir, record=record_of(cfg, run_dir, candidates, requests),
                      code=(__name__,), rerun=rerun)
        runs.setdefault(data_slug(d), []).append({"model": m, "length": length, "seed": k,
                                                   **rec})
    for d in data:
        mine = runs.get(data_slug(d), [])
        rows = table(mine)
        # The world's truth, popularity and the constant answer on the same test rows (no
        # training; computed afresh, so a table rebuilt from reused runs has them).
        refs = auc_references(next(cfg for dd, _, _, _, cfg in plan if dd == d), rows)
        result["data"][data_slug(d)] = {"spec": d, "table": rows, "references": refs,
                                        "runs": mine, "targets": verdicts(mine)}
    result, md = write_record(out, "sequence", result, markdown,
                              default_command=result["command"], started=started,
                              seeds=list(range(seeds)))
    return {"markdown": md, "results": result}


def table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for key in dict.fromkeys((r["model"], r["length"]) for r in runs):
        mine = [r for r in runs if (r["model"], r["length"]) == key]
        rows.append({"model": key[0], "length": key[1], "seeds": len(mine),
                     "auc": mean_std([r["auc"] for r in mine]),
                     "p50_ms": float(np.mean([r["p50_ms"] for r in mine])),
                     "p99_ms": float(np.mean([r["p99_ms"] for r in mine])),
                     "state_ms": float(np.mean([r["state_ms"] for r in mine]))
                     if "state_ms" in mine[0] else None,
                     "full_history_share": mine[0]["full_history_share"],
                     "train_time_s": float(np.mean([r["train_time_s"] for r in mine]))})
    return rows


def verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per history length: DIN and SDIM against DeepFM, paired by seed
    (``paired_difference``: "a" ahead only when its interval excludes 0); at >= 1,000
    behaviours SDIM's mean AUC gap to DIN and its speed-up."""
    def by_seed(model: str, length: int | None) -> dict[int, dict[str, Any]]:
        return {r["seed"]: r for r in runs if (r["model"], r["length"]) == (model, length)}

    base = by_seed("deepfm", None)
    out = []
    for length in sorted({r["length"] for r in runs if r["length"]}):
        v: dict[str, Any] = {"length": length}
        for m in ("din", "sdim"):
            got = by_seed(m, length)
            seeds = sorted(set(got) & set(base))
            if seeds:
                v[f"{m}_vs_deepfm"] = paired_difference([got[s]["auc"] for s in seeds],
                                                        [base[s]["auc"] for s in seeds])
        din, sdim = by_seed("din", length), by_seed("sdim", length)
        if length >= TARGET["long"] and din and sdim:
            gap = float(np.mean([r["auc"] for r in din.values()])
                        - np.mean([r["auc"] for r in sdim.values()]))
            speed = float(np.mean([r["p50_ms"] for r in din.values()])
                          / np.mean([r["p50_ms"] for r in sdim.values()]))
            v.update({"sdim_auc_gap": gap, "sdim_speedup": speed,
                      "sdim_close_and_fast": gap <= TARGET["auc_gap"]
                      and speed >= TARGET["speedup"]})
        out.append(v)
    return out


def _vs_deepfm(model: str, d: dict[str, Any]) -> str:
    """One paired comparison as a phrase: the mean difference, its interval, the reading."""
    if d["reading"] == "one run":
        return f"{model} − DeepFM {d['mean']:+.4f} (one seed: no claim)"
    reading = {"a": f"{model} ahead", "b": "DeepFM ahead", "tie": "tie"}[d["reading"]]
    return (f"{model} − DeepFM {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] over "
            f"{d['n']} seeds: {reading}")


def markdown(result: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    parts = ["# Sequence benchmark\n", f"Command: `{result['command']}`  (snsrec "
             f"{result['version']})\n", "Test AUC (mean ± std over seeds) and per-request latency "
             "of scoring the candidates for one user (one thread; SDIM with its user state "
             "computed ahead, its time in *state ms*). *full*: share of test rows whose history "
             "fills the length.\n"]
    for block in result["data"].values():
        parts.append(f"## {block['spec']}\n")
        share = "auc_share" in (block["table"] or [{}])[0]
        rows = [[r["model"], r["length"] or "–", pm(*r["auc"], seeds=r["seeds"]),
                 *([percent(r["auc_share"])] if share else []), f"{r['p50_ms']:.2f}",
                 f"{r['p99_ms']:.2f}", "–" if r["state_ms"] is None else f"{r['state_ms']:.2f}",
                 "–" if r["full_history_share"] is None else f"{r['full_history_share']:.2f}",
                 f"{r['train_time_s']:.0f}", r["seeds"]] for r in block["table"]]
        rows += [[r["model"], "–", f"{r['auc_mean']:.4f}", percent(r["auc_share"]), "–", "–",
                  "–", "–", "–", "–"] for r in block.get("references", [])]
        parts.append(markdown_table(
            ["model", "history", "test AUC", *(["share of oracle"] if share else []),
             "p50 ms", "p99 ms", "state ms", "full", "train s", "seeds"], rows))
        for v in block["targets"]:
            bits = [_vs_deepfm(m, v[f"{m}_vs_deepfm"]) for m in ("din", "sdim")
                    if f"{m}_vs_deepfm" in v]
            bits += [f"{m} beats DeepFM: {'yes' if v[f'{m}_beats_deepfm'] else 'no'} (by the "
                     "mean; an earlier record)" for m in ("din", "sdim")
                     if f"{m}_beats_deepfm" in v]
            if "sdim_auc_gap" in v:
                bits.append(f"SDIM within {TARGET['auc_gap']} AUC of DIN and ≥ "
                            f"{TARGET['speedup']:.0f}× faster: "
                            f"{'yes' if v['sdim_close_and_fast'] else 'no'} (gap "
                            f"{v['sdim_auc_gap']:+.4f}, {v['sdim_speedup']:.1f}×)")
            parts.append(f"- history {v['length']}: " + "; ".join(bits))
    return "\n".join(parts) + "\n"
