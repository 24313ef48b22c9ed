"""The one trainer every ranking model goes through.

``Trainer(TrainConfig).fit(model, train_batches, valid_arrays)`` runs epochs of
Adam/AdamW on BCE-with-logits, evaluates on the validation arrays after each
epoch, stops early when the monitored metric has not improved for
``early_stop_patience`` epochs and restores the best weights. ``save_run`` /
``load_run`` write and read the run directory of DESIGN.md (safetensors only).

Determinism: ``fit`` seeds everything with ``config.seed``; with the same data,
the same batch order (``TensorBatches`` seeded) and the same model, two runs on
CPU give identical metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from pydantic import BaseModel
from torch import nn

from snsrec.config import StrictModel
from snsrec.data.batches import to_tensors
from snsrec.data.schema import SCENARIOS
from snsrec.errors import ModelError
from snsrec.eval.metrics import ctr_metrics, per_group
from snsrec.io import atomic_dir, read_json, write_json, write_text
from snsrec.progress import Progress, echo
from snsrec.seed import seed_everything
from snsrec.train.losses import LOSSES

LABEL = "click"
# Direction of each metric ``monitor`` may name: +1 higher is better.
MONITOR_SIGN = {"auc": 1.0, "gauc": 1.0, "logloss": -1.0}


class TrainConfig(StrictModel):
    epochs: int = 5
    batch_size: int = 4096
    eval_batch_size: int = 65536
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0       # dense (non-embedding) parameters
    embedding_l2: float = 0.0       # embedding tables, see ``param_groups``
    grad_clip: float | None = None  # max global gradient norm; None = off
    early_stop_patience: int = 2
    monitor: Literal["auc", "gauc", "logloss"] = "auc"
    loss: Literal["bce"] = "bce"
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None      # torch intra-op threads; None = the cores we may use


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Embedding tables and dense weights as separate optimizer groups.

    ``embedding_l2`` is the embeddings' weight decay. With Adam it is the
    gradient of ``embedding_l2 / 2 * ||W||^2`` (L2 regularisation) at no extra
    cost per step; with AdamW it is decoupled decay, as for the dense weights.
    """
    emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    emb, dense = [], []
    for p in model.parameters():
        if p.requires_grad:
            (emb if id(p) in emb_ids else dense).append(p)
    groups = [{"params": emb, "weight_decay": config.embedding_l2, "name": "embedding"},
              {"params": dense, "weight_decay": config.weight_decay, "name": "dense"}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config)
    if not groups:
        raise ModelError(f"model '{getattr(model, 'model_name', type(model).__name__)}' has no "
                         "trainable parameters; fit it directly (e.g. Popularity.fit)")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr)


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


class Trainer:
    def __init__(self, config: TrainConfig | None = None):
        self.config = config or TrainConfig()
        self.history: list[dict[str, Any]] = []
        torch.set_num_threads(self.config.threads or available_cores())

    # -- inference --------------------------------------------------------
    @torch.no_grad()
    def predict(self, model: nn.Module, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Click probabilities for every row of ``arrays``, in order."""
        model.eval()
        tensors = to_tensors(arrays, self.config.device)
        n, bs = _n_rows(arrays), self.config.eval_batch_size
        out = np.empty(n, dtype=np.float64)
        for start in range(0, n, bs):
            batch = {k: v[start:start + bs] for k, v in tensors.items()}
            out[start:start + bs] = torch.sigmoid(model(batch)["logit"].double()).cpu().numpy()
        return out

    def evaluate(self, model: nn.Module, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """AUC, logloss, calibration, gAUC (by ``_user_id``) and the same per scenario."""
        return evaluate_predictions(arrays, self.predict(model, arrays))

    # -- training ---------------------------------------------------------
    def fit(self, model: nn.Module, train_batches: Iterable[dict[str, torch.Tensor]],
            valid_arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        cfg = self.config
        seed_everything(cfg.seed)
        model.to(cfg.device)
        init_output_bias(model, train_batches)
        optimizer = make_optimizer(model, cfg)
        loss_fn = LOSSES[cfg.loss]
        sign = MONITOR_SIGN[cfg.monitor]
        best_score, best_epoch, best_state, best_valid = -math.inf, -1, None, {}
        bad_epochs, total_samples, t_fit = 0, 0, time.perf_counter()
        self.history = []
        n_train = getattr(train_batches, "n_rows", None)
        for epoch in range(cfg.epochs):
            if hasattr(train_batches, "set_epoch"):
                train_batches.set_epoch(epoch)  # reshuffles deterministically per epoch
            model.train()
            loss_sum, samples, t0 = 0.0, 0, time.perf_counter()
            with Progress(f"epoch {epoch + 1}/{cfg.epochs}", total=n_train, unit="samples") as bar:
                for batch in train_batches:
                    batch = {k: v.to(cfg.device) for k, v in batch.items()
                             if not k.startswith("_")}
                    loss = loss_fn(model(batch), batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    b = int(batch[LABEL].shape[0])
                    loss_sum += float(loss.detach()) * b
                    samples += b
                    bar.update(b)
            if samples == 0:
                raise ModelError("training split is empty: no batches to train on; "
                                 "check the split dates or the data")
            train_loss = loss_sum / samples
            if not math.isfinite(train_loss):
                raise ModelError(f"training diverged (loss {train_loss}) in epoch {epoch + 1}; "
                                 "lower train.lr or set train.grad_clip")
            elapsed = time.perf_counter() - t0
            total_samples += samples
            valid = self.evaluate(model, valid_arrays)
            line = {"epoch": epoch + 1, "train_loss": train_loss, "samples": samples,
                    "samples_per_s": samples / max(elapsed, 1e-9), "time_s": elapsed,
                    **{f"valid_{k}": v for k, v in valid.items() if not isinstance(v, dict)}}
            self.history.append(line)
            score = sign * valid[cfg.monitor]
            improved = math.isfinite(score) and score > best_score
            echo(f"epoch {epoch + 1}: train loss {train_loss:.4f}, valid {cfg.monitor} "
                 f"{valid[cfg.monitor]:.4f}{' (best)' if improved else ''}")
            if improved or best_state is None:
                best_score = score if math.isfinite(score) else best_score
                best_epoch, best_valid, bad_epochs = epoch + 1, valid, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.early_stop_patience:
                    break
        model.load_state_dict(best_state)
        train_time = time.perf_counter() - t_fit
        return {"best_epoch": best_epoch, "epochs_run": len(self.history), "valid": best_valid,
                "stopped_early": len(self.history) < cfg.epochs, "train_time_s": train_time,
                "samples_per_s": total_samples / max(train_time, 1e-9),
                "history": self.history}


def evaluate_predictions(arrays: dict[str, np.ndarray], p: np.ndarray,
                         label: str = LABEL) -> dict[str, Any]:
    """CTR metrics for predictions ``p`` against ``arrays[label]``, overall and per scenario."""
    y = np.asarray(arrays[label])
    users = arrays.get("_user_id")
    out: dict[str, Any] = ctr_metrics(y, p, users=users)
    if "_scenario" in arrays:
        scen = np.asarray(arrays["_scenario"])
        extra = {"users": users} if users is not None else None
        out["by_scenario"] = per_group(ctr_metrics, y, p, scen, SCENARIOS, extra=extra)
    return out


# -- run directories ------------------------------------------------------

@dataclass
class Run:
    model: nn.Module
    feature_map: Any
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def _config_dict(config: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    return dict(config)


def jsonable(obj: Any) -> Any:
    """NaN → null so metrics.json stays strict JSON."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line (the per-epoch training log), atomically."""
    write_text(path, "".join(json.dumps(jsonable(r), sort_keys=True) + "\n" for r in rows))


def save_run(run_dir: str | Path, model: nn.Module, feature_map: Any,
             config: BaseModel | dict[str, Any] | None, metrics: dict[str, Any],
             history: list[dict[str, Any]] | None = None) -> Path:
    """Write a complete run directory atomically (a crash leaves the old one or none).

    ``model.safetensors`` carries the model's registry name and parameters in
    its metadata, so ``load_run`` needs nothing else to rebuild it.
    """
    from safetensors.torch import save_file

    name = getattr(model, "model_name", None)
    if name is None:
        raise ModelError(f"{type(model).__name__} is not a registered model; build it with "
                         "snsrec.models.registry.build_model")
    params = getattr(model, "model_params", {})
    resolved = {"model": {"name": name, "params": params}, **_config_dict(config)}
    run_dir = Path(run_dir)
    with atomic_dir(run_dir) as tmp:
        write_text(tmp / "config.yaml", yaml.safe_dump(resolved, sort_keys=False,
                                                       allow_unicode=True))
        feature_map.save(tmp / "feature_map.json")
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"),
                  metadata={"model_name": name, "model_params": json.dumps(params)})
        write_json(tmp / "metrics.json", jsonable(metrics))
        write_jsonl(tmp / "log.jsonl", history or [])
    return run_dir


def load_run(run_dir: str | Path) -> Run:
    """Rebuild a saved model by its registry name and load its weights (no pickle)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from snsrec.data.features import FeatureMap
    from snsrec.models.registry import build_model

    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights}: not found; is {run_dir} a run directory (snsrec train)?")
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{weights}: unreadable safetensors file ({e}); re-run training") from None
    if "model_name" not in meta:
        raise ModelError(f"{weights}: no model name in its metadata; save it with save_run")
    feature_map = FeatureMap.load(run_dir / "feature_map.json")
    model = build_model(meta["model_name"], feature_map, **json.loads(meta.get("model_params")
                                                                      or "{}"))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise ModelError(f"{weights}: weights do not fit model '{meta['model_name']}' on "
                         f"{run_dir / 'feature_map.json'} ({first}); was the run dir mixed?"
                         ) from None
    model.eval()
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) \
        if (run_dir / "config.yaml").is_file() else {}
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    return Run(model=model, feature_map=feature_map, config=config or {}, metrics=metrics)
