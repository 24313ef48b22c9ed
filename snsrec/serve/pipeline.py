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

import numpy as np

from snsrec.data.schema import SCENARIOS
from snsrec.data.sequences import NOTE, QUERY, BehaviourLog, Corpus, SequenceConfig
from snsrec.errors import DataError


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

