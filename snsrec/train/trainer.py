"""The one trainer every ranking model goes through.

``Trainer(TrainConfig).fit(model, train_batches, valid_arrays)`` runs epochs of
Adam/AdamW on the configured loss, evaluates on the validation arrays after each
epoch, stops early when the monitored metric has not improved for
``early_stop_patience`` epochs and restores the best weights. It only fits: the
run directory is ``snsrec.runs``, the evaluation protocols ``snsrec.eval.protocols``.

- **Optimizer.** Embedding tables and dense weights are separate groups, each
  with its own learning rate (``embedding_lr``, default ``lr``) and decay
  (``embedding_l2`` / ``weight_decay``); global-norm gradient clipping.
- **Schedule.** ``lr × warmup × decay × plateau``: linear warmup over
  ``warmup_steps`` optimizer steps, then ``cosine`` (to ``lr_min_ratio`` at the
  last step), ``step`` (× ``lr_gamma`` every ``lr_step_epochs``) or ``plateau``
  (× ``lr_gamma`` after ``plateau_patience`` epochs without improvement).
- **Checkpoints.** With a ``checkpoint_dir`` the trainer writes, every
  ``checkpoint_every`` steps and at each epoch end, everything a resumed run
  needs to continue *exactly*: weights, best weights, optimizer moments,
  schedule, batch position (``TensorBatches.state_dict``), RNG states and the
  history. Tensors go to ``tensors.safetensors``, the rest to ``state.json``;
  no pickle. The directory is replaced atomically.
- **DDP.** Under ``torchrun`` the model is wrapped in DistributedDataParallel,
  each rank trains a disjoint shard of the same epoch permutation with a
  per-rank batch of ``batch_size / world_size`` (so a step sees as many rows
  as a single-process step), evaluation is sharded and gathered, and only rank
  0 writes (see ``snsrec.train.distributed``).

Determinism: ``fit`` seeds everything with ``config.seed``; with the same data,
the same batch order (``TensorBatches`` seeded) and the same model, two runs on
CPU give identical metrics, and so does a run interrupted and resumed.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field as PField
from pydantic import field_validator
from torch import nn

from snsrec.config import StrictModel
from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.eval.metrics import higher_is_better, is_metric
from snsrec.eval.protocols import LABEL, conversion_metrics, evaluate_predictions
from snsrec.io import atomic_dir, jsonable, read_json, settle, write_json
from snsrec.progress import Progress, echo
from snsrec.seed import seed_everything
from snsrec.train import distributed
from snsrec.train.losses import LOSSES
from snsrec.train.optim import (
    clip_grad_norm,
    make_optimizer,
    restore_sparse_embeddings,
    set_sparse_embeddings,
)

# Settings that change how fast a run goes, not what it computes: a resumed run may differ here.
RUNTIME_KEYS = ("device", "threads", "eval_batch_size", "checkpoint_every")
# What ``monitor`` may name: the metrics ``Trainer.evaluate`` reports (and hr@K, ndcg@K,
# recall@K for retrievers); their direction is ``snsrec.eval.metrics.higher_is_better``.
MONITORS = ("auc", "gauc", "logloss", "cvr_auc", "ctcvr_auc", "mrr")
CHECKPOINT_FORMAT = "snsrec.checkpoint"
CHECKPOINT_VERSION = 1


class TrainConfig(StrictModel):
    epochs: int = PField(5, ge=1)
    batch_size: int = PField(4096, ge=1)
    eval_batch_size: int = PField(65536, ge=1)
    lr: float = PField(1e-3, gt=0)          # dense (non-embedding) parameters
    embedding_lr: float | None = PField(None, gt=0)  # embedding tables; None = lr
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = PField(0.0, ge=0)  # dense (non-embedding) parameters
    embedding_l2: float = PField(0.0, ge=0)  # embedding tables, see ``param_groups``
    grad_clip: float | None = PField(None, gt=0)  # max global gradient norm; None = off
    schedule: Literal["none", "cosine", "step", "plateau"] = "none"
    warmup_steps: int = PField(0, ge=0)     # linear warmup, in optimizer steps
    lr_gamma: float = PField(0.1, gt=0, le=1)   # step / plateau decay factor
    lr_step_epochs: int = PField(1, ge=1)   # step: decay every this many epochs
    lr_min_ratio: float = PField(0.0, ge=0, le=1)  # cosine: final lr / lr
    plateau_patience: int = PField(1, ge=1)  # plateau: epochs without improvement
    early_stop_patience: int = PField(2, ge=1)
    # Stop after the epoch that brings the training time (evaluation excluded) to this many
    # seconds: a time budget, e.g. for a benchmark that gives two libraries the same time.
    max_train_s: float | None = PField(None, gt=0)
    # auc | gauc | logloss; multi-task: cvr_auc | ctcvr_auc; retrieval: hr@K | ndcg@K | mrr ...
    monitor: str = "auc"
    # a name in snsrec.train.losses.LOSSES: bce (CTR); esmm | click_cvr (click → conversion
    # models); window_nce | next_item_ce (retrievers: their class's ``loss``)
    loss: str = "bce"
    seed: int = 0
    device: str = "cpu"
    threads: int | None = PField(None, ge=1)  # torch threads; None: default_threads()
    checkpoint_every: int = PField(0, ge=0)  # steps between checkpoints; 0 = epoch ends only
    # Embedding tables: row-sparse gradients and lazy Adam rows (snsrec.train.optim);
    # false = dense gradients and dense Adam over whole tables. DDP always uses dense.
    sparse_embeddings: bool = True
    # Matmuls in bfloat16 under torch.autocast (weights, optimizer and logits stay
    # float32): on CPUs with AMX / AVX512-BF16 a linear layer runs ~4× faster.
    precision: Literal["fp32", "bf16"] = "fp32"

    @field_validator("monitor")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in MONITORS and not (is_metric(v) and "@" in v):
            raise ValueError(f"'{v}' is not a metric; use {', '.join(MONITORS)}, hr@K, "
                             "ndcg@K or recall@K")
        return v

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, v: str) -> str:
        if v not in LOSSES:
            raise ValueError(f"'{v}' is not a loss; use {', '.join(LOSSES)}")
        return v

    def autocast(self) -> torch.autocast:
        """The forward-pass context for ``precision`` (a no-op for fp32)."""
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LRSchedule:
    """Sets every group's lr to ``base × warmup(step) × decay(step, epoch) × plateau``.

    A pure function of (step, epoch) plus the plateau bookkeeping, so its whole
    state is three numbers in the checkpoint's JSON.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 steps_per_epoch: int):
        self.optimizer, self.config = optimizer, config
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.total_steps = max(1, config.epochs * steps_per_epoch)
        self.plateau_factor, self.plateau_best, self.plateau_bad = 1.0, -math.inf, 0

    def factor(self, step: int, epoch: int) -> float:
        c = self.config
        f = (step + 1) / c.warmup_steps if step < c.warmup_steps else 1.0
        if c.schedule == "cosine":
            span = max(1, self.total_steps - c.warmup_steps)
            t = min(1.0, max(0, step - c.warmup_steps) / span)
            f *= c.lr_min_ratio + (1 - c.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        elif c.schedule == "step":
            f *= c.lr_gamma ** (epoch // c.lr_step_epochs)
        elif c.schedule == "plateau":
            f *= self.plateau_factor
        return f

    def apply(self, step: int, epoch: int) -> None:
        f = self.factor(step, epoch)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            group["lr"] = base * f

    def end_epoch(self, score: float) -> None:
        """Plateau bookkeeping with the signed monitored score (higher is better)."""
        if self.config.schedule != "plateau" or not math.isfinite(score):
            return
        if score > self.plateau_best:
            self.plateau_best, self.plateau_bad = score, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad >= self.config.plateau_patience:
            self.plateau_factor *= self.config.lr_gamma
            self.plateau_bad = 0

    def state_dict(self) -> dict[str, Any]:
        best = self.plateau_best if math.isfinite(self.plateau_best) else None
        return {"plateau_factor": self.plateau_factor, "plateau_best": best,
                "plateau_bad": self.plateau_bad}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.plateau_factor = float(d["plateau_factor"])
        self.plateau_best = -math.inf if d["plateau_best"] is None else float(d["plateau_best"])
        self.plateau_bad = int(d["plateau_bad"])


def init_output_bias(model: nn.Module, train_batches: Any) -> None:
    """Start a model's global logit bias at the log-odds of the training CTR.

    Models opt in with ``init_output_bias(ctr)``. Without it every field's
    weights drift together to absorb the mean, and ids never seen in training
    (left at 0) end up scoring above every seen one; with it the weights learn
    deviations from the mean and an unseen id scores as average.
    """
    hook = getattr(model, "init_output_bias", None)
    labels = getattr(train_batches, "tensors", {}).get(LABEL)
    if hook is None or labels is None or labels.numel() == 0:
        return
    hook(float(labels.double().mean()))


def _n_rows(arrays: dict[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0


# Ids (sequence behaviours, multi-valued values) per evaluation batch at most: a row of
# 2,000 behaviours in two sequences embeds 4,000 ids, so 65,536 such rows would look up
# 260M embeddings at once; ``eval_batch_size`` is lowered to EVAL_IDS / (ids per row).
EVAL_IDS = 8_000_000


def eval_rows_per_batch(arrays: dict[str, np.ndarray], eval_batch_size: int) -> int:
    """``eval_batch_size``, or fewer rows where the 2-D id fields make rows wide."""
    ids = sum(v.shape[1] for v in arrays.values() if v.ndim == 2 and v.dtype.kind in "iu")
    return min(eval_batch_size, max(256, EVAL_IDS // ids)) if ids else eval_batch_size


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- checkpoints ----------------------------------------------------------

@dataclass
class FitState:
    """Everything of a fit in progress besides weights and optimizer moments."""

    step: int = 0                   # optimizer steps taken
    epoch: int = 0                  # epoch in progress (or the next one, at an epoch end)
    loss_sum: float = 0.0           # this epoch so far (all ranks)
    samples: int = 0
    total_samples: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = -1
    best_valid: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["best_score"] = self.best_score if math.isfinite(self.best_score) else None
        return jsonable(d)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FitState:
        d = dict(d)
        d["best_score"] = -math.inf if d.get("best_score") is None else d["best_score"]
        return cls(**d)


def _rng_state() -> tuple[dict[str, Any], torch.Tensor]:
    """Python / NumPy (legacy) RNG as JSON, torch's CPU generator as a uint8 tensor."""
    np_state = np.random.get_state()
    py = random.getstate()
    return ({"python": [py[0], list(py[1]), py[2]],
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]},
            torch.get_rng_state())


def _set_rng_state(d: dict[str, Any], torch_state: torch.Tensor) -> None:
    py = d["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = d["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    torch.set_rng_state(torch_state)


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, batches: Any, state: FitState,
                    best_state: dict[str, torch.Tensor] | None,
                    fingerprint: dict[str, Any]) -> None:
    """Write the checkpoint directory atomically (a kill leaves the previous one)."""
    from safetensors.torch import save_file

    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
    opt_keys: dict[str, dict[str, str]] = {}
    for pid, entry in opt["state"].items():
        kinds = opt_keys.setdefault(str(pid), {})
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
                kinds[key] = "tensor"
            else:
                kinds[key] = json.dumps(value)
    rng, torch_rng = _rng_state()
    tensors["rng.torch"] = torch_rng
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "fingerprint": fingerprint, "fit": state.to_json(), "schedule": schedule.state_dict(),
            "batches": batches.state_dict() if hasattr(batches, "state_dict") else None,
            "optimizer": {"param_groups": opt["param_groups"], "state": opt_keys},
            "has_best": best_state is not None, "rng": rng}
    with atomic_dir(path, "train (checkpoint)", legacy=["state.json"]) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                  str(tmp / "tensors.safetensors"))
        write_json(tmp / "state.json", meta)


def checkpoint_dir_of(path: Path) -> Path | None:
    """The checkpoint to resume from: ``path`` (the previous one back in place when a kill
    cut its replacement short), or None."""
    path = settle(path)
    if (path / "state.json").is_file() and (path / "tensors.safetensors").is_file():
        return path
    return None


def _fingerprint_diff(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(saved) | set(now))
    out: list[str] = []
    for k in keys:
        a, b = saved.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _fingerprint_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, batches: Any, fingerprint: dict[str, Any]
                    ) -> tuple[FitState, dict[str, torch.Tensor] | None]:
    """Restore everything ``save_checkpoint`` wrote; a checkpoint of another run is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    found = checkpoint_dir_of(path)
    if found is None:
        raise ModelError(f"{path}: no checkpoint to resume from; train without --resume")
    meta = read_json(found / "state.json")
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"{found}: not a {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION} checkpoint; "
                         f"train without --resume")
    diff = _fingerprint_diff(meta.get("fingerprint", {}), jsonable(fingerprint))
    if diff:
        raise ModelError(f"{found}: checkpoint is from another run (differs in "
                         f"{', '.join(diff[:4])}); resume with the config it was written with, "
                         f"or train without --resume")
    try:
        tensors = load_file(str(found / "tensors.safetensors"))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{found}: unreadable checkpoint ({e}); train without --resume"
                         ) from None

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        model.load_state_dict(part("model."))
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise ModelError(f"{found}: weights do not fit this model ({first}); the checkpoint "
                         f"is from another model or feature map; train without --resume"
                         ) from None
    opt_state: dict[int, dict[str, Any]] = {}
    for pid, kinds in meta["optimizer"]["state"].items():
        opt_state[int(pid)] = {key: tensors[f"optim.{pid}.{key}"] if kind == "tensor"
                               else json.loads(kind) for key, kind in kinds.items()}
    optimizer.load_state_dict({"state": opt_state,
                               "param_groups": meta["optimizer"]["param_groups"]})
    schedule.load_state_dict(meta["schedule"])
    if meta.get("batches") is not None and hasattr(batches, "load_state_dict"):
        batches.load_state_dict(meta["batches"])
    _set_rng_state(meta["rng"], tensors["rng.torch"])
    best = part("best.") if meta.get("has_best") else None
    return FitState.from_json(meta["fit"]), best


# -- the trainer ----------------------------------------------------------

def default_threads() -> int:
    """Torch threads when ``train.threads`` is unset: ``OMP_NUM_THREADS`` when the user (or
    a test runner with several workers) set it, else this rank's share of the cores (under
    torchrun the local ranks share them)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, available_cores() // distributed.info().local_world_size)


# What a run's metrics.json keeps of ``Trainer.fit``'s summary (those the fit has).
FIT_SUMMARY = ("best_epoch", "epochs_run", "stopped_early", "out_of_time", "steps",
               "train_time_s", "samples_per_s")


def fit_summary(fit: dict[str, Any]) -> dict[str, Any]:
    """``FIT_SUMMARY``'s entries of a fit (a fitted, untrained model's has fewer)."""
    return {k: fit[k] for k in FIT_SUMMARY if k in fit}


class Trainer:
    """``evaluator(model, arrays) -> metrics`` replaces the CTR evaluation (retrieval
    models pass theirs); ``config.monitor`` names one of its metrics."""

    def __init__(self, config: TrainConfig | None = None,
                 evaluator: Callable[[nn.Module, Any], dict[str, Any]] | None = None):
        self.config = config or TrainConfig()
        self.evaluator = evaluator
        self.history: list[dict[str, Any]] = []
        torch.set_num_threads(self.config.threads or default_threads())

    # -- inference --------------------------------------------------------
    @torch.no_grad()
    def predict_heads(self, model: nn.Module, arrays: dict[str, np.ndarray]
                      ) -> dict[str, np.ndarray]:
        """Probabilities of every logit head (``logit``: click; a multi-task model's
        ``cvr_logit``: conversion given a click) for every row of ``arrays``, in order.

        Under DDP each rank scores a contiguous block and the blocks are gathered.
        """
        model = getattr(model, "module", model)     # DDP → the wrapped model
        model.eval()
        n, d = _n_rows(arrays), distributed.info()
        lo, hi = distributed.shard_bounds(n, d.rank, d.world_size)
        tensors = to_tensors({k: v[lo:hi] for k, v in arrays.items()}, self.config.device)
        bs = eval_rows_per_batch(arrays, self.config.eval_batch_size)
        out: dict[str, np.ndarray] = {}
        for start in range(0, hi - lo, bs):
            batch = {k: v[start:start + bs] for k, v in tensors.items()}
            with self.config.autocast():
                heads = {k: v for k, v in model(batch).items() if k.endswith("logit")}
            for key, logit in heads.items():
                part = out.setdefault(key, np.empty(hi - lo, dtype=np.float64))
                part[start:start + bs] = torch.sigmoid(logit.double()).cpu().numpy()
        if not out:                                  # no rows: the heads of an empty batch
            out = {"logit": np.empty(0, dtype=np.float64)}
        return {k: distributed.gather_rows(v, n) for k, v in out.items()}

    def predict(self, model: nn.Module, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Click probabilities for every row of ``arrays``, in order."""
        return self.predict_heads(model, arrays)["logit"]

    def evaluate(self, model: nn.Module, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """AUC, logloss, calibration, gAUC (by ``_user_id``) and the same per scenario
        (or the ``evaluator``'s metrics); with a conversion head also CVR AUC / logloss on
        the clicked rows and CTCVR AUC (``conversion_metrics``)."""
        if self.evaluator is not None:
            return self.evaluator(getattr(model, "module", model), arrays)
        heads = self.predict_heads(model, arrays)
        out = evaluate_predictions(arrays, heads["logit"])
        if "cvr_logit" in heads and "convert" in arrays:
            out.update(conversion_metrics(arrays, heads["logit"], heads["cvr_logit"]))
        return out

    # -- training ---------------------------------------------------------
    def fit(self, model: nn.Module, train_batches: Iterable[dict[str, torch.Tensor]],
            valid_arrays: dict[str, np.ndarray], *, checkpoint_dir: Path | None = None,
            resume: bool = False, fingerprint: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train ``model`` in place; return the best epoch's validation metrics and the history.

        ``checkpoint_dir`` turns checkpoints on; ``resume`` continues from the one
        there (``fingerprint`` must equal the one it was written with). The
        embeddings' sparse-gradient flags are the model's own again afterwards,
        also when training fails.
        """
        sparse = self.config.sparse_embeddings and distributed.info().world_size == 1
        sparse_flags = set_sparse_embeddings(model, sparse)
        try:
            return self._fit(model, train_batches, valid_arrays, checkpoint_dir, resume,
                             fingerprint)
        finally:
            restore_sparse_embeddings(model, sparse_flags)

    def _fit(self, model: nn.Module, train_batches: Any, valid_arrays: dict[str, np.ndarray],
             checkpoint_dir: Path | None, resume: bool, fingerprint: dict[str, Any] | None
             ) -> dict[str, Any]:
        cfg = self.config
        seed_everything(cfg.seed)
        model.to(cfg.device)
        init_output_bias(model, train_batches)
        optimizer = make_optimizer(model, cfg)
        net, train_batches = self._parallel(model, train_batches)
        steps_per_epoch = len(train_batches) if hasattr(train_batches, "__len__") else 0
        schedule = LRSchedule(optimizer, cfg, steps_per_epoch)
        fingerprint = fingerprint or {}
        st, best_state = FitState(), None
        if resume:
            if checkpoint_dir is None:
                raise ModelError("resume needs a checkpoint directory; pass checkpoint_dir")
            st, best_state = load_checkpoint(checkpoint_dir, model, optimizer, schedule,
                                             train_batches, fingerprint)
            echo(f"resuming from {checkpoint_dir} at epoch {st.epoch + 1}, step {st.step}")
            if not distributed.is_main():
                st.loss_sum = 0.0   # rank 0 carries the partial epoch's loss of all ranks

        def checkpoint() -> None:
            if checkpoint_dir is not None and distributed.is_main():
                save_checkpoint(checkpoint_dir, model, optimizer, schedule, train_batches, st,
                                best_state, fingerprint)

        loss_fn = LOSSES[cfg.loss]
        sign = 1.0 if higher_is_better(cfg.monitor) else -1.0
        t_fit = time.perf_counter()
        n_train = getattr(train_batches, "n_rows", None)
        stopped = out_of_time = False
        while st.epoch < cfg.epochs and not stopped:
            epoch = st.epoch
            if hasattr(train_batches, "set_epoch") and st.samples == 0:
                train_batches.set_epoch(epoch)  # reshuffles deterministically per epoch
            net.train()
            t0 = time.perf_counter()
            with Progress(f"epoch {epoch + 1}/{cfg.epochs}", total=n_train, unit="samples") as bar:
                for batch in train_batches:
                    batch = {k: v.to(cfg.device) for k, v in batch.items()
                             if not k.startswith("_")}
                    schedule.apply(st.step, epoch)
                    with cfg.autocast():
                        output = net(batch)
                    loss = loss_fn(output, batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip:
                        clip_grad_norm(list(model.parameters()), cfg.grad_clip)
                    optimizer.step()
                    b = int(next(iter(batch.values())).shape[0])
                    st.loss_sum += float(loss.detach()) * b
                    st.samples += b
                    st.step += 1
                    bar.update(b)
                    if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
                        mid = st.loss_sum, st.samples
                        st.loss_sum, st.samples = self._global(*mid)
                        checkpoint()
                        st.loss_sum, st.samples = mid
            loss_sum, samples = self._global(st.loss_sum, st.samples)
            if samples == 0:
                raise ModelError("training split is empty: no batches to train on; "
                                 "check the split dates or the data")
            train_loss = loss_sum / samples
            if not math.isfinite(train_loss):
                raise ModelError(f"training diverged (loss {train_loss}) in epoch {epoch + 1}; "
                                 "lower train.lr or set train.grad_clip")
            elapsed = time.perf_counter() - t0
            st.total_samples += samples
            valid = self.evaluate(model, valid_arrays)
            line = {"epoch": epoch + 1, "train_loss": train_loss, "samples": samples,
                    "samples_per_s": samples / max(elapsed, 1e-9), "time_s": elapsed,
                    "lr": optimizer.param_groups[-1]["lr"],
                    **{f"valid_{k}": v for k, v in valid.items() if not isinstance(v, dict)}}
            st.history.append(line)
            if cfg.monitor not in valid:
                raise ModelError(f"train.monitor '{cfg.monitor}' is not among the validation "
                                 f"metrics ({', '.join(sorted(valid))}); pick one of them")
            score = sign * valid[cfg.monitor]
            improved = math.isfinite(score) and score > st.best_score
            echo(f"epoch {epoch + 1}: train loss {train_loss:.4f}, valid {cfg.monitor} "
                 f"{valid[cfg.monitor]:.4f}{' (best)' if improved else ''}")
            schedule.end_epoch(score)
            if improved or best_state is None:
                st.best_score = score if math.isfinite(score) else st.best_score
                st.best_epoch, st.best_valid, st.bad_epochs = epoch + 1, valid, 0
                best_state = _state(model)
            else:
                st.bad_epochs += 1
                stopped = st.bad_epochs >= cfg.early_stop_patience
            st.epoch, st.loss_sum, st.samples = epoch + 1, 0.0, 0
            if cfg.max_train_s is not None and not stopped:
                # The ranks' mean, so every rank takes the same decision.
                spent = distributed.all_sum([sum(h["time_s"] for h in st.history)])[0] \
                    / distributed.info().world_size
                stopped = out_of_time = spent >= cfg.max_train_s
            if not stopped and st.epoch < cfg.epochs:
                checkpoint()
        model.load_state_dict(best_state)
        self.history = st.history
        train_time = time.perf_counter() - t_fit
        return {"best_epoch": st.best_epoch, "epochs_run": len(st.history),
                "valid": st.best_valid, "stopped_early": len(st.history) < cfg.epochs,
                "out_of_time": out_of_time,
                "train_time_s": train_time, "steps": st.step,
                "samples_per_s": st.total_samples / max(train_time, 1e-9),
                "history": st.history}

    def fit_phases(self, model: nn.Module, make_batches: Callable[[], Any],
                   valid_arrays: dict[str, np.ndarray], *, checkpoint_dir: Path | None = None,
                   resume: bool = False, fingerprint: dict[str, Any] | None = None
                   ) -> tuple[nn.Module, dict[str, Any]]:
        """``fit`` ``model``, then every model its ``next_phase()`` returns; (last model, fit).

        A model that trains in phases (OptInter: search an architecture, then
        re-train it from scratch) names its successor with ``next_phase()``
        (None when done) and may describe itself with ``phase_info()``. Each
        phase starts from the same seed on fresh batches (``make_batches()``)
        and checkpoints to its own directory (``checkpoint_dir``, then
        ``checkpoint_dir-1``, ...). With several phases the returned fit adds
        ``phases`` (one summary each), the history of every phase (each line
        with its ``phase``, from 1) and the summed ``train_time_s``.
        """
        phases: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        while True:
            ckpt = checkpoint_dir
            if ckpt is not None and phases:
                ckpt = ckpt.with_name(f"{ckpt.name}-{len(phases)}")
            if phases:
                seed_everything(self.config.seed)
            # Resuming: phases that finished re-run from their last checkpoint (the same
            # arithmetic, so the same result); a phase not yet started starts fresh.
            started = ckpt is not None and checkpoint_dir_of(ckpt) is not None
            fit = self.fit(model, make_batches(), valid_arrays, checkpoint_dir=ckpt,
                           resume=resume and started,
                           fingerprint={**(fingerprint or {}), "phase": len(phases),
                                        "model_params": getattr(model, "model_params", {})})
            info = getattr(model, "phase_info", None)
            phases.append({**{k: fit[k] for k in ("best_epoch", "epochs_run", "train_time_s",
                                                  "valid")},
                           **(info() if callable(info) else {})})
            history += [{**h, "phase": len(phases)} for h in fit["history"]]
            following = getattr(model, "next_phase", None)
            successor = following() if callable(following) else None
            if successor is None:
                break
            model = successor
        if len(phases) > 1:
            fit = {**fit, "phases": phases, "history": history,
                   "train_time_s": sum(p["train_time_s"] for p in phases)}
        self.history = fit["history"]
        return model, fit

    def _parallel(self, model: nn.Module, batches: Any) -> tuple[nn.Module, Any]:
        """(the module to call, this rank's batches): DDP + a shard under torchrun."""
        d = distributed.info()
        if d.world_size == 1:
            return model, batches
        if not hasattr(batches, "shard"):
            raise ModelError("distributed training needs TensorBatches (they shard per rank)")
        shard = batches.shard(d.rank, d.world_size)
        # Same rows per optimizer step as one process: the global batch is batch_size.
        shard.batch_size = max(1, -(-batches.batch_size // d.world_size))
        ids = [d.local_rank] if self.config.device.startswith("cuda") else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return net, shard

    @staticmethod
    def _global(loss_sum: float, samples: int) -> tuple[float, int]:
        total, n = distributed.all_sum([loss_sum, float(samples)])
        return total, int(n)
