"""Constant-answer baselines on a hand-made suite, the informative-task rule and the paired
bootstrap of a difference between two variants."""

import json

import numpy as np
import pytest

from snsrec.llm.compare import (
    best_constant,
    constant_baselines,
    informative,
    item_bootstrap_difference,
    majority_label,
)
from snsrec.llm.scoring import SCORERS, score_task


def _suite(root, split, task, answers):
    (root / split).mkdir(parents=True, exist_ok=True)
    items = [{"content": f"item {i}", "answer": a} for i, a in enumerate(answers)]
    (root / split / f"{task}.json").write_text(json.dumps(items))


@pytest.fixture
def suite(tmp_path):
    _suite(tmp_path, "test", "Note-Gender", ["Yes", "Yes", "Yes", "No", "Yes"])
    _suite(tmp_path, "train", "Note-Gender", ["No", "No", "Yes"])
    _suite(tmp_path, "test", "Note-CHLW", ["[]", "[]", "['A']"])
    _suite(tmp_path, "train", "Note-CHLW", ["['B']", "[]", "['B']"])
    _suite(tmp_path, "test", "Note-QueryCorr-topic", ["3", "3", "3", "0"])
    _suite(tmp_path, "train", "Note-QueryCorr-topic", ["0", "1", "0", "3"])
    return tmp_path


def test_the_best_constant_answer_and_the_majority_label(suite):
    got = constant_baselines(suite, ["Note-Gender", "Note-CHLW", "Note-QueryCorr-topic"],
                             limit=4)
    best, major = got["best-constant"], got["majority-label"]
    # Gender, first 4 test items (the evaluation's limit): Yes ×3, No ×1 → "Yes" 75; the
    # training split's majority "No" 25.
    assert best["Note-Gender"] == {"answer": "Yes", "score": 75.0}
    assert major["Note-Gender"] == {"answer": "No", "score": 25.0}
    # CHLW: [] is [""] (SNS-Bench): [] to every item → TP 2, predicted 3, gold 3 (the
    # third item's "A"); ['A'] to every item → TP 1.
    assert best["Note-CHLW"]["answer"] == "[]"
    assert best["Note-CHLW"]["score"] == pytest.approx(100 * 2 * 2 / (3 + 3 + 1e-4))
    assert major["Note-CHLW"] == {"answer": "['B']", "score": 0.0}
    # QueryCorr-topic, macro F1 over five levels: "3" to every item → level 3 precision
    # 3/4, recall 1, the other levels 0; "0" → level 0 precision 1/4, recall 1.
    f1_3 = 2 * 75 * 100 / (75 + 100)
    assert best["Note-QueryCorr-topic"]["answer"] == "3"
    assert best["Note-QueryCorr-topic"]["score"] == pytest.approx(f1_3 / 5, rel=1e-4)
    assert major["Note-QueryCorr-topic"]["answer"] == "0"
    assert major["Note-QueryCorr-topic"]["score"] == pytest.approx(2 * 25 * 100 / 125 / 5,
                                                                   rel=1e-4)
    for task in best:
        assert best[task]["score"] >= major[task]["score"]


def test_candidates_include_listed_labels_and_the_majority_label():
    # Hashtag-multiple (micro F1): the tag every item has beats every item's own tags —
    # "x" → TP 4, predicted 4, gold 8; "x, a" → TP 5, predicted 8, gold 8.
    tags = [{"answer": f"x, {t}"} for t in "abcd"]
    x = pytest.approx(100 * 2 * 4 / (4 + 8 + 1e-4))
    assert best_constant("Note-Hashtag-multiple", tags)["answer"] == "x, a"
    assert best_constant("Note-Hashtag-multiple", tags, also=["x"]) == {"answer": "x",
                                                                         "score": x}
    listed = [{**it, "candidates": "a, b, c, d, x"} for it in tags]
    assert best_constant("Note-Hashtag-multiple", listed) == {"answer": "x", "score": x}
    # Among equals the first candidate wins: the empty answer, the labels, the gold ones.
    items = [{"answer": "a"}, {"answer": "b"}]
    assert best_constant("Note-Taxonomy-single", items) == {"answer": "a", "score": 50.0}
    assert majority_label([{"answer": ["p"]}, {"answer": []}, {"answer": ["p"]}]) == "['p']"


def test_a_task_counts_as_informative_only_above_the_best_constant():
    best = {"A": {"score": 52.9}, "B": {"score": 50.0}, "C": {"score": 0.0}}
    assert informative({"A": 52.9, "B": 50.1, "C": 0.0}, best) == ["B"]
    assert informative({"A": 60.0, "B": 40.0, "C": 3.0}, best) == ["A", "C"]


def _gender(n_right: int, n: int = 20) -> tuple[list[str], list[str]]:
    gold = ["Yes" if i % 3 else "No" for i in range(n)]
    flip = {"Yes": "No", "No": "Yes"}
    return [g if i < n_right else flip[g] for i, g in enumerate(gold)], gold


def test_an_identical_pair_differs_by_exactly_zero():
    out, gold = _gender(12)
    topic = ["3", "0", "2", "3", "-1", "1"]
    answers = {"Note-Gender": gold, "Note-QueryCorr-topic": ["3", "0", "1", "3", "-1", "2"]}
    a = {"Note-Gender": out, "Note-QueryCorr-topic": topic}
    d = item_bootstrap_difference(a, dict(a), answers, replicates=2000)
    assert d == {"difference": 0.0, "low": 0.0, "high": 0.0, "tie": True}


def test_a_variant_right_where_the_other_is_wrong_is_better_beyond_the_interval():
    right, gold = _gender(20)
    half, _ = _gender(10)
    answers = {"Note-Gender": gold, "Note-QueryCorr-topic": ["3", "0", "1", "3"]}
    a = {"Note-Gender": right, "Note-QueryCorr-topic": ["3", "0", "1", "3"]}
    b = {"Note-Gender": half, "Note-QueryCorr-topic": ["3", "0", "1", "3"]}
    d = item_bootstrap_difference(a, b, answers, replicates=2000, seed=1)
    # Gender 100 vs 50, topic equal: the average over the two tasks differs by 25.
    assert d["difference"] == pytest.approx(25.0)
    assert 0 < d["low"] < 25.0 < d["high"] <= 50.0 and not d["tie"]
    # The other way round, the interval is the mirror image (same seed, same resamples).
    back = item_bootstrap_difference(b, a, answers, replicates=2000, seed=1)
    assert (back["low"], back["high"]) == pytest.approx((-d["high"], -d["low"]))
    # Items where both are right or both wrong in equal measure: a tie.
    c = {"Note-Gender": _gender(10)[0][::-1], "Note-QueryCorr-topic": a["Note-QueryCorr-topic"]}
    assert item_bootstrap_difference(c, b, answers, replicates=2000)["tie"]


def test_a_one_item_task_counts_without_resampling():
    answers = {"Note-Gender": ["Yes"], "Note-QueryCorr-explain": ["Yes", "No", "Yes"]}
    a = {"Note-Gender": ["Yes"], "Note-QueryCorr-explain": ["Yes", "No", "Yes"]}
    b = {"Note-Gender": ["No"], "Note-QueryCorr-explain": ["Yes", "No", "Yes"]}
    assert item_bootstrap_difference(a, b, answers, replicates=1000) == \
        {"difference": 50.0, "low": 50.0, "high": 50.0, "tie": False}


@pytest.mark.parametrize("task", sorted(set(SCORERS) - {"Note-QueryGen"}))
def test_a_resample_is_scored_like_its_items(task):
    """The bootstrap sums a resample's per-item counts: that is the metric of the
    resampled items (duplicates and all), corpus-level F1 included."""
    outputs = ["[]", "['A']", "3", "Yes", "none", "a, b", "<Result>[]</Result>", "x | y | z",
               "['A', 'B']", "-1", "b"]
    answers = ["['A']", "[]", "3", "No", "scam", "a", '<Result>[{"Option": "b", '
               '"Reason": "r"}]</Result>', "x | y | z", "['A', 'B']", "0", "b"]
    items = [{"answer": a} for a in answers]
    metric = SCORERS[task]
    stats = metric.stats(outputs, items)
    rng = np.random.default_rng(0)
    for _ in range(5):
        idx = rng.integers(0, len(items), len(items))
        want = score_task(task, [outputs[i] for i in idx], [items[i] for i in idx])
        got = metric.total(stats[idx].sum(axis=0), len(idx))
        assert {k: float(v) for k, v in got.items()} == pytest.approx(want, nan_ok=True)
