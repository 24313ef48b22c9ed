"""Unified low-rank compression of a trained ranking model, by its activations.

A linear layer ``y = W x + b`` (every ``nn.Linear`` whose factorisation is
smaller: the MLP layers, DCNv2's cross layers) is replaced by two,
``y ≈ μ + U Uᵀ (W x + b − μ)``: ``U`` is the top-``rank`` principal
directions of the layer's **outputs** on a calibration sample (``μ`` their
mean), so the rank spends itself where the data varies, not where the weights
happen to be large. An embedding table ``E`` (``V × d``) becomes ``E U`` (``V × r``)
and ``Uᵀ`` (``r × d``) per vocabulary block (each field its own ``U``), ``U``
the top directions of the block's rows weighted by how often the calibration
sample looks them up (uncentred, so padding rows stay zero).

``lowrank`` is the compressed model as a registry entry: it rebuilds the base
model by name and parameters, swaps the listed modules for factorised shells
of the recorded ranks and loads the weights — a compressed run directory loads,
evaluates and serves like any other. ``compress(model, batches, rank, ...)``
computes the factors; ``snsrec compress RUN_DIR --rank R`` drives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP, FeatureEmbedding
from snsrec.models.registry import build_model, register


class LowRankLinear(nn.Module):
    """``up(down(x))``: ``in → rank → out``, the factorised ``nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.down = nn.Linear(in_features, rank)
        self.up = nn.Linear(rank, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class LowRankTable(nn.Module):
    """An embedding shard as ``low`` (``V × rank``) times one ``rank × dim`` matrix per
    vocabulary block (``ups[b]``: each field's rows get their own subspace)."""

    sparse = False

    def __init__(self, num_embeddings: int, dim: int, rank: int, blocks: list[tuple[int, int]]):
        super().__init__()
        self.low = nn.Parameter(torch.zeros(num_embeddings, rank))
        self.ups = nn.Parameter(torch.zeros(len(blocks), rank, dim))
        # (first row, rows) of each block this shard holds; other blocks' ups stay zero.
        self.block_rows = blocks

    @property
    def weight(self) -> torch.Tensor:
        """The full ``V × dim`` table (materialised; for reading, e.g. ``explain``)."""
        out = self.low.new_zeros(self.low.shape[0], self.ups.shape[-1])
        for b, (start, n) in enumerate(self.block_rows):
            if n:
                out[start:start + n] = self.low[start:start + n] @ self.ups[b]
        return out

    def lookup(self, rows: torch.Tensor, block: torch.Tensor | int) -> torch.Tensor:
        low = self.low.index_select(0, rows.reshape(-1))
        if isinstance(block, int):       # one block: index_select + one flat matmul
            return (low @ self.ups[block]).view(*rows.shape, self.ups.shape[-1])
        # one block per last-axis column: a batched matmul over the columns
        low = low.view(-1, rows.shape[-1], low.shape[-1]).transpose(0, 1)        # [F, N, r]
        out = torch.bmm(low, self.ups.index_select(0, block))                    # [F, N, d]
        return out.transpose(0, 1).reshape(*rows.shape, self.ups.shape[-1])


def shard_blocks(emb: FeatureEmbedding, shard: int) -> list[tuple[int, int]]:
    """(first row, rows) of every vocabulary block of ``emb`` in shard ``shard`` ((0, 0) for
    the blocks of other shards), in block-number order."""
    return [(start, n) if s == shard else (0, 0) for s, start, n in emb.blocks.values()]


def _parent(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    *head, leaf = path.split(".")
    module = root
    for part in head:
        module = getattr(module, part)
    return module, leaf


@register("lowrank")
class LowRank(RankingModel):
    """A ranking model with some modules factorised.

    model / params: the base model's registry name and parameters; linear_ranks:
    module path → rank of each factorised ``nn.Linear``; table_ranks: module path →
    rank of each factorised embedding table (``nn.Embedding``).
    """

    def __init__(self, feature_map: Any, model: str = "deepfm",
                 params: dict[str, Any] | None = None,
                 linear_ranks: dict[str, int] | None = None,
                 table_ranks: dict[str, int] | None = None):
        super().__init__()
        if model == "lowrank":
            raise ModelError("lowrank: the base model is a lowrank model already; compress "
                             "the original run")
        self.base = build_model(model, feature_map, **(params or {}))
        modules = dict(self.base.named_modules())
        for path, rank in (linear_ranks or {}).items():
            old = modules.get(path)
            if not isinstance(old, nn.Linear):
                raise ModelError(f"lowrank: '{path}' is not a linear layer of {model}")
            self._swap(path, LowRankLinear(old.in_features, old.out_features, rank))
        for path, rank in (table_ranks or {}).items():
            old = modules.get(path)
            owner, _, shard = path.rpartition(".shards.")
            emb = modules.get(owner)
            if not isinstance(old, nn.Embedding) or not isinstance(emb, FeatureEmbedding):
                raise ModelError(f"lowrank: '{path}' is not an embedding shard of {model}")
            self._swap(path, LowRankTable(old.num_embeddings, old.embedding_dim, rank,
                                          shard_blocks(emb, int(shard))))

    def _swap(self, path: str, new: nn.Module) -> None:
        parent, leaf = _parent(self.base, path)
        if isinstance(parent, (nn.Sequential, nn.ModuleList)):
            parent[int(leaf)] = new
        else:
            setattr(parent, leaf, new)

    def init_output_bias(self, ctr: float) -> None:
        """Nothing to start: a compressed model keeps its base model's trained bias."""

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.base(batch)


# -- computing the factors ---------------------------------------------------------------

def _factorisable(layer: nn.Linear, rank: int) -> bool:
    """Fewer parameters as two layers of ``rank`` (the logit layers never are)."""
    return rank * (layer.in_features + layer.out_features + 1) < \
        layer.in_features * layer.out_features


@torch.no_grad()
def compress(model: nn.Module, feature_map: Any, batches: Iterable[dict[str, torch.Tensor]],
             rank: int, embedding_rank: int | None = None) -> LowRank:
    """The ``lowrank`` model of a trained ``model`` (built by the registry): every linear
    layer that gets smaller at ``rank`` and, with ``embedding_rank`` < the embedding
    size, every embedding table, factorised by the activations of ``batches``."""
    if rank < 1 or (embedding_rank is not None and embedding_rank < 1):
        raise ModelError(f"compress: rank ({rank}) and embedding rank ({embedding_rank}) "
                         "must be >= 1")
    name = getattr(model, "model_name", None)
    if name is None or name == "lowrank":
        raise ModelError("compress: a model built by the registry (not a lowrank one) is "
                         "needed")
    model.eval()
    linears = {p: m for p, m in model.named_modules()
               if isinstance(m, nn.Linear) and _factorisable(m, rank)}
    # Embedding shards, by path: (their FeatureEmbedding, the shard number).
    tables = {f"{p}.shards.{s}": (m, s) for p, m in model.named_modules()
              if isinstance(m, FeatureEmbedding) and embedding_rank is not None
              and embedding_rank < m.dim for s in range(len(m.shards))}
    # Second moments of each layer's outputs (float64) and the row counts of each table.
    stats = {p: [torch.zeros(m.out_features, m.out_features, dtype=torch.float64),
                 torch.zeros(m.out_features, dtype=torch.float64), 0]
             for p, m in linears.items()}
    counts = {p: torch.zeros(m.shards[s].num_embeddings, dtype=torch.float64)
              for p, (m, s) in tables.items()}

    def linear_hook(path: str):
        def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            y = out.reshape(-1, out.shape[-1]).double()
            s = stats[path]
            s[0] += y.T @ y
            s[1] += y.sum(0)
            s[2] += y.shape[0]
        return hook

    def table_rows(path: str, rows: torch.Tensor) -> None:
        counts[path] += torch.bincount(rows.reshape(-1), minlength=len(counts[path])).double()

    handles = [m.register_forward_hook(linear_hook(p)) for p, m in linears.items()]
    table_of = {id(m.shards[s]): p for p, (m, s) in tables.items()}
    embeddings = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]

    def counter(emb: FeatureEmbedding):
        def hook(s: int, rows: torch.Tensor) -> None:
            path = table_of.get(id(emb.shards[s]))
            if path is not None:
                table_rows(path, rows)
        return hook

    hooks = [(emb, counter(emb)) for emb in embeddings]
    for emb, hook in hooks:
        emb.lookup_hooks.append(hook)
    mlps = [m for m in model.modules() if isinstance(m, MLP)]
    for m in mlps:              # eval without folding BN: every Linear is called, hooks fire
        m.fold = False
    try:
        seen = 0
        for batch in batches:
            model(batch)
            seen += 1
    finally:
        for m in mlps:
            m.fold = True
        for emb, hook in hooks:
            emb.lookup_hooks.remove(hook)
        for h in handles:
            h.remove()
    if not seen:
        raise ModelError("compress: the calibration sample is empty")
    params = {"model": name, "params": dict(getattr(model, "model_params", {})),
              "linear_ranks": dict.fromkeys(linears, rank),
              "table_ranks": dict.fromkeys(tables, embedding_rank)}
    out = LowRank(feature_map, **params)
    out.model_name, out.model_params = "lowrank", params
    # Every parameter and buffer the factorisation leaves alone: the trained ones.
    state = {f"base.{k}": v for k, v in model.state_dict().items()}
    new = dict(out.named_modules())
    for path, layer in linears.items():
        yy, ysum, n = stats[path]
        if not n:
            raise ModelError(f"compress: layer '{path}' saw no calibration rows; it is not on "
                             "the model's forward path")
        mean = ysum / n
        cov = yy / n - torch.outer(mean, mean)
        u = torch.linalg.eigh(cov).eigenvectors[:, -rank:].flip(-1)          # [out, r]
        w, b = layer.weight.double(), layer.bias.double() if layer.bias is not None else 0.0
        shell = new[f"base.{path}"]
        shell.down.weight.copy_((u.T @ w).float())
        shell.down.bias.copy_((u.T @ (b - mean)).float())
        shell.up.weight.copy_(u.float())
        shell.up.bias.copy_(mean.float())
        for key in ("weight", "bias"):
            state.pop(f"base.{path}.{key}", None)
    for path, (emb, s) in tables.items():
        e = emb.shards[s].weight.double()
        shell = new[f"base.{path}"]
        for b, (start, n) in enumerate(shard_blocks(emb, s)):
            if not n:
                continue
            rows = e[start:start + n]
            # Each block (field) in its own subspace: the second moment of its rows weighted
            # by how often the sample read them, plus one (a row it missed still counts).
            second = (rows * (counts[path][start:start + n, None] + 1.0)).T @ rows
            u = torch.linalg.eigh(second).eigenvectors[:, -embedding_rank:].flip(-1)  # [d, r]
            shell.low[start:start + n] = (rows @ u).float()
            shell.ups[b] = u.T.float()
        state.pop(f"base.{path}.weight", None)
    missing = out.load_state_dict(state, strict=False)
    left = [k for k in missing.missing_keys
            if not any(k.startswith(f"base.{p}.") for p in (*linears, *tables))]
    if left or missing.unexpected_keys:
        raise ModelError(f"compress: weights that do not carry over: {left[:3]} "
                         f"{missing.unexpected_keys[:3]}")
    return out.eval()
