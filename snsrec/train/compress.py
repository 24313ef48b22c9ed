"""`snsrec compress RUN_DIR --rank R`: a trained CTR run, factorised, as a new run.

The run's config names its data; the FeatureMap is the run's own. A
calibration sample of the training split (``calibration`` rows, drawn with a
fixed seed) feeds ``snsrec.models.ranking.lowrank.compress``; the compressed
model is evaluated on the test split beside the original, both timed on the
same rows (inference samples/s in eval mode, one thread by default, taking
turns, best of five each), and written to ``OUT`` as a complete run whose ``metrics.json``
carries the comparison (``compression``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snsrec.errors import ConfigError, ModelError
from snsrec.io import check_out, out_dir
from snsrec.progress import echo


def _bytes(model: torch.nn.Module) -> int:
    return int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))


@torch.no_grad()
def throughput(models: dict[str, torch.nn.Module], arrays: dict[str, np.ndarray],
               batch_size: int, repeats: int = 5) -> dict[str, float]:
    """Rows per second of each model over ``arrays`` in eval mode: the models take turns
    (so a busy spell of the machine hits both) and each keeps its best of ``repeats``."""
    from snsrec.data.batches import to_tensors
    from snsrec.train.pipeline import model_inputs

    tensors = to_tensors(model_inputs(arrays))
    n = len(next(iter(tensors.values())))
    best = dict.fromkeys(models, float("inf"))
    for _ in range(repeats):
        for name, model in models.items():
            model.eval()
            t0 = time.perf_counter()
            for s in range(0, n, batch_size):
                model({k: v[s:s + batch_size] for k, v in tensors.items()})
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / t for name, t in best.items()}


def compress_run(run_dir: Path, rank: int, *, embedding_rank: int | None = None,
                 out: Path | None = None, calibration: int = 20_000, batch_size: int = 4096,
                 threads: int = 1, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Compress ``run_dir`` into ``out`` (a new run; replaced when snsrec wrote it, or with
    ``force``)."""
    from snsrec.config import validate_config
    from snsrec.data.batches import to_tensors
    from snsrec.models.ranking.lowrank import compress
    from snsrec.runs import RUN_LEGACY, is_complete, load_run, save_run
    from snsrec.train.pipeline import RunConfig, model_inputs, prepare_data
    from snsrec.train.retrieval import is_retrieval_model
    from snsrec.train.trainer import Trainer

    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        raise ModelError(f"{run_dir}: not a complete run (no metrics.json); train it first")
    if calibration < 1 or batch_size < 1 or threads < 1:
        raise ConfigError("compress: --calibration, --batch-size and --threads must be >= 1")
    out = Path(out) if out is not None else run_dir.with_name(f"{run_dir.name}-r{rank}")
    check_out(out, force=force, legacy=RUN_LEGACY, inputs=[run_dir])     # before any work
    run = load_run(run_dir)
    cfg = validate_config(RunConfig, run.config, str(run_dir / "config.yaml"))
    if is_retrieval_model(cfg.model.name):
        raise ModelError(f"{run_dir}: '{cfg.model.name}' is a retrieval model; compress "
                         "takes a CTR run")
    torch.set_num_threads(threads)
    data = prepare_data(cfg)
    train = data.arrays["train"]
    n = len(train["click"])
    rows = np.sort(np.random.default_rng(seed).choice(n, min(calibration, n), replace=False))
    sample = to_tensors({k: v[rows] for k, v in model_inputs(train).items()})
    batches = ({k: v[s:s + batch_size] for k, v in sample.items()}
               for s in range(0, len(rows), batch_size))
    small = compress(run.model, run.feature_map, batches, rank, embedding_rank)
    tcfg = cfg.train.model_copy(update={"device": "cpu", "threads": threads})
    trainer = Trainer(tcfg)
    test = data.arrays["test"]
    before, after = trainer.evaluate(run.model, test), trainer.evaluate(small, test)
    speed = throughput({"before": run.model, "after": small}, test, batch_size)
    size = {"before": _bytes(run.model), "after": _bytes(small)}
    params = {"before": int(sum(p.numel() for p in run.model.parameters())),
              "after": int(sum(p.numel() for p in small.parameters()))}
    report = {"rank": rank, "embedding_rank": embedding_rank, "calibration_rows": len(rows),
              "threads": threads, "batch_size": batch_size,
              "linear_layers": len(small.model_params["linear_ranks"]),
              "tables": len(small.model_params["table_ranks"]),
              "params": params, "bytes": size, "samples_per_s": speed,
              "test_auc": {"before": before["auc"], "after": after["auc"]},
              "smaller": size["before"] / size["after"],
              "faster": speed["after"] / speed["before"],
              "auc_change": after["auc"] - before["auc"]}
    metrics = {**run.metrics, "name": out.name, "model": "lowrank", "params": params["after"],
               "test": after, "compression": report, "compressed_from": str(run_dir)}
    new_cfg = {**run.config, "name": out.name,
               "model": {"name": "lowrank", "params": small.model_params}}
    save_run(out, small, run.feature_map, new_cfg, metrics, force=force)
    text = summary(run_dir, out, report)
    echo(text)
    return {"text": text, "run_dir": out, "report": report}


def summary(run_dir: Path, out: Path, r: dict[str, Any]) -> str:
    lines = [f"compress {run_dir} → {out}: {r['linear_layers']} linear layer(s) at rank "
             f"{r['rank']}, {r['tables']} embedding table(s)"
             + (f" at rank {r['embedding_rank']}" if r["tables"] else "")
             + f"; calibrated on {r['calibration_rows']:,} training rows",
             f"{'':<10}{'params':>12}{'bytes':>14}{'samples/s':>12}{'test AUC':>10}"]
    for k in ("before", "after"):
        lines.append(f"{k:<10}{r['params'][k]:>12,}{r['bytes'][k]:>14,}"
                     f"{r['samples_per_s'][k]:>12,.0f}{r['test_auc'][k]:>10.4f}")
    lines.append(f"{r['smaller']:.2f}x smaller, {r['faster']:.2f}x faster "
                 f"({r['threads']} thread(s)), AUC {r['auc_change']:+.4f}")
    return "\n".join(lines)


def bench_compress(runs: list[Path], rank: int, out: Path, *, embedding_rank: int | None = None,
                   calibration: int = 20_000, threads: int = 1,
                   force: bool = False) -> dict[str, Any]:
    """`snsrec bench compress RUN...`: compress each run into ``OUT/<run>-r<rank>`` and write
    ``compress.json`` / ``compress.md``: size, inference samples/s and test AUC before and
    after, per run and per model (mean over its runs), against the targets."""
    import shlex

    from snsrec import __version__
    from snsrec.records import write_record

    if not runs:
        raise ConfigError("bench compress: give one or more run directories")
    started = time.time()
    out = out_dir(out, "bench compress", force=force, legacy=["compress.json"], inputs=runs)
    rows = []
    for run_dir in runs:
        run_dir = Path(run_dir)
        name = f"{run_dir.parent.name}-{run_dir.name}" if run_dir.name.startswith("seed") \
            else run_dir.name
        res = compress_run(run_dir, rank, embedding_rank=embedding_rank,
                           out=out / f"{name}-r{rank}", calibration=calibration,
                           threads=threads)
        rows.append({"run": str(run_dir), "model": _base_model(run_dir), **res["report"]})
    models = {}
    for r in rows:
        models.setdefault(r["model"], []).append(r)
    summary_rows = [{"model": m, "runs": len(rs),
                     **{k: float(np.mean([r[k] for r in rs]))
                        for k in ("smaller", "faster", "auc_change")},
                     "worst_auc_change": float(min(r["auc_change"] for r in rs))}
                    for m, rs in models.items()]
    for s in summary_rows:
        s["meets_target"] = bool(s["smaller"] >= TARGET["smaller"] and
                                 s["faster"] >= TARGET["faster"] and
                                 s["auc_change"] >= -TARGET["auc_loss"])
    command = shlex.join(["snsrec", "bench", "compress", *map(str, runs), "--rank", str(rank),
                          *(["--embedding-rank", str(embedding_rank)] if embedding_rank else []),
                          "--out", str(out)])
    result = {"benchmark": "compress", "version": __version__, "command": command,
              "target": TARGET, "threads": threads, "runs": rows, "models": summary_rows}
    result, md = write_record(out, "compress", result, markdown, default_command=command,
                              started=started)
    return {"markdown": md, "results": result}


TARGET = {"smaller": 2.0, "faster": 1.5, "auc_loss": 0.001}


def _base_model(run_dir: Path) -> str:
    from snsrec.io import read_json

    return str(read_json(Path(run_dir) / "metrics.json").get("model", "?"))


def markdown(result: dict[str, Any]) -> str:
    """compress.md of a ``bench compress`` record."""
    from snsrec.report.markdown import markdown_table

    return "\n".join([
        "# Low-rank compression benchmark\n",
        f"Command: `{result['command']}`  (snsrec {result['version']})\n",
        f"Target: ≥ {TARGET['smaller']}× smaller, ≥ {TARGET['faster']}× faster inference, "
        f"test AUC loss ≤ {TARGET['auc_loss']} (mean over a model's runs). Inference: "
        f"{result['threads']} thread(s), eval mode, the test split, before and after timed in "
        "turns, best of five each.\n",
        markdown_table(["model", "runs", "smaller", "faster", "AUC change (mean)",
                        "AUC change (worst)", "target"],
                       [[s["model"], s["runs"], f"{s['smaller']:.2f}×", f"{s['faster']:.2f}×",
                         f"{s['auc_change']:+.4f}", f"{s['worst_auc_change']:+.4f}",
                         "met" if s["meets_target"] else "not met"]
                        for s in result["models"]]),
        "", markdown_table(["run", "params before → after", "samples/s before → after",
                            "test AUC before → after"],
                           [[r["run"], f"{r['params']['before']:,} → {r['params']['after']:,}",
                             f"{r['samples_per_s']['before']:,.0f} → "
                             f"{r['samples_per_s']['after']:,.0f}",
                             f"{r['test_auc']['before']:.4f} → {r['test_auc']['after']:.4f}"]
                            for r in result["runs"]])])
