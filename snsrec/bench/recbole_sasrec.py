"""RecBole's SASRec on snsrec's split: the peer of the retrieval benchmark's SASRec.

The comparison is only fair when both libraries see the same clicks and are
scored the same way, so the peer is fed and measured by snsrec:

- **Data.** RecBole reads "benchmark" atomic files (``<name>.train.inter``,
  ``.valid.inter``, ``.test.inter``; fields ``user_id``, ``item_id_list``,
  ``item_id``), written from the same ``BehaviourLog`` and time split as the
  snsrec run: training rows are RecBole's own augmentation (every click but
  a user's first before the training end, with the up to ``max_len`` clicks
  before it), validation rows are the snsrec run's validation queries (its
  early stopping watches RecBole's NDCG@10 on them).
- **Model and training.** ``recbole.model.sequential_recommender.SASRec``
  with the snsrec config's sizes (hidden, inner, layers, heads, dropout,
  ``max_len``), CE loss over all items, RecBole's ``Trainer`` with the same
  epochs, learning rate, patience, seed and time budget (``max_train_s``:
  both libraries stop after the epoch that spends it). The batch is RecBole's default,
  2,048 rows (``RECBOLE_BATCH``): a RecBole row is one target, an snsrec row a
  sequence of up to ``max_len`` targets, so equal row counts would give
  RecBole ~50x fewer targets per step (and an epoch of ~2,000 small steps).
- **Evaluation.** The best epoch's weights score the test queries of
  ``snsrec.train.retrieval.evaluate_targets`` through ``full_sort_predict``:
  the same full-corpus protocol, targets and cold-note split as every other
  row of the leaderboard. Notes RecBole never saw in any file score -inf.

RecBole 1.2 predates NumPy 2: the removed NumPy aliases it uses are restored
before import. Its best weights are kept in memory at the epoch its early
stopping takes as best, so its pickled checkpoint (which torch >= 2.6 will
not load with ``weights_only``) is never written or read.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snsrec.errors import ConfigError

INSTALL = "install the bench extra: make bench (or pip install -c constraints.txt '.[bench]')"
NAME = "snsrec"          # RecBole's dataset name: the atomic files' prefix
RECBOLE_BATCH = 2048     # RecBole's default train_batch_size (rows = targets)


def import_recbole() -> Any:
    """The ``recbole`` package, importable under NumPy 2 and torch >= 2.6."""
    # Its Config re-points the old aliases at these (``np.float = np.float_``, ...).
    for alias, kind in (("float_", np.float64), ("complex_", np.complex128),
                        ("unicode_", np.str_), ("float", float), ("int", int),
                        ("long", np.int64), ("bool", bool), ("object", object), ("str", str),
                        ("complex", complex)):
        if alias not in np.__dict__:
            setattr(np, alias, kind)
    try:
        import recbole
        import recbole.data  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"peer recbole: RecBole is not installed ({e}); {INSTALL}") from e
    return recbole


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("recbole") is not None


def _write(path: Path, users: np.ndarray, seqs: list[np.ndarray], items: np.ndarray) -> None:
    lines = ["user_id:token\titem_id_list:token_seq\titem_id:token"]
    lines += [f"{u}\t{' '.join(map(str, s))}\t{i}" for u, s, i in zip(users, seqs, items,
                                                                     strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _training_rows(log: Any, train_end: int, config: Any, max_len: int
                   ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """RecBole's sequential augmentation of the clicks before ``train_end`` (the clicks
    snsrec's SASRec trains on: ``training_clicks``)."""
    from snsrec.train.retrieval import training_clicks

    sel = training_clicks(log, train_end, config)
    users, items = log.user[sel], log.item[sel]
    first = np.r_[True, users[1:] != users[:-1]] if len(users) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
    rows = np.flatnonzero(~first)
    seqs = [items[max(start[i], i - max_len):i] for i in rows]
    return users[rows], seqs, items[rows]


def _eval_rows(samples: dict[str, np.ndarray], max_len: int
               ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Evaluation queries with at least one earlier click, as RecBole rows."""
    from snsrec.models.retrieval.sasrec import last_notes

    seq, lengths = last_notes({k: torch.from_numpy(samples[k])
                               for k in ("hist_kind", "hist_item")}, max_len)
    keep = np.flatnonzero(lengths.numpy() > 0)
    seqs = [seq[i, :lengths[i]].numpy() - 1 for i in keep]
    return samples["_user"][keep], seqs, samples["target"][keep]


class RecBoleScorer(nn.Module):
    """A trained RecBole SASRec behind snsrec's full-corpus protocol (``score_batch``)."""

    def __init__(self, model: nn.Module, rb_of_row: np.ndarray, max_len: int):
        super().__init__()
        self.model, self.max_len, self.n_items = model, max_len, len(rb_of_row)
        # Corpus row + 1 → RecBole item id (0: padding, and notes RecBole never saw).
        self.register_buffer("rb", torch.from_numpy(np.r_[0, rb_of_row]).long(),
                             persistent=False)

    @torch.no_grad()
    def score_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from recbole.data.interaction import Interaction

        from snsrec.models.retrieval.sasrec import last_notes

        seq, lengths = last_notes(batch, self.max_len)
        # A user with no click yet: one padding token (RecBole reads position length - 1).
        inter = Interaction({self.model.ITEM_SEQ: self.rb[seq],
                             self.model.ITEM_SEQ_LEN: lengths.clamp(min=1)})
        scores = self.model.full_sort_predict(inter)[:, self.rb[1:]]
        return scores.masked_fill((self.rb[1:] == 0)[None, :], -torch.inf)


class _OutOfTime(Exception):
    """Raised from RecBole's epoch callback when ``train.max_train_s`` is spent."""


def _config(run_dir: Path, data_dir: Path, p: dict[str, Any], tcfg: Any) -> Any:
    from recbole.config import Config

    settings = {
        "data_path": str(data_dir.parent), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "alias_of_item_id": ["item_id_list"], "MAX_ITEM_LIST_LENGTH": p["max_len"],
        "hidden_size": p["dim"], "inner_size": p["inner"], "n_layers": p["layers"],
        "n_heads": p["heads"], "hidden_dropout_prob": p["dropout"],
        "attn_dropout_prob": p["dropout"], "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "initializer_range": 0.02, "loss_type": "CE", "train_neg_sample_args": None,
        "epochs": tcfg.epochs, "train_batch_size": RECBOLE_BATCH, "eval_batch_size": 4096,
        "learning_rate": tcfg.lr, "stopping_step": tcfg.early_stop_patience,
        "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user"},
        "seed": tcfg.seed, "reproducibility": True, "use_gpu": False, "show_progress": False,
        "checkpoint_dir": str(run_dir / "recbole" / "saved"), "save_dataset": False,
        "save_dataloaders": False, "worker": 0}
    argv = sys.argv
    sys.argv = argv[:1]          # RecBole reads --key=value settings from the command line
    try:
        return Config(model="SASRec", dataset=NAME, config_dict=settings)
    finally:
        sys.argv = argv


def run_recbole_sasrec(cfg: Any, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Train RecBole's SASRec with ``cfg``'s (an snsrec ``sasrec`` run config) settings on its
    data and split; the snsrec test metrics of its best epoch's weights, as a run's metrics.
    ``resume`` is accepted for ``run_one`` and ignored: a RecBole run starts over."""
    import_recbole()
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.sequences import BehaviourLog, Corpus
    from snsrec.data.tables import load_tables
    from snsrec.eval.protocols import KS
    from snsrec.io import write_json
    from snsrec.progress import echo
    from snsrec.train.retrieval import _split_times, eval_samples, evaluate_targets
    from snsrec.train.trainer import default_threads

    if cfg.model.name != "sasrec":
        raise ConfigError(f"peer recbole runs SASRec; the config is for '{cfg.model.name}'")
    p = {"dim": 64, "max_len": 50, "layers": 2, "heads": 2, "inner": 256, "dropout": 0.5,
         **cfg.model.params}
    tcfg, rcfg = cfg.train, cfg.retrieval
    tables = load_tables(resolve_dataset(cfg.data, cfg.cache))
    valid_start, test_start = _split_times(tables)
    log = BehaviourLog.from_tables(tables)
    corpus = Corpus.from_tables(tables, log, valid_start)
    run_dir = Path(run_dir).resolve()        # RecBole runs in a chdir: no relative paths
    data_dir = run_dir / "recbole" / NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    train = _training_rows(log, valid_start, rcfg, p["max_len"])
    valid = eval_samples(log, corpus, valid_start, test_start, "feed", rcfg, seed=tcfg.seed)
    _write(data_dir / f"{NAME}.train.inter", *train)
    _write(data_dir / f"{NAME}.valid.inter", *_eval_rows(valid, p["max_len"]))
    # RecBole wants a test file; ours are scored by snsrec's protocol below.
    _write(data_dir / f"{NAME}.test.inter", *_eval_rows(valid, p["max_len"]))
    config = _config(run_dir, data_dir, p, tcfg)
    torch.set_num_threads(tcfg.threads or default_threads())
    epochs: list[float] = []
    # RecBole's Trainer writes TensorBoard logs under the working directory: keep them in
    # the run directory. Its pandas / torch.amp deprecation warnings are not ours to print.
    with contextlib.chdir(run_dir / "recbole"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        init_seed(tcfg.seed, True)
        dataset = create_dataset(config)
        train_data, valid_data, _ = data_preparation(config, dataset)
        init_seed(tcfg.seed, True)
        model = SASRec(config, train_data.dataset)
        trainer = Trainer(config, model)
        kept: dict[str, Any] = {}
        # train.max_train_s: the same time budget as snsrec's trainer (training time,
        # evaluation excluded, checked at each epoch's end).
        spent = [0.0]
        train_epoch = trainer._train_epoch

        def timed_epoch(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return train_epoch(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        def on_epoch(epoch: int, score: float) -> None:
            epochs.append(score)
            # RecBole has just taken this epoch as its best (its early stopping reset the
            # count): keep the weights in memory instead of its pickled checkpoint file.
            if trainer.cur_step == 0:
                kept.update(epoch=len(epochs), state={k: v.detach().clone()
                                                      for k, v in model.state_dict().items()})
            if tcfg.max_train_s is not None and spent[0] >= tcfg.max_train_s:
                raise _OutOfTime

        trainer._train_epoch = timed_epoch
        t0 = time.perf_counter()
        out_of_time = False
        try:
            best, _ = trainer.fit(train_data, valid_data, saved=False, show_progress=False,
                                  callback_fn=on_epoch)
        except _OutOfTime:
            best, out_of_time = trainer.best_valid_score, True
        train_time = time.perf_counter() - t0
    if kept:
        model.load_state_dict(kept["state"])
    rb_of_row = np.zeros(len(corpus), np.int64)
    tokens = dataset.field2token_id["item_id"]
    for token, rb in tokens.items():
        if token.isdigit():
            rb_of_row[int(token)] = rb
    scorer = RecBoleScorer(model, rb_of_row, p["max_len"])
    echo(f"peer recbole: SASRec trained {len(epochs)} epochs in {train_time:.1f} s; scoring")
    end = int(log.ts.max()) + 1
    test = evaluate_targets(scorer, log, corpus, test_start, end, rcfg, valid_start, KS,
                            tcfg.seed)
    rows = len(train[0])
    metrics = {"name": cfg.name, "model": "recbole-sasrec", "data": cfg.data,
               "params": int(sum(q.numel() for q in model.parameters())),
               "test": test, "valid": {"ndcg@10": float(best)}, "epochs_run": len(epochs),
               "best_epoch": kept.get("epoch", 0), "out_of_time": out_of_time,
               "train_time_s": train_time, "rows": {"train": {"rows": rows, "mean_targets": 1.0}},
               "library": f"recbole {import_recbole().__version__}"}
    write_json(run_dir / "metrics.json", metrics)
    return metrics
