"""RED-Rec's window NCE: several interest vectors, each trained on the targets it explains.

Per sample: K unit interest vectors ``user_emb [B, K, d]`` and the next W
positives ``pos_emb [B, W, d]`` (``pos_mask`` marks real ones). The positives
are clustered into K groups (a few k-means steps on the unit sphere, started
at the interest vectors) and the groups are matched one-to-one to the
interest vectors by the Hungarian algorithm (``scipy.optimize.
linear_sum_assignment`` on negative cosine), so each interest vector is
trained on one coherent group of what the user did next. Each positive then
gets an InfoNCE term against

- the other positives of the batch (in-batch negatives), drawn by
  popularity: their logits and the positive's get the logQ correction
  ``− log(P · q(item))`` (Yi et al. 2019), the log of the item's expected
  count among the batch's P positives, ``q`` its share of training clicks
  (``pos_log_q``);
- ``neg_emb``: items drawn uniformly from the corpus, corrected by the log of
  their expected count ``N / n_items`` (``neg_log_q``);

Under DDP both kinds come from every rank (``distributed.gather_cat``: the
batch's negatives are the global batch's, P and N count all ranks' rows).

With a false-negative mask: a negative that is the positive's own item, or
whose cosine with the positive exceeds ``fn_threshold`` (0.98), is dropped.
The logits are scaled by the model's learnable inverse temperature
``output["scale"]``. With each positive's click time ``output["pos_ts"]``
(and the creation times ``pos_created`` / ``neg_created``), a negative
created after the click is dropped too: it did not exist then, and the
evaluation ranks only the notes created by the query time. With
``output["item_bias"]`` (RED-Rec's note-age bias, a function of times and
corpus rows, in cosine units) each logit also gets ``scale ×`` the bias of
its note at the positive's click time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from snsrec.train import distributed

NEG_INF = -1e9


@torch.no_grad()
def assign_interests(user_emb: torch.Tensor, pos_emb: torch.Tensor, pos_mask: torch.Tensor,
                     iters: int = 3) -> torch.Tensor:
    """``[B, W]`` index of the interest vector each positive trains (k-means + Hungarian)."""
    b, k, _ = user_emb.shape
    centroids = user_emb.clone()
    valid = pos_mask.unsqueeze(-1).to(pos_emb.dtype)
    for _ in range(iters):
        cluster = torch.einsum("bwd,bkd->bwk", pos_emb, centroids).argmax(-1)     # [B, W]
        onehot = F.one_hot(cluster, k).to(pos_emb.dtype) * valid                 # [B, W, K]
        sums = torch.einsum("bwk,bwd->bkd", onehot, pos_emb)
        empty = onehot.sum(1).unsqueeze(-1) == 0
        centroids = torch.where(empty, centroids, F.normalize(sums, dim=-1))
    cost = -torch.einsum("bkd,bjd->bkj", centroids, user_emb).double().cpu().numpy()
    match = np.empty((b, k), dtype=np.int64)            # cluster c → interest match[b, c]
    for i in range(b):
        rows, cols = linear_sum_assignment(cost[i])
        match[i, rows] = cols
    return torch.from_numpy(match).to(cluster.device).gather(1, cluster)


def window_nce(output: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
               fn_threshold: float = 0.98) -> torch.Tensor:
    """The mean InfoNCE over every real positive of the batch (see the module docstring)."""
    # float32 throughout (under bf16 autocast the towers may hand over bf16 vectors).
    user, pos, mask = output["user_emb"].float(), output["pos_emb"].float(), output["pos_mask"]
    scale, timed = output["scale"], "pos_ts" in output
    sel = mask.reshape(-1)
    p = pos.reshape(-1, pos.shape[-1])[sel]                                       # [P, d]
    rows, log_q = output["pos_rows"].reshape(-1)[sel], output["pos_log_q"].reshape(-1)[sel]
    ts = output["pos_ts"].reshape(-1)[sel] if timed else None                     # [P]
    # Under DDP every rank's positives and uniform negatives are negatives of every
    # positive (gathered before any early return: each rank must take part).
    (p_all, rows_all, log_q_all, *created), at = distributed.gather_cat(
        p, rows, log_q, *([output["pos_created"].reshape(-1)[sel]] if timed else []))
    (neg, neg_rows, *neg_created), _ = distributed.gather_cat(
        output["neg_emb"].float(), output["neg_rows"],
        *([output["neg_created"]] if timed else []))
    if not bool(mask.any()):
        return (user.sum() + pos.sum()) * 0.0          # nothing to learn from; keeps the graph
    interest = assign_interests(user.detach(), pos.detach(), mask)
    q = user.gather(1, interest.unsqueeze(-1).expand(-1, -1, user.shape[-1]))   # [B, W, d]
    q = q.reshape(-1, q.shape[-1])[sel]                                           # [P, d]
    log_q_all = log_q_all + math.log(len(rows_all))   # expected count among all positives
    own = slice(at, at + len(rows))
    pos_logit = scale * (q * p).sum(-1) - log_q_all[own]                          # [P]
    inbatch = scale * q @ p_all.T - log_q_all[None, :]                            # [P, P_all]
    with torch.no_grad():
        same = (rows[:, None] == rows_all[None, :]) | (p @ p_all.T > fn_threshold)
        if timed:
            same |= created[0][None, :] > ts[:, None]
    inbatch = inbatch.masked_fill(same, NEG_INF)
    bias = timed and "item_bias" in output
    if bias:
        b = scale * output["item_bias"](ts, rows_all)                             # [P, P_all]
        pos_logit = pos_logit + b[:, own].diagonal()
        inbatch = inbatch + b
    parts = [pos_logit[:, None], inbatch]
    if neg.shape[0]:
        # The uniform draws' expected count: N per rank, N × ranks in all.
        neg_log_q = output["neg_log_q"] + math.log(len(neg) / len(output["neg_emb"]))
        uniform = scale * q @ neg.T - neg_log_q                                   # [P, N]
        if bias:
            uniform = uniform + scale * output["item_bias"](ts, neg_rows)
        with torch.no_grad():
            fake = (neg_rows[None, :] == rows[:, None]) | (p @ neg.T > fn_threshold)
            if timed:
                fake |= neg_created[0][None, :] > ts[:, None]
        parts.append(uniform.masked_fill(fake, NEG_INF))
    logits = torch.cat(parts, dim=1)
    return F.cross_entropy(logits.float(), torch.zeros(len(logits), dtype=torch.long,
                                                        device=logits.device))
