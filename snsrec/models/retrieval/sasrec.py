"""SASRec: self-attentive sequential recommendation over note ids.

The ID-based sequential baseline of the retrieval benchmark (Kang & McAuley,
2018, in the shape RecBole ships it): a user's last ``max_len`` note clicks,
oldest first, each an item embedding plus a learned position embedding, go
through ``layers`` post-norm transformer blocks under a causal mask; the
output at the last position is the user vector and an item's score is its
dot product with the item embedding (the same table: tied input and output
embeddings).

**Training** (``loss: next_item_ce``, ``snsrec.train.losses``): every position
of a training sequence predicts the next click with a softmax over the whole
corpus — one forward pass trains all prefixes of a sequence (RecBole's
version feeds each prefix as its own row). The sequences come from
``snsrec.train.retrieval.sequence_samples``: ``seq`` (corpus row + 1, 0 pads
at the end) and ``next`` (the next click's corpus row, -1 where padded).

**Evaluation** reads the retrieval protocol's history arrays (the
cross-scenario blocks of ``snsrec.data.sequences.histories``) and keeps the
last ``max_len`` note clicks (search queries are not notes: dropped). It
cannot score a note it never saw in training — its row is still the initial
random one — which is what the cold-start columns show.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snsrec.data.sequences import NOTE
from snsrec.errors import ModelError
from snsrec.models.base import TwoTowerRetriever
from snsrec.models.registry import register


@register("sasrec")
class SASRec(TwoTowerRetriever):
    """dim 64, max_len 50, layers 2, heads 2, inner 256 (feed-forward width), dropout 0.5
    (hidden and attention) — RecBole's SASRec defaults."""

    loss = "next_item_ce"

    def __init__(self, corpus: Any, dim: int = 64, max_len: int = 50, layers: int = 2,
                 heads: int = 2, inner: int = 256, dropout: float = 0.5):
        super().__init__()
        if max_len < 1 or layers < 1 or dim % heads or not 0.0 <= dropout < 1.0:
            raise ModelError(f"sasrec: max_len >= 1, layers >= 1, dim divisible by heads and "
                             f"0 <= dropout < 1 (got max_len {max_len}, layers {layers}, "
                             f"dim {dim}, heads {heads}, dropout {dropout})")
        self.n_items, self.dim, self.max_len = len(corpus), dim, max_len
        self.item_emb = nn.Embedding(self.n_items + 1, dim, padding_idx=0)   # row + 1; 0 = pad
        self.pos_emb = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, inner, dropout, activation="gelu",
                                           batch_first=True, layer_norm_eps=1e-12)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(max_len),
                             persistent=False)
        self.apply(_init)

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """``[B, L, dim]`` outputs for right-padded ``seq`` (corpus row + 1, 0 = pad).

        Under the causal mask a real position sees only itself and earlier
        (real) positions, so the padding at the end needs no mask of its own.
        """
        length = seq.shape[1]
        x = self.item_emb(seq) + self.pos_emb.weight[:length]
        x = self.drop(self.norm(x))
        return self.encoder(x, mask=self.causal[:length, :length], is_causal=True)

    def sequences(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return last_notes(batch, self.max_len)

    def item_vectors(self, rows: torch.Tensor) -> torch.Tensor:
        return self.item_emb(rows + 1)

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, 1, dim]``: the output at each user's last click (a user with none: position 0
        of an empty sequence, the same vector for every such user)."""
        seq, lengths = self.sequences(batch)
        h = self.hidden(seq)
        last = (lengths - 1).clamp(min=0)
        return h[torch.arange(len(h), device=h.device), last].unsqueeze(1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "seq" not in batch:
            return {"user_emb": self.user_vectors(batch)}
        seq, nxt = batch["seq"].long(), batch["next"].long()
        real = nxt >= 0
        h = self.hidden(seq)[real]                          # [M, dim], every real position
        # Full softmax over the corpus (the padding row is not a class).
        return {"logits": h @ self.item_emb.weight[1:].T, "labels": nxt[real]}

    @torch.no_grad()
    def score(self, user_emb: torch.Tensor, item_emb: torch.Tensor,
              batch: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``[B, N]`` dot products (max over the one interest); ``batch`` is not needed."""
        return torch.einsum("bkd,nd->bkn", user_emb, item_emb).amax(dim=1)


def last_notes(batch: dict[str, torch.Tensor], max_len: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """History arrays (``hist_kind``, ``hist_item``; padding in front, oldest first) → each
    row's last ``max_len`` note clicks as corpus row + 1, right-padded with 0, and their
    counts — the input of a sequential model."""
    kind, item = batch["hist_kind"], batch["hist_item"].long()
    note = kind == NOTE
    after = note.flip(1).cumsum(1).flip(1)            # notes at or after each position
    keep = note & (after <= max_len)
    seq = torch.zeros(len(item), max_len, dtype=torch.long, device=item.device)
    rows = torch.arange(len(item), device=item.device)[:, None].expand_as(item)
    seq[rows[keep], (keep.cumsum(1) - 1)[keep]] = item[keep] + 1
    return seq, keep.sum(1)


def _init(module: nn.Module) -> None:
    """RecBole's SASRec initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
