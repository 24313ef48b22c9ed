"""Metrics against scikit-learn and hand-computed cases (ties, single-class groups)."""

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from snsrec.eval.metrics import (
    METRICS,
    auc,
    blended_ranks,
    calibration,
    ctr_metrics,
    gauc,
    hit_rate_at_k,
    logloss,
    mrr,
    ndcg_at_k,
    per_group,
    rank_of_targets,
)


@pytest.mark.parametrize("levels", [None, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed, levels):
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.random(n) < 0.2
    p = rng.random(n) * 0.5 + 0.3 * y
    if levels is not None:  # heavy ties: only a few distinct scores
        p = np.round(p * levels) / levels
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_hand_cases():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert auc([1, 0], [0.9, 0.1]) == 1.0
    assert math.isnan(auc([1, 1, 1], [0.1, 0.2, 0.3]))     # one class: undefined
    assert math.isnan(auc([], []))


def test_logloss_matches_sklearn():
    rng = np.random.default_rng(3)
    y = (rng.random(1000) < 0.3).astype(int)
    p = rng.uniform(0.01, 0.99, 1000)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert logloss([1, 0], [1.0, 0.0], eps=1e-7) == pytest.approx(-math.log(1 - 1e-7))


def test_gauc_weights_groups_and_skips_single_class():
    y = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1, 1])
    p = np.array([.9, .1, .2, .3, .8, .7, .5, .4, .6, .6])
    g = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    # group 0: pos .9 vs .1,.2 -> 1.0 (3 rows); group 1: pos .3,.8 vs .7 -> 0.5 (3 rows);
    # group 2 all negative and group 3 all positive are skipped.
    assert gauc(y, p, g) == pytest.approx((1.0 * 3 + 0.5 * 3) / 6)
    rng = np.random.default_rng(5)
    g = rng.integers(0, 40, 3000)
    y = rng.random(3000) < 0.3
    p = np.round(rng.random(3000) + 0.2 * y, 1)
    want_num = want_den = 0.0
    for k in np.unique(g):
        m = g == k
        if 0 < y[m].sum() < m.sum():
            want_num += roc_auc_score(y[m], p[m]) * m.sum()
            want_den += m.sum()
    assert gauc(y, p, g) == pytest.approx(want_num / want_den, abs=1e-12)
    assert math.isnan(gauc([1, 0], [0.2, 0.3], [0, 1]))  # no group has both classes


def test_calibration():
    assert calibration([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(2.0)
    assert math.isnan(calibration([0, 0], [0.1, 0.2]))


def test_rank_of_targets_ties():
    scores = np.array([[0.9, 0.5, 0.5, 0.1],
                       [0.2, 0.2, 0.2, 0.2],
                       [0.1, 0.2, 0.3, 0.4]])
    target = np.array([1, 0, 3])
    np.testing.assert_array_equal(rank_of_targets(scores, target), [2, 3, 0])
    np.testing.assert_array_equal(rank_of_targets(scores, target, ties="average"), [1.5, 1.5, 0])


def test_rank_of_targets_shared_scores_match_the_matrix_form():
    rng = np.random.default_rng(9)
    scores = np.round(rng.random(300), 1)          # many ties
    target = rng.integers(0, 300, 40)
    for ties in ("pessimistic", "average"):
        want = rank_of_targets(np.tile(scores, (40, 1)), target, ties=ties)
        np.testing.assert_array_equal(rank_of_targets(scores, target, ties=ties), want)


def _merged(scores, fresh, every):
    """The blended list built the slow way: walk the places, take from each channel."""
    order = np.argsort(-scores, kind="stable")
    live = order[np.isfinite(scores[order])]
    f, r = [i for i in live if fresh[i]], [i for i in live if not fresh[i]]
    out = []
    while f or r:
        take_fresh = (len(out) + 1) % every == 0 and f or not r
        out.append((f if take_fresh else r).pop(0))
    return out


@pytest.mark.parametrize("every", [2, 3, 10])
def test_blended_ranks_match_the_merged_list(every):
    rng = np.random.default_rng(every)
    n, q = 60, 40
    scores = rng.permutation(n * q).reshape(q, n).astype(float)   # no ties
    fresh = rng.random(n) < 0.2
    scores[:5, np.flatnonzero(fresh)[1:]] = -np.inf     # rows whose fresh notes run out
    scores[5:8, :] = np.where(fresh, scores[5:8], -np.inf)   # rows with fresh notes only
    target = np.array([rng.choice(np.flatnonzero(np.isfinite(row))) for row in scores])
    got = blended_ranks(scores, target, fresh, every)
    want = [_merged(row, fresh, every).index(t) for row, t in zip(scores, target, strict=True)]
    assert got.tolist() == want
    with pytest.raises(ValueError, match="at least 2"):
        blended_ranks(scores, target, fresh, 1)


def test_ranking_metrics_hand_cases():
    ranks = np.array([0, 1, 4, 20])
    assert hit_rate_at_k(ranks, 1) == 0.25
    assert hit_rate_at_k(ranks, 5) == 0.75
    assert ndcg_at_k(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    assert ndcg_at_k(ranks, 1) == pytest.approx(0.25)
    assert ndcg_at_k(np.array([0]), 10) == 1.0
    assert mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 21) / 4)


def test_per_group_and_registry():
    y = np.array([1, 0, 1, 0, 1, 1])
    p = np.array([.9, .1, .2, .8, .5, .6])
    codes = np.array([0, 0, 1, 1, 3, 3])
    out = per_group(auc, y, p, codes, ("feed", "search", "discover", "ads"))
    assert list(out) == ["feed", "search", "ads"]
    assert out["feed"] == 1.0 and out["search"] == 0.0 and math.isnan(out["ads"])
    users = np.array([7, 7, 8, 8, 9, 9])
    by = per_group(gauc, y, p, codes, None, extra={"groups": users})
    assert by["0"] == 1.0
    assert set(METRICS) >= {"auc", "logloss", "calibration"}
    m = ctr_metrics(y, p, users=users)
    assert m["n"] == 6 and m["ctr"] == pytest.approx(4 / 6) and "gauc" in m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_auc_is_the_pair_weighted_brute_force_and_auc_on_hard_labels(seed):
    from snsrec.eval.metrics import soft_auc

    rng = np.random.default_rng(seed)
    n = 40
    q = rng.random(n)
    p = rng.integers(0, 6, n).astype(float)                 # many ties
    num = den = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                w = q[i] * (1 - q[j])
                den += w
                num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert soft_auc(q, p) == pytest.approx(num / den, rel=1e-12)
    y = (rng.random(n) < 0.3).astype(float)
    assert soft_auc(y, p) == pytest.approx(auc(y, p), rel=1e-12)
    assert np.isnan(soft_auc(np.ones(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="differ"):
        soft_auc(q, p[:-1])


def test_binary_prf_matches_sklearn_and_empty_cases():
    from sklearn.metrics import f1_score, precision_score, recall_score

    from snsrec.eval.metrics import binary_prf

    rng = np.random.default_rng(0)
    pred, truth = rng.random(200) < 0.3, rng.random(200) < 0.2
    got = binary_prf(pred, truth)
    assert got == pytest.approx((precision_score(truth, pred), recall_score(truth, pred),
                                 f1_score(truth, pred)))
    assert binary_prf([False, False], [True, False]) == (0.0, 0.0, 0.0)
    assert binary_prf([True, False], [True, False]) == (1.0, 1.0, 1.0)


def test_paired_difference_reads_ahead_only_when_the_interval_excludes_zero():
    from scipy import stats

    from snsrec.eval.metrics import paired_difference

    a, b = [0.75, 0.76, 0.74], [0.73, 0.745, 0.72]           # a ahead on every seed
    d = paired_difference(a, b)
    t = stats.t.ppf(0.975, 2) * np.std(np.subtract(a, b), ddof=1) / np.sqrt(3)
    assert d["mean"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert (d["lo"], d["hi"]) == pytest.approx((d["mean"] - t, d["mean"] + t))
    assert d["reading"] == "a" and d["n"] == 3
    assert paired_difference(b, a)["reading"] == "b"
    assert paired_difference(a, b, higher_is_better=False)["reading"] == "b"   # logloss
    # Means apart but the seeds disagree: a tie.
    assert paired_difference([0.75, 0.70, 0.76], [0.72, 0.74, 0.73])["reading"] == "tie"
    same = paired_difference(a, a)
    assert (same["lo"], same["hi"], same["reading"]) == (0.0, 0.0, "tie")
    assert paired_difference([0.8], [0.7])["reading"] == "one run"
    with pytest.raises(ValueError):
        paired_difference([0.8, 0.7], [0.7])


def test_every_named_metric_has_a_direction():
    from snsrec.eval.metrics import higher_is_better, is_metric

    assert not higher_is_better("logloss") and higher_is_better("auc")
    assert higher_is_better("hr@100") and higher_is_better("ndcg@10") and is_metric("recall@5")
    for bad in ("hr@0", "accuracy", "calibration"):     # calibration's best is 1, not an end
        assert not is_metric(bad)
        with pytest.raises(ValueError, match="not a metric; use auc"):
            higher_is_better(bad)
