"""`snsrec bench throughput`: snsrec against its peers, same run, same data, same model.

What runs
    DeepFM and DCNv2 (embedding 16, MLP 400-400-400 with BatchNorm, batch 4096,
    Adam 1e-3, 1 epoch) in snsrec (``build_model`` + ``Trainer`` on
    ``TensorBatches``), torch-rechub and DeepCTR-Torch (``snsrec.bench.peers``),
    on two tables:

    - ``world``: ``rows`` impressions of the small world (~1M) turned into
      Criteo's shape — 39 categorical fields: 26 "C" fields (the world's 12
      user / note / context ids, the search query, and 13 crosses of them
      such as user×category or scenario×hour, min count 2) and 13 "I" fields
      (time of day and week, note and account age, the eight cover features and
      the hashtag count), bucketised into 20 quantiles the way BARS bucketises
      Criteo's integers;
    - ``ml-1m``: MovieLens-1M as a CTR task (rating ≥ 4), BARS fields user,
      item, gender, age, occupation, zip and the genre string.

    Rows are a seeded uniform sample when ``rows`` is below the table's size;
    the data set's own time split gives train (train + valid) and test.

How it is measured
    Every (data, model, seed, library) trains in its own child process, so each
    peak RSS (``ru_maxrss``) is that library's alone; libraries alternate inside
    each seed so machine-load drift hits them alike. Training samples/s is the
    training loop only (no validation, no checkpoint); inference samples/s is
    the library's predict over the test split; test AUC / logloss are
    ``snsrec.eval.metrics`` on every library's predictions, averaged over seeds.

Roofline
    The MLP and the cross layers are the FLOPs: a linear layer ``k → n`` costs
    ``2kn`` FLOP per sample forward and ``4kn`` backward (gradients of input and
    weight), so training costs ``6 Σ kn`` and inference ``2 Σ kn`` per sample
    (embeddings, FM, BatchNorm and the optimiser are O(F·d) and left out).
    DeepFM at 39 fields: 6·(624·400 + 2·400·400 + 400) ≈ 3.4 MFLOP. Each child
    times fp32 ``torch.mm`` at exactly those (batch × k × n) shapes — forward
    and both backward products — just before it trains, giving GFLOP/s and the
    bound ``GFLOP/s / FLOP per sample``; a run's share is its samples/s ÷ that
    bound. Measuring in every child keeps the share honest on a shared machine
    whose load drifts during the run (the report gives the GFLOP/s spread).
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from snsrec.bench.peers import (
    CROSS_LAYERS,
    LABEL,
    MODELS,
    CtrArrays,
    check_peers,
    ctr_arrays_from_features,
    n_params,
    result,
    run_peer,
)
from snsrec.errors import ConfigError, DataError
from snsrec.io import out_dir, write_json
from snsrec.progress import Progress, echo
from snsrec.records import write_record

SNSREC = "snsrec"
SNSREC_BF16 = "snsrec-bf16"     # the same model and trainer with train.precision = bf16
PRECISION = {SNSREC: "fp32", SNSREC_BF16: "bf16"}
EMBEDDING_DIM = 16
MLP_UNITS = (400, 400, 400)
BATCH_SIZE = 4096
LR = 1e-3
EPOCHS = 1
N_BUCKETS = 20
CROSS_MIN_COUNT = 2
TARGET_RATIO = 1.5          # snsrec ≥ 1.5× the faster peer, train and inference
AUC_TOLERANCE = 0.002       # AUC equal or better, within this when lower
SAMPLE_SEED = 0
MATMUL_SECONDS = 0.5        # per child: best of repeated matmul rounds within this time

# -- the Criteo-shaped world table -------------------------------------------

WORLD_IDS = [("user_id", "events.user_id"), ("note_id", "events.note_id"),
             ("author_id", "notes.author_id"), ("scenario", "events.scenario"),
             ("position", "events.position"), ("category", "notes.category"),
             ("subcategory", "notes.subcategory"), ("language", "notes.language"),
             ("is_ad", "notes.is_ad"), ("gender", "users.gender"),
             ("age_bucket", "users.age_bucket"), ("city", "users.city"),
             ("query", "events.query")]
# Crosses are events-level string columns "a|b" built before the FeatureMap sees them.
WORLD_CROSSES = [("user_id", "scenario"), ("user_id", "category"), ("user_id", "subcategory"),
                 ("user_id", "author_id"), ("note_id", "scenario"), ("note_id", "position"),
                 ("author_id", "scenario"), ("category", "scenario"), ("category", "position"),
                 ("city", "category"), ("gender", "category"), ("age_bucket", "subcategory"),
                 ("scenario", "hour")]
COVER = ("brightness", "saturation", "contrast", "warmth", "faces", "text_overlay", "clutter",
         "closeup")
WORLD_NUMERIC = [("hour_of_day", "hour_of_day"), ("day_of_week", "day_of_week"),
                 ("note_age_hours", "note_age_hours"), ("user_age_days", "user_age_days"),
                 *[(f"cover_{c}", f"notes.cover_{c}") for c in COVER],
                 ("n_hashtags", "notes.n_hashtags")]
ML_FIELDS = [("user_id", "events.user_id"), ("item_id", "events.note_id"),
             ("gender", "users.gender"), ("age", "users.age"),
             ("occupation", "users.occupation"), ("zip", "users.zip_code"),
             ("genres", "notes.genre")]


def _sample(events: pl.DataFrame, rows: int) -> pl.DataFrame:
    """``rows`` events drawn uniformly without replacement (seeded), in their original order."""
    if rows >= events.height:
        return events
    idx = np.sort(np.random.default_rng(SAMPLE_SEED).choice(events.height, rows, replace=False))
    return events[idx]


def _with_crosses(events: pl.DataFrame, tables: Any) -> pl.DataFrame:
    """Add one ``x_a_b`` string column "a|b" per cross (null when either side is null)."""
    names = [f"x_{a}_{b}" for a, b in WORLD_CROSSES]
    joined = events.lazy() \
        .join(tables.notes.select("note_id", "author_id", "category", "subcategory"),
              on="note_id", how="left", maintain_order="left") \
        .join(tables.users.select("user_id", "city", "gender", "age_bucket"), on="user_id",
              how="left", maintain_order="left") \
        .with_columns(hour=pl.col("ts").dt.hour())
    crosses = [pl.concat_str([pl.col(a).cast(pl.String), pl.col(b).cast(pl.String)],
                             separator="|").alias(n) for (a, b), n in zip(WORLD_CROSSES, names,
                                                                          strict=True)]
    return joined.with_columns(crosses).select([*events.columns, *names]).collect()


def _world_spec() -> Any:
    from snsrec.data.features import CategoricalSpec, FeatureSpec, NumericSpec

    cat = [CategoricalSpec(name=n, column=c) for n, c in WORLD_IDS]
    cat += [CategoricalSpec(name=f"x_{a}_{b}", column=f"events.x_{a}_{b}",
                            min_count=CROSS_MIN_COUNT) for a, b in WORLD_CROSSES]
    num = [NumericSpec(name=n, column=c, mode="bucketize", n_buckets=N_BUCKETS)
           for n, c in WORLD_NUMERIC]
    return FeatureSpec(categorical=cat, numeric=num, multi=[], sequences=[], text=[],
                       labels=["click"])


def _ml_spec() -> Any:
    from snsrec.data.features import CategoricalSpec, FeatureSpec

    return FeatureSpec(categorical=[CategoricalSpec(name=n, column=c) for n, c in ML_FIELDS],
                       numeric=[], multi=[], sequences=[], text=[], labels=["click"])


def build_table(spec_name: str, data: str, rows: int, cache: Path) -> tuple[CtrArrays, dict]:
    """CtrArrays of data set ``data`` ("world" → Criteo shape, "ml-1m" → BARS fields)."""
    from dataclasses import replace

    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.features import FeatureMap
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables

    root = resolve_dataset(data, cache=cache)
    tables = load_tables(root)
    events = _sample(tables.events.collect(), rows)
    if spec_name == "world":
        if tables.notes is None or tables.users is None:
            raise DataError(f"{root}: bench throughput's world table needs notes and users; "
                            f"pass a world (world:small)")
        notes = tables.notes.with_columns(
            [pl.col("cover").struct.field(c).alias(f"cover_{c}") for c in COVER]
            + [pl.col("hashtags").list.len().alias("n_hashtags")])
        tables = replace(tables, notes=notes)
        events, spec = _with_crosses(events, tables), _world_spec()
    else:
        spec = _ml_spec()
    tables = replace(tables, events=events.lazy())
    splits = split_events(tables)
    train = pl.concat([splits["train"], splits["valid"]])   # no early stopping: valid is train
    fmap = FeatureMap.fit(tables, spec, train=train)
    arrays = ctr_arrays_from_features(fmap.transform(tables, train),
                                      fmap.transform(tables, splits["test"]), fmap)
    if arrays.n_train == 0 or arrays.n_test == 0:
        raise DataError(f"{root}: {rows:,} sampled rows leave an empty train or test split "
                        f"({arrays.n_train} / {arrays.n_test}); raise --rows")
    info = {"name": spec_name, "source": data, "rows": events.height,
            "train_rows": arrays.n_train, "test_rows": arrays.n_test,
            "fields": len(arrays.fields), "ids": int(sum(arrays.vocab_sizes.values())),
            "train_ctr": float(arrays.train[LABEL].mean())}
    return arrays, info


# -- snsrec's side -------------------------------------------------------------


@dataclass
class ArrayFeatureMap:
    """The FeatureMap contract models are built on, for plain categorical arrays."""

    fields: list[Any]

    @classmethod
    def of(cls, data: CtrArrays) -> ArrayFeatureMap:
        from snsrec.data.features import Field

        return cls([Field(n, "categorical", v) for n, v in data.vocab_sizes.items()])


def snsrec_params(model: str, embedding_dim: int, mlp: Sequence[int]) -> dict[str, Any]:
    """snsrec's hyper-parameters for the peers' configuration (see ``snsrec.bench.peers``)."""
    params: dict[str, Any] = {"embedding_dim": embedding_dim, "hidden_units": list(mlp),
                              "dropout": 0.0, "activation": "relu", "batch_norm": True}
    if model == "dcnv2":
        params.update(structure="parallel", num_cross_layers=CROSS_LAYERS, low_rank=None)
    return params


def run_snsrec(model: str, data: CtrArrays, *, embedding_dim: int = EMBEDDING_DIM,
               mlp: Sequence[int] = MLP_UNITS, batch_size: int = BATCH_SIZE,
               epochs: int = EPOCHS, lr: float = LR, seed: int = 0,
               precision: str = "fp32") -> dict[str, Any]:
    """snsrec's DeepFM / DCNv2 through ``build_model`` + ``Trainer``; the same row as run_peer."""
    from snsrec.data.batches import TensorBatches
    from snsrec.eval.protocols import LABEL as CLICK
    from snsrec.models.registry import build_model
    from snsrec.train.trainer import TrainConfig, Trainer

    def arrays(split: dict[str, np.ndarray], n: int | None = None) -> dict[str, np.ndarray]:
        out = {f: split[f][:n] for f in data.fields}
        out[CLICK] = split[LABEL][:n]
        return out

    net = build_model(model, ArrayFeatureMap.of(data), **snsrec_params(model, embedding_dim, mlp))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, eval_batch_size=batch_size, lr=lr,
                      seed=seed, early_stop_patience=epochs, precision=precision)
    trainer = Trainer(cfg)
    batches = TensorBatches(arrays(data.train), batch_size, shuffle=True, seed=seed)
    # fit validates after each epoch; a small slice keeps that out of the way (not timed).
    fit = trainer.fit(net, batches, arrays(data.test, batch_size))
    train_s = float(sum(h["time_s"] for h in fit["history"]))
    test = arrays(data.test)
    t0 = time.perf_counter()
    p = trainer.predict(net, test)
    infer_s = time.perf_counter() - t0
    library = next(lib for lib, prec in PRECISION.items() if prec == precision)
    return result(library, model, data, train_s, infer_s, p, n_params(net))


# -- roofline ------------------------------------------------------------------


def linear_shapes(model: str, n_fields: int, embedding_dim: int = EMBEDDING_DIM,
                  mlp: Sequence[int] = MLP_UNITS) -> list[tuple[int, int]]:
    """(in, out) of every dense layer whose matmul dominates the model's FLOPs."""
    d = n_fields * embedding_dim
    dims = [d, *mlp]
    shapes = list(zip(dims[:-1], dims[1:], strict=True))
    if model == "deepfm":
        return [*shapes, (mlp[-1], 1)]
    return [*[(d, d)] * CROSS_LAYERS, *shapes, (d + mlp[-1], 1)]


def flops_per_sample(shapes: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Forward 2kn and backward 4kn FLOP per sample and layer (see the module docstring)."""
    macs = float(sum(k * n for k, n in shapes))
    return {"train": 6.0 * macs, "infer": 2.0 * macs}


def matmul_gflops(shapes: Sequence[tuple[int, int]], batch: int = BATCH_SIZE,
                  min_seconds: float = 1.0, dtype: torch.dtype = torch.float32) -> float:
    """``torch.mm`` GFLOP/s (fp32 or bf16) over a training step's products at these shapes.

    Per layer ``k → n``: forward ``[B,k]·[k,n]``, input gradient ``[B,n]·[n,k]``
    and weight gradient ``[k,B]·[B,n]``; layers with n = 1 are skipped (they
    are matrix–vector products that no library can run at matmul speed).
    """
    gen = torch.Generator().manual_seed(0)
    ops = []
    for k, n in shapes:
        if n == 1:
            continue
        x, w, g = (torch.randn(*s, generator=gen).to(dtype)
                   for s in ((batch, k), (k, n), (batch, n)))
        ops += [(x, w), (g, w.t()), (x.t(), g)]
    flop = sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in ops)
    for a, b in ops:            # warm-up: thread pool, packing buffers
        torch.mm(a, b)
    best, spent = math.inf, 0.0
    while spent < min_seconds:
        t0 = time.perf_counter()
        for a, b in ops:
            torch.mm(a, b)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return flop / best / 1e9


# -- child processes -----------------------------------------------------------


def run_library(library: str, model: str, data: CtrArrays, seed: int) -> dict[str, Any]:
    kw = {"embedding_dim": EMBEDDING_DIM, "mlp": MLP_UNITS, "batch_size": BATCH_SIZE,
          "epochs": EPOCHS, "lr": LR, "seed": seed}
    if library in PRECISION:
        return run_snsrec(model, data, **kw, precision=PRECISION[library])
    return run_peer(library, model, data, **kw)


def _child(library: str, model: str, data_dir: str, seed: str, out: str) -> None:
    """Entry point of one child: load the arrays, time the matmul, run one library, write JSON."""
    from snsrec.progress import set_quiet
    from snsrec.train.trainer import available_cores

    set_quiet(True)
    data = CtrArrays.load(data_dir)
    torch.set_num_threads(available_cores())
    precision = PRECISION.get(library, "fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gflops = matmul_gflops(linear_shapes(model, len(data.fields)), min_seconds=MATMUL_SECONDS,
                           dtype=dtype)
    res = run_library(library, model, data, int(seed))
    write_json(out, {**res, "matmul_gflops": gflops, "precision": precision})


def run_child(library: str, model: str, data_dir: Path, seed: int, workdir: Path) -> dict:
    out = workdir / f"{library}-{model}-{data_dir.name}-{seed}.json"
    proc = subprocess.run([sys.executable, "-m", "snsrec.bench.throughput", library, model,
                           str(data_dir), str(seed), str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"bench throughput: {library} {model} on {data_dir.name} (seed {seed}) "
                        f"failed ({tail}); run it alone with `python -m snsrec.bench.throughput "
                        f"{library} {model} DATA_DIR {seed} OUT.json` to see the full error")
    return json.loads(out.read_text(encoding="utf-8"))


# -- aggregation and report ----------------------------------------------------


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if xs else math.nan


def roofline(runs: list[dict], data: str, model: str, n_fields: int,
             precision: str = "fp32") -> dict[str, Any]:
    """FLOP per sample of (data, model) and the ``precision`` matmul GFLOP/s its children measured."""
    shapes = linear_shapes(model, n_fields)
    fl = flops_per_sample(shapes)
    g = [r["matmul_gflops"] for r in runs if (r["data"], r["model"]) == (data, model)
         and r.get("precision", "fp32") == precision]
    mean = _mean(g)
    return {"shapes": shapes, "precision": precision,
            "flops_train": fl["train"], "flops_infer": fl["infer"],
            "gflops": mean, "gflops_min": min(g, default=math.nan),
            "gflops_max": max(g, default=math.nan),
            "train": mean * 1e9 / fl["train"], "infer": mean * 1e9 / fl["infer"]}


def summarise(runs: list[dict], data: str, model: str, library: str,
              bound: dict[str, Any]) -> dict[str, Any]:
    """Mean over seeds of one (data, model, library) cell; shares of each run's own bound."""
    mine = [r for r in runs if (r["data"], r["model"], r["library"]) == (data, model, library)]
    row = {"data": data, "model": model, "library": library, "seeds": len(mine),
           "params": mine[0]["params"] if mine else 0}
    for key in ("train_samples_per_s", "infer_samples_per_s", "test_auc", "test_logloss",
                "peak_rss_gb", "train_s", "infer_s", "matmul_gflops"):
        row[key] = _mean([r[key] for r in mine])
    row["test_auc_std"] = float(np.std([r["test_auc"] for r in mine])) if mine else math.nan
    for kind in ("train", "infer"):
        row[f"{kind}_roofline_share"] = _mean([
            r[f"{kind}_samples_per_s"] * bound[f"flops_{kind}"] / (r["matmul_gflops"] * 1e9)
            for r in mine])
    return row


def verdict(rows: list[dict], data: str, model: str,
            library: str = SNSREC) -> dict[str, Any] | None:
    """snsrec (``library``: a PRECISION key) against the faster peer of one (data, model)."""
    ours = next((r for r in rows if (r["data"], r["model"], r["library"]) ==
                 (data, model, library)), None)
    peers = [r for r in rows if (r["data"], r["model"]) == (data, model)
             and r["library"] not in PRECISION]
    if ours is None or not peers:
        return None
    train_peer = max(peers, key=lambda r: r["train_samples_per_s"])
    infer_peer = max(peers, key=lambda r: r["infer_samples_per_s"])
    best_auc = max(r["test_auc"] for r in peers)
    out = {"data": data, "model": model, "library": library,
           "train_ratio": ours["train_samples_per_s"] / train_peer["train_samples_per_s"],
           "train_vs": train_peer["library"],
           "infer_ratio": ours["infer_samples_per_s"] / infer_peer["infer_samples_per_s"],
           "infer_vs": infer_peer["library"], "auc_delta": ours["test_auc"] - best_auc}
    out["meets_target"] = bool(out["train_ratio"] >= TARGET_RATIO
                               and out["infer_ratio"] >= TARGET_RATIO
                               and out["auc_delta"] >= -AUC_TOLERANCE)
    return out


def _markdown(result_: dict[str, Any]) -> str:
    rf, env = result_["roofline"], result_["environment"]
    lines = ["# Throughput against the peers", "",
             f"DeepFM and DCNv2: embedding {EMBEDDING_DIM}, MLP "
             f"{'-'.join(map(str, MLP_UNITS))} (ReLU, BatchNorm), batch {BATCH_SIZE}, Adam "
             f"{LR:g}, {EPOCHS} epoch; {result_['seeds']} seed(s), means. "
             f"{env['threads']} torch threads on {env['cores']} cores; wall "
             f"{result_['wall_s']:.0f} s.", "",
             "| data | rows (train / test) | fields | ids |", "|---|---:|---:|---:|"]
    for d in result_["data"]:
        lines.append(f"| {d['name']} ({d['source']}) | {d['train_rows']:,} / "
                     f"{d['test_rows']:,} | {d['fields']} | {d['ids']:,} |")
    lines += ["", "| data | model | library | train samples/s | infer samples/s | test AUC | "
              "logloss | peak RSS GB | params | train roofline | infer roofline |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result_["results"]:
        lines.append(
            f"| {r['data']} | {r['model']} | {r['library']} | {r['train_samples_per_s']:,.0f} | "
            f"{r['infer_samples_per_s']:,.0f} | {r['test_auc']:.4f} | {r['test_logloss']:.4f} | "
            f"{r['peak_rss_gb']:.2f} | {r['params']:,} | {r['train_roofline_share']:.0%} | "
            f"{r['infer_roofline_share']:.0%} |")
    if result_["verdicts"]:
        lines += ["", f"Target: snsrec ≥ {TARGET_RATIO}× the faster peer in training and "
                  f"inference, test AUC ≥ the best peer's − {AUC_TOLERANCE}. Peers run in "
                  f"fp32; `{SNSREC_BF16}` is snsrec with `train.precision: bf16` (matmuls "
                  "in bfloat16 under autocast; weights, optimizer and logits in float32).", "",
                  "| data | model | snsrec | train × | infer × | AUC Δ | target |",
                  "|---|---|---|---:|---:|---:|---|"]
        for v in result_["verdicts"]:
            lines.append(f"| {v['data']} | {v['model']} | {v['library']} | {v['train_ratio']:.2f} "
                         f"(vs {v['train_vs']}) | {v['infer_ratio']:.2f} (vs {v['infer_vs']}) | "
                         f"{v['auc_delta']:+.4f} | {'met' if v['meets_target'] else 'MISSED'} |")
    lines += ["", "Roofline: torch.mm at each model's layer shapes (forward + both "
              "backward products, batch 4096) in the run's precision (fp32 for the peers and "
              "`snsrec`, bf16 for `snsrec-bf16`), timed in every child just before it trains; "
              "FLOP per sample = 6·Σ k·n training, 2·Σ k·n inference over its dense layers. "
              "A run's share = its samples/s ÷ (its GFLOP/s ÷ FLOP per sample).", "",
              "| data | model | precision | FLOP/sample train | matmul GFLOP/s mean (min–max) | "
              "bound train samples/s | bound infer samples/s |",
              "|---|---|---|---:|---:|---:|---:|"]
    for key, b in rf.items():
        data, model, precision = key.split("/")
        lines.append(f"| {data} | {model} | {precision} | {b['flops_train'] / 1e6:.2f} M | "
                     f"{b['gflops']:.0f} "
                     f"({b['gflops_min']:.0f}–{b['gflops_max']:.0f}) | {b['train']:,.0f} | "
                     f"{b['infer']:,.0f} |")
    return "\n".join(lines) + "\n"


def bench_throughput(out: Path, *, rows: int = 1_000_000, seeds: int = 3,
                     peers: list[str] | None = None, models: Sequence[str] = MODELS,
                     world: str = "world:small", movielens: str | None = "recbole:ml-1m",
                     cache: Path = Path("data"),
                     precisions: Sequence[str] = ("fp32", "bf16"),
                     force: bool = False) -> dict[str, Any]:
    """Run every library × model × data set × seed; write ``throughput.json`` + ``.md``.

    ``precisions``: snsrec's own rows, ``fp32`` (library "snsrec") and / or
    ``bf16`` ("snsrec-bf16", ``train.precision: bf16``); peers run in fp32.
    """
    from snsrec.train.trainer import available_cores

    peers = list(peers) if peers is not None else ["torch-rechub", "deepctr-torch"]
    check_peers(peers)                 # unknown / uninstalled peer → ConfigError before work
    for m in models:
        if m not in MODELS:
            raise ConfigError(f"bench throughput: unknown model '{m}'; choose from "
                              f"{', '.join(MODELS)}")
    ours = [lib for lib, prec in PRECISION.items() if prec in precisions]
    unknown = sorted(set(precisions) - set(PRECISION.values()))
    if unknown or not ours:
        raise ConfigError(f"bench throughput: precision(s) {unknown or list(precisions)} "
                          f"unknown; choose from {', '.join(PRECISION.values())}")
    if rows < 100 or seeds < 1:
        raise ConfigError(f"bench throughput: rows ({rows}) must be >= 100 and seeds ({seeds}) "
                          f">= 1")
    libraries = [*ours, *peers]
    out = out_dir(out, "bench throughput", force=force, legacy=["throughput.json"])
    sources = [("world", world)] + ([("ml-1m", movielens)] if movielens else [])
    t_start = time.perf_counter()
    started = time.time()
    runs, infos = [], []
    with tempfile.TemporaryDirectory(prefix="snsrec-bench-throughput-") as tmp:
        work = Path(tmp)
        for name, spec in sources:
            echo(f"bench throughput: building the {name} table from {spec} ...")
            arrays, info = build_table(name, spec, rows, Path(cache))
            infos.append(info)
            data_dir = work / name
            data_dir.mkdir()
            arrays.save(data_dir)
            total = len(models) * seeds * len(libraries)
            with Progress(f"{name}: train + infer", total=total, unit="run") as bar:
                for model in models:
                    for seed in range(seeds):
                        for lib in libraries:
                            r = run_child(lib, model, data_dir, seed, work)
                            runs.append({**r, "data": name, "seed": seed})
                            bar.update()
    used = sorted({PRECISION.get(lib, "fp32") for lib in libraries})
    bounds = {f"{d['name']}/{m}/{p}": roofline(runs, d["name"], m, d["fields"], p)
              for d in infos for m in models for p in used}
    rows_out = [summarise(runs, d["name"], m, lib,
                          bounds[f"{d['name']}/{m}/{PRECISION.get(lib, 'fp32')}"])
                for d in infos for m in models for lib in libraries]
    verdicts = [v for d in infos for m in models for lib in ours
                if (v := verdict(rows_out, d["name"], m, lib))]
    res: dict[str, Any] = {
        "benchmark": "throughput", "seeds": seeds, "rows": rows, "libraries": libraries,
        "config": {"embedding_dim": EMBEDDING_DIM, "mlp": list(MLP_UNITS), "batch_norm": True,
                   "dropout": 0.0, "batch_size": BATCH_SIZE, "lr": LR, "optimizer": "adam",
                   "epochs": EPOCHS, "dcnv2": {"structure": "parallel",
                                               "cross_layers": CROSS_LAYERS,
                                               "low_rank": None}},
        "environment": {"cores": available_cores(), "threads": available_cores(),
                        "torch": torch.__version__, "versions": _versions(peers)},
        "data": infos, "roofline": bounds, "results": rows_out, "verdicts": verdicts,
        "runs": runs, "wall_s": time.perf_counter() - t_start}
    command = shlex.join(["snsrec", "bench", "throughput", "--out", str(out), "--rows", str(rows),
                          "--seeds", str(seeds), "--peers", ",".join(peers), "--precisions",
                          ",".join(precisions)])
    res, md = write_record(out, "throughput", res, _markdown, default_command=command,
                           started=started, seeds=list(range(seeds)))
    return {**res, "markdown": md}


def _versions(peers: Sequence[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in [SNSREC, *peers]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


if __name__ == "__main__":
    _child(*sys.argv[1:6])
