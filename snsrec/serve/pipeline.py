"""The serving pipeline: a user's stored behaviour → the retrieval run's user tower → …

Built up in slices. ``user_rows`` turns what the store keeps for one user
(``Store.behaviours``) into the user tower's inputs exactly as training built
them (``snsrec.train.retrieval.history_arrays`` over a one-user
``BehaviourLog``), so a served user looks to the model as a training sample did.
Clicks on notes outside the run's corpus (posted after its training) and
searches for queries outside its query vocabulary are not tokens the run can
read; they are left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import (
    NOTE,
    QUERY,
    BehaviourLog,
    Corpus,
    SequenceConfig,
    rows_in,
)
from snsrec.errors import DataError, ModelError


def query_rows(corpus: Corpus) -> dict[str, int]:
    """Query text → its row in the run's query vocabulary."""
    return {q: i for i, q in enumerate(corpus.queries)}


def user_rows(behaviours: dict[str, list], corpus: Corpus, user_id: int, now: int,
              sequence: SequenceConfig, target: str, queries_index: dict[str, int] | None = None
              ) -> tuple[dict[str, np.ndarray], int]:
    """``([1, L]`` history arrays + ``target_scenario`` + ``query_ts``, behaviours left out).

    ``queries_index`` (``query_rows(corpus)``) is built once by a server, not per request."""
    from snsrec.train.retrieval import history_arrays

    if target not in SCENARIOS:
        raise DataError(f"scenario {target!r}: use one of {', '.join(SCENARIOS)}")
    clicks = behaviours.get("clicks", [])
    queries = behaviours.get("queries", [])
    pos, known = rows_in(corpus.note_ids, [c[0] for c in clicks])
    index = queries_index if queries_index is not None else query_rows(corpus)
    q_rows = np.asarray([index.get(q, -1) for q, _ in queries], np.int64)
    q_known = q_rows >= 0
    scen = {s: i for i, s in enumerate(SCENARIOS)}
    cols = {
        "ts": [np.asarray([c[2] for c in clicks], np.int64)[known],
               np.asarray([t for _, t in queries], np.int64)[q_known]],
        "scenario": [np.asarray([scen[c[1]] for c in clicks], np.int8)[known],
                     np.full(int(q_known.sum()), scen["search"], np.int8)],
        "kind": [np.full(int(known.sum()), NOTE, np.int8),
                 np.full(int(q_known.sum()), QUERY, np.int8)],
        "item": [pos[known], q_rows[q_known]]}
    merged = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}
    # As BehaviourLog.from_tables orders a user's rows: by time, a query before its clicks.
    order = np.lexsort((-merged["kind"], merged["ts"]))
    n = len(order)
    log = BehaviourLog(np.full(n, user_id, np.int64), merged["ts"][order],
                       merged["scenario"][order], merged["kind"][order],
                       merged["item"][order].astype(np.int64), np.zeros(n, bool),
                       corpus.note_ids, corpus.queries)
    rows = history_arrays(log, np.array([user_id]), np.array([now]), sequence)
    rows.update(target_scenario=np.array([SCENARIOS.index(target)], np.int8),
                query_ts=np.array([now], np.int64))
    return rows, int((~known).sum() + (~q_known).sum())



class Retriever:
    """A retrieval run served: its user tower, its corpus and its ANN index.

    ``retrieve`` turns a user's rows (``user_rows``) into the run's K interest
    vectors and asks the index for the top notes of their union (the run's
    fresh-note channel included), dropping ``exclude`` (already seen, taken
    down); each candidate carries the interest that scores it highest — the
    "why" a response shows.
    """

    def __init__(self, run_dir: str | Path, index_kind: str = "hnsw"):
        import torch

        from snsrec.eval.protocols import corpus_vectors
        from snsrec.index.build import RunIndex, build_run_index
        from snsrec.train.pipeline import RunConfig
        from snsrec.train.trainer import load_run

        run_dir = Path(run_dir)
        run = load_run(run_dir)
        if not isinstance(run.feature_map, Corpus) or not hasattr(run.model, "user_vectors"):
            raise ModelError(f"{run_dir}: not a retrieval run with a user tower (e.g. redrec); "
                             "serve a `snsrec train` run of model.name: redrec")
        self.run_dir, self.model, self.corpus = run_dir, run.model.eval(), run.feature_map
        self.sequence = RunConfig.model_validate(run.config).retrieval.sequence
        self.queries_index = query_rows(self.corpus)
        saved = run_dir / f"index-{index_kind}"
        self.index = RunIndex.load(saved) if (saved / "index.faiss").is_file() \
            else build_run_index(run_dir, index_kind)["index"]
        with torch.no_grad():
            self.vectors = corpus_vectors(self.model, len(self.corpus)).numpy()

    def rows(self, behaviours: dict[str, list], user_id: int, now: int, target: str
             ) -> tuple[dict[str, np.ndarray], int]:
        return user_rows(behaviours, self.corpus, user_id, now, self.sequence, target,
                         self.queries_index)

    def interests(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        from snsrec.data.batches import to_tensors

        with torch.no_grad():
            return self.model.user_vectors(to_tensors(rows, "cpu"))[0].numpy()

    def retrieve(self, rows: dict[str, np.ndarray], k: int, exclude: set[int] | None = None
                 ) -> list[dict[str, Any]]:
        """Up to ``k`` candidates: ``{"note_id", "score", "interest"}``, best first."""
        interests = self.interests(rows)
        exclude = exclude or set()
        # A heavy user has seen thousands of notes: ask for a few more than k and widen only
        # when the excluded ones leave too few (a search of k + |seen| would be slow).
        fetch, total = 2 * k, len(self.index)
        while True:
            scores, ids = self.index.search_interests(interests, min(fetch, total))
            keep = [(s, i) for s, i in zip(scores.tolist(), ids.tolist(), strict=True)
                    if i not in exclude][:k]
            if len(keep) == k or fetch >= total:
                break
            fetch *= 4
        if not keep:
            return []
        pos = rows_in(self.corpus.note_ids, [i for _, i in keep])[0]
        which = (self.vectors[pos] @ interests.T).argmax(1)
        return [{"note_id": int(i), "score": float(s), "interest": int(w)}
                for (s, i), w in zip(keep, which.tolist(), strict=True)]


class Ranker:
    """A CTR run served: candidates of one request → click probabilities.

    The request becomes an events-shaped frame (``FeatureMap.transform_request``)
    joined with the run's tables exactly as training rows were, every candidate
    at ``position`` (0 by default: ranked as if shown first, so the learned
    position bias does not decide the order).
    """

    def __init__(self, run_dir: str | Path, tables: Any):
        from snsrec.data.features import FeatureMap
        from snsrec.train.trainer import load_run

        run_dir = Path(run_dir)
        run = load_run(run_dir)
        if not isinstance(run.feature_map, FeatureMap):
            raise ModelError(f"{run_dir}: not a ranking run (it has no feature map); serve a "
                             "`snsrec train` CTR run (e.g. model.name: deepfm) as the ranker")
        self.run_dir, self.model, self.fmap, self.tables = run_dir, run.model.eval(), \
            run.feature_map, tables
        self.name = run.config.get("model", {}).get("name", "?")

    def score(self, user_id: int, note_ids: list[int], scenario: str, ts: int,
              position: int = 0, query: str | None = None) -> np.ndarray:
        import torch

        from snsrec.data.batches import to_tensors
        from snsrec.train.pipeline import model_inputs

        if not note_ids:
            return np.zeros(0)
        inputs = model_inputs(self.fmap.transform_request(self.tables, {
            "user_id": user_id, "note_ids": note_ids, "scenario": scenario, "ts": ts,
            "position": position, "query": query}))
        with torch.no_grad():
            logit = self.model(to_tensors(inputs, "cpu"))["logit"]
        return torch.sigmoid(logit.double()).numpy()


class Moderation:
    """Harmful probabilities of notes (from `snsrec llm moderate` or the n-gram baseline)
    and the serving threshold; a note without a score passes (counted by the caller)."""

    def __init__(self, scores: dict[int, float] | None = None, threshold: float = 0.5):
        if not 0.0 < threshold <= 1.0:
            raise DataError(f"moderation threshold {threshold}: give a probability in (0, 1]")
        self.scores, self.threshold = dict(scores or {}), threshold

    @classmethod
    def from_parquet(cls, path: str | Path, threshold: float = 0.5) -> Moderation:
        """A scores table with ``note_id`` and ``p_harmful`` (`snsrec llm moderate`'s)."""
        import polars as pl

        from snsrec.io import parquet_columns

        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such moderation scores file; write one with "
                            "`snsrec llm moderate`")
        missing = {"note_id", "p_harmful"} - set(parquet_columns(path))
        if missing:
            raise DataError(f"{path}: no column(s) {', '.join(sorted(missing))}; a moderation "
                            "scores table has note_id and p_harmful")
        t = pl.read_parquet(path, columns=["note_id", "p_harmful"])
        return cls(dict(zip(t["note_id"].to_list(), t["p_harmful"].to_list(), strict=True)),
                   threshold)

    def blocked(self, note_id: int) -> bool:
        return self.scores.get(note_id, 0.0) >= self.threshold


def diversify(candidates: list[dict[str, Any]], topic_of: dict[int, str], k: int,
              per_topic: int) -> list[dict[str, Any]]:
    """The best ``k`` of ``candidates`` (already ordered) with at most ``per_topic`` a topic;
    when the cap leaves fewer than ``k``, the capped-out ones fill in, in order."""
    if per_topic < 1:
        raise DataError(f"diversity per_topic {per_topic}: give at least 1")
    taken, spill, count = [], [], {}
    for c in candidates:
        topic = topic_of.get(c["note_id"], "")
        if count.get(topic, 0) < per_topic:
            count[topic] = count.get(topic, 0) + 1
            taken.append(c)
        else:
            spill.append(c)
        if len(taken) == k:
            return taken
    return taken + spill[:k - len(taken)]


class Platform:
    """retrieve → rank → moderate → diversify over a store: what `/v1/feed` serves.

    ``notes`` maps note id → its card (title, hashtags, category, subcategory);
    the topic of the diversity cap is the subcategory.
    """

    def __init__(self, store: Any, retriever: Retriever, ranker: Ranker,
                 moderation: Moderation, notes: dict[int, dict[str, Any]],
                 retrieve_k: int = 200, per_topic: int = 3):
        self.store, self.retriever, self.ranker = store, retriever, ranker
        self.moderation, self.notes = moderation, notes
        self.retrieve_k, self.per_topic = retrieve_k, per_topic

    def feed(self, user_id: int, k: int, now: int, scenario: str = "feed",
             show_filtered: bool = False) -> dict[str, Any]:
        behaviours = self.store.behaviours(user_id, max(self.retriever.sequence.blocks.values()))
        rows, unread = self.retriever.rows(behaviours, user_id, now, scenario)
        exclude = self.store.seen(user_id) | self.store.deleted()
        cands = self.retriever.retrieve(rows, self.retrieve_k, exclude)
        filtered = [c for c in cands if self.moderation.blocked(c["note_id"])]
        cands = [c for c in cands if not self.moderation.blocked(c["note_id"])]
        p = self.ranker.score(user_id, [c["note_id"] for c in cands], scenario, now)
        for c, s in zip(cands, p.tolist(), strict=True):
            c["p_click"] = s
        cands.sort(key=lambda c: -c["p_click"])
        topic = {c["note_id"]: self.notes.get(c["note_id"], {}).get("subcategory", "")
                 for c in cands}
        served = diversify(cands, topic, k, self.per_topic)
        because = self._because(served, behaviours)
        items = [{**self.notes.get(c["note_id"], {"note_id": c["note_id"]}),
                  "score": c["p_click"], "retrieval_score": c["score"],
                  "reason": {"interest": c["interest"], **because.get(c["note_id"], {})}}
                 for c in served]
        out = {"user_id": user_id, "items": items, "retrieved": len(cands) + len(filtered),
               "filtered": len(filtered), "unread_behaviours": unread}
        if show_filtered:
            out["filtered_items"] = [{"note_id": c["note_id"],
                                      "p_harmful": self.moderation.scores.get(c["note_id"])}
                                     for c in filtered]
        return out

    def _because(self, served: list[dict[str, Any]], behaviours: dict[str, list]
                 ) -> dict[int, dict[str, Any]]:
        """Each served note's closest clicked note in the user's history and its scenario."""
        ids = self.retriever.corpus.note_ids
        hist = [(n, s) for n, s, _ in behaviours.get("clicks", [])]
        pos, known = rows_in(ids, [n for n, _ in hist])
        ok = np.flatnonzero(known)
        if not len(ok) or not served:
            return {}
        h = self.retriever.vectors[pos[ok]]
        c = self.retriever.vectors[rows_in(ids, [x["note_id"] for x in served])[0]]
        best = (c @ h.T).argmax(1)
        return {x["note_id"]: {"because_note": hist[ok[b]][0], "because_scenario": hist[ok[b]][1]}
                for x, b in zip(served, best.tolist(), strict=True)}
