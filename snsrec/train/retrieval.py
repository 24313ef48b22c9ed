"""Retrieval samples and the RED-Rec run: behaviour log → cut-offs → trainer → full-corpus metrics.

Training samples (``training_samples``): a cut-off at each click a user made
before the training end (in the ``target_scenarios``), at most
``cutoffs_per_user`` per user (seeded); the history is everything strictly
before the click, the target scenario is the click's, the targets are that
click and the next ones in the same scenario, up to ``window``, all before
the training end, with their click times (``target_ts``: a note created after
a click is no negative of it). Nothing after a cut-off enters its history; nothing after
the training end enters any sample.

Evaluation samples (``eval_samples``): one row per user who has a qualifying
behaviour in ``[start, end)`` — feed next click, search click, ads conversion
— the history is everything before ``start``, the target is the first such
behaviour's note, and its time is the query time (notes created later are
out of its ranking). ``_cold`` marks targets created after ``cold_after``
(notes no training sample could have seen). With ``only_cold`` the target is
instead each user's first qualifying behaviour on such a cold note — the
cold-start query set (a user's first behaviour in the period is rarely on a
note that new, so the first-target rows alone hold few cold targets).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import Field as PField

from snsrec.config import StrictModel
from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import (
    NOTE,
    BehaviourLog,
    Corpus,
    SequenceConfig,
    history_arrays,
    next_clicks,
)
from snsrec.errors import DataError
from snsrec.eval.protocols import KS
from snsrec.models.registry import get_model_class, model_family

# Each evaluation target: the scenario of the behaviour and whether it must be a conversion.
TARGETS = {"feed": ("feed", False), "search": ("search", False), "ads": ("ads", True)}


class RetrievalDataConfig(StrictModel):
    sequence: SequenceConfig = PField(default_factory=SequenceConfig)
    window: int = PField(10, ge=1)                 # next-W targets per training sample
    cutoffs_per_user: int = PField(20, ge=1)
    target_scenarios: list[str] = PField(default_factory=lambda: list(SCENARIOS))
    max_eval_users: int | None = PField(None, ge=1)   # None = every qualifying user
    # Training batches of similar history length, from runs of `bucket` batches (0: plain
    # shuffle); the user tower trims the padding its batch's rows share.
    bucket: int = PField(50, ge=0)


def training_clicks(log: BehaviourLog, train_end: int, config: RetrievalDataConfig
                    ) -> np.ndarray:
    """Rows of ``log`` that training learns from: note clicks before ``train_end`` in the
    ``target_scenarios``, in the log's (user, time) order."""
    scen_ids = [SCENARIOS.index(s) for s in config.target_scenarios]
    return np.flatnonzero((log.kind == NOTE) & (log.ts < train_end)
                          & np.isin(log.scenario, scen_ids))


def training_samples(log: BehaviourLog, train_end: int, config: RetrievalDataConfig,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """History, target scenario and next-W targets for the sampled training cut-offs."""
    cand = training_clicks(log, train_end, config)
    rng = np.random.default_rng(seed)
    cand = cand[rng.permutation(len(cand))]
    # At most cutoffs_per_user per user: rank each candidate within its user (random order).
    order = np.argsort(log.user[cand], kind="stable")
    users_sorted = log.user[cand][order]
    first = np.searchsorted(users_sorted, users_sorted, side="left")
    keep = order[(np.arange(len(order)) - first) < config.cutoffs_per_user]
    cand = np.sort(cand[keep])
    users, times, scen = log.user[cand], log.ts[cand], log.scenario[cand]
    out = history_arrays(log, users, times, config.sequence)
    targets = np.full((len(cand), config.window), -1, np.int64)
    target_ts = targets.copy()
    for s in np.unique(scen):
        rows = scen == s
        targets[rows], target_ts[rows] = next_clicks(log, users[rows], times[rows],
                                                     config.window, scenarios=[SCENARIOS[s]],
                                                     until=train_end)
    has_history = (out["hist_kind"] != 0).any(axis=1)
    sel = has_history & (targets[:, 0] >= 0)
    out = {k: v[sel] for k, v in out.items()}
    out.update(target_scenario=scen[sel].astype(np.int8), targets=targets[sel],
               target_ts=target_ts[sel], query_ts=times[sel].astype(np.int64),
               _user=users[sel], _ts=times[sel])
    if not len(out["targets"]):
        raise DataError("no training samples: no user has a click with an earlier behaviour "
                        "before the training end; check the split or target_scenarios")
    return out


def sequence_samples(log: BehaviourLog, train_end: int, config: RetrievalDataConfig,
                     max_len: int) -> dict[str, np.ndarray]:
    """Each user's note clicks before the training end as next-item sequences (SASRec).

    A user's clicks in the ``target_scenarios``, oldest first, are cut from the
    newest backwards into chunks of ``max_len + 1`` that overlap by one click,
    so every click but the user's first is a target exactly once: ``seq``
    (corpus row + 1 of the first ``len - 1`` clicks, 0 pads at the end) and
    ``next`` (the corpus row of the click after each, -1 pads). A user with
    a single click gives no sequence.
    """
    sel = training_clicks(log, train_end, config)
    users, items = log.user[sel], log.item[sel]         # sorted by (user, time)
    # (With no clicks at all: one empty "user" [0, 0), which gives no chunk.)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)].astype(np.int64)
    chunks = np.maximum(np.ceil((ends - starts - 1) / max_len), 0).astype(np.int64)
    user_of = np.repeat(np.arange(len(starts)), chunks)
    j = np.arange(int(chunks.sum())) - np.repeat(np.cumsum(chunks) - chunks, chunks)
    stop = ends[user_of] - j * max_len
    begin = np.maximum(starts[user_of], stop - max_len - 1)
    idx = begin[:, None] + np.arange(max_len + 1)[None, :]
    real = idx < stop[:, None]
    got = items[np.minimum(idx, max(len(items) - 1, 0))]
    seq = np.where(real[:, 1:], got[:, :-1] + 1, 0)
    nxt = np.where(real[:, 1:], got[:, 1:], -1)
    if not len(seq):
        raise DataError("no training sequences: no user has two clicks before the training "
                        "end; check the split or target_scenarios")
    return {"seq": seq.astype(np.int64), "next": nxt.astype(np.int64),
            "_user": users[starts[user_of]]}


def eval_samples(log: BehaviourLog, corpus: Corpus, start: int, end: int, target: str,
                 config: RetrievalDataConfig, cold_after: int | None = None,
                 seed: int = 0, only_cold: bool = False) -> dict[str, np.ndarray]:
    """One row per user with a ``target`` behaviour in ``[start, end)`` (see the module doc)."""
    if target not in TARGETS:
        raise DataError(f"retrieval target '{target}': use one of {', '.join(TARGETS)}")
    if only_cold and cold_after is None:
        raise DataError("cold-start samples need cold_after (the training cut-off)")
    scen, convert = TARGETS[target]
    users = np.unique(log.user[log.ts < end])
    targets = log
    if only_cold:
        # A query row's item is a query's index, not a note's: only note rows look up a date.
        note = log.kind == NOTE
        cold = np.zeros(len(note), bool)
        cold[note] = corpus.created[log.item[note]] >= cold_after
        targets = log.select(~note | cold)
    first, times = next_clicks(targets, users, np.full(len(users), start), 1,
                               scenarios=[scen], until=end, convert_only=convert)
    keep = first[:, 0] >= 0
    users, first, times = users[keep], first[keep, 0], times[keep, 0]
    if config.max_eval_users is not None and len(users) > config.max_eval_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), config.max_eval_users,
                                                          replace=False))
        users, first, times = users[pick], first[pick], times[pick]
    out = history_arrays(log, users, np.full(len(users), start), config.sequence)
    out.update(target_scenario=np.full(len(users), SCENARIOS.index(scen), np.int8),
               target=first, query_ts=times.astype(np.int64), _ts=times, _user=users)
    if cold_after is not None:
        out["_cold"] = corpus.created[first] >= cold_after
    return out




def describe(samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """Sizes for a report: rows, mean history length, mean targets per row."""
    n = len(next(iter(samples.values())))
    out: dict[str, Any] = {"rows": n}
    if "hist_kind" in samples and n:
        out["mean_history"] = float((samples["hist_kind"] != 0).sum(1).mean())
    for key in ("targets", "next"):
        if key in samples and n:
            out["mean_targets"] = float((samples[key] >= 0).sum(1).mean())
    return out


# -- the run ---------------------------------------------------------------------------

def is_retrieval_model(name: str) -> bool:
    """A model over a Corpus (trained or counted) that ``train_retrieval_run`` runs."""
    return model_family(name) in ("retriever", "counting")


def _split_times(tables: Any) -> tuple[int, int]:
    import datetime as dt

    split = tables.meta.get("split", {})
    if "valid_start" not in split or "test_start" not in split:
        raise DataError(f"{tables.root}: no split (valid_start, test_start) in its metadata; "
                        "a retrieval run needs the time split")

    def sec(s: str) -> int:
        t = dt.datetime.fromisoformat(s)
        return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp())

    return sec(split["valid_start"]), sec(split["test_start"])


def eval_parts(log: BehaviourLog, corpus: Corpus, start: int, end: int, target: str,
               config: RetrievalDataConfig, cold_after: int, seed: int = 0
               ) -> dict[str, dict[str, np.ndarray]]:
    """The query rows of one target: the first-target rows ("all"), those whose target is a
    warm note ("warm") and the cold-start rows ("cold": each user's first target on a note
    created after ``cold_after``)."""
    rows = eval_samples(log, corpus, start, end, target, config, cold_after, seed)
    return {"all": rows, "warm": {k: v[~rows["_cold"]] for k, v in rows.items()},
            "cold": eval_samples(log, corpus, start, end, target, config, cold_after, seed,
                                 only_cold=True)}


def evaluate_targets(model: Any, log: BehaviourLog, corpus: Corpus, start: int, end: int,
                     config: RetrievalDataConfig, cold_after: int, ks: Any,
                     seed: int = 0) -> dict[str, Any]:
    """Full-corpus metrics per target (feed / search / ads) and part (``eval_parts``)."""
    from snsrec.eval.protocols import corpus_vectors, full_corpus

    items = None if hasattr(model, "score_batch") else corpus_vectors(model, len(corpus))
    out: dict[str, Any] = {}
    for target in TARGETS:
        parts = eval_parts(log, corpus, start, end, target, config, cold_after, seed)
        rows = parts["all"]
        out[target] = {name: full_corpus(model, part, ks=ks, created=corpus.created,
                                         items=items)
                       for name, part in parts.items() if len(part["target"])}
        if "all" in out[target]:
            # Users with no behaviour before the cut-off: the model sees only the target
            # scenario (its query tokens), a popularity-like fallback; counted, not hidden.
            out[target]["all"]["cold_users"] = int((~(rows["hist_kind"] != 0).any(1)).sum())
    return out


def train_retrieval_run(cfg: Any, run_dir: Any, *, resume: bool = False,
                        force: bool = False) -> dict[str, Any]:
    """``snsrec train`` for a retrieval model: samples, the shared trainer, per-target metrics."""
    from pathlib import Path

    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.tables import load_tables
    from snsrec.errors import ConfigError
    from snsrec.eval.protocols import full_corpus
    from snsrec.io import write_text
    from snsrec.models.registry import build_model
    from snsrec.runs import check_resume, save_run, start_fresh
    from snsrec.seed import seed_everything
    from snsrec.train.trainer import Trainer, fit_summary

    run_dir = Path(run_dir)
    tcfg, rcfg = cfg.train, cfg.retrieval
    cls = get_model_class(cfg.model.name)
    fitted = cls.family == "counting"           # itemcf / toppop: counted, not trained
    if not fitted and tcfg.monitor in ("auc", "gauc", "logloss"):
        raise ConfigError(f"train.monitor '{tcfg.monitor}' is a CTR metric; a retrieval run "
                          "monitors hr@K, ndcg@K or mrr (e.g. train.monitor=hr@100)")
    loss = None if fitted else cls.loss
    if not fitted and tcfg.loss != loss:
        raise ConfigError(f"train.loss '{tcfg.loss}': retrieval model '{cfg.model.name}' trains "
                          f"with loss {loss} (train.loss={loss})")
    if resume:
        check_resume(run_dir)
    tables = load_tables(resolve_dataset(cfg.data, cfg.cache))
    valid_start, test_start = _split_times(tables)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, valid_start)
    valid = eval_samples(log, corpus, valid_start, test_start, "feed", rcfg, seed=tcfg.seed)
    if not len(valid["target"]):
        raise DataError(f"{tables.root}: no feed click in the validation period; nothing to "
                        "validate the retrieval run on")
    seed_everything(tcfg.seed)
    model = build_model(cfg.model.name, corpus, **cfg.model.params)
    train = sequence_samples(log, valid_start, rcfg, model.max_len) \
        if loss == "next_item_ce" else training_samples(log, valid_start, rcfg, seed=tcfg.seed)
    if not resume:
        start_fresh(run_dir, force)
    trainer = Trainer(tcfg, evaluator=lambda m, a: full_corpus(m, a, created=corpus.created))
    inputs = {k: v for k, v in train.items() if not k.startswith("_")}
    if fitted:
        t0 = time.perf_counter()
        model.fit_log(log, valid_start)
        fit = {"valid": trainer.evaluate(model, valid), "best_epoch": 0, "epochs_run": 0,
               "stopped_early": False, "steps": 0, "train_time_s": time.perf_counter() - t0,
               "samples_per_s": 0.0, "history": []}
    else:
        model, fit = _fit(trainer, model, inputs, valid, run_dir, resume, cfg)
    end = int(log.ts.max()) + 1
    test = evaluate_targets(model, log, corpus, test_start, end, rcfg, valid_start, KS,
                            tcfg.seed)
    metrics = {"name": cfg.name, "model": cfg.model.name, "data": cfg.data,
               "params": int(sum(p.numel() for p in model.parameters())),
               "valid": fit["valid"], "test": test,
               "rows": {"train": describe(train), "valid": describe(valid)},
               **fit_summary(fit),
               "resumed": resume}
    text = summary(cfg, metrics, run_dir)
    save_run(run_dir, model, corpus, cfg, metrics, history=fit["history"],
             extra=lambda tmp: write_text(tmp / "report.md", f"# snsrec run {cfg.name}\n\n```\n"
                                                              f"{text}\n```\n"), force=force)
    return {**metrics, "text": text}


def _fit(trainer: Any, model: Any, inputs: dict[str, np.ndarray], valid: dict[str, np.ndarray],
         run_dir: Any, resume: bool, cfg: Any) -> tuple[Any, dict[str, Any]]:
    from snsrec.data.batches import TensorBatches
    from snsrec.train.trainer import RUNTIME_KEYS

    tcfg, bucket = cfg.train, cfg.retrieval.bucket
    lengths = None
    if bucket:
        real = inputs["next"] >= 0 if "next" in inputs else inputs["hist_kind"] != 0
        lengths = real.sum(1)
    return trainer.fit_phases(
        model, lambda: TensorBatches(inputs, tcfg.batch_size, shuffle=True, seed=tcfg.seed,
                                     lengths=lengths, bucket=max(bucket, 1)),
        valid, checkpoint_dir=run_dir / "checkpoint", resume=resume,
        fingerprint={"config": cfg.model_dump(mode="json",
                                              exclude={"train": set(RUNTIME_KEYS)})})


def targets_table(rows: list[tuple[str, dict[str, Any]]], cols: list[str]) -> list[str]:
    """Text lines: a header and one line per (name, metrics) — queries and ``cols``."""
    lines = [f"{'target':<16}{'queries':>9}" + "".join(f"{c:>10}" for c in cols)]
    lines += [f"{name:<16}{m.get('queries', 0):>9}" +
              "".join(f"{m.get(c, float('nan')):>10.4f}" for c in cols) for name, m in rows]
    return lines


def target_rows(test: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """``evaluate_targets`` output as (name, metrics) rows: "feed", "feed cold", ..."""
    return [(f"{prefix}{target}" + ("" if part == "all" else f" {part}"), m)
            for target, parts in test.items() for part, m in parts.items()]


def summary(cfg: Any, metrics: dict[str, Any], run_dir: Any) -> str:
    head = (f"run {cfg.name}: {cfg.model.name} ({metrics['params']:,} parameters) on "
            f"{cfg.data}, best epoch {metrics['best_epoch']}/{metrics['epochs_run']}")
    rows = [("valid feed", metrics["valid"]), *target_rows(metrics["test"], "test ")]
    return "\n".join([head, *targets_table(rows, ["hr@10", "hr@100", "ndcg@10", "ndcg@100",
                                                   "mrr"]),
                      f"trained in {metrics['train_time_s']:.1f} s → {run_dir}"])


def evaluate_retrieval_run(run: Any, cfg: Any, run_dir: Any, split: str) -> dict[str, Any]:
    """`snsrec evaluate` of a retrieval run: per-target metrics on the valid or test period."""
    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.tables import load_tables
    from snsrec.errors import ConfigError

    if split == "train":
        raise ConfigError("--split train: a retrieval run is evaluated on the valid or test "
                          "period (its cut-off is the period's start)")
    tables = load_tables(resolve_dataset(cfg.data, cfg.cache))
    valid_start, test_start = _split_times(tables)
    log = BehaviourLog.from_tables(tables)
    start, end = (valid_start, test_start) if split == "valid" else \
        (test_start, int(log.ts.max()) + 1)
    metrics = evaluate_targets(run.model, log, run.feature_map, start, end, cfg.retrieval,
                               valid_start, KS, cfg.train.seed)
    lines = [f"{run_dir} ({cfg.model.name} on {cfg.data}), {split} period",
             *targets_table(target_rows(metrics), ["hr@10", "hr@100", "ndcg@10", "mrr"])]
    return {"text": "\n".join(lines), "metrics": metrics}
