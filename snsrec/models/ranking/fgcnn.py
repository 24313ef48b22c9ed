"""FGCNN: feature generation by convolution, then an IPNN over raw + new features.

Liu et al., "Feature Generation by Convolutional Neural Network for CTR
Prediction" (WWW 2019). The ``[F, D]`` field-embedding matrix is read as a
one-channel image: each block convolves along the field axis (a ``(k, 1)``
kernel mixes neighbouring fields, dimension by dimension), max-pools along the
field axis, and a *recombination* dense layer turns the pooled maps into new
``D``-dimensional feature embeddings. The blocks are stacked; the features every
block generates are concatenated with the raw embeddings and fed to an IPNN
(all pairwise inner products next to the flattened embeddings, into an MLP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP, FeatureEmbedding, make_activation
from snsrec.models.registry import register


class PairwiseInnerProduct(nn.Module):
    """``[B, N, D]`` → ``[B, N(N-1)/2]``: ⟨e_i, e_j⟩ for every pair i < j (IPNN's product layer)."""

    def __init__(self, num_fields: int):
        super().__init__()
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        # Buffers, not state: the indices follow from num_fields, so checkpoints stay lean.
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.out_dim = len(rows)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        gram = torch.bmm(emb, emb.transpose(1, 2))              # [B, N, N]
        return gram[:, self.rows, self.cols]


class ConvRecombination(nn.Module):
    """One FGCNN block: conv ``(k, 1)`` → activation → max-pool ``(p, 1)`` → recombination.

    Input maps ``[B, C_in, F, D]``; returns the pooled maps ``[B, C_out, ⌈F/p⌉, D]``
    (the next block's input) and the generated features ``[B, R·⌈F/p⌉, D]``,
    where the recombination is a dense layer from all pooled maps to
    ``R·⌈F/p⌉·D`` outputs, so every new feature may mix every map.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_height: int,
                 pool_size: int, recombined: int, num_fields: int, dim: int,
                 activation: str = "tanh"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_height, 1), padding="same")
        self.act = make_activation(activation)
        # ceil_mode: a field count that does not divide by p keeps its last, partial window.
        self.pool = nn.MaxPool2d((pool_size, 1), ceil_mode=True)
        self.out_fields = math.ceil(num_fields / pool_size)
        self.new_fields = recombined * self.out_fields
        self.dim = dim
        self.recombine = nn.Sequential(
            nn.Linear(out_channels * self.out_fields * dim, self.new_fields * dim),
            make_activation(activation))

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(self.act(self.conv(maps)))           # [B, C_out, F', D]
        new = self.recombine(pooled.flatten(1))                 # [B, R*F'*D]
        return pooled, new.view(-1, self.new_fields, self.dim)


class FeatureGenerator(nn.Module):
    """Stacked ``ConvRecombination`` blocks: ``[B, F, D]`` → new features ``[B, F_new, D]``."""

    def __init__(self, num_fields: int, dim: int, channels: Sequence[int],
                 kernel_heights: Sequence[int], pooling_sizes: Sequence[int],
                 recombined_channels: Sequence[int], activation: str = "tanh"):
        super().__init__()
        lengths = {len(channels), len(kernel_heights), len(pooling_sizes),
                   len(recombined_channels)}
        if len(lengths) != 1:
            raise ModelError("fgcnn: channels, kernel_heights, pooling_sizes and "
                             "recombined_channels need one entry per conv block each; "
                             f"got lengths {len(channels)}, {len(kernel_heights)}, "
                             f"{len(pooling_sizes)}, {len(recombined_channels)}")
        blocks, c_in, fields = [], 1, num_fields
        for c, k, p, r in zip(channels, kernel_heights, pooling_sizes, recombined_channels,
                              strict=True):
            blocks.append(ConvRecombination(c_in, c, k, p, r, fields, dim, activation))
            c_in, fields = c, blocks[-1].out_fields
        self.blocks = nn.ModuleList(blocks)
        self.out_fields = sum(b.new_fields for b in blocks)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        maps, new = emb.unsqueeze(1), []
        for block in self.blocks:
            maps, generated = block(maps)
            new.append(generated)
        return torch.cat(new, dim=1)


@register("fgcnn")
class FGCNN(RankingModel):
    """FGCNN + IPNN.

    Parameters (defaults follow FuxiCTR's FGCNN where it has one):
        embedding_dim: 16.
        fields: the FeatureMap fields to use (default: every embeddable one).
        channels / kernel_heights / pooling_sizes / recombined_channels: one entry
            per conv block; default 4 blocks of 14-16-18-20 channels, kernel 7,
            pool 2, 3 recombined maps.
        conv_activation: "tanh" (the paper's).
        share_embedding: False — the generator reads its own embedding table, as
            in the paper, so the IPNN's embeddings are not pulled two ways.
        hidden_units / dropout / batch_norm / activation: the IPNN's MLP
            (400-400-400, relu, no dropout or batch norm).
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16,
                 fields: Sequence[str] | None = None,
                 channels: Sequence[int] = (14, 16, 18, 20),
                 kernel_heights: Sequence[int] = (7, 7, 7, 7),
                 pooling_sizes: Sequence[int] = (2, 2, 2, 2),
                 recombined_channels: Sequence[int] = (3, 3, 3, 3),
                 conv_activation: str = "tanh", share_embedding: bool = False,
                 hidden_units: Sequence[int] = (400, 400, 400), dropout: float = 0.0,
                 batch_norm: bool = False, activation: str = "relu"):
        super().__init__()
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, fields=fields)
        self.gen_embedding = None if share_embedding else \
            FeatureEmbedding(feature_map, embedding_dim, fields=fields)
        num_fields = self.embedding.num_fields
        self.generator = FeatureGenerator(num_fields, embedding_dim, channels, kernel_heights,
                                          pooling_sizes, recombined_channels, conv_activation)
        total = num_fields + self.generator.out_fields
        self.inner = PairwiseInnerProduct(total)
        self.mlp = MLP(total * embedding_dim + self.inner.out_dim, hidden_units, dropout,
                       activation, batch_norm, out_dim=1)
        self.bias = nn.Parameter(torch.zeros(1))     # the global bias RankingModel initialises

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)                                       # [B, F, D]
        gen_in = emb if self.gen_embedding is None else self.gen_embedding(batch)
        all_emb = torch.cat([emb, self.generator(gen_in)], dim=1)         # [B, F+F_new, D]
        x = torch.cat([all_emb.flatten(1), self.inner(all_emb)], dim=1)
        return {"logit": self.bias + self.mlp(x).squeeze(-1)}
