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
from snsrec.data.sequences import NOTE, QUERY, BehaviourLog, Corpus, SequenceConfig
from snsrec.errors import DataError, ModelError


def user_rows(behaviours: dict[str, list], corpus: Corpus, user_id: int, now: int,
              sequence: SequenceConfig, target: str) -> tuple[dict[str, np.ndarray], int]:
    """``([1, L]`` history arrays + ``target_scenario`` + ``query_ts``, behaviours left out)."""
    from snsrec.train.retrieval import history_arrays

    if target not in SCENARIOS:
        raise DataError(f"scenario {target!r}: use one of {', '.join(SCENARIOS)}")
    clicks = behaviours.get("clicks", [])
    queries = behaviours.get("queries", [])
    notes = np.asarray([c[0] for c in clicks], np.int64)
    pos = np.searchsorted(corpus.note_ids, notes)
    known = (pos < len(corpus.note_ids)) & \
        (corpus.note_ids[np.minimum(pos, len(corpus.note_ids) - 1)] == notes)
    query_row = {q: i for i, q in enumerate(corpus.queries)}
    q_rows = np.asarray([query_row.get(q, -1) for q, _ in queries], np.int64)
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
        saved = run_dir / f"index-{index_kind}"
        self.index = RunIndex.load(saved) if (saved / "index.faiss").is_file() \
            else build_run_index(run_dir, index_kind)["index"]
        with torch.no_grad():
            self.vectors = corpus_vectors(self.model, len(self.corpus)).numpy()

    def rows(self, behaviours: dict[str, list], user_id: int, now: int, target: str
             ) -> tuple[dict[str, np.ndarray], int]:
        return user_rows(behaviours, self.corpus, user_id, now, self.sequence, target)

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
        scores, ids = self.index.search_interests(interests, k + len(exclude))
        keep = [(s, i) for s, i in zip(scores.tolist(), ids.tolist(), strict=True)
                if i not in exclude][:k]
        if not keep:
            return []
        pos = np.searchsorted(self.corpus.note_ids, [i for _, i in keep])
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
