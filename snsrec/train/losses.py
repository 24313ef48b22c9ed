"""Training losses by name: ``LOSSES[config.loss](output, batch) -> scalar``.

A loss reads what it needs from the model output and the batch, so multi-task
losses (several heads, several labels) fit the same call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from snsrec.errors import ModelError

LossFn = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]


def bce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
        label: str = "click") -> torch.Tensor:
    """Binary cross-entropy on ``output["logit"]`` against ``batch[label]`` (0/1)."""
    if "logit" not in output:
        raise ModelError("loss 'bce' needs the model to return 'logit'; is this a ranking model?")
    if label not in batch:
        raise ModelError(f"loss 'bce': the batch has no label '{label}'; check the FeatureMap labels")
    logit = output["logit"].reshape(-1).float()
    return F.binary_cross_entropy_with_logits(logit, batch[label].reshape(-1).to(logit.dtype))


def _window_nce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    from snsrec.train.window_nce import window_nce

    for key in ("user_emb", "pos_emb", "pos_mask", "neg_emb", "scale"):
        if key not in output:
            raise ModelError(f"loss 'window_nce' needs the model to return '{key}'; is this a "
                             "retrieval model (redrec)?")
    return window_nce(output, batch)


def next_item_ce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Softmax cross-entropy of ``output["logits"]`` ([M, N]: every real position of every
    sequence against the whole corpus) with the next items ``output["labels"]`` ([M])."""
    for key in ("logits", "labels"):
        if key not in output:
            raise ModelError(f"loss 'next_item_ce' needs the model to return '{key}'; is this "
                             "a sequential model (sasrec)?")
    return F.cross_entropy(output["logits"].float(), output["labels"])


LOSSES: dict[str, LossFn] = {"bce": bce, "window_nce": _window_nce, "next_item_ce": next_item_ce}
