"""RED-Rec: an LLM-enhanced, hierarchical, cross-scenario two-tower retriever.

**Item tower.** A note's text ("title / body / #tags") goes through a text
backbone (``snsrec.text.encoders``: hashed n-grams, frozen MiniLM or a causal
LM with ``[EMB]``) and RED-Rec's projection head to one unit vector of
``dim`` (64). ``item_encoder: id`` swaps the text for a learned row per note
(the ID ablation; it cannot score notes it never saw). The corpus texts are
prepared once, on first use (``backbone.prepare``), and kept on the model's
device, so a batch only indexes them. Search queries go through the same
backbone and head.

**User tower.** The user's behaviour from every scenario, merged in time
order (``snsrec.data.sequences.histories``): each token is its item's (or
query's) vector projected to the tower ``width``, plus embeddings of its
scenario, its recency bucket and its kind (note / query) — scenario-aware
dense mixing. ``num_interests`` (K = 3) learnable query tokens, each plus the
embedding of the *target* scenario (the querying policy: one model serves
feed, search and ads), are appended; a transformer encoder reads the whole
sequence and the query tokens' outputs, projected to ``dim`` and normalised,
are the K interest vectors. Score(user, note) = max_k cos(q_k, note).
``backbone: causal-lm`` runs a Hugging Face causal LM (``backbone_model``:
tiny-qwen2, smollm2-135m or a local directory) over the tokens as
``inputs_embeds`` instead, as the paper does — the query tokens come last, so
causal attention lets them read the whole history; the LM trains whole, or
through LoRA adapters with ``backbone_lora_rank``.

**Note age** (``age_buckets`` > 0): a learned bias per bucket of the note's
age at the query time (in training: at each target's click time; log2 hours,
as the history's recency) is added to
every logit in training and to the score in serving — how much more a note
that new gets clicked, whoever the user. Platforms give new notes traffic, and
a text tower alone ranks a new note like the rarely clicked notes whose words
it shares; the bias is what the training clicks say about freshness. It is in
the cosine's units (the logit is ``scale · (cos + bias)``, so Adam's steps move
it as far as they move a cosine); the serving score is ``max_k cos + bias``.

**Training** (``loss: window_nce``, ``snsrec.train.window_nce``): in training
mode ``forward`` also returns the next-W positives' vectors, their log
popularity and ``negatives`` uniformly sampled notes. Give the transformer
user tower a warm-up (``train.warmup_steps: 200``, ``train.grad_clip: 1.0``,
as the shipped configs do): at lr 1e-3 from the first step it can stall near
its starting loss for epochs, depending on the seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import NOTE, QUERY
from snsrec.errors import ModelError
from snsrec.models.base import TwoTowerRetriever
from snsrec.models.layers import LogitLinear, ProjectionHead
from snsrec.models.registry import register
from snsrec.text.encoders import TextConfig, build_text_backbone


class TextTower(nn.Module):
    """Rows of prepared texts → unit vectors (backbone + head), each distinct row encoded once."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def encode(self, prepared: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        flat = rows.reshape(-1)
        uniq, inverse = torch.unique(flat, return_inverse=True)
        vec = self.head(self.backbone({k: v[uniq] for k, v in prepared.items()})).float()
        return vec[inverse].view(*rows.shape, vec.shape[-1])


@register("redrec")
class RedRec(TwoTowerRetriever):
    """RED-Rec over a ``snsrec.data.sequences.Corpus`` (the retrieval "feature map").

    dim 64; item_encoder "text" | "id"; text: a ``TextConfig`` dict (backbone
    hash / minilm / causal-lm); width 128, layers 2, heads 4, dropout 0.0 of
    the user tower (on a CPU its masks cost a quarter of a step); backbone
    "transformer" | "causal-lm" (then backbone_model, backbone_lora_rank);
    num_interests 3; recency_buckets 24; negatives 400 uniform negatives per
    step; temperature 0.07 (initial; learnable); age_buckets 0 (off) or the
    number of note-age buckets of the learned freshness bias; fresh_every 0
    (off) or n: serving gives every n-th place of a ranking to the best note
    created after the training cut-off (the fresh-note channel).
    """

    def __init__(self, corpus: Any, dim: int = 64, item_encoder: str = "text",
                 text: dict[str, Any] | None = None, width: int = 128, layers: int = 2,
                 heads: int = 4, dropout: float = 0.0, num_interests: int = 3,
                 recency_buckets: int = 24, negatives: int = 400, temperature: float = 0.07,
                 backbone: str = "transformer", backbone_model: str = "tiny-qwen2",
                 backbone_lora_rank: int | None = None, age_buckets: int = 0,
                 fresh_every: int = 0):
        super().__init__()
        if item_encoder not in ("text", "id"):
            raise ModelError(f"redrec: item_encoder '{item_encoder}'; use 'text' or 'id'")
        if backbone not in ("transformer", "causal-lm"):
            raise ModelError(f"redrec: backbone '{backbone}'; use 'transformer' or 'causal-lm'")
        if num_interests < 1 or negatives < 0 or temperature <= 0 or age_buckets < 0:
            raise ModelError("redrec: num_interests >= 1, negatives >= 0, temperature > 0, "
                             "age_buckets >= 0")
        if fresh_every == 1 or fresh_every < 0:
            raise ModelError(f"redrec: fresh_every {fresh_every}; use 0 (off) or >= 2 (every "
                             "n-th place of a ranking for a note newer than the training)")
        if fresh_every and getattr(corpus, "train_end", None) is None:
            raise ModelError("redrec: fresh_every needs the corpus's training cut-off "
                             "(Corpus.train_end); build the corpus with Corpus.from_tables")
        self.n_items, self.dim, self.item_encoder = len(corpus), dim, item_encoder
        self.negatives, self.num_interests = negatives, num_interests
        self.register_buffer("log_q", torch.as_tensor(corpus.log_q, dtype=torch.float32),
                             persistent=False)
        backbone = build_text_backbone(TextConfig.model_validate(text or {}))
        self.text = TextTower(backbone, ProjectionHead(backbone.dim, dim))
        # The backbone's inputs of every corpus note and query, prepared on first use (not
        # saved): a served run reads its saved vectors (freeze_vectors) and never needs the
        # notes' — at a million notes, minutes of hashing or encoding a process.
        self._texts = {"note": corpus.texts if item_encoder == "text" else [],
                       "query": corpus.queries or [""]}
        self._ready: dict[str, dict[str, torch.Tensor]] = {}
        self.n_queries = max(len(corpus.queries), 1)
        self._frozen: tuple[torch.Tensor, torch.Tensor] | None = None   # freeze_vectors
        self.ids = nn.Embedding(self.n_items, dim) if item_encoder == "id" else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=dim ** -0.5)
        self.token_proj = nn.Linear(dim, width)
        self.scenario_emb = nn.Embedding(len(SCENARIOS) + 1, width, padding_idx=0)
        self.recency_emb = nn.Embedding(recency_buckets, width, padding_idx=0)
        self.kind_emb = nn.Embedding(3, width, padding_idx=0)
        self.interest_tokens = nn.Parameter(torch.randn(num_interests, width) * 0.02)
        self.target_emb = nn.Embedding(len(SCENARIOS), width)
        # Small tags (as GPT / BERT position embeddings): at N(0, 1) they would drown the
        # item vectors (unit length, ~1/sqrt(dim) per coordinate) the tower has to read.
        for emb in (self.scenario_emb, self.recency_emb, self.kind_emb, self.target_emb):
            nn.init.normal_(emb.weight, std=0.02)
            if emb.padding_idx is not None:
                nn.init.zeros_(emb.weight[emb.padding_idx])
        self.lm = None
        if backbone == "causal-lm":
            from snsrec.text.encoders import causal_lm_stack

            self.lm, _ = causal_lm_stack(backbone_model, lora_rank=backbone_lora_rank,
                                         trainable=True)
            hidden = int(self.lm.config.hidden_size)
            self.lm_in, self.lm_out = nn.Linear(width, hidden), nn.Linear(hidden, width)
        else:
            self._user_tower(width, layers, heads, dropout)
        # float32 even under bf16 autocast (train.precision): the interest vectors' cosines
        # rank the whole corpus, and bf16's 8-bit mantissa would tie them.
        self.out = nn.Sequential(nn.LayerNorm(width), LogitLinear(width, dim))
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.age_bias = None
        if age_buckets:
            # A plain vector, not an nn.Embedding: a step looks it up ~10M times (every
            # logit), and a sparse embedding gradient of that many rows is slow to coalesce.
            self.age_bias = nn.Parameter(torch.zeros(age_buckets))
        # The fresh-note channel of serving (snsrec.eval.protocols): notes created after
        # the training cut-off get every fresh_every-th place of a ranking.
        self.fresh_every = fresh_every
        self.register_buffer("fresh", torch.as_tensor(corpus.fresh()), persistent=False)
        # A note that has always existed (no creation time) is as old as it gets.
        self.register_buffer("created", torch.as_tensor(np.maximum(corpus.created, 0),
                                                        dtype=torch.int64), persistent=False)

    def _user_tower(self, width: int, layers: int, heads: int, dropout: float) -> None:
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def _prepared(self, kind: str) -> dict[str, torch.Tensor]:
        """``prepare``'s tensors of every corpus ``kind`` ("note" | "query") text, made once
        and kept on the model's device (moved with it on the next use)."""
        device = self.log_scale.device
        ready = self._ready.get(kind)
        if ready is None:
            ready = self.text.backbone.prepare(self._texts[kind])
        if any(v.device != device for v in ready.values()):
            ready = {k: v.to(device) for k, v in ready.items()}
        self._ready[kind] = ready
        return ready

    # -- towers -----------------------------------------------------------------------
    def item_vectors(self, rows: torch.Tensor) -> torch.Tensor:
        """``[..., dim]`` unit vectors of corpus rows."""
        if self._frozen is not None and not self.training:
            return self._frozen[0][rows]
        if self.ids is not None:
            return F.normalize(self.ids(rows), dim=-1)
        return self.text.encode(self._prepared("note"), rows)

    def query_vectors(self, rows: torch.Tensor) -> torch.Tensor:
        if self._frozen is not None and not self.training:
            return self._frozen[1][rows]
        return self.text.encode(self._prepared("query"), rows)

    @torch.no_grad()
    def freeze_vectors(self, items: torch.Tensor, batch_size: int = 4096) -> None:
        """Serve from fixed vectors: ``items`` (``corpus_vectors``, every corpus row) and
        every query, encoded now — the user tower then reads a history's notes and
        queries without running the text tower per request. Only in eval mode; weights
        that change afterwards (training) are not seen by the frozen vectors."""
        self.eval()
        n = self.n_queries
        queries = torch.cat([self.query_vectors(torch.arange(s, min(s + batch_size, n)))
                             for s in range(0, n, batch_size)])
        self._frozen = (items, queries)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """``[n, dim]`` unit vectors of texts outside the corpus (a new note, a search
        query) through the item tower's backbone and head — as corpus notes are encoded."""
        if self.ids is not None:
            raise ModelError("redrec: item_encoder 'id' has no text tower for new notes; "
                             "serve a run with item_encoder 'text'")
        prepared = self.text.backbone.prepare(list(texts))
        device = self.log_scale.device
        return self.text.head(self.text.backbone(
            {k: v.to(device) for k, v in prepared.items()})).float()

    def tokens(self, batch: dict[str, torch.Tensor], extra: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``[B, T, width]`` history tokens, their ``[B, T]`` padding mask (True = pad) and
        the vectors of the ``extra`` corpus rows (None without), encoded in the same pass
        as the history's notes: one text-tower call per step, each distinct note once."""
        # Histories are padded in front: drop the columns that are padding in every row
        # (exact; most users' histories are far shorter than the blocks allow).
        real = batch["hist_kind"] != 0
        first = int(real.any(0).nonzero()[0]) if bool(real.any()) else real.shape[1] - 1
        batch = {**batch, **{k: batch[k][:, first:] for k in
                             ("hist_kind", "hist_item", "hist_scenario", "hist_recency")}}
        kind, item = batch["hist_kind"].long(), batch["hist_item"].long()
        vec = torch.zeros(*item.shape, self.dim, device=item.device)
        notes, queries = kind == NOTE, kind == QUERY
        rows = item[notes]
        if extra is not None:
            rows = torch.cat([rows, extra.reshape(-1)])
        extra_vec = None
        if rows.numel():
            got = self.item_vectors(rows)
            vec[notes] = got[:int(notes.sum())].to(vec.dtype)
            if extra is not None:
                extra_vec = got[int(notes.sum()):].view(*extra.shape, -1)
        if bool(queries.any()):
            vec[queries] = self.query_vectors(item[queries]).to(vec.dtype)
        tokens = self.token_proj(vec) + self.scenario_emb(batch["hist_scenario"].long()) \
            + self.recency_emb(batch["hist_recency"].long()) + self.kind_emb(kind)
        return tokens, kind == 0, extra_vec

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, K, dim]`` unit interest vectors for the target scenario of each row."""
        tokens, pad, _ = self.tokens(batch)
        return self.interests(tokens, pad, batch)

    def interests(self, tokens: torch.Tensor, pad: torch.Tensor,
                  batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The user tower over the history tokens: ``[B, K, dim]`` unit vectors."""
        b = tokens.shape[0]
        queries = self.interest_tokens[None] + \
            self.target_emb(batch["target_scenario"].long())[:, None, :]
        x = torch.cat([tokens, queries.expand(b, -1, -1)], dim=1)
        pad = torch.cat([pad, pad.new_zeros(b, self.num_interests)], dim=1)
        if self.lm is not None:
            # Histories are padded in front: positions count the real tokens only.
            real = (~pad).long()
            h = self.lm(inputs_embeds=self.lm_in(x), attention_mask=real,
                        position_ids=(real.cumsum(1) - 1).clamp(min=0)).last_hidden_state
            h = self.lm_out(h[:, -self.num_interests:])
        else:
            # No padding at all (one served user): no mask — the masked softmax is the
            # slowest op of the tower on CPU, and masking nothing changes nothing.
            mask = pad if bool(pad.any()) else None
            h = self.encoder(x, src_key_padding_mask=mask)[:, -self.num_interests:]
        return F.normalize(self.out(h), dim=-1)

    def item_bias(self, query_ts: torch.Tensor, rows: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """``[Q, M]`` freshness bias (cosine units) of notes ``rows`` (all when None) at each
        query time (a model with ``age_buckets``)."""
        created = self.created if rows is None else self.created[rows]
        hours = (query_ts[:, None] - created[None, :]).clamp(min=0).float() / 3600.0
        bucket = (1 + torch.floor(torch.log2(1.0 + hours))).clamp(
            max=len(self.age_bias) - 1).long()
        return self.age_bias[bucket]

    # -- the registry contract --------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not (self.training and "targets" in batch):
            return {"user_emb": self.user_vectors(batch)}
        targets = batch["targets"].long()
        mask = targets >= 0
        rows = targets.clamp(min=0)
        neg_rows = torch.randint(0, self.n_items, (self.negatives,), device=rows.device)
        tokens, pad, vec = self.tokens(batch, torch.cat([rows.reshape(-1), neg_rows]))
        out = {"user_emb": self.interests(tokens, pad, batch),
               "pos_emb": vec[:rows.numel()].view(*rows.shape, -1), "pos_mask": mask,
               "pos_rows": rows, "pos_log_q": self.log_q[rows], "neg_rows": neg_rows,
               "neg_emb": vec[rows.numel():], "scale": self.log_scale.exp().clamp(max=100.0),
               "neg_log_q": torch.tensor(math.log(max(self.negatives, 1) / self.n_items))}
        # Each positive's click time (the sample's query time without "target_ts"): a note
        # created later did not exist then, so it is no negative of that click (as the
        # evaluation ranks only the notes created by the query time).
        times = batch["target_ts"].long() if "target_ts" in batch else \
            batch["query_ts"].long()[:, None].expand_as(rows) if "query_ts" in batch else None
        if times is not None:
            out.update(pos_ts=times, pos_created=self.created[rows],
                       neg_created=self.created[neg_rows])
            if self.age_bias is not None:
                out["item_bias"] = self.item_bias
        return out

    @torch.no_grad()
    def score(self, user_emb: torch.Tensor, item_emb: torch.Tensor,
              batch: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``[B, N]``: max over the K interests of the cosine with each item (all N corpus
        notes, in row order), plus the freshness bias at ``batch["query_ts"]`` if learned."""
        cos = torch.einsum("bkd,nd->bkn", user_emb, item_emb).amax(dim=1)
        if self.age_bias is None or batch is None or "query_ts" not in batch:
            return cos
        return cos + self.item_bias(batch["query_ts"].long())
