"""`snsrec serve RUN_DIR`: a trained demo (or a retrieval run and a ranker run) served over HTTP.

``RUN_DIR`` is `snsrec demo`'s output (its ``models/redrec`` retrieves, its
``models/<ranker.name>`` ranks) or, with ``--retriever`` / ``--ranker``, any
retrieval run and CTR run of one world. On start:

- the world the retrieval run was trained on is loaded (the ranker's features and
  the note cards come from its tables);
- the store (``sqlite:PATH`` by default, ``redis://…``) receives the world's events
  when it holds none yet, so every user starts with their history;
- moderation scores come from ``--moderation`` (a `snsrec llm moderate` table) or,
  by default, from the hashed n-gram baseline fitted once on every note of the world
  (``baseline``; the simulator fits it on the notes before its start instead) and kept
  as ``RUN_DIR/moderation.parquet``;
- writes need ``SNSREC_TOKEN`` (a random one is made and printed when it is unset);
- ``--workers N`` runs N processes on the port over the one store (``serve``).
"""

from __future__ import annotations

import gc
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.errors import ConfigError, ModelError
from snsrec.progress import echo, set_quiet


def _demo_ranker(run_dir: Path) -> Path:
    import yaml

    cfg = run_dir / "config.yaml"
    name = (yaml.safe_load(cfg.read_text()) or {}).get("ranker", {}).get("name") \
        if cfg.is_file() else None
    if not name or not (run_dir / "models" / name / "model.safetensors").is_file():
        raise ModelError(f"{run_dir}: no ranker run (models/<ranker.name>); give --ranker RUN")
    return run_dir / "models" / name


def resolve_runs(run_dir: Path, retriever: Path | None, ranker: Path | None
                 ) -> tuple[Path, Path]:
    retriever = retriever or (run_dir / "models" / "redrec")
    if not (retriever / "corpus.parquet").is_file():
        raise ModelError(f"{retriever}: not a retrieval run; serve `snsrec demo`'s output or "
                         "give --retriever RUN (a redrec run)")
    return retriever, ranker or _demo_ranker(run_dir)


BASELINE = "moderation-baseline.safetensors"
BASELINE_RECIPE = "ngram-lr+short-copies+created-before"   # one kept another way is refitted
# The baseline's training notes, at most (a seeded sample beyond): a start's cost bound.
# On a million-note world the fit over all 800k training notes and their short copies
# took ~55 minutes on a busy core.
BASELINE_MAX_NOTES = 200_000


def baseline_training_rows(notes_path: Path, before: int | None, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(the rows, in note-id order, of the notes the baseline fits on: those created before
    ``before`` (epoch seconds; None: every note), a seeded sample of BASELINE_MAX_NOTES
    beyond; every note id; every note's creation time in seconds, None without a
    ``created_at`` column)."""
    import polars as pl

    from snsrec.errors import DataError
    from snsrec.io import parquet_columns

    has_created = "created_at" in parquet_columns(notes_path)
    if before is not None and not has_created:
        raise DataError(f"{notes_path}: no column created_at; the moderation baseline's "
                        "cut-off needs each note's creation time")
    t = pl.read_parquet(notes_path, columns=["note_id", *(["created_at"] if has_created
                                                          else [])]).sort("note_id")
    created = t["created_at"].dt.epoch("s").to_numpy() if has_created else None
    rows = np.arange(t.height) if before is None else np.flatnonzero(created < before)
    if len(rows) == 0:
        raise DataError(f"{notes_path}: no note created before the moderation cut-off "
                        f"{_iso(before)}; the baseline has nothing to learn from")
    if len(rows) > BASELINE_MAX_NOTES:
        rows = np.sort(np.random.default_rng(seed).choice(rows, BASELINE_MAX_NOTES,
                                                          replace=False))
        echo(f"moderation: the baseline fits on {BASELINE_MAX_NOTES:,} of its training notes")
    return rows, t["note_id"].to_numpy(), created


def _iso(ts: int | None) -> str:
    return "" if ts is None else str(np.datetime64(int(ts), "s"))


def baseline(tables: Any, run_dir: Path, seed: int = 0, before: int | None = None
             ) -> tuple[Path, Any, dict[str, Any]]:
    """The n-gram moderation baseline fitted on the notes created before ``before`` (epoch
    seconds), kept in ``run_dir`` (weights as safetensors, every note's score as
    ``moderation.parquet``): (the scores table, the model — it scores notes posted later,
    what it was fitted on: ``fitted_before``, ``train_notes``, ``latest_train_note``).

    Serving passes None — every note it has: learning from all it has seen is no leak
    there. The simulator passes its start, so the notes posted during the simulated days
    are scored by a moderator that never saw them. A kept baseline is reused only when it
    was fitted by this recipe on the same notes (their ids' checksum), else refitted."""
    import zlib

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from snsrec.io import atomic_path
    from snsrec.llm.moderation import (
        NgramModerator,
        frame_of,
        label_index,
        note_text,
        read_notes,
        short_copies,
    )

    path = tables.root / "notes.parquet"
    train, ids, created = baseline_training_rows(path, before, seed)
    fitted = {"fitted_before": _iso(before) or None, "train_notes": len(train),
              "latest_train_note": _iso(created[train].max()) if created is not None
              else None}
    stamp = {"recipe": BASELINE_RECIPE, "seed": str(seed), "before": _iso(before),
             "train_notes": str(len(train)),
             "train_ids_crc32": f"{zlib.crc32(ids[train].astype(np.int64).tobytes()):08x}",
             "latest_train_note": fitted["latest_train_note"] or ""}
    weights, scores = run_dir / BASELINE, run_dir / "moderation.parquet"
    if weights.is_file() and scores.is_file():
        with safe_open(str(weights), "pt") as f:
            kept = f.metadata() or {}
        if kept == stamp:
            model = NgramModerator()
            model.load_state_dict(load_file(weights))
            return scores, model, fitted
        echo(f"moderation: {weights} was fitted another way or on other notes; fitting it "
             "again")
    echo(f"moderation: fitting the n-gram baseline on {len(train):,} notes"
         + (f" created before {_iso(before)}" if before is not None else "") + " (once)")
    notes = read_notes(path)
    model = NgramModerator()
    # Every note hashed once, the training notes' short copies after them (the training
    # notes' full texts are not built a second time: at a million notes, gigabytes).
    picked = notes[train]
    short, labels = short_copies(picked, seed), label_index(picked)
    rows = model.hash.ragged([note_text(r) for r in notes.iter_rows(named=True)] + short)
    model.fit(rows, np.concatenate([labels, labels]), seed=seed, subset=np.concatenate(
        [train, notes.height + np.arange(len(short))]))
    probs = model.label_probs(rows.head(notes.height))
    with atomic_path(scores) as tmp:         # the table `snsrec llm moderate` writes
        frame_of(notes["note_id"].to_numpy(), probs).write_parquet(tmp)
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata=stamp)
    return scores, model, fitted


def harmful_scorer(model: Any) -> Any:
    """texts → P(harmful) of the n-gram baseline."""
    def score(texts: list[str]) -> np.ndarray:
        return 1.0 - model.label_probs(list(texts))[:, 0]
    return score


def _open(run_dir: Path, store: str, retriever: Path | None, ranker: Path | None
          ) -> tuple[Path, Path, Any, Any]:
    """(retriever run, ranker run, the retrieval run's world tables, the store) — the
    store filled with the world's events when it holds none."""
    import yaml

    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.tables import load_tables
    from snsrec.serve.store import import_events, open_store

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory; run `snsrec demo` first")
    retriever_dir, ranker_dir = resolve_runs(run_dir, retriever, ranker)
    data = (yaml.safe_load((retriever_dir / "config.yaml").read_text()) or {}).get("data")
    tables = load_tables(resolve_dataset(data))
    st = open_store(store)
    if st.count_events() == 0:
        echo(f"serve: loading the world's events into {store}")
        import_events(st, tables.events)
    return retriever_dir, ranker_dir, tables, st


def assemble(store: Any, tables: Any, retriever_dir: Path, ranker_dir: Path,
             baseline_dir: Path, *, moderation: Path | None = None, threshold: float = 0.5,
             index_kind: str = "hnsw", candidates: Any = None,
             moderation_before: int | None = None, **settings: Any) -> Any:
    """The ``Platform`` over an open store and a world's tables: the retrieval run's
    index, the ranker, moderation scores (``moderation`` or the n-gram baseline kept in
    ``baseline_dir``, fitted on the notes created before ``moderation_before``; the
    baseline scores posted notes). ``candidates`` wraps the retriever (the simulator's
    popularity arm); ``settings``: Platform's knobs."""
    from snsrec.serve.pipeline import Moderation, Platform, Ranker, Retriever

    scores, model, _ = baseline(tables, baseline_dir, before=moderation_before)
    retriever = Retriever(retriever_dir, index_kind)
    return Platform(store, candidates(retriever) if candidates else retriever,
                    Ranker(ranker_dir, tables),
                    Moderation.from_parquet(moderation or scores, threshold,
                                            harmful_scorer(model)),
                    note_cards(tables), **settings)


def build_platform(run_dir: str | Path, store: str, *, retriever: Path | None = None,
                   ranker: Path | None = None, moderation: Path | None = None,
                   threshold: float = 0.5, index_kind: str = "hnsw") -> Any:
    run_dir = Path(run_dir)
    retriever_dir, ranker_dir, tables, st = _open(run_dir, store, retriever, ranker)
    platform = assemble(st, tables, retriever_dir, ranker_dir, run_dir,
                        moderation=moderation, threshold=threshold, index_kind=index_kind)
    notes = platform.notes
    blocked = int(np.sum([platform.moderation.blocked(n) for n in notes]))
    echo(f"serve: {len(notes):,} notes ({blocked:,} above the moderation threshold), "
         f"retriever {retriever_dir}, ranker {ranker_dir}")
    return platform


def active_users(events: Any, n: int = 100) -> list[int]:
    """The ``n`` users with the most clicks in ``events`` (a LazyFrame; ties by id): the
    users the web page suggests."""
    import polars as pl

    top = (events.group_by("user_id").agg(pl.col("click").sum().alias("clicks"))
           .sort(["clicks", "user_id"], descending=[True, False]).head(n).collect())
    return top["user_id"].to_list()


def note_cards(tables: Any) -> dict[int, dict[str, Any]]:
    """note id → the card a response shows (title, hashtags, category, subcategory, is_ad)."""
    return {r["note_id"]: r for r in tables.notes.select(
        "note_id", "title", "hashtags", "category", "subcategory", "is_ad").collect()
        .to_dicts()}


def token_from_env() -> tuple[str, bool]:
    """(``SNSREC_TOKEN``, False) or a fresh random token and True."""
    import os

    given = os.environ.get("SNSREC_TOKEN", "")
    return (given, False) if given else (secrets.token_urlsafe(24), True)


def serve(run_dir: str | Path, store: str, host: str, port: int, *, concurrency: int = 2,
          queue_timeout: float = 1.0, workers: int = 1, **kw: Any) -> None:
    """``workers`` > 1: that many processes, each with the whole platform, behind one line
    in this server process (``snsrec.serve.pool``; one Python process computes on one core
    at a time). They share the store: events, takedowns and posted notes (ids from the
    store) reach every worker. The one-time work — the store's world events, the
    moderation baseline, the saved index — is done here first; each worker then only
    loads."""
    import uvicorn

    from snsrec.serve.app import create_app
    from snsrec.serve.pool import Local, WorkerPool

    if concurrency < 1 or not queue_timeout > 0 or workers < 1:
        raise ConfigError(f"serve: --concurrency ({concurrency}) and --workers ({workers}) "
                          f"must be >= 1 and --queue-timeout ({queue_timeout}) > 0")
    token, made = token_from_env()
    if made:
        echo(f"serve: SNSREC_TOKEN is unset; write token for this run: {token}")
    settings = {"run_dir": str(run_dir), "store": store,
                **{k: str(v) if isinstance(v, Path) else v for k, v in kw.items()}}
    if workers == 1:
        platform, users = platform_of(settings)
        backend: Any = Local(platform)
        where = ""
    else:
        prepare_shared(Path(run_dir), store, **kw)
        echo(f"serve: starting {workers} worker processes (each loads the platform)")
        backend = WorkerPool(platform_of, settings, workers)
        users = backend.users
        where = f" with {workers} worker processes"
        # Every request passes through this process too: its modules (torch, FAISS, polars:
        # ~220k objects, a full collection ~85 ms) out of the collector's sight.
        gc.collect()
        gc.freeze()
    app = create_app(backend, token, users=users, concurrency=concurrency,
                     queue_timeout=queue_timeout)
    echo(f"serve: http://{host}:{port}/{where} (the web page; OpenAPI at /docs)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if workers > 1:
            backend.close()


def platform_of(settings: dict[str, Any]) -> tuple[Any, list[int]]:
    """The platform of ``serve``'s settings (``run_dir``, ``store`` and ``build_platform``'s
    keywords, paths as strings) and the users the web page suggests; its objects frozen
    out of the collector's sight."""
    kw = {k: Path(v) if k in ("retriever", "ranker", "moderation") and v else v
          for k, v in settings.items() if k not in ("run_dir", "store")}
    platform = build_platform(settings["run_dir"], settings["store"], **kw)
    set_quiet(True)             # per-request feature progress lines would flood the log
    users = active_users(platform.ranker.tables.events)
    # The platform's objects live as long as the server: out of the collector's sight. A
    # full collection otherwise walks all of them now and then in the middle of a request
    # (225 ms for the small world's 286k objects, measured; seconds at a million notes).
    gc.collect()
    gc.freeze()
    return platform, users


def prepare_shared(run_dir: Path, store: str, *, retriever: Path | None = None,
                   ranker: Path | None = None, index_kind: str = "hnsw", **_: Any) -> None:
    """What workers must not each do at once: fill an empty store with the world's events,
    train the moderation baseline, build and save the index."""
    from snsrec.index.build import saved_run_index

    retriever_dir, _, tables, st = _open(run_dir, store, retriever, ranker)
    st.close()
    baseline(tables, run_dir)
    saved_run_index(retriever_dir, index_kind)
