"""The counted retrieval baselines (ItemCF, most-popular, category popularity): their numbers
by hand, scores, and a run directory round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snsrec.data.sequences import NOTE, BehaviourLog, Corpus
from snsrec.errors import ModelError
from snsrec.models.registry import build_model


def _corpus(n: int = 4, category: list[str] | None = None,
            subcategory: list[str] | None = None) -> Corpus:
    return Corpus(np.arange(n, dtype=np.int64), [f"n{i}" for i in range(n)],
                  np.zeros(n, np.int64), ["q"], np.zeros(n, np.float32), 50,
                  category, subcategory)


def _log(clicks: list[tuple[int, int, int]]) -> BehaviourLog:
    a = np.array(sorted(clicks), dtype=np.int64)
    n = len(a)
    return BehaviourLog(a[:, 0], a[:, 1], np.zeros(n, np.int8), np.full(n, NOTE, np.int8),
                        a[:, 2], np.zeros(n, bool), np.arange(4, dtype=np.int64), ["q"])


# users 1 and 2 clicked notes 0 and 1; user 3 clicked 0 and 2 (twice); a late click of 3.
LOG = _log([(1, 1, 0), (1, 2, 1), (2, 1, 0), (2, 3, 1), (3, 1, 0), (3, 2, 2), (3, 3, 2),
            (3, 99, 3)])


def test_cosine_of_co_clicks_and_history_scores():
    cf = build_model("itemcf", _corpus()).fit_log(LOG, train_end=50)
    sim = cf._similarity().toarray()
    assert sim[0, 1] == pytest.approx(2 / np.sqrt(3 * 2))
    assert sim[0, 2] == pytest.approx(1 / np.sqrt(3 * 1))
    assert sim[0, 0] == 0 and sim[0, 3] == 0              # no self-similarity; 3 is after the end
    batch = {"hist_kind": torch.tensor([[0, NOTE], [NOTE, NOTE]]),
             "hist_item": torch.tensor([[0, 0], [1, 2]])}
    scores = cf.score_batch(batch).numpy()
    assert scores.shape == (2, 4) and scores[0].argmax() == 1
    assert scores[1, 0] == pytest.approx(sim[1, 0] + sim[2, 0])
    top1 = build_model("itemcf", _corpus(), neighbours=1).fit_log(LOG, 50)
    assert (top1._similarity().getnnz(axis=1) <= 1).all()
    with pytest.raises(ModelError, match="neighbours"):
        build_model("itemcf", _corpus(), neighbours=0)


def test_toppop_and_the_run_round_trip(tmp_path):
    from snsrec.runs import load_run, save_run

    pop = build_model("toppop", _corpus()).fit_log(LOG, train_end=50)
    assert pop.clicks.tolist() == [3, 2, 2, 0]
    cf = build_model("itemcf", _corpus()).fit_log(LOG, 50)
    save_run(tmp_path / "cf", cf, _corpus(), {"note": "cf"}, {})
    back = load_run(tmp_path / "cf").model
    batch = {"hist_kind": torch.tensor([[NOTE]]), "hist_item": torch.tensor([[0]])}
    torch.testing.assert_close(back.score_batch(batch), cf.score_batch(batch))


def test_category_popularity_by_hand_and_through_a_run(tmp_path):
    from snsrec.runs import load_run, save_run

    # notes 0, 1 are food (sub: street, street), 2 travel/city, 3 food/cafe (clicked only later)
    corpus = _corpus(4, ["food", "food", "travel", "food"], ["street", "street", "city", "cafe"])
    model = build_model("category", corpus, prior_strength=1.0, smoothing=1.0).fit_log(LOG, 50)
    # groups (food/cafe, food/street, travel/city); training clicks 0, 5, 2 (note 3's is late)
    assert model.p_group.tolist() == pytest.approx([1 / 10, 6 / 10, 3 / 10])
    # P(note | group): note 0 (3 clicks) (3 + 1) / (3 + 1 + 2 + 1), note 3 alone in its group
    assert model.log_p_note.exp().tolist() == pytest.approx([4 / 7, 3 / 7, 1.0, 1.0])
    batch = {"hist_kind": torch.tensor([[NOTE, NOTE, NOTE], [0, 0, 0]]),
             "hist_item": torch.tensor([[0, 1, 2], [0, 0, 0]])}
    scores = model.score_batch(batch).exp().numpy()
    p_user = (np.array([0, 2, 1]) + np.array([0.1, 0.6, 0.3])) / (3 + 1)
    assert scores[0] == pytest.approx([p_user[1] * 4 / 7, p_user[1] * 3 / 7, p_user[2],
                                       p_user[0]], rel=1e-5)
    # no history: the global shares
    assert scores[1] == pytest.approx([0.6 * 4 / 7, 0.6 * 3 / 7, 0.3, 0.1], rel=1e-5)
    coarse = build_model("category", corpus, level="category").fit_log(LOG, 50)
    assert coarse.n_groups == 2 and coarse.group.tolist() == [0, 0, 1, 0]
    save_run(tmp_path / "cat", model, corpus, {"note": "category"}, {})
    back = load_run(tmp_path / "cat").model
    torch.testing.assert_close(back.score_batch(batch), model.score_batch(batch))
    with pytest.raises(ModelError, match="no note categories"):
        build_model("category", _corpus())
    with pytest.raises(ModelError, match="level 'genre'"):
        build_model("category", corpus, level="genre")
