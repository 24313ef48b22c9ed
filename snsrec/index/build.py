"""`snsrec index build RUN_DIR`: a retrieval run's item vectors into a ``RunIndex``.

A run whose model serves a fresh-note channel (``fresh_every`` > 0) gets two
indexes: the notes its training saw (``kind``) and, in ``fresh/``, an exact
(flat) one of the notes created after its training cut-off — few, and the
ones new notes are ``add``-ed to until the next training. ``RunIndex.
search_interests`` then serves as the evaluation ranks: every
``fresh_every``-th place from the fresh index (``ann.blend``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.errors import ModelError
from snsrec.index.ann import AnnIndex, blend
from snsrec.io import atomic_path, check_out, read_json, write_json

SERVING = "serving.json"
VECTORS = "vectors.npy"


class RunIndex:
    """The main index, and the fresh-note one with its ``fresh_every`` when the run has it."""

    def __init__(self, main: AnnIndex, fresh: AnnIndex | None = None, fresh_every: int = 0):
        if (fresh is None) != (fresh_every == 0):
            raise ModelError("a fresh-note index and fresh_every >= 2 come together")
        self.main, self.fresh, self.fresh_every = main, fresh, fresh_every

    def __len__(self) -> int:
        return len(self.main) + (len(self.fresh) if self.fresh is not None else 0)

    def search_interests(self, interests: np.ndarray, k: int, merge: float = 0.98
                         ) -> tuple[np.ndarray, np.ndarray]:
        """One user's K interest vectors → the served top ``k`` (scores, ids)."""
        main = self.main.search_interests(interests, k, merge)
        if self.fresh is None:
            return main
        # The blend takes k // every of its k places from the fresh channel, and more only
        # when the main one runs short: ask the (exact) fresh index for that many — the same
        # first notes as a search for k, without scoring and sorting the k-long lists (at a
        # million notes its ~43k flat vectors cost ~3.4 ms for k = 400, ~2.6 for 40).
        quota = k // self.fresh_every
        short = int((main[1] >= 0).sum()) < k - quota
        fresh = self.fresh.search_interests(interests, k if short else max(quota, 1), merge)
        return blend(main, fresh, self.fresh_every, k)

    def save(self, path: str | Path, meta: dict[str, Any] | None = None, *,
             force: bool = False) -> Path:
        """``meta``: more entries for ``serving.json`` (written last); ``force``: replace a
        folder snsrec did not write."""
        path = Path(path)
        self.main.save(path, force=force)
        if self.fresh is not None:
            self.fresh.save(path / "fresh")
        write_json(path / SERVING, {**(meta or {}), "fresh_every": self.fresh_every})
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunIndex:
        path = Path(path)
        main = AnnIndex.load(path)
        every = int(read_json(path / SERVING).get("fresh_every", 0)) \
            if (path / SERVING).is_file() else 0
        return cls(main, AnnIndex.load(path / "fresh") if every else None, every)


def build_run_index(run_dir: str | Path, kind: str = "hnsw", out: str | Path | None = None,
                    force: bool = False) -> dict[str, Any]:
    """Index every corpus note of ``run_dir`` by note id into ``out`` (default
    ``RUN_DIR/index-KIND``; replaced when snsrec wrote it, or with ``force``, and never the
    run itself); returns the index and a summary line."""
    from snsrec.eval.protocols import corpus_vectors, fresh_channel
    from snsrec.runs import load_run

    run_dir = Path(run_dir)
    out = check_out(out if out is not None else run_dir / f"index-{kind}", force=force,
                    legacy=["index.json"], inputs=[run_dir / "model.safetensors"])
    run = load_run(run_dir)
    if run.model.family != "retriever":
        raise ModelError(f"{run_dir}: model '{run.config.get('model', {}).get('name')}' has no "
                         "item tower; index a retrieval run (e.g. redrec)")
    t0 = time.perf_counter()
    vectors = corpus_vectors(run.model, len(run.feature_map)).numpy()
    ids = run.feature_map.note_ids
    every, fresh = fresh_channel(run.model)
    fresh = fresh if every else np.zeros(len(ids), bool)
    index = RunIndex(AnnIndex(vectors.shape[1], kind).build(ids[~fresh], vectors[~fresh]),
                     AnnIndex(vectors.shape[1], "flat").build(ids[fresh], vectors[fresh])
                     if every else None, every)
    index.save(out, {"weights": weights_digest(run_dir)}, force=force)
    with atomic_path(out / VECTORS) as tmp, tmp.open("wb") as f:
        np.save(f, vectors)
    channel = f"; {int(fresh.sum()):,} newer than the training in a flat fresh-note index, " \
        f"every {every}th place served from it" if every else ""
    text = (f"indexed {len(index):,} notes ({vectors.shape[1]}-d, {kind}{channel}) in "
            f"{time.perf_counter() - t0:.1f} s → {out}")
    return {"index": index, "path": out, "text": text}


def weights_digest(run_dir: str | Path) -> str:
    """A digest of the run's ``model.safetensors`` (what its vectors were computed from)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    with (Path(run_dir) / "model.safetensors").open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def saved_run_index(run_dir: str | Path, kind: str = "hnsw") -> Path:
    """Where the run's ``kind`` index and corpus vectors are saved (``RUN_DIR/index-KIND``),
    building and saving them first when there are none or the run's weights changed since:
    HNSW on 1M notes takes minutes, which a server start should pay once."""
    from snsrec.progress import echo

    path = Path(run_dir) / f"index-{kind}"
    if not (path / "index.faiss").is_file() or not (path / VECTORS).is_file():
        echo(f"index: building the {kind} index of {run_dir} (saved for the next start)")
    elif not (path / SERVING).is_file() \
            or read_json(path / SERVING).get("weights") != weights_digest(run_dir):
        echo(f"index: {path} was built from other weights than the run's; rebuilding")
    else:
        return path
    echo(build_run_index(run_dir, kind, path)["text"])
    return path


def saved_vectors(path: str | Path, n: int) -> np.ndarray:
    """The ``[n, dim]`` corpus vectors saved beside the index at ``path``."""
    try:
        vectors = np.load(Path(path) / VECTORS, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ModelError(f"{Path(path) / VECTORS}: unreadable ({e}); rebuild with "
                         "`snsrec index build RUN_DIR`") from None
    if vectors.ndim != 2 or len(vectors) != n:
        raise ModelError(f"{Path(path) / VECTORS}: {vectors.shape} vectors for a corpus of "
                         f"{n:,} notes; rebuild with `snsrec index build RUN_DIR`")
    return vectors
