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

with a false-negative mask: a negative that is the positive's own item, or
whose cosine with the positive exceeds ``fn_threshold`` (0.98), is dropped.
The logits are scaled by the model's learnable inverse temperature
``output["scale"]``. With ``output["item_bias"]`` (RED-Rec's note-age bias,
a function of query times and corpus rows, in cosine units) each logit also
gets ``scale ×`` the bias of its note at its sample's query time
``output["query_ts"]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

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
    pos_rows, neg = output["pos_rows"], output["neg_emb"].float()
    scale = output["scale"]
    if not bool(mask.any()):
        return (user.sum() + pos.sum()) * 0.0          # nothing to learn from; keeps the graph
    interest = assign_interests(user.detach(), pos.detach(), mask)
    q = user.gather(1, interest.unsqueeze(-1).expand(-1, -1, user.shape[-1]))   # [B, W, d]
    sel = mask.reshape(-1)
    q, p = q.reshape(-1, q.shape[-1])[sel], pos.reshape(-1, pos.shape[-1])[sel]  # [P, d]
    rows, log_q = pos_rows.reshape(-1)[sel], output["pos_log_q"].reshape(-1)[sel]
    log_q = log_q + math.log(len(rows))            # expected count among the P positives
    pos_logit = scale * (q * p).sum(-1) - log_q                                   # [P]
    inbatch = scale * q @ p.T - log_q[None, :]                                    # [P, P]
    with torch.no_grad():
        same = (rows[:, None] == rows[None, :]) | (p @ p.T > fn_threshold)
    inbatch = inbatch.masked_fill(same, NEG_INF)
    if "item_bias" in output:
        qts = output["query_ts"][:, None].expand(mask.shape).reshape(-1)[sel]     # [P]
        bias = scale * output["item_bias"](qts, rows)                             # [P, P]
        pos_logit = pos_logit + bias.diagonal()
        inbatch = inbatch + bias
    parts = [pos_logit[:, None], inbatch]
    if neg.shape[0]:
        uniform = scale * q @ neg.T - output["neg_log_q"]                         # [P, N]
        if "item_bias" in output:
            uniform = uniform + scale * output["item_bias"](qts, output["neg_rows"])
        with torch.no_grad():
            fake = (output["neg_rows"][None, :] == rows[:, None]) | (p @ neg.T > fn_threshold)
        parts.append(uniform.masked_fill(fake, NEG_INF))
    logits = torch.cat(parts, dim=1)
    return F.cross_entropy(logits.float(), torch.zeros(len(logits), dtype=torch.long,
                                                        device=logits.device))
