"""Building blocks shared by every model: feature embeddings, an MLP and the interaction layers.

A model is a few lines over these layers (FuxiCTR style). The batch contract is
the FeatureMap's: field name → int32 ``[B]`` (categorical, 0 = pad, 1 = OOV),
float32 ``[B]`` (numeric) or int32 ``[B, L]`` (multi-valued / sequence, 0 = pad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snsrec.errors import ModelError

CATEGORICAL = "categorical"
VECTOR = "vector"          # an id with a fixed vector (FeatureMap.vectors); embedded as an id too
ID_KINDS = (CATEGORICAL, VECTOR)
NUMERIC = "numeric"
POOLED = ("multi", "sequence")
EMBEDDABLE = (*ID_KINDS, NUMERIC, *POOLED)


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


def attended_sequences(feature_map: Any, fields: Sequence[str] | None,
                       sequences: Sequence[str] | None, model: str
                       ) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """([(sequence, target)], the other fields) of a target-attention model: the behaviour
    sequences to attend, each with the field whose ids it holds (``share_vocab_with``);
    by default every sequence field whose target is embedded."""
    chosen = embeddable_fields(feature_map, fields)
    names = {f.name for f in chosen if f.kind in ID_KINDS}        # the possible targets
    if sequences is None:
        seqs = [f for f in chosen if f.kind == "sequence" and f.share_vocab_with in names]
    else:
        by_name = {f.name: f for f in feature_map.fields}
        seqs = []
        for name in sequences:
            f = by_name.get(name)
            if f is None or f.kind != "sequence":
                raise ModelError(f"{model}: '{name}' is not a sequence field of the feature map")
            if f.share_vocab_with not in names:
                raise ModelError(f"{model}: sequence '{name}' has no target field (it holds "
                                 f"the ids of '{f.share_vocab_with or name}', not an embedded "
                                 "categorical or vector field); give it share_vocab_with one")
            seqs.append(f)
    attended = {f.name for f in seqs}
    others = [f for f in chosen if f.name not in attended]
    by_other = {f.name: f for f in others}
    return [(f, by_other[f.share_vocab_with]) for f in seqs], others


class MultimodalItems(nn.Module):
    """Items of a target-attention model: an item's id embedding, plus — when its field is
    a FeatureMap *vector* field — a learned projection of its fixed vector
    (``feature_map.vectors``; a non-persistent buffer, the run's FeatureMap keeps it).
    One projection per vector field, shared by its target and every sequence over it.
    ``enabled=False`` leaves the id embeddings alone (the ablation)."""

    def __init__(self, feature_map: Any, fields: Sequence[str], dim: int, enabled: bool = True):
        super().__init__()
        vectors = getattr(feature_map, "vectors", {}) if enabled else {}
        self.names = [f for f in dict.fromkeys(fields) if f in vectors]
        self.projections = nn.ModuleDict({f: nn.Linear(vectors[f].shape[1], dim)
                                          for f in self.names})
        for f in self.names:
            self.register_buffer(f"vectors_{f}", torch.as_tensor(vectors[f], dtype=torch.float32),
                                 persistent=False)

    def forward(self, field: str, ids: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The items of ``field`` with ids ``ids`` (``[...]``), given their id embeddings."""
        if field not in self.projections:
            return emb
        return emb + self.projections[field](getattr(self, f"vectors_{field}")[ids.long()])

    def targets(self, batch: dict[str, torch.Tensor], emb: torch.Tensor,
                fields: Sequence[str]) -> torch.Tensor:
        """``emb`` (``[B, F, dim]``, fields in order ``fields``) with every vector field's
        column replaced by its item representation."""
        if not self.names:
            return emb
        cols = [self(f, batch[f], emb[:, j]) if f in self.projections else emb[:, j]
                for j, f in enumerate(fields)]
        return torch.stack(cols, 1)


class TargetAttentionModel(nn.Module):
    """The shared frame of DIN and QIN: the other fields' embeddings, one attention module
    per attended sequence (``attended_sequences``) pooling its behaviours for its target,
    and the items as ``MultimodalItems``. A subclass calls ``setup`` and puts its head
    over ``inputs(batch)`` (the flattened [field embeddings, pooled interests])."""

    def setup(self, feature_map: Any, fields: Sequence[str] | None,
              sequences: Sequence[str] | None, name: str, dim: int, multimodal: bool,
              attention: Any) -> int:
        """Build the embedding, ``attention()`` per sequence and the items; return the
        width of ``inputs``."""
        self.sequences, others = attended_sequences(feature_map, fields, sequences, name)
        self.embedding = FeatureEmbedding(feature_map, dim, [f.name for f in others])
        self.attention = nn.ModuleList(attention() for _ in self.sequences)
        self._target_index = [self.embedding.field_names.index(t.name)
                              for _, t in self.sequences]
        self.items = MultimodalItems(feature_map, [t.name for _, t in self.sequences], dim,
                                     multimodal)
        return (self.embedding.num_fields + len(self.sequences)) * dim

    def interests(self, batch: dict[str, torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
        """``[B, S, dim]``: each attended sequence pooled for its target (``emb``: the other
        fields' ``[B, F, dim]`` embeddings, targets as items)."""
        pooled = []
        for (seq, target), att, ti in zip(self.sequences, self.attention, self._target_index,
                                          strict=True):
            ids = batch[seq.name]
            behaviours = self.items(target.name, ids, self.embedding.embed_sequence(seq, ids))
            pooled.append(att(behaviours, emb[:, ti], (ids > 0).to(emb.dtype)))
        return torch.stack(pooled, 1) if pooled else emb[:, :0]

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = self.items.targets(batch, self.embedding(batch), self.embedding.field_names)
        return torch.cat([emb, self.interests(batch, emb)], 1).flatten(1)


class _TableView:
    """One field's rows of the shared table, read-only (``.weight`` is a view of the parameter)."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight

    @property
    def num_embeddings(self) -> int:
        return int(self.weight.shape[0])


class _Gather(torch.autograd.Function):
    """``weight[rows]`` whose backward is one ``index_add_`` (row 0, the padding row, gets none).

    Same result as ``F.embedding(rows, weight, padding_idx=0)``; its CPU backward
    is about 3× faster (measured on 80k ids into a 250k-row table).
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.num_rows = weight.shape[0]
        return weight.index_select(0, rows.reshape(-1)).view(*rows.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        grad = grad.reshape(-1, grad.shape[-1])
        out = grad.new_zeros(ctx.num_rows, grad.shape[1]).index_add_(0, rows.reshape(-1), grad)
        out[0] = 0
        return out, None


class _SparseGather(torch.autograd.Function):
    """``weight[rows]`` whose gradient is row-sparse and already coalesced.

    Backward sums the batch's gradient per distinct row (``unique`` + one
    ``index_add_``) and drops row 0 (padding), so the optimizer's lazy row
    update gets each row once without a sort-based ``coalesce`` of every
    lookup (measured: 3–6× cheaper than ``F.embedding(sparse=True)``'s
    gradient followed by ``coalesce``).
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.shape = weight.shape
        return weight.index_select(0, rows.reshape(-1)).view(*rows.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        grad = grad.reshape(-1, grad.shape[-1])
        uniq, inverse = torch.unique(rows.reshape(-1), sorted=True, return_inverse=True)
        values = grad.new_zeros(len(uniq), grad.shape[1]).index_add_(0, inverse, grad)
        if len(uniq) and int(uniq[0]) == 0:           # the padding row gets no gradient
            uniq, values = uniq[1:], values[1:]
        return torch.sparse_coo_tensor(uniq.unsqueeze(0), values, ctx.shape, is_coalesced=True,
                                       check_invariants=False), None


def pack_shards(sizes: dict[str, int], dim: int, budget: int) -> list[list[str]]:
    """Owners (in order) packed greedily into shards of at most ``budget`` floats each.

    An owner larger than the budget gets a shard of its own.
    """
    shards: list[list[str]] = []
    used = budget
    for owner, rows in sizes.items():
        if used + rows * dim > budget or not shards:
            shards.append([])
            used = 0
        shards[-1].append(owner)
        used += rows * dim
    return shards


class FeatureEmbedding(nn.Module):
    """Embed every field of a batch to ``[B, F, dim]``.

    - categorical: one row per id (id 0 = padding embeds to zero);
    - multi-valued / sequence: the same lookup, mean-pooled over non-padding ids;
    - numeric: a learned per-field vector scaled by the value.

    Fields whose ``share_vocab_with`` names another field use that field's rows
    (e.g. the history of clicked notes shares the note-id rows).

    Speed. Vocabularies are concatenated into a few ``nn.Embedding`` *shards*
    (``self.shards``), each owner's ids shifted by its row offset, so the
    categorical fields of a batch cost one ``[B, F_s]`` gather per shard
    instead of one module call per field. Shards hold at most
    ``SHARD_FLOATS`` floats (16 MB) because a table's dense gradient is a fresh
    tensor every step: glibc serves blocks up to 32 MB from its heap but maps
    larger ones freshly, page-faulting the whole gradient (and Adam's
    temporaries) in every step — one 53 MB table trained 3× slower in backward
    than the same rows split below that size (measured, DeepFM on 39
    Criteo-shaped fields). Each owner's block keeps its own row 0; padding ids
    go to the shard's row 0 (``padding_idx``), so ``tables[name].weight[i]`` is
    id ``i``'s row and every padding row stays zero. Lookups use ``_Gather``
    (its backward is one ``index_add_``). Sequences are mean-pooled over
    non-padding ids. Numeric vectors are one
    ``[n, dim]`` dense parameter. Parts are assembled categorical | numeric |
    pooled, which is the FeatureMap's own order (no permutation for it).

    ``shard.sparse = True`` (for a trainer that pairs it with a sparse optimizer
    such as ``torch.optim.SparseAdam``) makes gradients the batch's rows only.
    """

    SHARD_FLOATS = 1 << 22

    def __init__(self, feature_map: Any, dim: int, fields: Sequence[str] | None = None,
                 init_std: float = 1e-4):
        super().__init__()
        self.dim = dim
        self.fields = embeddable_fields(feature_map, fields)
        if not self.fields:
            raise ModelError("FeatureEmbedding: no embeddable fields; check the feature spec")
        by_name = {f.name: f for f in feature_map.fields}
        sizes: dict[str, int] = {}                    # owner → rows, in first-seen order
        self._table_of: dict[str, str] = {}
        for f in self.fields:
            if f.kind == NUMERIC:
                continue
            owner = f.share_vocab_with or f.name
            self._table_of[f.name] = owner
            size = max(int(f.vocab_size), int(getattr(by_name.get(owner), "vocab_size", 0) or 0))
            sizes[owner] = max(sizes.get(owner, 0), size, 1)
        self._blocks: dict[str, tuple[int, int, int]] = {}     # owner → (shard, start, rows)
        shard_rows = []
        for s, owners in enumerate(pack_shards(sizes, dim, self.SHARD_FLOATS)):
            start = 0
            for owner in owners:
                self._blocks[owner] = (s, start, sizes[owner])
                start += sizes[owner]
            shard_rows.append(start)
        self._block_no = {owner: i for i, owner in enumerate(self._blocks)}
        self.shards = nn.ModuleList(nn.Embedding(n, dim, padding_idx=0) for n in shard_rows)
        self.categorical = [f for f in self.fields if f.kind in ID_KINDS]
        self.numeric_fields = [f for f in self.fields if f.kind == NUMERIC]
        self.pooled = [f for f in self.fields if f.kind in POOLED]
        # Categorical fields grouped by shard: (shard, field names), offsets as buffers.
        self._cat_groups: list[tuple[int, list[str]]] = []
        for s in range(len(shard_rows)):
            names = [f.name for f in self.categorical if self._shard(f.name) == s]
            if names:
                self._cat_groups.append((s, names))
                self.register_buffer(f"offsets_{s}", torch.tensor(
                    [self._offset(n) for n in names], dtype=torch.int64), persistent=False)
                self.register_buffer(f"blocks_{s}", torch.tensor(
                    [self.block_index(n) for n in names], dtype=torch.int64), persistent=False)
        self.numeric_weight = nn.Parameter(torch.empty(len(self.numeric_fields), dim))
        order = [n for _, names in self._cat_groups for n in names] + \
            [f.name for f in self.numeric_fields + self.pooled]
        perm = [order.index(f.name) for f in self.fields]
        self._permute = perm != list(range(len(perm)))
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.int64), persistent=False)
        # Callables (shard, rows) run on every lookup (``snsrec.models.ranking.lowrank``).
        self.lookup_hooks: list[Any] = []
        self.reset_parameters(init_std)

    def _shard(self, name: str) -> int:
        return self._blocks[self._table_of[name]][0]

    def block_index(self, name: str) -> int:
        """The number of the vocabulary block (owner) whose rows field ``name`` reads."""
        return self._block_no[self._table_of.get(name, name)]

    @property
    def blocks(self) -> dict[str, tuple[int, int, int]]:
        """Owner → (shard, first row, rows), in block-number order."""
        return dict(self._blocks)

    def _offset(self, name: str) -> int:
        return self._blocks[self._table_of[name]][1]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def num_fields(self) -> int:
        return len(self.fields)

    @property
    def tables(self) -> dict[str, _TableView]:
        """Owner name → its block of its shard (``.weight[i]`` = id ``i``)."""
        return {o: _TableView(self.shards[s].weight[a:a + n])
                for o, (s, a, n) in self._blocks.items()}

    @property
    def numeric(self) -> dict[str, torch.Tensor]:
        """Numeric field name → its learned vector (a view of ``numeric_weight``)."""
        return {f.name: self.numeric_weight[i] for i, f in enumerate(self.numeric_fields)}

    def reset_parameters(self, init_std: float) -> None:
        # Small initial embeddings (FuxiCTR's default): large ones swamp the
        # logit at the start and slow the first epoch down.
        for shard in self.shards:
            nn.init.normal_(shard.weight, std=init_std)
        nn.init.normal_(self.numeric_weight, std=init_std)
        with torch.no_grad():   # every block's padding row: never trained, always zero
            for s, start, _ in self._blocks.values():
                self.shards[s].weight[start].zero_()

    @staticmethod
    def _rows(x: torch.Tensor, offset: torch.Tensor | int) -> torch.Tensor:
        """Shard rows of ids ``x`` (padding → the shard's row 0)."""
        return torch.where(x > 0, x + offset, 0)

    def _lookup(self, s: int, rows: torch.Tensor, block: torch.Tensor | int) -> torch.Tensor:
        """Rows of shard ``s``; ``block``: the vocabulary block they are in (an int, or one
        per last-axis column), which a factorised table needs."""
        for hook in self.lookup_hooks:          # e.g. compression counting the rows read
            hook(s, rows)
        shard = self.shards[s]
        factored = getattr(shard, "lookup", None)       # a low-rank table (compression)
        if factored is not None:
            return factored(rows, block)
        return (_SparseGather if shard.sparse else _Gather).apply(shard.weight, rows)

    def _pool(self, field: Any, x: torch.Tensor) -> torch.Tensor:
        """``[B, dim]`` mean of the non-padding ids of a ``[B, L]`` field (zero if none).

        A gather and a sum rather than ``embedding_bag``, whose CPU backward is
        slower than ``_Gather``'s; padding rows are zero, so the sum needs no mask.
        """
        emb = self._lookup(self._shard(field.name), self._rows(x, self._offset(field.name)),
                           self.block_index(field.name))
        count = (x > 0).sum(dim=1, keepdim=True).clamp(min=1).to(emb.dtype)
        return emb.sum(dim=1) / count

    def embed_sequence(self, field: Any, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, dim]`` rows of a ``[B, L]`` sequence (or multi-valued) field, unpooled;
        padding ids embed to zero. Its ids are looked up in its own table or, with
        ``share_vocab_with``, in that field's, which this embedding must hold."""
        owner = field.share_vocab_with or field.name
        if owner not in self._blocks:
            raise ModelError(f"FeatureEmbedding: no table for '{owner}' (the ids of "
                             f"'{field.name}'); embed '{owner}' too")
        s, start, _ = self._blocks[owner]
        return self._lookup(s, self._rows(x, start), self.block_index(owner))

    def embed_one(self, field: Any, x: torch.Tensor) -> torch.Tensor:
        """``[B, dim]`` for one field's batch column."""
        if field.kind == NUMERIC:
            w = self.numeric[field.name]
            return x.to(w.dtype).unsqueeze(-1) * w
        if x.dim() == 1:
            return self._lookup(self._shard(field.name), self._rows(x, self._offset(field.name)),
                                self.block_index(field.name))
        return self._pool(field, x)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [f.name for f in self.fields if f.name not in batch]
        if missing:
            raise ModelError(f"batch lacks feature(s) {missing}; transform the data with the "
                             "same FeatureMap the model was built on")
        parts = []
        for s, names in self._cat_groups:
            ids = torch.stack([batch[n] for n in names], dim=1)
            parts.append(self._lookup(s, self._rows(ids, getattr(self, f"offsets_{s}")),
                                      getattr(self, f"blocks_{s}")))
        if self.numeric_fields:
            w = self.numeric_weight
            values = torch.stack([batch[f.name] for f in self.numeric_fields], dim=1)
            parts.append(values.to(w.dtype).unsqueeze(-1) * w)
        parts += [self._pool(f, batch[f.name]).unsqueeze(1) for f in self.pooled]
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return out.index_select(1, self.perm) if self._permute else out


class LogitLinear(nn.Linear):
    """A Linear that computes in float32 even under bf16 autocast (``train.precision``).

    For the layers that produce a logit: bf16 keeps 8 bits of mantissa, so a
    bf16 logit is rounded to ~0.4 % of its size, which ties predictions and
    costs AUC; the layer itself is a matrix–vector product, cheap in float32.
    Same parameters (and state-dict keys) as ``nn.Linear``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.float(), self.weight, self.bias)


class _DiceTraining(torch.autograd.Function):
    """Dice on ``[N, h]`` with batch statistics, forward and backward written out: five
    tensors of ``N × h`` per step instead of a dozen, ``x`` the only one kept for the
    backward (``z`` and ``p`` are recomputed there). Updates the running statistics as
    BatchNorm does (the unbiased variance)."""

    @staticmethod
    def forward(ctx, x, alpha, running_mean, running_var, momentum, eps):
        # Two passes (mean, then the centred squares): torch.var_mean over dim 0 of a tall
        # [N, h] tensor takes ~6x as long on CPU.
        mean = x.mean(0)
        z = x - mean
        var = (z * z).mean(0)
        n = x.shape[0]
        running_mean.lerp_(mean, momentum)
        running_var.lerp_(var * (n / (n - 1)), momentum)
        rstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, alpha, mean, rstd)
        p = z.mul_(rstd).sigmoid_()
        return p.mul_(1 - alpha).add_(alpha).mul_(x)             # x · (α + (1 − α) · p)

    @staticmethod
    def backward(ctx, g):
        x, alpha, mean, rstd = ctx.saved_tensors
        z = torch.sub(x, mean).mul_(rstd)
        p = torch.sigmoid(z)
        gx = g * x
        gz = gx * p                                  # ∂L/∂z = (1 − α) · g · x · p · (1 − p)
        d_alpha = gx.sum(0) - gz.sum(0)              # ∂L/∂α = Σ g · x · (1 − p)
        gz -= torch.mul(gz, p, out=gx)
        gz *= 1 - alpha
        mean_gz, mean_gzz = gz.mean(0), torch.mul(gz, z, out=gx).mean(0)
        # through the batch normalisation: (gz − mean(gz) − z · mean(gz · z)) / std
        z.mul_(-mean_gzz).add_(gz).sub_(mean_gz).mul_(rstd)
        return p.mul_(1 - alpha).add_(alpha).mul_(g).add_(z), d_alpha, None, None, None, None


class Dice(nn.Module):
    """DIN's data-adaptive activation: ``p · x + (1 − p) · α · x`` with
    ``p = σ(BN(x))`` — a PReLU whose rectification point follows each unit's batch
    mean and variance (BatchNorm without affine, eps 1e-8; running statistics in
    eval). ``α`` per unit, learned, starting at 0. Works on ``[..., dim]``.
    In float32 training the step is one autograd function (``_DiceTraining``); out of
    training without autograd, one new tensor updated in place."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        if not bn.training and not torch.is_grad_enabled():
            # Inference: x · (α + (1 − α) · σ((x − mean) / std)) in one new tensor, in place.
            scale = torch.rsqrt(bn.running_var + bn.eps)
            p = torch.addcmul((-bn.running_mean * scale).to(x.dtype), x, scale.to(x.dtype))
            alpha = self.alpha.to(x.dtype)
            return p.sigmoid_().mul_(1 - alpha).add_(alpha).mul_(x)
        flat = x.reshape(-1, x.shape[-1])
        if bn.training and len(flat) > 1 and flat.dtype == self.alpha.dtype == torch.float32:
            bn.num_batches_tracked.add_(1)
            return _DiceTraining.apply(flat, self.alpha, bn.running_mean, bn.running_var,
                                       bn.momentum, bn.eps).view_as(x)
        # One row has no batch variance: normalise it with the running statistics.
        norm = bn(flat) if not (bn.training and len(flat) == 1) else F.batch_norm(
            flat, bn.running_mean, bn.running_var, training=False, eps=bn.eps)
        p = torch.sigmoid(norm.view_as(x))
        return x * (p + (1 - p) * self.alpha)


_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "prelu": nn.PReLU, "leaky_relu": nn.LeakyReLU,
                "dice": Dice}


def make_activation(name: str, dim: int | None = None) -> nn.Module:
    """An activation module by name; ``dice`` needs the layer width ``dim``."""
    if name not in _ACTIVATIONS:
        raise ModelError(f"unknown activation '{name}'; choose one of {', '.join(_ACTIVATIONS)}")
    if name == "dice":
        if dim is None:
            raise ModelError("activation 'dice' needs the layer width")
        return Dice(dim)
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """Linear → [BatchNorm] → activation → [Dropout], per hidden size; optional output layer.

    In eval mode each BatchNorm is folded into the Linear before it (weights
    ``W·s``, bias ``(b − mean)·s + β`` with ``s = γ / sqrt(var + ε)``, recomputed
    per call: a few hundred thousand multiplies against a batch's millions) and
    ReLU runs in place, so inference makes one pass over each layer's
    activations instead of three. Same outputs up to float rounding.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 out_dim: int | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        self._blocks: list[tuple[int, int | None, int]] = []   # (linear, bn, act) positions
        dim = in_dim
        for h in hidden:
            lin = len(layers)
            layers.append(nn.Linear(dim, h))
            bn = None
            if batch_norm:
                bn = len(layers)
                layers.append(nn.BatchNorm1d(h))
            self._blocks.append((lin, bn, len(layers)))
            layers.append(make_activation(activation, h))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = h
        if out_dim is not None:
            layers.append((LogitLinear if out_dim == 1 else nn.Linear)(dim, out_dim))
            dim = out_dim
        self.out_dim = dim
        self.has_output = out_dim is not None
        self.net = nn.Sequential(*layers)
        # False: eval runs the modules one by one (their hooks fire; compression reads them).
        self.fold = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.fold:
            return self.net(x)
        return self._eval_forward(x)

    def _eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        for lin_i, bn_i, act_i in self._blocks:
            lin, act = net[lin_i], net[act_i]
            if hasattr(lin, "up"):              # a factorised layer: BN folds into its top
                x, lin = lin.down(x), lin.up
            if bn_i is None:
                x = lin(x)
            else:
                bn = net[bn_i]
                scale = torch.rsqrt(bn.running_var + bn.eps)
                if bn.weight is not None:
                    scale = scale * bn.weight
                shift = -bn.running_mean * scale
                if bn.bias is not None:
                    shift = shift + bn.bias
                bias = shift if lin.bias is None else lin.bias * scale + shift
                x = F.linear(x, lin.weight * scale[:, None], bias)
            x = x.relu_() if type(act) is nn.ReLU else act(x)
        return net[-1](x) if self.has_output else x


# -- pieces of the feature-interaction models ------------------------------------------

class FieldLinear(nn.Module):
    """First-order term ``[B]``: one learned scalar per feature value, summed over fields."""

    def __init__(self, feature_map: Any, fields: Sequence[str] | None = None):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, dim=1, fields=fields)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding(batch).sum(dim=(1, 2))


class FMInteraction(nn.Module):
    """Second-order FM term ``[B]`` of field embeddings ``[B, F, d]``: sum over i<j of <e_i, e_j>.

    The sum-square trick: 0.5 * (||sum_i e_i||^2 - sum_i ||e_i||^2), O(F d) not O(F^2 d).
    """

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        square_of_sum = emb.sum(dim=1).pow(2).sum(dim=-1)
        sum_of_square = emb.pow(2).sum(dim=(1, 2))
        return 0.5 * (square_of_sum - sum_of_square)


class CrossNetV2(nn.Module):
    """DCNv2 cross network: x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l, ``num_layers`` times.

    ``low_rank=None`` is the full-rank cross (W_l is D×D). With ``low_rank=r`` it is
    DCNv2's mixture of ``num_experts`` low-rank experts: expert e computes
    x_0 ⊙ (U_e tanh(C_e tanh(V_eᵀ x_l)) + b), and a softmax gate over the experts
    (computed from x_l) mixes them before the residual.
    """

    def __init__(self, in_dim: int, num_layers: int = 3, low_rank: int | None = None,
                 num_experts: int = 4):
        super().__init__()
        self.out_dim, self.low_rank = in_dim, low_rank
        if low_rank is None:
            self.layers = nn.ModuleList(nn.Linear(in_dim, in_dim) for _ in range(num_layers))
            return
        if low_rank < 1 or num_experts < 1:
            raise ModelError(f"CrossNetV2: low_rank ({low_rank}) and num_experts "
                             f"({num_experts}) must be >= 1")
        scale = in_dim ** -0.5

        def param(*shape: int, std: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(num_layers, *shape) * std)

        self.U = param(num_experts, in_dim, low_rank, std=low_rank ** -0.5)
        self.V = param(num_experts, in_dim, low_rank, std=scale)
        self.C = param(num_experts, low_rank, low_rank, std=low_rank ** -0.5)
        self.b = nn.Parameter(torch.zeros(num_layers, in_dim))
        self.gates = nn.ModuleList(nn.Linear(in_dim, num_experts, bias=False)
                                   for _ in range(num_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        if self.low_rank is None:
            for layer in self.layers:
                x = torch.addcmul(x, x0, layer(x))      # x0 ⊙ (W x + b) + x, one pass
            return x
        for i, gate in enumerate(self.gates):
            v = torch.tanh(torch.einsum("bd,edr->ber", x, self.V[i]))
            v = torch.tanh(torch.einsum("ber,ers->bes", v, self.C[i]))
            experts = x0.unsqueeze(1) * (torch.einsum("bes,eds->bed", v, self.U[i]) + self.b[i])
            weights = torch.softmax(gate(x), dim=-1).unsqueeze(-1)          # [B, E, 1]
            x = (weights * experts).sum(dim=1) + x
        return x


class GatedCrossNet(nn.Module):
    """GDCN's gated cross network: c_{l+1} = c_0 ⊙ (W_l c_l + b_l) ⊙ σ(W_g,l c_l) + c_l.

    The gate σ(W_g c_l) decides, per dimension and per sample, how much of
    each cross is kept. ``last_gates`` holds the gates of the last forward
    (detached, one ``[B, D]`` tensor per layer) for ``snsrec explain``.
    """

    def __init__(self, in_dim: int, num_layers: int = 3):
        super().__init__()
        self.out_dim = in_dim
        self.cross = nn.ModuleList(nn.Linear(in_dim, in_dim) for _ in range(num_layers))
        self.gate = nn.ModuleList(nn.Linear(in_dim, in_dim, bias=False)
                                  for _ in range(num_layers))
        self.last_gates: list[torch.Tensor] = []

    def forward(self, c0: torch.Tensor) -> torch.Tensor:
        c, gates = c0, []
        for cross, gate in zip(self.cross, self.gate, strict=True):
            g = torch.sigmoid(gate(c))
            gates.append(g.detach())
            c = c0 * cross(c) * g + c
        self.last_gates = gates
        return c


class CrossAndDeep(nn.Module):
    """A cross network and an MLP, ``stacked`` (cross → MLP) or ``parallel`` (concat), → logit.

    DCNv2 and GDCN share this shape; ``cross`` is any module with ``out_dim``.
    """

    STRUCTURES = ("stacked", "parallel")

    def __init__(self, cross: nn.Module, in_dim: int, structure: str,
                 hidden_units: Sequence[int], dropout: float, activation: str,
                 batch_norm: bool):
        super().__init__()
        if structure not in self.STRUCTURES:
            raise ModelError(f"structure '{structure}' is unknown; choose one of "
                             f"{', '.join(self.STRUCTURES)}")
        self.cross, self.structure = cross, structure
        self.mlp = MLP(cross.out_dim if structure == "stacked" else in_dim, hidden_units,
                       dropout, activation, batch_norm)
        head_in = self.mlp.out_dim + (cross.out_dim if structure == "parallel" else 0)
        self.head = LogitLinear(head_in, 1, bias=False)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        c = self.cross(x0)
        if self.structure == "stacked":
            return self.head(self.mlp(c)).squeeze(-1)
        # head([c; mlp(x0)]) as two products: no concatenated copy of the activations.
        w, d, h = self.head.weight, c.shape[-1], self.mlp(x0)
        with torch.autocast(c.device.type, enabled=False):      # a logit: float32 (LogitLinear)
            return (F.linear(c.float(), w[:, :d]) + F.linear(h.float(), w[:, d:])).squeeze(-1)


class ProjectionHead(nn.Module):
    """RED-Rec's head: Linear to ``out_dim`` → GELU → residual → LayerNorm → unit length."""

    def __init__(self, in_dim: int, out_dim: int = 64):
        super().__init__()
        self.proj, self.ff = nn.Linear(in_dim, out_dim), nn.Linear(out_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)
        # Zero biases: text vectors are small (a mean of n-gram rows, a sentence
        # embedding of norm ~1 over hundreds of dims), and PyTorch's default bias
        # would dominate them, starting every item at nearly the same unit vector.
        nn.init.zeros_(self.proj.bias)
        nn.init.zeros_(self.ff.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return F.normalize(self.norm(h + F.gelu(self.ff(h))), dim=-1)


class MultiHeadSelfAttention(nn.Module):
    """AutoInt's interacting layer over field embeddings ``[B, F, in_dim]``.

    Per head h: softmax(Q_h K_hᵀ [/ sqrt(d)]) V_h with Q, K, V linear maps of the
    fields; heads concatenated, plus a residual projection W_res e, then ReLU.
    Output ``[B, F, num_heads * attention_dim]``. AutoInt does not scale the
    scores (``scale=False``); the fused ``scaled_dot_product_attention`` kernel
    does the softmax-weighted sum either way.
    """

    def __init__(self, in_dim: int, attention_dim: int = 32, num_heads: int = 2,
                 residual: bool = True, scale: bool = False, relu: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.heads, self.head_dim = num_heads, attention_dim
        self.out_dim = num_heads * attention_dim
        self.qkv = nn.Linear(in_dim, 3 * self.out_dim, bias=False)
        self.residual = nn.Linear(in_dim, self.out_dim, bias=False) if residual else None
        self.scale, self.relu, self.dropout = scale, relu, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _ = x.shape
        q, k, v = self.qkv(x).view(b, f, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0,
            scale=None if self.scale else 1.0)                      # [B, H, F, d]
        out = out.transpose(1, 2).reshape(b, f, self.out_dim)
        if self.residual is not None:
            out = out + self.residual(x)
        return torch.relu(out) if self.relu else out
