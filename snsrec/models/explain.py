"""``snsrec explain RUN_DIR``: the field crosses a GDCN run's gates weigh most.

What is computed. GDCN's first gated cross layer is exactly pairwise: with
field embeddings c0 = [e_1; ...; e_F] (e_i of size d) its output block for
field i is

    e_i ⊙ (Σ_j W_ij e_j + b_i) ⊙ g_i,      g = σ(W_g c0)

where W_ij is the (i, j) d×d block of the cross weight and g_i field i's
slice of the gate. The cross "field i × field j" therefore contributes
t_ij = e_i ⊙ (W_ij e_j) ⊙ g_i, a term that is large only when both fields
carry signal, the cross weight connects them AND the gate lets it through.
The score of the unordered pair {i, j} (i ≠ j) is the mean over rows of
Σ_dims |t_ij| + |t_ji|; ``share`` is its fraction of all cross-field scores,
and ``gate i`` / ``gate j`` are the mean gate values of the two fields' slices
(the model's own gates, read from ``GatedCrossNet.last_gates`` after a forward
pass). Deeper layers mix higher orders and are not split by field pair.

The rows are a sample of the run's validation split when the run's data set
can be found (``data`` and ``cache`` in its config.yaml); otherwise ids drawn uniformly from
each field's vocabulary and standard-normal numerics (the FeatureMap
normalises numerics to mean 0, std 1), which the output says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snsrec.errors import ModelError, SnsrecError
from snsrec.models.layers import NUMERIC, POOLED, FeatureEmbedding, GatedCrossNet

SAMPLE_ROWS = 4096
_CHUNK = 512          # rows per einsum block: [chunk, F, F, d] floats


def gated_parts(model: Any, where: str = "model") -> tuple[FeatureEmbedding, GatedCrossNet]:
    """The embedding and gated cross network of ``model``, or a one-line ModelError."""
    emb, cross = getattr(model, "embedding", None), getattr(model, "cross", None)
    if not isinstance(emb, FeatureEmbedding) or not isinstance(cross, GatedCrossNet) \
            or not len(cross.cross):
        name = getattr(model, "model_name", type(model).__name__)
        raise ModelError(f"{where}: model '{name}' has no gated cross network to explain; "
                         "`snsrec explain` works on gdcn runs")
    return emb, cross


@torch.no_grad()
def cross_scores(model: Any, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """``(scores [F, F], gates [F])``: mean |t_ij| (directed, i ← j) and mean gate per field."""
    emb_layer, cross = gated_parts(model)
    model.eval()
    n = len(next(iter(batch.values())))
    nf, d = emb_layer.num_fields, emb_layer.dim
    w = cross.cross[0].weight.view(nf, d, nf, d)             # [i, a, j, b]
    scores = torch.zeros(nf, nf, dtype=torch.float64)
    gates = torch.zeros(nf, dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        part = {k: v[start:start + _CHUNK] for k, v in batch.items()}
        model(part)                                          # fills cross.last_gates
        g = cross.last_gates[0].view(-1, nf, d)              # [n, F, d]
        e = emb_layer(part)                                  # [n, F, d]
        wc = torch.einsum("iajb,njb->nija", w, e)            # W_ij e_j: [n, F, F, d]
        t = e.unsqueeze(2) * wc * g.unsqueeze(2)
        scores += t.abs().sum(dim=-1).sum(dim=0).double()
        gates += g.mean(dim=-1).sum(dim=0).double()
    return (scores / max(n, 1)).numpy(), (gates / max(n, 1)).numpy()


def top_crosses(names: list[str], scores: np.ndarray, gates: np.ndarray,
                top: int) -> list[dict[str, Any]]:
    """Unordered field pairs by score (i ← j plus j ← i), best first."""
    i, j = np.triu_indices(len(names), k=1)
    pair = scores[i, j] + scores[j, i]
    total = float(pair.sum()) or 1.0
    order = np.lexsort((j, i, -pair))[:top]     # ties: by field order, deterministic
    return [{"field_i": names[i[k]], "field_j": names[j[k]], "score": float(pair[k]),
             "share": float(pair[k]) / total, "gate_i": float(gates[i[k]]),
             "gate_j": float(gates[j[k]])} for k in order]


def vocab_sample(embedding: FeatureEmbedding, rows: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Ids uniform over each field's known values (2..V-1), numerics N(0, 1)."""
    rng = np.random.default_rng(seed)
    out: dict[str, torch.Tensor] = {}
    for f in embedding.fields:
        if f.kind == NUMERIC:
            out[f.name] = torch.from_numpy(rng.normal(size=rows).astype(np.float32))
            continue
        high = max(int(f.vocab_size or 0), 3)
        shape = (rows, int(f.max_len or 1)) if f.kind in POOLED else (rows,)
        out[f.name] = torch.from_numpy(rng.integers(2, high, shape).astype(np.int64))
    return out


def _validation_sample(run: Any, rows: int) -> tuple[dict[str, torch.Tensor], str] | None:
    """The first ``rows`` validation rows of the run's data set, if it can be found."""
    data = run.config.get("data")
    if isinstance(data, dict):
        data = data.get("name") or data.get("path") or data.get("source")
    if not isinstance(data, str) or not data:
        return None
    from snsrec.data.batches import to_tensors
    from snsrec.data.datasets import resolve_dataset
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables

    try:
        cache = run.config.get("cache") or "data"       # the run config's data cache
        tables = load_tables(resolve_dataset(data, cache=Path(cache)))
        valid = split_events(tables)["valid"].lazy().head(rows)
        arrays = run.feature_map.transform(tables, valid)
    except (SnsrecError, OSError):
        return None
    n = len(next(iter(arrays.values()), []))
    return (to_tensors(arrays), f"{n:,} validation rows of {data}") if n else None


def markdown(title: str, source: str, crosses: list[dict[str, Any]]) -> str:
    lines = [f"# Feature crosses: {title}", "",
             f"First gated cross layer over {source}. Score: mean over rows of "
             "Σ|e_i ⊙ (W_ij e_j) ⊙ g_i| + Σ|e_j ⊙ (W_ji e_i) ⊙ g_j|; share: of all "
             "cross-field scores; gate: mean gate value of the field's slice.", "",
             "| rank | field i | field j | score | share | gate i | gate j |",
             "|---:|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r} | {c['field_i']} | {c['field_j']} | {c['score']:.4g} | "
              f"{100 * c['share']:.1f}% | {c['gate_i']:.3f} | {c['gate_j']:.3f} |"
              for r, c in enumerate(crosses, 1)]
    return "\n".join(lines) + "\n"


def explain_run(run_dir: Path, top: int = 20, rows: int = SAMPLE_ROWS) -> str:
    """Markdown table of the ``top`` field crosses a GDCN run's gated cross layer weighs most."""
    from snsrec.runs import load_run

    if top < 1:
        raise ModelError(f"explain: --top must be >= 1, got {top}")
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    emb, _ = gated_parts(run.model, str(run_dir))
    sample = _validation_sample(run, rows)
    if sample is None:
        batch = vocab_sample(emb, rows)
        source = (f"{rows:,} rows drawn uniformly from the vocabularies (the run's "
                  "validation data was not found)")
    else:
        batch, source = sample
    scores, gates = cross_scores(run.model, batch)
    crosses = top_crosses(emb.field_names, scores, gates, top)
    return markdown(f"{run_dir} ({run.model.model_name})", source, crosses)
