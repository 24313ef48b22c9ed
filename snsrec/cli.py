"""The ``snsrec`` command line. Thin: parse, call the library, print.

Every command catches ``SnsrecError`` (bad input the user can fix), prints it on
one line and exits with code 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from snsrec import __version__
from snsrec.errors import ConfigError, SnsrecError
from snsrec.progress import set_quiet
from snsrec.records import set_command
from snsrec.runtime import keep_freed_memory

app = typer.Typer(
    name="snsrec",
    help="snsrec: content understanding, cross-scenario retrieval, ranking, serving and "
         "offline simulation for a social content platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
world_app = typer.Typer(help="The synthetic SNS world: generate notes, users, events, truth.",
                        no_args_is_help=True)
data_app = typer.Typer(help="Import external data sets into the canonical tables.",
                       no_args_is_help=True)
features_app = typer.Typer(help="Fit and apply the FeatureMap.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: write JSON + Markdown results.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(bench_app, name="bench")
index_app = typer.Typer(help="ANN indexes (FAISS) over a retrieval run's item vectors.",
                        no_args_is_help=True)
app.add_typer(index_app, name="index")
sim_app = typer.Typer(help="Online simulation against the world's ground-truth users.",
                      no_args_is_help=True)
app.add_typer(sim_app, name="sim")
report_app = typer.Typer(help="Reports rendered from benchmark records.", no_args_is_help=True)
app.add_typer(report_app, name="report")


class Preset(str, Enum):
    tiny = "tiny"
    small = "small"
    heavy = "heavy"
    covers = "covers"
    medium = "medium"
    large = "large"


# Every benchmark that reuses finished runs (same config, same code fingerprint) takes it.
RERUN = typer.Option(False, "--rerun", help="Train every run again, even one whose config "
                     "and code are unchanged.")
# Every command that writes an output takes it: the one switch past snsrec.io's refusal to
# write over what snsrec did not write.
FORCE = typer.Option(False, "--force", help="Write over an output snsrec did not write (a "
                     "folder its .snsrec mark does not call snsrec's, or a file of another "
                     "kind).")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"snsrec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or status lines."),
    version: bool | None = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    set_quiet(quiet)


@world_app.command("generate")
def world_generate(
    preset: Preset = typer.Option(Preset.tiny, help="World size: tiny | small | heavy | covers | medium | large."),
    seed: int = typer.Option(7, help="Random seed; same preset + seed gives identical bytes."),
    out: Path | None = typer.Option(None, help="Output directory, replaced atomically when "
                                               "snsrec wrote it [default: worlds/PRESET]."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a world setting, e.g. --set harm_share=0.05 "
                            "(see `snsrec world settings`)."),
    force: bool = FORCE,
) -> None:
    """Generate a deterministic synthetic world: notes, users, events, queries and truth/."""
    from snsrec.data.world.generate import generate_world

    out = out if out is not None else Path("worlds") / preset.value
    info = generate_world(preset.value, seed, out, overrides=set_, force=force)
    rows = ", ".join(f"{k} {v:,}" for k, v in info["rows"].items())
    typer.echo(f"wrote {out}: {rows}")


@world_app.command("settings")
def world_settings(preset: Preset = typer.Option(Preset.tiny, help="Preset to show.")) -> None:
    """Print the settings of a preset (every key can be changed with --set)."""
    from snsrec.config import dump_config
    from snsrec.data.world.generate import world_config

    typer.echo(dump_config(world_config(preset.value)), nl=False)


@data_app.command("import")
def data_import(
    source: str = typer.Argument(..., help="movielens | recbole | bars | criteo | libsvm | libffm "
                                           "| kuairand | tenrec | obd | redmmu | snsbench"),
    path: Path = typer.Argument(..., help="File or directory the user already has."),
    out: Path = typer.Option(..., help="Output directory for the canonical Parquet tables."),
    force: bool = FORCE,
) -> None:
    """Convert an external data set into the canonical tables (extra columns kept)."""
    from snsrec.data.sources import import_source

    info = import_source(source, path, out, force=force)
    rows = ", ".join(f"{k} {v:,}" for k, v in info["rows"].items())
    typer.echo(f"wrote {out}: {rows}")


@features_app.command("fit")
def features_fit(
    data: Path = typer.Argument(..., help="Directory with canonical tables (a world or import)."),
    out: Path = typer.Option(..., help="Where to write feature_map.json."),
    config: Path | None = typer.Option(None, help="Feature YAML (defaults fit the world)."),
    force: bool = FORCE,
) -> None:
    """Fit a FeatureMap on the training split and save it as JSON."""
    from snsrec.data.features import fit_from_dir

    fmap = fit_from_dir(data, config, out, force=force)
    typer.echo(f"wrote {out}: {fmap.describe()}")


def _names(csv: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (a comma-separated option)."""
    return [m.strip() for m in csv.split(",") if m.strip()]


@bench_app.command("world")
def bench_world(
    preset: list[Preset] = typer.Option([Preset.small], help="Preset(s) to time."),
    seed: int = typer.Option(7, help="Random seed."),
    out: Path = typer.Option(Path("bench/world"), help="Directory for world.json / world.md."),
    force: bool = FORCE,
) -> None:
    """Time world generation: events/s and peak RSS per preset."""
    from snsrec.bench.world import bench_world as run

    result = run([p.value for p in preset], seed, out, force=force)
    typer.echo(result["markdown"])


@bench_app.command("retrieval")
def bench_retrieval(
    data: list[str] = typer.Option(["world:small"], help="Data set(s): world:small, "
                                   "recbole:ml-1m, ..."),
    models: str = typer.Option("toppop,itemcf,category,dssm,sasrec,redrec,redrec_feed,redrec_id",
                               help="Variants (configs/bench/retrieval/<variant>.yaml)."),
    seeds: int = typer.Option(3, help="Seeds per variant (mean ± std)."),
    out: Path = typer.Option(Path("bench/retrieval"), help="Directory for the leaderboard."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override for every run, e.g. "
                                          "--set train.epochs=1."),
    peers: str = typer.Option("recbole", help="Peer libraries: recbole (RecBole's SASRec "
                              "beside sasrec; the bench extra) or none."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """Full-corpus retrieval leaderboards per target (feed, search, ads) and cold-start."""
    from snsrec.bench.retrieval import bench_retrieval as run

    result = run(data, _names(models), seeds, out,
                 overrides=set_,
                 peers=[p.strip() for p in peers.split(",") if p.strip() not in ("", "none")],
                 rerun=rerun, force=force)
    typer.echo(result["markdown"])


@bench_app.command("conversion")
def bench_conversion(
    data: list[str] = typer.Option(["world:small"], help="World(s): world:PRESET[:SEED] (the "
                                   "true conversion probabilities are the world's)."),
    models: str = typer.Option("esmm,esmm_naive,mmoe,mmoe_naive",
                               help="Variants (configs/bench/conversion/<variant>.yaml)."),
    seeds: int = typer.Option(3, help="Seeds per variant (mean ± std)."),
    out: Path = typer.Option(Path("bench/conversion"), help="Directory for the leaderboard."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override for every run, e.g. "
                                          "--set train.epochs=2."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """Click → conversion on the ads impressions: ESMM and MMoE, entire-space vs naive CVR."""
    from snsrec.bench.conversion import bench_conversion as run

    result = run(data, _names(models), seeds, out, overrides=set_, rerun=rerun, force=force)
    typer.echo(result["markdown"])


@bench_app.command("moderation")
def bench_moderation(
    world: str = typer.Option("world:small", help="A world (world:PRESET or a directory): its "
                              "notes carry the harmful / harm_type truth."),
    model: str = typer.Option("smollm2-135m", help="The LLM: smollm2-135m | tiny-qwen2 | a HF "
                              "directory | a `snsrec llm sft/dpo` run."),
    out: Path = typer.Option(Path("bench/moderation"), help="Directory for moderation.json/.md."),
    seed: int = typer.Option(0, help="The task suite's split seed (train / test notes)."),
    limit: int | None = typer.Option(None, help="At most this many test notes."),
    batch_size: int = typer.Option(16, help="Notes per LLM batch."),
    threads: int | None = typer.Option(None, help="Torch threads."),
    force: bool = FORCE,
) -> None:
    """LLM moderation vs a hashed n-gram logistic regression on the world's test notes."""
    from snsrec.data.datasets import resolve_dataset
    from snsrec.llm.moderation import bench_moderation as run

    run(resolve_dataset(world), model, out, seed=seed, limit=limit, batch_size=batch_size,
        threads=threads, force=force)


@bench_app.command("sequence")
def bench_sequence(
    data: list[str] = typer.Option(["world:heavy"], help="Data set(s) with long histories."),
    models: str = typer.Option("deepfm,din,sdim", help="Models (configs/bench/sequence/)."),
    lengths: str = typer.Option("50,200,1000,2000", help="History lengths (behaviours)."),
    seeds: int = typer.Option(1, help="Seeds per model × length."),
    rows: int = typer.Option(400_000, help="Training rows (a seeded sample)."),
    eval_rows: int = typer.Option(50_000, help="Validation and test rows (a seeded sample)."),
    candidates: int = typer.Option(500, help="Candidates scored per request."),
    requests: int = typer.Option(20, help="Requests timed per run."),
    out: Path = typer.Option(Path("bench/sequence"), help="Directory for sequence.json / .md."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override for every run."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """DeepFM, DIN and SDIM over long click histories: test AUC and per-request latency."""
    from snsrec.bench.sequence import bench_sequence as run

    try:
        lens = [int(x) for x in _names(lengths)]
    except ValueError as e:
        raise ConfigError(f"--lengths {lengths!r}: give comma-separated integers") from e
    typer.echo(run(data, _names(models), lens, seeds, out, rows=rows, eval_rows=eval_rows,
                   candidates=candidates, requests=requests, overrides=set_,
                   rerun=rerun, force=force)["markdown"])


@bench_app.command("multimodal")
def bench_multimodal(
    data: list[str] = typer.Option(["world:small"], help="World(s) (notes with text and cover)."),
    models: str = typer.Option("qin,qin_id,din,din_id",
                               help="Variants (configs/bench/multimodal/<variant>.yaml)."),
    seeds: int = typer.Option(1, help="Seeds per variant."),
    backbone: str = typer.Option("minilm", help="Text encoder of the note vectors: minilm | "
                                 "hash."),
    out: Path = typer.Option(Path("bench/multimodal"), help="Directory for multimodal.json / "
                             ".md and the note vectors."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override for every run."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """QIN and DIN with and without the notes' text + cover vectors: test AUC, and on new notes."""
    from snsrec.bench.multimodal import bench_multimodal as run

    typer.echo(run(data, _names(models), seeds, out, backbone=backbone,
                   overrides=set_, rerun=rerun, force=force)["markdown"])


@bench_app.command("compress")
def bench_compress(
    runs: list[Path] = typer.Argument(..., help="CTR run directories (e.g. bench/ctr/runs/"
                                      "world_small/deepfm/seed0)."),
    rank: int = typer.Option(64, help="Rank of every linear layer that gets smaller."),
    embedding_rank: int | None = typer.Option(8, help="Rank of the embedding tables."),
    out: Path = typer.Option(Path("bench/compress"), help="Directory for the compressed runs "
                             "and compress.json / compress.md."),
    calibration: int = typer.Option(20_000, help="Training rows that set the factors."),
    threads: int = typer.Option(1, help="Torch threads for the timing."),
    force: bool = FORCE,
) -> None:
    """Compress trained CTR runs: size, inference speed and AUC against the targets."""
    from snsrec.train.compress import bench_compress as run

    typer.echo(run(runs, rank, out, embedding_rank=embedding_rank, calibration=calibration,
                   threads=threads, force=force)["markdown"])


@bench_app.command("index")
def bench_index(
    items: int = typer.Option(1_000_000, help="Item vectors to index."),
    dim: int = typer.Option(64, help="Vector size (RED-Rec: 64)."),
    users: int = typer.Option(200, help="Users to time (K interest vectors each)."),
    interests: int = typer.Option(3, help="Interest vectors per user."),
    kinds: str = typer.Option("flat,hnsw,ivfpq", help="Index kinds (flat is the reference)."),
    out: Path = typer.Option(Path("bench/index"), help="Directory for index.json / index.md."),
    force: bool = FORCE,
) -> None:
    """Build time, size, per-user latency and recall@100 of each FAISS index kind."""
    from snsrec.bench.index import bench_index as run

    result = run(out, items=items, dim=dim, users=users, interests=interests,
                 kinds=[x.strip() for x in kinds.split(",") if x.strip()], force=force)
    typer.echo(result["markdown"])


@bench_app.command("serve")
def bench_serve(
    items: int | None = typer.Option(None, help="Notes in the served index: the small world "
                                     "with n_notes=ITEMS, built once into data/ [default: "
                                     "1000000, or the --world's notes]."),
    rate: float = typer.Option(100.0, help="Requests per second, sent open-loop."),
    requests: int = typer.Option(3000, help="Requests to send; then the load stops."),
    mix: str = typer.Option("feed=0.8,search=0.1,events=0.1",
                            help="Shares of /v1/feed, /v1/search and /v1/events requests."),
    index: str = typer.Option("hnsw", help="ANN index kind served: flat | hnsw | ivfpq."),
    world: Path | None = typer.Option(None, help="Serve this world instead of building one."),
    ranker: str = typer.Option("lr", help="CTR model of the ranker run (trained once)."),
    batch: int = typer.Option(20, help="Events per /v1/events request."),
    seed: int = typer.Option(7, help="Seed of the world and of the load."),
    workers: int = typer.Option(1, help="Worker processes (snsrec serve --workers)."),
    concurrency: int = typer.Option(2, help="Requests in flight per platform process "
                                    "(snsrec serve --concurrency)."),
    out: Path = typer.Option(Path("bench/serve"), help="Directory for serve.json / serve.md "
                             "(and the cached runs, the store and the server's log)."),
    force: bool = FORCE,
) -> None:
    """The server on loopback under a bounded open-loop load: p50/p95/p99 per endpoint."""
    from snsrec.bench.serve import bench_serve as run

    result = run(out, items=items, rate=rate, requests=requests, mix=mix, index=index,
                 world=world, ranker=ranker, batch=batch, seed=seed, workers=workers,
                 concurrency=concurrency, force=force)
    typer.echo(result["markdown"])


@app.command("serve")
def serve(
    run_dir: Path = typer.Argument(Path("runs/demo"), help="`snsrec demo`'s output (its "
                                   "models/redrec and ranker), or any dir with --retriever "
                                   "and --ranker."),
    store: str = typer.Option("sqlite:runs/serve/store.sqlite", help="sqlite:PATH or "
                              "redis://HOST:PORT/DB (the database number optional)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port."),
    retriever: Path | None = typer.Option(None, help="A retrieval run (redrec)."),
    ranker: Path | None = typer.Option(None, help="A CTR run."),
    moderation: Path | None = typer.Option(None, help="Moderation scores (`snsrec llm "
                                           "moderate`); default: the n-gram baseline."),
    threshold: float = typer.Option(0.5, help="Notes with p_harmful at or above are filtered."),
    index: str = typer.Option("hnsw", help="ANN index kind: flat | hnsw | ivfpq."),
    concurrency: int = typer.Option(2, help="Feed / search requests in flight per "
                                    "platform process; the rest wait in line."),
    queue_timeout: float = typer.Option(1.0, help="Seconds a feed / search request may "
                                        "wait in line before a 503 with Retry-After."),
    workers: int = typer.Option(1, help="Worker processes computing answers, each with the "
                                "whole platform, behind one line (they share the store). "
                                "One per core."),
) -> None:
    """Serve retrieve → rank → moderate over HTTP (FastAPI); writes need SNSREC_TOKEN."""
    from snsrec.serve.service import serve as run

    run(run_dir, store, host, port, retriever=retriever, ranker=ranker,
        moderation=moderation, threshold=threshold, index_kind=index,
        concurrency=concurrency, queue_timeout=queue_timeout, workers=workers)


@sim_app.command("ab")
def sim_ab(
    world: Path = typer.Option(..., help="The world directory (its truth answers the slates)."),
    a: Path = typer.Option(..., help="Arm A YAML: name plus run (a demo dir) or retriever "
                           "and ranker, or url; candidates, moderation, threshold, ..."),
    b: Path = typer.Option(..., help="Arm B YAML (as --a)."),
    days: int = typer.Option(2, help="Days simulated from the world's test start."),
    out: Path = typer.Option(Path("runs/sim"), help="Directory for ab.json / ab.md, the "
                             "arms' stores and the moderation baseline."),
    runs: Path = typer.Option(Path("runs"), help="The arms' paths (run, retriever, ranker, "
                              "moderation_scores) are relative to this directory."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="users_per_day=300, requests_per_user=4, seed=0."),
    force: bool = FORCE,
) -> None:
    """A/B test two serving setups: feed CTR, search click-page rate, ads conversion,
    harmful exposure (on notes posted after the start apart) and coverage, with bootstrap
    intervals; the moderator is fitted on the notes before the start only."""
    from snsrec.sim.ab import markdown, run_ab

    typer.echo(markdown(run_ab(world, a, b, out, overrides=set_, days=days, runs=runs,
                                force=force)))


@report_app.command("docs")
def report_docs(
    files: list[Path] | None = typer.Argument(None, help="Markdown files [default: README.md "
                                              "and docs/*.md of the checkout]."),
    check: bool = typer.Option(False, "--check", help="Only compare: exit 1 if a file's "
                               "tables differ from what its records render."),
) -> None:
    """Render every <!-- record ... --> table of the docs from its committed record."""
    from snsrec.report.docs import render_docs

    changed = render_docs(files or None, check=check)
    for path in changed:
        typer.echo(f"{'differs' if check else 'rendered'}: {path}")
    if check and changed:
        raise typer.Exit(1)


@app.command("train")
def train(
    config: Path = typer.Argument(..., help="Run YAML (see configs/): data, features, model, train."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a key, e.g. --set model.params.embedding_dim=32."),
    out: Path = typer.Option(Path("runs"), help="Parent directory; the run goes to OUT/<name>."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its "
                                                        "last checkpoint."),
    force: bool = FORCE,
) -> None:
    """Train a model from a run config; writes runs/<name>/ (weights, metrics, report).

    Distributed: torchrun --nproc_per_node 2 -m snsrec.cli train CONFIG
    """
    from snsrec.train.pipeline import train_from_config

    summary = train_from_config(config, overrides=set_, runs_root=out, resume=resume,
                                force=force)
    if summary["text"]:   # empty on the non-zero ranks of a torchrun launch
        typer.echo(summary["text"])


@app.command("evaluate")
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `snsrec train`."),
    split: str = typer.Option("test", help="train | valid | test"),
) -> None:
    """Evaluate a trained run on a split: AUC, logloss, gAUC, calibration, per scenario."""
    from snsrec.train.pipeline import evaluate_run

    typer.echo(evaluate_run(run_dir, split)["text"])


@app.command("recommend")
def recommend(
    run_dir: Path = typer.Argument(..., help="A retrieval run directory (`snsrec train`)."),
    users: str = typer.Option(..., help="Comma-separated user ids, e.g. --users 3,17,42."),
    k: int = typer.Option(10, help="Notes per user."),
    scenario: str = typer.Option("feed", help="feed | search | discover | ads"),
    at: int | None = typer.Option(None, help="Epoch seconds: history before it, notes that "
                                             "exist by then (default: after the last event)."),
) -> None:
    """Top-k notes for each user from a retrieval run: one JSON line per user
    (``Run.recommend``, docs/api.md)."""
    import json

    from snsrec.runs import load_run

    try:
        ids = [int(u) for u in _names(users)]
    except ValueError:
        raise ConfigError(f"--users {users!r}: give integer user ids, e.g. --users 3,17,42") \
            from None
    for user, notes in load_run(run_dir).recommend(ids, k, scenario=scenario, at=at).items():
        typer.echo(json.dumps({"user_id": user, "note_ids": notes}))


encode_app = typer.Typer(help="Embed texts with a text backbone or a run's item tower.",
                         no_args_is_help=True)
app.add_typer(encode_app, name="encode")


@encode_app.command("notes")
def encode_notes(
    source: Path = typer.Argument(..., help="A retrieval run directory (its item tower) or a "
                                  "text-backbone YAML (backbone: hash | minilm | causal-lm)."),
    notes: Path = typer.Option(..., help="Parquet note table: note_id + title / body / hashtags."),
    out: Path = typer.Option(..., help="Output: .parquet (note_id, vector) or .npy (+ .ids.npy)."),
    batch_size: int = typer.Option(256, help="Notes per encoder batch."),
    with_cover: bool = typer.Option(False, "--with-cover", help="Append each note's cover-style "
                                    "floats (the multimodal vector of QIN)."),
    force: bool = FORCE,
) -> None:
    """Embed every note of a table, in batches, resumable after an interruption."""
    from snsrec.text.encode import encode_notes as run

    typer.echo(run(source, notes, out, batch_size=batch_size, with_cover=with_cover,
                   force=force)["text"])


@index_app.command("build")
def index_build(
    run_dir: Path = typer.Argument(..., help="A retrieval run directory (e.g. RED-Rec)."),
    kind: str = typer.Option("hnsw", help="flat (exact) | hnsw | ivfpq"),
    out: Path | None = typer.Option(None, help="Index directory (default RUN_DIR/index-KIND)."),
    force: bool = FORCE,
) -> None:
    """Encode every note of the run's corpus with its item tower and index the vectors."""
    from snsrec.index.build import build_run_index

    typer.echo(build_run_index(run_dir, kind, out, force=force)["text"])


@app.command("compress")
def compress(
    run_dir: Path = typer.Argument(..., help="A CTR run directory written by `snsrec train`."),
    rank: int = typer.Option(..., help="Rank of every linear layer that gets smaller."),
    embedding_rank: int | None = typer.Option(None, help="Rank of the embedding tables "
                                              "(< the embedding size); default: keep them."),
    out: Path | None = typer.Option(None, help="New run directory (default RUN_DIR-r<rank>)."),
    calibration: int = typer.Option(20_000, help="Training rows whose activations set the "
                                    "factors."),
    threads: int = typer.Option(1, help="Torch threads for the timing."),
    force: bool = FORCE,
) -> None:
    """Factorise a trained CTR model by its activations; report size, speed and AUC."""
    from snsrec.train.compress import compress_run

    compress_run(run_dir, rank, embedding_rank=embedding_rank, out=out,
                 calibration=calibration, threads=threads, force=force)


llm_app = typer.Typer(help="RedOne: the SNS task suite, post-training and evaluation.",
                      no_args_is_help=True)
app.add_typer(llm_app, name="llm")
llm_tasks_app = typer.Typer(help="The SNS task suite (SNS-Bench JSON).", no_args_is_help=True)
llm_app.add_typer(llm_tasks_app, name="tasks")


@llm_tasks_app.command("build")
def llm_tasks_build(
    world: Path = typer.Option(..., help="A world directory (`snsrec world generate`)."),
    out: Path = typer.Option(..., help="Directory for <split>/<task>.json and manifest.json."),
    tasks: str = typer.Option("", help="Comma-separated task names (default: all)."),
    max_items: int = typer.Option(500, help="Items per task and split (a seeded sample)."),
    seed: int = typer.Option(0, help="Seed of the splits and samples."),
    harmful_share: float | None = typer.Option(
        None, help="Sample Note-Moderation's train split with this share of harmful notes "
        "(e.g. 0.5 for a moderation model; valid / test are sampled half harmful "
        "whatever it is)."),
    force: bool = FORCE,
) -> None:
    """Build the SNS tasks from a world's notes and truth, split by note."""
    from snsrec.llm.tasks import build_tasks

    build_tasks(world, out, tasks=_names(tasks) or None, max_items=max_items, seed=seed,
                harmful_share=harmful_share, force=force)


def _post_train_command(stage: str, doc: str) -> None:
    def command(
        config: Path = typer.Argument(..., help="Post-training YAML (see configs/llm/)."),
        set_: list[str] | None = typer.Option(
            None, "--set", help="Override a key, e.g. --set train.max_steps=20."),
        out: Path = typer.Option(Path("runs"), help="Parent directory; the run goes to "
                                                    "OUT/<name>."),
        force: bool = FORCE,
    ) -> None:
        from snsrec.llm.post_train import load_post_train_config, post_train, report

        cfg = load_post_train_config(stage, config, set_)
        typer.echo(report(cfg, post_train(stage, cfg, out, force=force), out / cfg.name))

    command.__doc__ = doc
    llm_app.command(stage)(command)


_post_train_command("cpt", "Continued pre-training: the world's training notes mixed with "
                           "general text (TRL, LoRA); held-out perplexity before and after.")
_post_train_command("sft", "Supervised fine-tuning on the SNS task suite (+ general "
                           "instructions), loss on the answers only (TRL, LoRA).")
_post_train_command("dpo", "Preference optimisation on pairs from the model's own samples, "
                           "scored by the task metrics (TRL DPO, LoRA).")


@llm_app.command("experiment")
def llm_experiment(
    config: Path | None = typer.Argument(None, help="Experiment YAML (default "
                                         "configs/llm/experiment.yaml)."),
    quick: bool = typer.Option(False, "--quick", help="The CI-sized run "
                               "(configs/llm/experiment-quick.yaml: tiny Qwen2, tiny world)."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a key, e.g. --set "
                                          "eval.limit=20."),
    out: Path | None = typer.Option(None, help="Directory (default bench/<name>: git keeps "
                                    "its records, so it resumes from a fresh clone)."),
    force: bool = FORCE,
) -> None:
    """RedOne's comparison: base vs single-task SFT vs multi-task SFT vs CPT + SFT vs + DPO."""
    import shlex

    from snsrec.llm.experiment import load_experiment_config, run_experiment

    words = ["snsrec", "llm", "experiment", *([str(config)] if config else []),
             *(["--quick"] if quick else []), *[f"--set={s}" for s in set_ or []],
             *(["--out", str(out)] if out else [])]
    if config is None:
        config = Path("configs/llm") / ("experiment-quick.yaml" if quick else "experiment.yaml")
    elif quick:
        raise ConfigError("--quick picks configs/llm/experiment-quick.yaml; give a CONFIG or "
                          "--quick, not both")
    cfg = load_experiment_config(config, set_)
    typer.echo(run_experiment(cfg, out or Path("bench") / cfg.name,
                              " ".join(shlex.quote(w) for w in words), force=force)["markdown"])


@llm_app.command("moderate")
def llm_moderate(
    model: str = typer.Option(..., help="smollm2-135m | tiny-qwen2 | a HF directory | a "
                              "`snsrec llm sft/dpo` run."),
    notes: Path = typer.Option(..., help="A notes table (note_id, title, body), e.g. a "
                               "world's notes.parquet."),
    out: Path = typer.Option(..., help="Output Parquet: note_id, p_harmful, harm_type, "
                             "p_<label>."),
    batch_size: int = typer.Option(16, help="Notes per batch."),
    limit: int | None = typer.Option(None, help="Only the first N notes (by note_id)."),
    threads: int | None = typer.Option(None, help="Torch threads."),
    force: bool = FORCE,
) -> None:
    """Score every note's harm with an LLM (label-token likelihoods); resumable."""
    from snsrec.llm.moderation import moderate

    moderate(model, notes, out, batch_size=batch_size, limit=limit, threads=threads,
             force=force)


@llm_app.command("eval")
def llm_eval(
    model: str = typer.Option(..., help="smollm2-135m | tiny-qwen2 | a local Hugging Face "
                              "model directory | a `snsrec llm cpt/sft/dpo` run."),
    tasks: Path = typer.Option(..., help="A task suite (`snsrec llm tasks build`) or a folder "
                               "of SNS-Bench task files."),
    out: Path = typer.Option(Path("runs/llm-eval"), help="Directory for eval.json / eval.md."),
    split: str = typer.Option("test", help="The suite's split to read."),
    limit: int | None = typer.Option(None, help="At most this many items a task."),
    batch_size: int = typer.Option(8, help="Prompts per generation batch."),
    force: bool = FORCE,
) -> None:
    """Answer the SNS tasks with a causal LM (greedy) and score each task."""
    from snsrec.llm.evaluate import evaluate_llm

    typer.echo(evaluate_llm(model, tasks, out, split=split, limit=limit,
                            batch_size=batch_size, force=force)["markdown"])


adsee_app = typer.Typer(help="AdSEE: cover edits that raise an ad's click rate.",
                        no_args_is_help=True)
app.add_typer(adsee_app, name="adsee")


@adsee_app.command("suggest")
def adsee_suggest(
    run_dir: Path = typer.Argument(..., help="An adsee run (`snsrec adsee bench` writes one)."),
    note: int = typer.Option(..., help="The note_id of the ad."),
    max_change: float = typer.Option(0.25, help="How far each cover-style field may move."),
) -> None:
    """Cover edits for one ad, with the predicted click rate before and after."""
    from snsrec.adsee import suggest_for_note

    typer.echo(suggest_for_note(run_dir, note, max_change=max_change)["text"])


@adsee_app.command("bench")
def adsee_bench(
    data: str = typer.Option("world:covers", help="A world whose covers draw clicks."),
    backbone: str = typer.Option("minilm", help="Text part of the note vectors: minilm | hash."),
    max_change: float = typer.Option(0.25, help="How far each cover-style field may move."),
    out: Path = typer.Option(Path("bench/adsee"), help="Directory for adsee.json / .md."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override the predictor's run."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """Train the predictor, edit every test-day ad's cover, score the edits on the truth."""
    from snsrec.adsee import bench_adsee

    typer.echo(bench_adsee(data, out, backbone=backbone, max_change=max_change,
                           overrides=set_, rerun=rerun, force=force)["markdown"])


@app.command("explain")
def explain(
    run_dir: Path = typer.Argument(..., help="A run directory of a model with gates (GDCN)."),
    top: int = typer.Option(20, help="How many feature crosses to list."),
) -> None:
    """List the feature crosses a gated model weighs most."""
    from snsrec.models.explain import explain_run

    typer.echo(explain_run(run_dir, top=top))


@bench_app.command("ctr")
def bench_ctr(
    data: list[str] = typer.Option(["world:small"], help="world:PRESET | recbole:ml-1m | "
                                                          "bars:PATH (repeatable)."),
    models: str = typer.Option("lr,fm,deepfm,dcnv2", help="Comma-separated registered models."),
    seeds: int = typer.Option(5, help="Seeds per model × data set."),
    out: Path = typer.Option(Path("bench/ctr"), help="Directory for leaderboard.json / .md."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override every run's config."),
    rerun: bool = RERUN,
    force: bool = FORCE,
) -> None:
    """The open CTR benchmark: mean ± std of test AUC / logloss per model × data set."""
    from snsrec.bench.ctr import bench_ctr as run

    result = run(data, _names(models), seeds, out, overrides=set_, rerun=rerun, force=force)
    typer.echo(result["markdown"])


@bench_app.command("throughput")
def bench_throughput(
    out: Path = typer.Option(Path("bench/throughput"), help="Directory for JSON / Markdown."),
    rows: int = typer.Option(1_000_000, help="Rows of the Criteo-shaped table."),
    seeds: int = typer.Option(3, help="Seeds (AUC is the mean over them)."),
    peers: str = typer.Option("torch-rechub,deepctr-torch", help="Peer libraries to run."),
    precisions: str = typer.Option(
        "fp32,bf16", help="snsrec's own rows: fp32 ('snsrec') and/or bf16 ('snsrec-bf16', "
        "train.precision=bf16). Peers run in fp32."),
    force: bool = FORCE,
) -> None:
    """Training / inference samples/s, peak RSS and AUC against peer libraries."""
    from snsrec.bench.throughput import bench_throughput as run

    def names(csv: str) -> list[str]:
        return [p.strip() for p in csv.split(",") if p.strip()]

    result = run(out, rows=rows, seeds=seeds, peers=names(peers), precisions=names(precisions),
                 force=force)
    typer.echo(result["markdown"])


@app.command("demo", help="Generate a world; rank with popularity, LR and the best CTR model; "
             "retrieve with RED-Rec, ItemCF, category popularity and most-popular; evaluate; "
             "write a report.")
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory for the report."),
    preset: Preset = typer.Option(Preset.small, help="World size to run on."),
    seed: int = typer.Option(7, help="Random seed."),
    world: Path | None = typer.Option(None, help="Reuse an existing world directory."),
    config: Path | None = typer.Option(None, help="Demo YAML (default configs/demo.yaml)."),
    full: bool = typer.Option(False, "--full", help="The long recipe (configs/demo_full.yaml: "
                                                    "OptInter, RED-Rec at full size)."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a demo setting, e.g. --set train.lr=0.005."),
    force: bool = FORCE,
) -> None:
    """The main job on the embedded default world (see help=)."""
    from snsrec.demo import DEMO_FULL_CONFIG, run_demo

    if full and config is not None:
        raise ConfigError("demo: --full is a config (configs/demo_full.yaml); give --full or "
                          "--config, not both")
    summary = run_demo(out, preset=preset.value, seed=seed, world_dir=world,
                       config=DEMO_FULL_CONFIG if full else config, overrides=set_, force=force)
    typer.echo(summary["text"])


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors and our own bad-input errors become one line, exit 2."""
    keep_freed_memory()
    set_command(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, standalone_mode=False)
    except SnsrecError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as e:  # click usage errors: bad option, bad choice
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        message = " ".join(message.split())
        if getattr(e, "ctx", None) is not None and not message.startswith("Missing command"):
            message += f" (see `{e.ctx.command_path} --help`)"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    finally:
        set_command(None)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
