"""`snsrec index build RUN_DIR`: a retrieval run's item vectors into an ``AnnIndex``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from snsrec.errors import ModelError
from snsrec.index.ann import AnnIndex


def build_run_index(run_dir: str | Path, kind: str = "hnsw",
                    out: str | Path | None = None) -> dict[str, Any]:
    """Index every corpus note of ``run_dir`` by note id; returns the index and a summary line."""
    from snsrec.eval.protocols import corpus_vectors
    from snsrec.train.trainer import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if not hasattr(run.model, "item_vectors"):
        raise ModelError(f"{run_dir}: model '{run.config.get('model', {}).get('name')}' has no "
                         "item tower; index a retrieval run (e.g. redrec)")
    t0 = time.perf_counter()
    vectors = corpus_vectors(run.model, len(run.feature_map)).numpy()
    index = AnnIndex(vectors.shape[1], kind).build(run.feature_map.note_ids, vectors)
    out = Path(out) if out is not None else run_dir / f"index-{kind}"
    index.save(out)
    text = (f"indexed {len(index):,} notes ({vectors.shape[1]}-d, {kind}) in "
            f"{time.perf_counter() - t0:.1f} s → {out}")
    return {"index": index, "path": out, "text": text}
