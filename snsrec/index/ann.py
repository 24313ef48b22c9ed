"""Approximate nearest-neighbour search over item vectors, on FAISS.

``AnnIndex(dim, kind)`` with ``kind``:

- ``flat``: exact inner-product search (``IndexFlatIP``), the reference;
- ``hnsw``: a graph index (``IndexHNSWFlat``, M links per node; ``ef_search``
  trades recall for speed at query time);
- ``ivfpq``: inverted lists over ``nlist`` k-means cells with product-quantised
  codes (``pq_m`` sub-vectors of ``nbits`` bits; ``nprobe`` cells searched):
  the compact one for millions of items. Needs training vectors (``build``).

Vectors are unit length (cosine = inner product). Ids are int64 and are the
caller's (corpus rows or note ids): every index sits in an ``IndexIDMap2``.
``remove`` deletes ids from flat and IVF-PQ indexes; HNSW graphs cannot drop
nodes, so removed ids are kept as tombstones and filtered out of every result
(the search over-fetches by their number) until the next ``build``.

``search_interests`` is RED-Rec's multi-interest look-up: a user's K interest
vectors, those closer than ``merge`` (cos 0.98) to an earlier one dropped,
each searched for its top k, the results united by id with the best score.
``save`` / ``load`` write ``index.faiss`` and ``index.json`` (no pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snsrec.errors import ModelError
from snsrec.io import atomic_dir, read_json, settle, write_json

KINDS = ("flat", "hnsw", "ivfpq")
FORMAT = "snsrec.ann"


def _faiss() -> Any:
    import faiss

    return faiss


SMALL_BATCH = 64        # queries below which one OpenMP thread answers faster


def _few_threads_search(index: Any, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``; a handful of queries (one user's interests) on one thread.

    Measured (`snsrec bench index`, 20k items, 2 cores busy with other work): one
    user's three HNSW look-ups took 22 ms with FAISS's two OpenMP threads and
    0.7 ms with one — the threads' start and barrier cost dwarfs the search.
    """
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    if len(q) >= SMALL_BATCH or threads == 1:
        return index.search(q, k)
    faiss.omp_set_num_threads(1)
    try:
        return index.search(q, k)
    finally:
        faiss.omp_set_num_threads(threads)


def merge_interests(interests: np.ndarray, threshold: float = 0.98) -> list[int]:
    """Rows of ``interests`` to search: each dropped when its cosine with a kept earlier one
    exceeds ``threshold`` (RED-Rec merges interest vectors closer than 0.98)."""
    keep: list[int] = []
    for i in range(len(interests)):
        if all(float(interests[i] @ interests[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


def _present(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ranked channel's (scores, ids) without its empty places (id -1)."""
    ids = np.asarray(ids, np.int64)
    ok = ids >= 0
    return np.asarray(scores, np.float32)[ok], ids[ok]


def blend(main: tuple[np.ndarray, np.ndarray], fresh: tuple[np.ndarray, np.ndarray],
          every: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One served list of ``k`` from two ranked channels (scores, ids; id -1 = none): places
    ``every - 1``, ``2 * every - 1``, ... from ``fresh``, the others from ``main``; when one
    channel runs out the other fills in (``snsrec.eval.metrics.blended_ranks``'s order)."""
    if every < 2:
        raise ModelError(f"fresh channel: every {every}; give at least 2")
    (ms, mi), (fs, fi) = (_present(*channel) for channel in (main, fresh))
    # The pattern holds until a channel runs out at its place; the other one fills the rest.
    pattern = (np.arange(k) + 1) % every == 0
    short = np.flatnonzero((pattern & (np.cumsum(pattern) > len(fi))) |
                           (~pattern & (np.cumsum(~pattern) > len(mi))))
    cut = int(short[0]) if len(short) else k
    head = pattern[:cut]
    nf = int(head.sum())
    scores, ids = np.empty(cut, np.float32), np.empty(cut, np.int64)
    scores[head], ids[head] = fs[:nf], fi[:nf]
    scores[~head], ids[~head] = ms[:cut - nf], mi[:cut - nf]
    rest_s, rest_i = (ms[cut - nf:], mi[cut - nf:]) if cut < k and pattern[cut] else \
        (fs[nf:], fi[nf:])
    return (np.concatenate([scores, rest_s[:k - cut]]),
            np.concatenate([ids, rest_i[:k - cut]]))


class AnnIndex:
    def __init__(self, dim: int, kind: str = "hnsw", *, hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, nlist: int | None = None,
                 pq_m: int = 16, nbits: int = 8, nprobe: int = 16):
        if kind not in KINDS:
            raise ModelError(f"index kind '{kind}': use one of {', '.join(KINDS)}")
        if dim < 1 or (kind == "ivfpq" and dim % pq_m):
            raise ModelError(f"index: dim {dim} must be >= 1 and, for ivfpq, divisible by "
                             f"pq_m ({pq_m})")
        self.dim, self.kind = dim, kind
        self.params = {"hnsw_m": hnsw_m, "ef_construction": ef_construction,
                       "ef_search": ef_search, "nlist": nlist, "pq_m": pq_m, "nbits": nbits,
                       "nprobe": nprobe}
        self.removed: set[int] = set()
        self._index = None if kind == "ivfpq" else self._new(None)

    # -- construction ---------------------------------------------------------------
    def _new(self, n_train: int | None) -> Any:
        faiss, p = _faiss(), self.params
        ip = faiss.METRIC_INNER_PRODUCT
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        elif self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, p["hnsw_m"], ip)
            inner.hnsw.efConstruction = p["ef_construction"]
            inner.hnsw.efSearch = p["ef_search"]
        else:
            nlist = p["nlist"] or max(1, min(4096, int(4 * np.sqrt(n_train or 1))))
            quantizer = faiss.IndexFlatIP(self.dim)
            inner = faiss.IndexIVFPQ(quantizer, self.dim, nlist, p["pq_m"], p["nbits"], ip)
            inner.nprobe = p["nprobe"]
            self.params["nlist"] = nlist
            self._quantizer = quantizer           # keep it alive beside the index
        return faiss.IndexIDMap2(inner)

    def _check(self, vectors: np.ndarray, what: str) -> np.ndarray:
        v = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ModelError(f"index {what}: vectors of shape {v.shape}, the index is "
                             f"{self.dim}-d; were they made by the run that built it?")
        return v

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> AnnIndex:
        """A fresh index of exactly these items (IVF-PQ trains its cells and codes on them)."""
        v = self._check(vectors, "build")
        self._index = self._new(len(v))
        if self.kind == "ivfpq":
            if len(v) < max(self.params["nlist"], 2 ** self.params["nbits"]):
                raise ModelError(f"ivfpq: {len(v)} training vectors for nlist "
                                 f"{self.params['nlist']} and {2 ** self.params['nbits']} "
                                 "codes per sub-vector; use more items or kind flat / hnsw")
            self._index.train(v)
        self.removed = set()
        return self.add(ids, v)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> AnnIndex:
        if self._index is None:
            raise ModelError("ivfpq: build (train) the index before adding to it")
        v = self._check(vectors, "add")
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(v):
            raise ModelError(f"index add: {len(ids)} ids for {len(v)} vectors")
        if self.kind == "hnsw" and self.removed & set(ids.tolist()):
            raise ModelError("hnsw: an id removed from this index cannot be added back until "
                             "the next build (HNSW graphs keep removed nodes)")
        self._index.add_with_ids(v, ids)
        return self

    def remove(self, ids: np.ndarray) -> int:
        """Drop ``ids``; returns how many were in the index."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind == "hnsw":
            present = self._present(ids)
            self.removed |= set(present.tolist())
            return len(present)
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def ids(self) -> np.ndarray:
        """The ids in the index (removed ones left out)."""
        if self._index is None:
            return np.zeros(0, np.int64)
        held = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
        return held[~np.isin(held, np.fromiter(self.removed, np.int64))] if self.removed \
            else held

    def _present(self, ids: np.ndarray) -> np.ndarray:
        mapped = _faiss().vector_to_array(self._index.id_map)
        return np.intersect1d(mapped, ids)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal) - len(self.removed)

    # -- search -----------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) ``[q, k]``, best first; id -1 / score -inf where fewer than k."""
        q = self._check(queries, "search")
        if self._index is None or len(self) == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        fetch = min(int(self._index.ntotal), k + len(self.removed))
        scores, ids = _few_threads_search(self._index, q, fetch)
        if self.removed:
            gone = np.isin(ids, np.fromiter(self.removed, np.int64))
            scores = np.where(gone, -np.inf, scores)
            order = np.argsort(-scores, axis=1, kind="stable")
            scores, ids = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
            ids = np.where(np.isfinite(scores), ids, -1)
        scores, ids = scores[:, :k], ids[:, :k]
        pad = k - scores.shape[1]
        if pad > 0:
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        return np.where(ids >= 0, scores, -np.inf).astype(np.float32), ids

    def search_interests(self, interests: np.ndarray, k: int, merge: float = 0.98
                         ) -> tuple[np.ndarray, np.ndarray]:
        """One user's K interest vectors ``[K, d]`` → the union of their top k: (scores, ids)."""
        q = self._check(interests, "search")
        scores, ids = self.search(q[merge_interests(q, merge)], k)
        ok = ids.reshape(-1) >= 0
        flat_ids, flat_scores = ids.reshape(-1)[ok], scores.reshape(-1)[ok]
        # Best first (ties by id); each id's first place there is its best score.
        order = np.lexsort((flat_ids, -flat_scores))
        flat_ids, flat_scores = flat_ids[order], flat_scores[order]
        first = np.sort(np.unique(flat_ids, return_index=True)[1])[:k]
        return flat_scores[first].astype(np.float32), flat_ids[first].astype(np.int64)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the index directory (replaced when snsrec wrote it, or with ``force``)."""
        if self._index is None:
            raise ModelError("index: nothing to save; build it first")
        with atomic_dir(path, "index build", force=force, legacy=["index.json"]) as tmp:
            _faiss().write_index(self._index, str(tmp / "index.faiss"))
            write_json(tmp / "index.json", {"format": FORMAT, "dim": self.dim,
                                            "kind": self.kind, "params": self.params,
                                            "removed": sorted(self.removed)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> AnnIndex:
        path = settle(path)         # a replace cut short by a kill: its old copy comes back
        if not (path / "index.json").is_file() or not (path / "index.faiss").is_file():
            raise ModelError(f"{path}: not an index directory (index.json + index.faiss); "
                             "build one with `snsrec index build RUN_DIR`")
        meta = read_json(path / "index.json")
        if meta.get("format") != FORMAT:
            raise ModelError(f"{path / 'index.json'}: not a {FORMAT} index")
        out = cls(int(meta["dim"]), meta["kind"], **meta["params"])
        faiss = _faiss()
        out._index = faiss.read_index(str(path / "index.faiss"))
        out.removed = {int(i) for i in meta["removed"]}
        inner = faiss.downcast_index(out._index.index)        # query-time knobs, re-applied
        if out.kind == "hnsw":
            inner.hnsw.efSearch = out.params["ef_search"]
        elif out.kind == "ivfpq":
            inner.nprobe = out.params["nprobe"]
        if out._index.d != out.dim:
            raise ModelError(f"{path}: index.faiss is {out._index.d}-d but index.json says "
                             f"{out.dim}; rebuild the index")
        return out
