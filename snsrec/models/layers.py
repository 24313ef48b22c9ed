"""Building blocks shared by every model: feature embeddings and an MLP.

A model is a few lines over these layers (FuxiCTR style). The batch contract is
the FeatureMap's: field name → int32 ``[B]`` (categorical, 0 = pad, 1 = OOV),
float32 ``[B]`` (numeric) or int32 ``[B, L]`` (multi-valued / sequence, 0 = pad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError

CATEGORICAL = "categorical"
NUMERIC = "numeric"
POOLED = ("multi", "sequence")
EMBEDDABLE = (CATEGORICAL, NUMERIC, *POOLED)


def embeddable_fields(feature_map: Any, fields: Sequence[str] | None = None) -> list[Any]:
    """The FeatureMap fields to embed: all embeddable ones, or exactly ``fields`` in that order."""
    by_name = {f.name: f for f in feature_map.fields}
    if fields is None:
        return [f for f in feature_map.fields if f.kind in EMBEDDABLE]
    out = []
    for name in fields:
        if name not in by_name:
            raise ModelError(f"feature '{name}' is not in the feature map; "
                             f"fields: {', '.join(by_name)}")
        if by_name[name].kind not in EMBEDDABLE:
            raise ModelError(f"feature '{name}' has kind '{by_name[name].kind}', which "
                             f"FeatureEmbedding cannot embed; use one of {EMBEDDABLE}")
        out.append(by_name[name])
    return out


class FeatureEmbedding(nn.Module):
    """Embed every field of a batch to ``[B, F, dim]``.

    - categorical: one ``nn.Embedding`` row per id (row 0 = padding, kept at zero);
    - multi-valued / sequence: the same lookup, mean-pooled over non-padding ids;
    - numeric: a learned per-field vector scaled by the value.

    Fields whose ``share_vocab_with`` names another field use that field's table
    (e.g. the history of clicked notes shares the note-id table).
    """

    def __init__(self, feature_map: Any, dim: int, fields: Sequence[str] | None = None,
                 init_std: float = 1e-4):
        super().__init__()
        self.dim = dim
        self.fields = embeddable_fields(feature_map, fields)
        if not self.fields:
            raise ModelError("FeatureEmbedding: no embeddable fields; check the feature spec")
        by_name = {f.name: f for f in feature_map.fields}
        sizes: dict[str, int] = {}
        self._table_of: dict[str, str] = {}
        for f in self.fields:
            if f.kind == NUMERIC:
                continue
            owner = f.share_vocab_with or f.name
            self._table_of[f.name] = owner
            size = max(int(f.vocab_size), int(getattr(by_name.get(owner), "vocab_size", 0) or 0))
            sizes[owner] = max(sizes.get(owner, 0), size)
        self.tables = nn.ModuleDict({
            name: nn.Embedding(size, dim, padding_idx=0) for name, size in sizes.items()})
        numeric = [f.name for f in self.fields if f.kind == NUMERIC]
        self.numeric = nn.ParameterDict({
            name: nn.Parameter(torch.empty(dim)) for name in numeric})
        self.reset_parameters(init_std)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def num_fields(self) -> int:
        return len(self.fields)

    def reset_parameters(self, init_std: float) -> None:
        # Small initial embeddings (FuxiCTR's default): large ones swamp the
        # logit at the start and slow the first epoch down.
        for table in self.tables.values():
            nn.init.normal_(table.weight, std=init_std)
            with torch.no_grad():
                table.weight[0].zero_()
        for vec in self.numeric.values():
            nn.init.normal_(vec, std=init_std)

    def embed_one(self, field: Any, x: torch.Tensor) -> torch.Tensor:
        """``[B, dim]`` for one field's batch column."""
        if field.kind == NUMERIC:
            return x.to(self.numeric[field.name].dtype).unsqueeze(-1) * self.numeric[field.name]
        emb = self.tables[self._table_of[field.name]](x)
        if x.dim() == 1:
            return emb
        # Mean over the real ids; the padding row is zero, so the sum needs no mask.
        count = (x != 0).sum(dim=1, keepdim=True).clamp(min=1).to(emb.dtype)
        return emb.sum(dim=1) / count

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [f.name for f in self.fields if f.name not in batch]
        if missing:
            raise ModelError(f"batch lacks feature(s) {missing}; transform the data with the "
                             "same FeatureMap the model was built on")
        return torch.stack([self.embed_one(f, batch[f.name]) for f in self.fields], dim=1)


_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "prelu": nn.PReLU, "leaky_relu": nn.LeakyReLU}


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ModelError(f"unknown activation '{name}'; choose one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """Linear → [BatchNorm] → activation → [Dropout], per hidden size; optional output layer."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 out_dim: int | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for h in hidden:
            layers.append(nn.Linear(dim, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = h
        if out_dim is not None:
            layers.append(nn.Linear(dim, out_dim))
            dim = out_dim
        self.out_dim = dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
