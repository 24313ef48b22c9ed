"""The model families: every registered model derives from exactly one of these classes.

A family is the contract the rest of snsrec relies on — what the constructor
takes, what ``forward`` returns, which loss trains it and what the trainer,
evaluation and serving call on it — so code asks a model its ``family``
(``snsrec.models.registry.model_family``) instead of guessing from its methods.

=============  ==================  ===========  =========================================
family         class               built over   trained / fitted
=============  ==================  ===========  =========================================
``ranking``    RankingModel        FeatureMap   trainer, ``train.loss: bce``
``multitask``  MultiTaskModel      FeatureMap   trainer, ``train.loss: esmm | click_cvr``
``retriever``  TwoTowerRetriever   Corpus       trainer, the class's ``loss``
``counting``   CountingRetriever   Corpus       ``fit_log`` (counted, not trained)
=============  ==================  ===========  =========================================
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn


class RankingModel(nn.Module):
    """A CTR model: ``Model(feature_map, **params)`` over a ``snsrec.data.features.FeatureMap``.

    ``forward(batch)``: the FeatureMap's fields (name → ``[B]`` or ``[B, L]``
    tensors) → ``{"logit": [B]}``, the click logit (float32). Trained by
    ``snsrec.train.trainer.Trainer`` with ``train.loss: bce`` (the default) on
    the ``click`` label; the trainer first calls ``init_output_bias(ctr)`` so
    the global bias ``self.bias`` (a ``[1]`` parameter) starts at the log-odds
    of the training CTR. ``Trainer.predict`` is ``sigmoid(logit)``; evaluation
    is ``snsrec.eval.protocols.evaluate_predictions`` (AUC, logloss, gAUC);
    serving ranks candidates with it (``snsrec.serve.pipeline.Ranker``).
    """

    family: ClassVar[str] = "ranking"
    bias: nn.Parameter

    @torch.no_grad()
    def init_output_bias(self, ctr: float) -> None:
        ctr = min(max(ctr, 1e-6), 1 - 1e-6)
        self.bias.fill_(math.log(ctr / (1 - ctr)))


class MultiTaskModel(RankingModel):
    """A click → conversion model: a ranking model whose ``forward`` also returns
    ``"cvr_logit"`` ``[B]``, the logit of P(convert | click), beside ``"logit"`` (pCTR).

    Trained with ``train.loss: esmm`` (entire space) or ``click_cvr`` (clicked rows
    only) on the ``click`` and ``convert`` labels; evaluation adds the conversion
    metrics (``snsrec.eval.protocols.conversion_metrics``: cvr_auc, ctcvr_auc).
    """

    family: ClassVar[str] = "multitask"


class TwoTowerRetriever(nn.Module):
    """A retriever trained by gradient descent: ``Model(corpus, **params)`` over a
    ``snsrec.data.sequences.Corpus`` (its notes are the items), with ``n_items`` and ``dim``.

    ``item_vectors(rows)`` (``[N]`` corpus rows) → ``[N, dim]``;
    ``user_vectors(batch)`` (the user-tower inputs: history arrays, target
    scenario) → ``[B, K, dim]``, K interests; ``score(user_emb, item_emb, batch)``
    → ``[B, N]``. In training mode ``forward(batch)`` returns what its loss reads;
    ``loss`` names that loss (``train.loss`` must match it): ``window_nce`` by
    default, ``next_item_ce`` for a next-item model (SASRec). Evaluation ranks the
    whole corpus by ``score`` (``snsrec.eval.protocols.full_corpus``); ``snsrec
    index build`` indexes ``item_vectors`` and serving runs ``user_vectors``
    (``snsrec.serve.pipeline``).
    """

    family: ClassVar[str] = "retriever"
    loss: ClassVar[str] = "window_nce"


class CountingRetriever(nn.Module):
    """A retriever counted from the behaviour log, not trained: ``Model(corpus, **params)``
    over a ``snsrec.data.sequences.Corpus``, with ``n_items``.

    ``fit_log(log, train_end)`` counts the ``BehaviourLog``'s clicks before
    ``train_end`` into buffers (a run saves and loads them like weights) and
    returns the model; ``score_batch(batch)`` (the user-tower inputs) → ``[B,
    n_items]`` scores of every note, which ``snsrec.eval.protocols.full_corpus``
    ranks; ``forward(batch)`` returns them as ``{"scores": ...}``. No loss:
    ``snsrec train`` fits it and skips the trainer.
    """

    family: ClassVar[str] = "counting"


FAMILIES: dict[str, type[nn.Module]] = {
    b.family: b for b in (RankingModel, MultiTaskModel, TwoTowerRetriever, CountingRetriever)}
