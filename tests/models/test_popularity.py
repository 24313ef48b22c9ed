"""Popularity: ranks by (decayed) click count, smoothed CTR as a scorer."""

import numpy as np
import pytest
import torch

from snsrec.errors import ModelError
from snsrec.models.registry import build_model


def _arrays(notes, clicks, ts=None):
    out = {"note_id": np.asarray(notes, dtype=np.int64),
           "click": np.asarray(clicks, dtype=np.float32)}
    if ts is not None:
        out["_ts"] = np.asarray(ts, dtype=np.int64)
    return out


def test_ranks_by_click_count(toy):
    # note 4: 3 clicks, note 2: 2 clicks, note 3: 1 click, note 5: shown, never clicked
    a = _arrays([4, 4, 4, 2, 2, 3, 5, 5, 5, 5, 3], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    pop = build_model("popularity", toy.ToyFeatureMap()).fit(a)
    assert pop.retrieve(3).tolist() == [4, 2, 3]
    scores = pop.item_scores()
    assert scores[0] == 0 and scores[1] == 0        # pad and OOV never outrank real notes


def test_ctr_scorer_is_smoothed_towards_the_prior(toy):
    a = _arrays([2] * 10 + [3] * 10, [1] * 9 + [0] + [0] * 10)
    pop = build_model("popularity", toy.ToyFeatureMap(), prior_strength=10.0).fit(a)
    assert float(pop.prior) == pytest.approx(0.45)
    p = torch.sigmoid(pop({"note_id": torch.tensor([2, 3, 7])})["logit"]).numpy()
    np.testing.assert_allclose(p, [(9 + 4.5) / 20, 4.5 / 20, 0.45], rtol=1e-5)


def test_time_decay_prefers_recent_clicks(toy):
    day = 86_400
    # note 2: two old clicks (10 days ago); note 3: one click today
    a = _arrays([2, 2, 3], [1, 1, 1], ts=[0, 0, 10 * day])
    plain = build_model("popularity", toy.ToyFeatureMap()).fit(a)
    decayed = build_model("popularity", toy.ToyFeatureMap(), half_life_days=2.0).fit(a)
    assert plain.retrieve(1).tolist() == [2]
    assert decayed.retrieve(1).tolist() == [3]
    assert float(decayed.clicks[2]) == pytest.approx(2 * 0.5 ** 5)


def test_bad_input(toy):
    with pytest.raises(ModelError, match="item field 'item'"):
        build_model("popularity", toy.ToyFeatureMap(), item_field="item")
    pop = build_model("popularity", toy.ToyFeatureMap(), half_life_days=1.0)
    with pytest.raises(ModelError, match="needs the '_ts' meta array"):
        pop.fit(_arrays([2], [1]))
    with pytest.raises(ModelError, match="ids outside"):
        build_model("popularity", toy.ToyFeatureMap()).fit(_arrays([999], [1]))
