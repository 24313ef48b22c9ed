"""`snsrec bench multimodal`: QIN and DIN with and without the notes' multimodal vectors.

Every note of the world is encoded once — its text by a frozen sentence
encoder (MiniLM by default, vectors cached by content hash) followed by its
cover-style floats (`snsrec encode notes --with-cover`) — into
``OUT/note_vectors.parquet``. The features are the CTR benchmark's world
fields plus a vector field ``note_vec`` over that table and each scenario's
click history over the same ids (``configs/bench/multimodal/features.yaml``),
so a note no training row showed still has its vector. Each variant
(``configs/bench/multimodal/<variant>.yaml``: qin, din, and their
``multimodal: false`` ablations) is a ``snsrec train`` run, reused when
unchanged. The table gives test AUC on every impression and on the
impressions of *new* notes — notes no training impression showed, where
only the vectors know anything about them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from snsrec import __version__
from snsrec.bench.references import auc_references
from snsrec.bench.runner import data_slug, mean_std, percent, pm, run_one, shipped, variant_config
from snsrec.data.datasets import DEFAULT_CACHE
from snsrec.errors import ConfigError
from snsrec.io import out_dir, write_text
from snsrec.progress import echo
from snsrec.records import write_record

CONFIG_DIR = Path("configs/bench/multimodal")
VARIANTS = ("qin", "qin_id", "din", "din_id")
BACKBONES = ("minilm", "hash")


def note_vectors(data: str, out: Path, backbone: str, cache: Path) -> Path:
    """``OUT/<data>/note_vectors.parquet``: every note's text vector + cover floats (made once)."""
    from snsrec.data.datasets import resolve_dataset
    from snsrec.text.encode import encode_notes

    if backbone not in BACKBONES:
        raise ConfigError(f"bench multimodal: --backbone {backbone}; use {', '.join(BACKBONES)}")
    root = resolve_dataset(data, cache)
    path = out / data_slug(data) / f"note_vectors-{backbone}.parquet"
    if path.is_file():
        echo(f"bench multimodal: reusing {path}")
        return path
    # The encoder keeps its cache under cache_dir/<backbone>/ (shared with every other use).
    spec = {"backbone": backbone, "cache_dir": str(Path(cache) / "text-cache")} \
        if backbone == "minilm" else {"backbone": "hash", "dim": 64}
    source = out / data_slug(data) / f"{backbone}.yaml"
    write_text(source, yaml.safe_dump(spec))
    echo(encode_notes(source, root / "notes.parquet", path, with_cover=True)["text"])
    return path


def with_vectors(spec: Path, vectors: Path, path: Path) -> Path:
    """A copy of the feature YAML ``spec`` at ``path`` whose vector fields read ``vectors``."""
    cfg = yaml.safe_load(Path(spec).read_text())
    for v in cfg.get("vectors", []):
        v["path"] = str(vectors.resolve())
    write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    return path


def features_file(vectors: Path, out: Path) -> Path:
    """The bench's features (``configs/bench/multimodal/features.yaml``) over ``vectors``."""
    return with_vectors(shipped(CONFIG_DIR) / "features.yaml", vectors,
                        vectors.with_name(f"features-{vectors.stem}.yaml"))


def resolve(variant: str, data: str, seed: int, features: Path,
            overrides: Sequence[str] | None, cache: Path) -> Any:
    return variant_config("multimodal", CONFIG_DIR, variant, data, seed, overrides,
                          {"cache": str(cache), "features": str(features)})


def record_of(cfg: Any, run_dir: Path):
    def record(metrics: dict[str, Any]) -> dict[str, Any]:
        from snsrec.eval.metrics import auc
        from snsrec.runs import load_run
        from snsrec.train.pipeline import prepare_data
        from snsrec.train.trainer import Trainer

        data = prepare_data(cfg)
        test = data.arrays["test"]
        seen = np.isin(test["_note_id"], data.arrays["train"]["_note_id"])
        p = Trainer(cfg.train.model_copy(update={"device": "cpu"})).predict(
            load_run(run_dir).model, test)
        return {"auc": float(metrics["test"]["auc"]), "logloss": float(metrics["test"]["logloss"]),
                "auc_new_notes": auc(test["click"][~seen], p[~seen]),
                "new_note_rows": int((~seen).sum()), "rows": int(len(seen)),
                "params": int(metrics["params"]),
                "train_time_s": float(metrics["train_time_s"])}
    return record


def bench_multimodal(data: list[str], variants: list[str], seeds: int, out: Path, *,
                     backbone: str = "minilm", overrides: list[str] | None = None,
                     cache: Path = DEFAULT_CACHE, rerun: bool = False,
                     force: bool = False) -> dict[str, Any]:
    if seeds < 1 or not data or not variants:
        raise ConfigError("bench multimodal: give --data, --models and --seeds >= 1")
    started = time.time()
    out = out_dir(out, "bench multimodal", force=force, legacy=["multimodal.json"])
    result: dict[str, Any] = {
        "benchmark": "multimodal", "version": __version__, "backbone": backbone,
        "command": shlex.join(["snsrec", "bench", "multimodal",
                               *[x for d in data for x in ("--data", d)], "--models",
                               ",".join(variants), "--seeds", str(seeds), "--backbone",
                               backbone, "--out", str(out),
                               *[x for s in overrides or [] for x in ("--set", s)]]),
        "data": {}}
    for d in data:
        features = features_file(note_vectors(d, out, backbone, cache), out)
        plan = [(v, k, resolve(v, d, k, features, overrides, cache))
                for k in range(seeds) for v in variants]
        runs = []
        for i, (v, k, cfg) in enumerate(plan, 1):
            echo(f"bench multimodal [{i}/{len(plan)}]: {v} on {d}, seed {k}")
            run_dir = out / "runs" / data_slug(d) / v / f"seed{k}"
            runs.append({"variant": v, "seed": k,
                         **run_one(cfg, run_dir, record=record_of(cfg, run_dir), code=(__name__,),
                                 rerun=rerun)})
        rows = []
        for v in dict.fromkeys(r["variant"] for r in runs):
            mine = [r for r in runs if r["variant"] == v]
            rows.append({"variant": v, "seeds": len(mine), "params": mine[0]["params"],
                         "auc": mean_std([r["auc"] for r in mine]),
                         "auc_new_notes": mean_std([r["auc_new_notes"] for r in mine]),
                         "train_time_s": float(np.mean([r["train_time_s"] for r in mine]))})
        # The world's truth, popularity and the constant answer on the same test rows.
        refs = auc_references(plan[0][2], rows)
        result["data"][data_slug(d)] = {"spec": d, "table": rows, "references": refs,
                                        "runs": runs}
    result, md = write_record(out, "multimodal", result, markdown,
                              default_command=result["command"], started=started,
                              seeds=list(range(seeds)))
    return {"markdown": md, "results": result}


def markdown(result: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    parts = ["# Multimodal benchmark\n", f"Command: `{result['command']}`  (snsrec "
             f"{result['version']})\n", f"Note vectors: {result['backbone']} text vector + "
             "cover-style floats. *_id*: the same model with `multimodal: false` (id "
             "embeddings only). *new notes*: test impressions of notes no training impression "
             "showed. Mean ± std over seeds.\n"]
    for block in result["data"].values():
        parts.append(f"## {block['spec']}\n")
        if block["runs"]:
            r = block["runs"][0]
            parts.append(f"{r['rows']:,} test impressions, {r['new_note_rows']:,} of new "
                         "notes.\n")
        share = "auc_share" in (block["table"] or [{}])[0]
        rows = [[r["variant"], pm(*r["auc"], seeds=r["seeds"]),
                 *([percent(r["auc_share"])] if share else []),
                 pm(*r["auc_new_notes"], seeds=r["seeds"]), f"{r['params']:,}",
                 f"{r['train_time_s']:.0f}", r["seeds"]] for r in block["table"]]
        rows += [[r["model"], f"{r['auc_mean']:.4f}", percent(r["auc_share"]), "–", "–", "–",
                  "–"] for r in block.get("references", [])]
        parts.append(markdown_table(
            ["variant", "test AUC", *(["share of oracle"] if share else []), "AUC on new notes",
             "params", "train s", "seeds"], rows))
    return "\n".join(parts) + "\n"
