"""OptInter: per feature pair, memorise, factorise or be naive — searched, then re-trained.

Lyu et al., "Memorize, Factorize, or be Naive: Learning Optimal Feature
Interaction Methods for CTR Prediction" (ICDE 2022). For every pair of fields
(i, j) the model may

- *memorise* it: give every value combination its own embedding (a hashed
  cross-product feature), which fits any pattern but needs data per cell;
- *factorise* it: ``e_i ⊙ e_j`` (the element-wise product, whose sum is the
  inner product ⟨e_i, e_j⟩ of FM; the MLP may weight its dimensions);
- leave it to the MLP (*naive*: no explicit interaction).

The original and combination embeddings are concatenated into an MLP.

Two phases. **Search** (``architecture=None``): every pair's embedding is the
Gumbel-softmax-weighted mix of the three methods, and the architecture logits
train jointly with the weights (``search_architecture``). **Re-train**: build a
new model with ``architecture={"a|b": choice}`` (``OptInter.finalise()`` does
it) and train from scratch. The architecture is a constructor parameter, so the
run directory's saved params rebuild the re-trained model. ``snsrec train``
runs both phases in one run (``next_phase``; ``retrain: false`` keeps the
search phase's model) and records the searched architecture in metrics.json.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import CATEGORICAL, MLP, FeatureEmbedding
from snsrec.models.registry import build_model, register
from snsrec.train.trainer import TrainConfig, Trainer

CHOICES = ("memorise", "factorise", "naive")
_MEM, _FAC = 0, 1          # positions in CHOICES; naive (2) contributes nothing
# Odd multipliers for hashing an id pair (ids < 2^31, so the products fit in int64).
_H1, _H2 = 0x9E3779B1, 0x85EBCA77


def pair_key(a: str, b: str) -> str:
    """The architecture key of a field pair: ``"a|b"`` in the model's field order."""
    return f"{a}|{b}"


class CrossProductEmbedding(nn.Module):
    """Embeddings of memorised pairs' value combinations, one table for all pairs.

    ``pairs`` name two single-valued categorical fields each, ``vocab`` gives
    every field's vocabulary size. Pair ``p`` owns ``min(V_i·V_j, buckets)``
    rows of one concatenated table: the exact cell ``a·V_j + b`` when the
    product fits, else a multiplicative hash of (a, b).
    ``forward(batch)`` → ``[B, P, D]``.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], vocab: dict[str, int], dim: int,
                 buckets: int, init_std: float = 1e-4):
        super().__init__()
        self.columns = sorted({n for pair in pairs for n in pair})
        col = {n: k for k, n in enumerate(self.columns)}
        sizes = np.array([min(vocab[a] * vocab[b], buckets) for a, b in pairs], dtype=np.int64)
        buffers = {"left": [col[a] for a, _ in pairs], "right": [col[b] for _, b in pairs],
                   "width": [vocab[b] for _, b in pairs], "sizes": sizes,
                   "offsets": np.concatenate([[0], np.cumsum(sizes)[:-1]]),
                   "hashed": [vocab[a] * vocab[b] > buckets for a, b in pairs]}
        for name, value in buffers.items():
            # Derived from the feature map, so not part of the checkpoint.
            self.register_buffer(name, torch.as_tensor(np.asarray(value)), persistent=False)
        self.table = nn.Embedding(int(sizes.sum()), dim)
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = torch.stack([batch[n].long() for n in self.columns], dim=1)   # [B, C]
        a, b = ids[:, self.left], ids[:, self.right]                      # [B, P]
        hashed = torch.bitwise_xor(a * _H1, b * _H2) % self.sizes
        cell = torch.where(self.hashed, hashed, a * self.width + b)
        return self.table(cell + self.offsets)


@register("optinter")
class OptInter(RankingModel):
    """OptInter over the FeatureMap's fields.

    Parameters:
        embedding_dim: 16.
        fields: the FeatureMap fields to use (default: every embeddable one).
            Memorising needs single-valued categorical fields; pairs with a
            numeric or multi-valued field choose between factorise and naive.
        architecture: None = search phase; else ``{"a|b": "memorise" |
            "factorise" | "naive"}`` for every field pair (re-train phase).
        memorise_buckets: 16384, the most cross-product rows one pair may own.
        temperature: 1.0, the Gumbel-softmax temperature of the search.
        retrain: True, after a search the trainer re-trains the searched
            architecture from scratch (``next_phase``); False stops at the search.
        hidden_units / dropout / batch_norm / activation: 400-400-400, 0, False, relu.
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 fields: Sequence[str] | None = None,
                 architecture: dict[str, str] | None = None, memorise_buckets: int = 16384,
                 temperature: float = 1.0, hidden_units: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, batch_norm: bool = False, activation: str = "relu",
                 retrain: bool = True):
        super().__init__()
        if temperature <= 0 or memorise_buckets < 1:
            raise ModelError("optinter: temperature must be > 0 and memorise_buckets >= 1")
        self.feature_map, self.temperature, self.retrain = feature_map, temperature, retrain
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields=fields)
        fs = self.embedding.fields
        self.pairs = [(i, j) for i in range(len(fs)) for j in range(i + 1, len(fs))]
        self.keys = [pair_key(fs[i].name, fs[j].name) for i, j in self.pairs]
        can_mem = [fs[i].kind == CATEGORICAL and fs[j].kind == CATEGORICAL
                   for i, j in self.pairs]
        self.searching = architecture is None
        if self.searching:
            self.arch_logits = nn.Parameter(torch.zeros(len(self.pairs), len(CHOICES)))
            # Memorising a pair with a pooled or numeric field is impossible: mask it out.
            self.register_buffer("arch_mask", torch.tensor(
                [[0.0 if ok else -math.inf, 0.0, 0.0] for ok in can_mem]), persistent=False)
            choice = [_MEM if ok else _FAC for ok in can_mem]   # all candidates are built
        else:
            choice = self._parse(architecture, can_mem)
        mem = [p for p, c in zip(self.pairs, choice, strict=True) if c == _MEM]
        fac = self.pairs if self.searching else \
            [p for p, c in zip(self.pairs, choice, strict=True) if c == _FAC]
        self.register_buffer("mem_pos", torch.tensor(
            [k for k, c in enumerate(choice) if c == _MEM], dtype=torch.long), persistent=False)
        self.cross = CrossProductEmbedding(
            [(fs[i].name, fs[j].name) for i, j in mem],
            {f.name: int(f.vocab_size or 0) for f in fs}, embedding_dim, memorise_buckets) \
            if mem else None
        self.register_buffer("fac_left", torch.tensor([i for i, _ in fac], dtype=torch.long),
                             persistent=False)
        self.register_buffer("fac_right", torch.tensor([j for _, j in fac], dtype=torch.long),
                             persistent=False)
        n_comb = len(self.pairs) if self.searching else len(mem) + len(fac)
        self.mlp = MLP((len(fs) + n_comb) * embedding_dim, hidden_units, dropout, activation,
                       batch_norm, out_dim=1)
        self.bias = nn.Parameter(torch.zeros(1))     # the global bias RankingModel initialises

    def _parse(self, architecture: dict[str, str], can_mem: list[bool]) -> list[int]:
        names = {k: n for n, k in enumerate(self.keys)}
        names.update({"|".join(reversed(k.split("|"))): n for n, k in enumerate(self.keys)})
        choice = [-1] * len(self.pairs)
        for key, value in architecture.items():
            if key not in names or value not in CHOICES:
                raise ModelError(f"optinter: architecture entry {key!r}: {value!r} is not "
                                 f"'field|field': one of {CHOICES}; pairs: {self.keys[:5]}...")
            if value == "memorise" and not can_mem[names[key]]:
                raise ModelError(f"optinter: pair {key!r} cannot be memorised (a field is not "
                                 "single-valued categorical); choose factorise or naive")
            choice[names[key]] = CHOICES.index(value)
        missing = [k for k, c in zip(self.keys, choice, strict=True) if c < 0]
        if missing:
            raise ModelError(f"optinter: architecture lacks pair(s) {missing[:5]}; give every "
                             "pair a choice, e.g. from search_architecture()")
        return choice

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)                                       # [B, F, D]
        fac = emb[:, self.fac_left] * emb[:, self.fac_right]              # [B, P_fac, D]
        mem = self.cross(batch) if self.cross is not None else fac[:, :0]
        if self.searching:
            w = self.arch_weights(sample=self.training)                   # [P, 3]
            full_mem = torch.zeros_like(fac)
            full_mem[:, self.mem_pos] = mem
            comb = w[:, _MEM, None] * full_mem + w[:, _FAC, None] * fac   # naive adds zero
        else:
            comb = torch.cat([mem, fac], dim=1)
        x = torch.cat([emb.flatten(1), comb.flatten(1)], dim=1)
        return {"logit": self.bias + self.mlp(x).squeeze(-1)}

    # -- architecture ------------------------------------------------------------------
    def arch_weights(self, sample: bool = False) -> torch.Tensor:
        """``[P, 3]`` mixing weights (memorise, factorise, naive); Gumbel noise when sampling."""
        if not self.searching:
            raise ModelError("optinter: this model has a fixed architecture; nothing to search")
        logits = self.arch_logits + self.arch_mask
        if sample:
            return F.gumbel_softmax(logits, tau=self.temperature, hard=False)
        return torch.softmax(logits / self.temperature, dim=-1)

    @torch.no_grad()
    def choices(self) -> dict[str, str]:
        """The searched architecture: every pair's most probable method."""
        best = self.arch_weights().argmax(dim=-1).tolist()
        return {k: CHOICES[c] for k, c in zip(self.keys, best, strict=True)}

    def finalise(self) -> OptInter:
        """A fresh, untrained model with the searched architecture fixed (re-train it)."""
        params = {**getattr(self, "model_params", {}), "architecture": self.choices()}
        return build_model("optinter", self.feature_map, **params)  # type: ignore[return-value]

    def next_phase(self) -> OptInter | None:
        """The model the trainer fits after this one: the re-train, after a search."""
        return self.finalise() if self.searching and self.retrain else None

    def phase_info(self) -> dict[str, Any]:
        """For metrics.json: the phase and, after a search, how many pairs chose what."""
        if not self.searching:
            return {"phase": "retrain"}
        picked = list(self.choices().values())
        return {"phase": "search", "architecture": {c: picked.count(c) for c in CHOICES}}


def search_architecture(feature_map: Any, train_batches: Iterable[dict[str, torch.Tensor]],
                        valid_arrays: dict[str, np.ndarray],
                        trainer_config: TrainConfig | dict[str, Any] | None,
                        **params: Any) -> dict[str, str]:
    """Run the search phase with the shared Trainer; returns ``{"a|b": choice}`` per pair.

    The architecture logits train jointly with the weights on the training
    batches (one-shot search, the same optimizer and learning rate); the
    trainer restores the best-validation epoch, whose argmax is returned.
    ``params`` are the model's (everything but ``architecture``); re-train with
    ``build_model("optinter", feature_map, architecture=result, **params)``.
    """
    if params.get("architecture") is not None:
        raise ModelError("search_architecture: leave 'architecture' unset; it is what the "
                         "search returns")
    model = build_model("optinter", feature_map, **{**params, "architecture": None})
    config = trainer_config if isinstance(trainer_config, TrainConfig) else \
        TrainConfig.model_validate(trainer_config or {})
    Trainer(config).fit(model, train_batches, valid_arrays)
    return model.choices()  # type: ignore[operator]
