"""Training losses by name: ``LOSSES[config.loss](output, batch) -> scalar``.

A loss reads what it needs from the model output and the batch, so multi-task
losses (several heads, several labels) fit the same call. ``@register_loss(name)``
on a loss function adds it to ``LOSSES``, which is also what ``train.loss`` accepts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from snsrec.errors import ModelError

LossFn = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]

LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Function decorator: make the loss ``train.loss: name``."""

    def wrap(fn: LossFn) -> LossFn:
        other = LOSSES.get(name)
        if other is not None and other.__qualname__ != fn.__qualname__:
            raise ValueError(f"loss name '{name}' is already registered by {other.__module__}")
        LOSSES[name] = fn
        return fn

    return wrap


@register_loss("bce")
def bce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
        label: str = "click") -> torch.Tensor:
    """Binary cross-entropy on ``output["logit"]`` against ``batch[label]`` (0/1)."""
    if "logit" not in output:
        raise ModelError("loss 'bce' needs the model to return 'logit'; is this a ranking model?")
    if label not in batch:
        raise ModelError(f"loss 'bce': the batch has no label '{label}'; check the FeatureMap labels")
    logit = output["logit"].reshape(-1).float()
    return F.binary_cross_entropy_with_logits(logit, batch[label].reshape(-1).to(logit.dtype))


@register_loss("window_nce")
def _window_nce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    from snsrec.train.window_nce import window_nce

    for key in ("user_emb", "pos_emb", "pos_mask", "neg_emb", "scale"):
        if key not in output:
            raise ModelError(f"loss 'window_nce' needs the model to return '{key}'; is this a "
                             "retrieval model (redrec)?")
    return window_nce(output, batch)


@register_loss("next_item_ce")
def next_item_ce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Softmax cross-entropy of ``output["logits"]`` ([M, N]: every real position of every
    sequence against the whole corpus) with the next items ``output["labels"]`` ([M])."""
    for key in ("logits", "labels"):
        if key not in output:
            raise ModelError(f"loss 'next_item_ce' needs the model to return '{key}'; is this "
                             "a sequential model (sasrec)?")
    return F.cross_entropy(output["logits"].float(), output["labels"])


def _two_heads(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], loss: str
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(CTR logit, CVR logit, click, convert) of a click → conversion model's batch."""
    for key in ("logit", "cvr_logit"):
        if key not in output:
            raise ModelError(f"loss '{loss}' needs the model to return '{key}'; use a "
                             "multi-task model (esmm, mmoe)")
    for key in ("click", "convert"):
        if key not in batch:
            raise ModelError(f"loss '{loss}': the batch has no label '{key}'; list both in the "
                             "features' labels: [click, convert]")
    ctr, cvr = output["logit"].reshape(-1).float(), output["cvr_logit"].reshape(-1).float()
    return (ctr, cvr, batch["click"].reshape(-1).to(ctr.dtype),
            batch["convert"].reshape(-1).to(ctr.dtype))


@register_loss("esmm")
def esmm(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """ESMM's entire-space loss: BCE(click, pCTR) + BCE(click · convert, pCTR · pCVR) over
    every impression, so the CVR head is never trained on clicked rows alone."""
    ctr, cvr, click, convert = _two_heads(output, batch, "esmm")
    log_p = F.logsigmoid(ctr) + F.logsigmoid(cvr)                     # log pCTCVR
    log_not = torch.log1p(-log_p.exp().clamp(max=1 - 1e-7))
    y = click * convert
    ctcvr = -(y * log_p + (1 - y) * log_not).mean()
    return F.binary_cross_entropy_with_logits(ctr, click) + ctcvr


@register_loss("click_cvr")
def click_cvr(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The usual two-task loss: BCE(click, pCTR) over every impression plus BCE(convert,
    pCVR) over the clicked ones only (the sample-selection-biased CVR ESMM corrects)."""
    ctr, cvr, click, convert = _two_heads(output, batch, "click_cvr")
    clicked = click > 0
    loss = F.binary_cross_entropy_with_logits(ctr, click)
    if bool(clicked.any()):
        loss = loss + F.binary_cross_entropy_with_logits(cvr[clicked], convert[clicked])
    return loss
