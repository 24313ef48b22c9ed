"""Whether LLM task scores mean something: constant-answer baselines, the average over
the tasks a model answers better than a constant, and paired bootstrap intervals.

- The *best constant answer* of a task is the one fixed answer that scores highest
  on its test items, by the task's own metric (``snsrec.llm.scoring``), among: the
  task's empty answer (``EMPTY``: ``[]`` for Python-list answers), its labels
  (``LABELS``, and every label an item lists as a candidate), every distinct gold
  answer of the test items and the majority label. It is picked on the test items
  themselves, so no constant answer does better there.
- The *majority label* is the commonest gold answer of the training split (the first
  seen among equals), answered to every test item.
- A model's score on a task is *informative* when it beats the best constant answer;
  ``informative`` lists those tasks, and an average over them leaves out the tasks
  where the model's score is a constant answer's (e.g. `[]` to every CHLW item).
- ``item_bootstrap_difference``: the difference of two models' average over tasks, with a
  paired bootstrap interval over items — each task's items resampled on their own, the
  same resample scoring both models, each task's metric recomputed on it from summed
  per-item counts (micro and macro F1 are not means of per-item scores).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from snsrec.errors import DataError
from snsrec.llm.corpus import answer_text, task_items
from snsrec.llm.scoring import LEVELS, SCORERS, score_task

EMPTY = {"Note-CHLW": "[]", "Note-MRC-simple": "[]", "Note-MRC-complex": "<Result>[]</Result>"}
LABELS = {"Note-Gender": ("Yes", "No"), "Note-QueryCorr-explain": ("Yes", "No"),
          "Note-QueryCorr-topic": LEVELS}
REPLICATES = 10_000
CONFIDENCE = 0.95
_NOISE = 1e-9       # a score this close to the best constant answer's does not beat it


def constant_score(task: str, answer: str, items: Sequence[dict[str, Any]]) -> float:
    """The score of answering ``answer`` to every item."""
    return score_task(task, [answer] * len(items), items)["score"]


def best_constant(task: str, items: Sequence[dict[str, Any]], also: Sequence[str] = ()
                  ) -> dict[str, Any]:
    """The fixed answer that scores highest on ``items`` (the first among equals) and its
    score; ``also``: more candidates (the majority label)."""
    listed = [c.strip() for it in items for c in str(it.get("candidates") or "").split(",")]
    candidates = dict.fromkeys([EMPTY.get(task, ""), *LABELS.get(task, ()),
                                *(c for c in listed if c),
                                *(answer_text(it["answer"]) for it in items), *also])
    score, answer = max(((constant_score(task, c, items), c) for c in candidates),
                        key=lambda sc: sc[0])
    return {"answer": answer, "score": score}


def majority_label(items: Sequence[dict[str, Any]]) -> str:
    """The commonest gold answer (as the answer text), the first seen among equals."""
    return Counter(answer_text(it["answer"]) for it in items).most_common(1)[0][0]


def constant_baselines(suite: str | Path, tasks: list[str], limit: int | None
                       ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"best-constant" | "majority-label": {task: {"answer", "score"}}}`` on the first
    ``limit`` test items of each task of ``suite`` (those `snsrec llm eval` scores)."""
    test = task_items(suite, "test", tasks, limit)
    train = task_items(suite, "train", tasks)
    out: dict[str, dict[str, dict[str, Any]]] = {"best-constant": {}, "majority-label": {}}
    for task in tasks:
        if not train[task] or not test[task]:
            raise DataError(f"{suite}: {task} has no train or no test items; a constant "
                            "baseline needs both (rebuild the suite with more items)")
        major = majority_label(train[task])
        out["majority-label"][task] = {"answer": major,
                                       "score": constant_score(task, major, test[task])}
        out["best-constant"][task] = best_constant(task, test[task], [major])
    return out


def informative(scores: dict[str, float], best: dict[str, dict[str, Any]]) -> list[str]:
    """The tasks of ``scores`` where the score beats the best constant answer's."""
    return [t for t, s in scores.items() if s > best[t]["score"] + _NOISE]


def item_bootstrap_difference(a: dict[str, list[str]], b: dict[str, list[str]],
                      answers: dict[str, list[Any]], *, seed: int = 0,
                      replicates: int = REPLICATES) -> dict[str, Any]:
    """A − B in the average score over tasks (``a``, ``b``: each task's outputs, item by
    item; ``answers``: its gold answers), with its bootstrap interval.

    ``scipy.stats.bootstrap`` resamples each task's item indices as one sample of its own
    (``paired=False``: the tasks differ in size, and ``paired=True`` would tie item i of
    one task to item i of the next); the pairing of A and B is in the statistic, which
    scores both on the same resampled items. Percentile interval, ``replicates``
    resamples, a fixed ``seed``. A task of one item is not resampled (scipy needs two;
    its one resample is itself): its difference counts as it is."""
    if not answers:
        raise DataError("item_bootstrap_difference: no tasks to compare")
    parts = []
    for task, gold in answers.items():
        metric, items = SCORERS[task], [{"answer": x} for x in gold]
        parts.append((metric, metric.stats(a[task], items), metric.stats(b[task], items),
                      len(items)))

    def diff(part: tuple[Any, np.ndarray, np.ndarray, int], idx: np.ndarray) -> np.ndarray:
        metric, sa, sb, n = part        # sums over the (resampled) items: [..., k]
        return metric.total(sa[idx].sum(axis=-2), n)["score"] - \
            metric.total(sb[idx].sum(axis=-2), n)["score"]

    fixed = sum(diff(p, np.arange(p[3])) for p in parts if p[3] < 2)
    resampled = [p for p in parts if p[3] >= 2]

    def statistic(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return (fixed + sum(diff(p, i) for p, i in zip(resampled, idx, strict=True))) \
            / len(parts)

    point = float(statistic(*(np.arange(p[3]) for p in resampled)))
    if resampled:
        ci = bootstrap(tuple(np.arange(p[3]) for p in resampled), statistic, paired=False,
                       vectorized=True, n_resamples=replicates, batch=1000,
                       confidence_level=CONFIDENCE, method="percentile",
                       rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    else:
        low = high = point
    return {"difference": point, "low": low, "high": high, "tie": low <= 0.0 <= high}
