"""SDIM (Cao et al. 2022): the interest in a candidate from the behaviours that hash alike.

Every behaviour and the candidate get a SimHash signature: ``num_hashes`` (m)
fixed random projections of ``hash_bits`` (τ) directions each, the signs read
as a τ-bit bucket number per hash. For each hash the candidate's interest is
the mean of the user's behaviours in the candidate's bucket (a behaviour
collides with probability falling with its angle to the candidate, so this
samples behaviours the way target attention would weight them); the m means
are averaged. Which behaviours are sequences and which field is each one's
target is DIN's rule (``attended_sequences``).

The behaviour side does not depend on the candidate: ``user_state`` sums each
sequence's embeddings per (hash, bucket) once — ``[m, 2^τ, dim]`` per user,
computable ahead of the request — and ``score`` then costs O(m · dim) per
candidate whatever the history length. ``forward`` does both for a batch of
(user, candidate) rows; the result is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.layers import MLP, FeatureEmbedding, attended_sequences
from snsrec.models.registry import register


@register("sdim")
class SDIM(RankingModel):
    """SDIM over the FeatureMap's behaviour sequences.

    embedding_dim 16; num_hashes 8 (m) and hash_bits 3 (τ; 2^τ buckets per hash);
    projection_seed 0 (the fixed random projections, saved with the model);
    hidden_units [200, 80], activation "relu", dropout 0.0, batch_norm False of
    the MLP; sequences / fields as DIN's.
    """

    def __init__(self, feature_map: Any, embedding_dim: int = 16, num_hashes: int = 8,
                 hash_bits: int = 3, projection_seed: int = 0,
                 hidden_units: Sequence[int] = (200, 80), dropout: float = 0.0,
                 activation: str = "relu", batch_norm: bool = False,
                 sequences: Sequence[str] | None = None, fields: Sequence[str] | None = None):
        super().__init__()
        if num_hashes < 1 or not 1 <= hash_bits <= 16:
            raise ModelError(f"sdim: num_hashes ({num_hashes}) >= 1 and hash_bits "
                             f"({hash_bits}) in 1..16")
        self.sequences, others = attended_sequences(feature_map, fields, sequences, "sdim")
        self.num_hashes, self.hash_bits = num_hashes, hash_bits
        self.embedding = FeatureEmbedding(feature_map, embedding_dim, [f.name for f in others])
        self._target_index = [self.embedding.field_names.index(t.name)
                              for _, t in self.sequences]
        g = torch.Generator().manual_seed(projection_seed)
        self.register_buffer("projections", torch.randn(embedding_dim, num_hashes * hash_bits,
                                                        generator=g))
        self.register_buffer("powers", 2 ** torch.arange(hash_bits), persistent=False)
        n_in = (self.embedding.num_fields + len(self.sequences)) * embedding_dim
        self.mlp = MLP(n_in, hidden_units, dropout, activation, batch_norm, out_dim=1)
        self.bias = nn.Parameter(torch.zeros(1))

    def buckets(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., m]`` bucket numbers (0 .. 2^τ − 1) of ``[..., dim]`` vectors."""
        signs = (x @ self.projections > 0).view(*x.shape[:-1], self.num_hashes, self.hash_bits)
        return (signs.long() * self.powers).sum(-1)

    def user_state(self, batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor,
                                                                       torch.Tensor]]:
        """Per attended sequence: ``[B, m, 2^τ, dim]`` bucket sums of the behaviours'
        embeddings and ``[B, m, 2^τ]`` counts (padding counts nowhere)."""
        state = []
        n_buckets = 2 ** self.hash_bits
        for seq, _ in self.sequences:
            ids = batch[seq.name]
            emb = self.embedding.embed_sequence(seq, ids)                      # [B, L, d]
            real = (ids > 0).to(emb.dtype)
            bucket = self.buckets(emb)                                         # [B, L, m]
            b, _, d = emb.shape
            zeros = emb.new_zeros(b, n_buckets, d)
            sums = torch.stack([zeros.scatter_add(1, bucket[..., j, None].expand(-1, -1, d), emb)
                                for j in range(self.num_hashes)], 1)
            counts = torch.stack([zeros[..., 0].scatter_add(1, bucket[..., j], real)
                                  for j in range(self.num_hashes)], 1)
            state.append((sums, counts))
        return state

    def interests(self, emb: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
                  ) -> torch.Tensor:
        """``[B, S, dim]``: per sequence, the mean over hashes of the mean behaviour in the
        target's bucket (zero where the bucket is empty). ``emb``: the other fields'
        ``[B, F, dim]`` embeddings (they hold the targets); ``state``: ``user_state``'s,
        one row per row of ``emb``."""
        out = []
        for (sums, counts), ti in zip(state, self._target_index, strict=True):
            bucket = self.buckets(emb[:, ti])                                  # [B, m]
            picked = sums.gather(2, bucket[:, :, None, None].expand(
                -1, -1, 1, sums.shape[-1])).squeeze(2)                          # [B, m, d]
            n = counts.gather(2, bucket.unsqueeze(-1))                          # [B, m, 1]
            out.append((picked / n.clamp(min=1)).mean(1))
        return torch.stack(out, 1) if out else emb[:, :0]

    def score(self, batch: dict[str, torch.Tensor],
              state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Logits of the candidate rows of ``batch`` given a ``user_state`` per row (a user's
        state expanded over their candidates: ``[s.expand(n, ...) for s in ...]``)."""
        emb = self.embedding(batch)
        x = torch.cat([emb, self.interests(emb, state)], 1).flatten(1)
        return self.bias + self.mlp(x).squeeze(-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logit": self.score(batch, self.user_state(batch))}
