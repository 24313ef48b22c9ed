"""`snsrec bench index --items N`: the ANN index kinds on N item vectors.

Items are ``dim``-d unit vectors drawn around ``clusters`` random centres (a
mixture on the sphere: item embeddings group by topic, and a structureless
Gaussian cloud would be an unrealistically hard case); a user is ``K``
interest vectors drawn the same way. For each kind (flat = exact, HNSW,
IVF-PQ): build time, index size (its serialised bytes), process peak RSS,
p50 / p99 latency of one user's multi-interest look-up (K searches, the 0.98
merge, the union by best score) and recall@k of that union against the exact
one (flat, in the same run). Target (RED-Rec issue): HNSW recall@100 ≥ 0.95
with p99 ≤ 5 ms per user on this machine.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snsrec.bench.peers import peak_rss_gb
from snsrec.errors import ConfigError
from snsrec.index.ann import KINDS, AnnIndex
from snsrec.io import out_dir
from snsrec.progress import Progress, echo
from snsrec.records import write_record

TARGET = {"kind": "hnsw", "recall": 0.95, "p99_ms": 5.0}


def mixture(n: int, dim: int, centres: np.ndarray, spread: float, rng: np.random.Generator
            ) -> np.ndarray:
    """``n`` unit vectors around random ``centres`` (Gaussian noise of ``spread`` per axis)."""
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, spread, (n, dim))
    x = x.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def bench_index(out: Path, *, items: int = 1_000_000, dim: int = 64, users: int = 200,
                interests: int = 3, k: int = 100, clusters: int = 1000, spread: float = 0.08,
                kinds: Sequence[str] = KINDS, seed: int = 0,
                force: bool = False) -> dict[str, Any]:
    started = time.time()
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"bench index: kind '{kind}'; use {', '.join(KINDS)}")
    if items < max(k, 300) or users < 1 or interests < 1 or dim < 8 or dim % 8:
        raise ConfigError(f"bench index: items ({items}) >= max(k, 300), users and interests "
                          f">= 1, dim ({dim}) a multiple of 8")
    out = out_dir(out, "bench index", force=force, legacy=["index.json"])
    import faiss

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, dim)) / np.sqrt(dim)
    t0 = time.perf_counter()
    vectors = mixture(items, dim, centres, spread, rng)
    queries = mixture(users * interests, dim, centres, spread, rng).reshape(users, interests,
                                                                           dim)
    ids = np.arange(items, dtype=np.int64)
    echo(f"bench index: {items:,} items x {dim}-d drawn in {time.perf_counter() - t0:.1f} s")
    results, exact = [], None
    for kind in ["flat", *[x for x in kinds if x != "flat"]]:
        t0 = time.perf_counter()
        index = AnnIndex(dim, kind, pq_m=dim // 4).build(ids, vectors)
        build_s = time.perf_counter() - t0
        size = int(faiss.serialize_index(index._index).nbytes)
        lat, found = [], []
        with Progress(f"{kind}: users", total=users, unit="users") as bar:
            for u in range(users):
                t = time.perf_counter()
                _, got = index.search_interests(queries[u], k)
                lat.append(time.perf_counter() - t)
                found.append(got)
                bar.update()
        if kind == "flat":
            exact = found
        recall = float(np.mean([len(set(f.tolist()) & set(e.tolist())) / max(len(e), 1)
                                for f, e in zip(found, exact, strict=True)]))
        row = {"kind": kind, "build_s": build_s, "index_mb": size / 1024 ** 2,
               "peak_rss_gb": peak_rss_gb(), "p50_ms": float(np.percentile(lat, 50) * 1e3),
               "p99_ms": float(np.percentile(lat, 99) * 1e3), f"recall@{k}": recall,
               "params": index.params}
        if kind in kinds:
            results.append(row)
        del index
    target = next((r for r in results if r["kind"] == TARGET["kind"]), None)
    verdict = None if target is None else bool(
        target[f"recall@{k}"] >= TARGET["recall"] and target["p99_ms"] <= TARGET["p99_ms"])
    res = {"benchmark": "index", "items": items, "dim": dim, "users": users,
           "interests": interests, "k": k, "clusters": clusters, "spread": spread,
           "threads": faiss.omp_get_max_threads(), "results": results, "meets_target": verdict}
    command = shlex.join(["snsrec", "bench", "index", "--items", str(items), "--dim", str(dim),
                          "--users", str(users), "--interests", str(interests), "--kinds",
                          ",".join(kinds), "--out", str(out)])
    res, md = write_record(out, "index", res, _markdown, default_command=command,
                           started=started, seeds=[seed])
    return {**res, "markdown": md}


def _markdown(res: dict[str, Any]) -> str:
    k = res["k"]
    lines = ["# ANN index", "",
             f"{res['items']:,} items, {res['dim']}-d unit vectors around {res['clusters']} "
             f"centres; {res['users']} users x {res['interests']} interests, top {k} of the "
             f"union; {res['threads']} FAISS threads.", "",
             f"| kind | build s | index MB | peak RSS GB | p50 ms/user | p99 ms/user | "
             f"recall@{k} |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["results"]:
        lines.append(f"| {r['kind']} | {r['build_s']:.1f} | {r['index_mb']:.0f} | "
                     f"{r['peak_rss_gb']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r[f'recall@{k}']:.3f} |")
    if res["meets_target"] is not None:
        lines += ["", f"Target: HNSW recall@{k} >= {TARGET['recall']} with p99 <= "
                  f"{TARGET['p99_ms']} ms per user: "
                  f"{'met' if res['meets_target'] else 'MISSED'}."]
    return "\n".join(lines) + "\n"
