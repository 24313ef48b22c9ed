"""Every registered model keeps its family's contract (``snsrec.models.base``).

The cases are read from the registry, so a new model is covered without editing this file.
ranking: a finite float32 ``[B]`` logit per row, and a gradient for a trained model;
multitask: a finite ``cvr_logit`` beside it; retriever: item vectors ``[N, dim]``, user
vectors ``[B, K, dim]`` and scores ``[B, N]`` over the tiny world's corpus, and a loss
that exists; counting: ``fit_log`` on the tiny world's log, then finite scores of every
note that tell the notes apart.
"""

import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.data.sequences import BehaviourLog, Corpus
from snsrec.models.base import FAMILIES
from snsrec.models.registry import build_model, get_model_class, list_models, model_family
from snsrec.train.losses import LOSSES
from snsrec.train.retrieval import RetrievalDataConfig, _split_times, eval_samples

HASH = {"backbone": "hash", "buckets": 4096, "dim": 16}
# Small sizes (and what the toy feature map needs) where the defaults are large.
PARAMS = {"popularity": {"item_field": "a"},             # the cross toy has no note_id
          "redrec": {"dim": 16, "text": HASH, "width": 32, "layers": 1, "heads": 2},
          "dssm": {"dim": 16, "text": HASH, "width": 32},
          "sasrec": {"dim": 16, "max_len": 20, "heads": 2, "inner": 32}}
ROWS = 6


def _ranking_input(toy, name, n):
    """The toy feature map and ``n`` rows a ranking model runs on: the cross toy, or the
    vector toy for a model that ``requires`` a vector field (AdSEE)."""
    if getattr(get_model_class(name), "requires", None):
        return toy.vector_feature_map(), toy.vector_arrays(n, 0)
    return toy.cross_feature_map(), toy.cross_arrays(n, 0)


def _finite_rows(t, *shape):
    assert t.shape == shape and t.dtype == torch.float32, (t.shape, t.dtype)
    assert torch.isfinite(t).all()


def test_every_model_has_exactly_one_family():
    by_family = {f: list_models(family=f) for f in FAMILIES}
    assert all(by_family.values()), by_family
    assert sorted(n for names in by_family.values() for n in names) == list_models()
    for family, names in by_family.items():
        for name in names:
            cls = get_model_class(name)
            assert model_family(name) == family and issubclass(cls, FAMILIES[family])
            # No other family's class, save the one this family extends (multitask: ranking).
            others = [b for b in FAMILIES.values()
                      if issubclass(cls, b) and not issubclass(FAMILIES[family], b)]
            assert not others, (name, others)


@pytest.mark.parametrize("name", list_models(family="ranking"))
def test_ranking_models_give_a_finite_logit_per_row(toy, name):
    torch.manual_seed(0)
    fmap, arrays = _ranking_input(toy, name, 7)
    model = build_model(name, fmap, **PARAMS.get(name, {}))
    out = model(to_tensors(arrays))
    _finite_rows(out["logit"], 7)
    trained = [p for p in model.parameters() if p.requires_grad]
    if trained:                             # popularity is counted (``fit``), not trained
        out["logit"].sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)


@pytest.mark.parametrize("name", list_models(family="multitask"))
def test_multitask_models_give_a_click_and_a_conversion_logit(toy, name):
    torch.manual_seed(0)
    model = build_model(name, toy.cross_feature_map(), **PARAMS.get(name, {}))
    out = model(to_tensors(toy.conversion_arrays(9, 0)))
    assert set(out) == {"logit", "cvr_logit"}
    for key in out:
        _finite_rows(out[key], 9)
        grads = torch.autograd.grad(out[key].sum(), list(model.parameters()), retain_graph=True,
                                    allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), key


@pytest.fixture(scope="module")
def world(tiny_world):
    """(log, corpus, training end, the user-tower inputs of ``ROWS`` feed queries)."""
    from snsrec.data.tables import load_tables

    tables = load_tables(tiny_world)
    log = BehaviourLog.from_tables(tables)
    valid_start, test_start = _split_times(tables)
    corpus = Corpus.from_tables(tables, log, valid_start)
    rows = eval_samples(log, corpus, valid_start, test_start, "feed", RetrievalDataConfig())
    assert len(rows["target"]) >= ROWS
    batch = to_tensors({k: v[:ROWS] for k, v in rows.items() if k != "target"})
    return log, corpus, valid_start, batch


@pytest.mark.parametrize("name", list_models(family="retriever"))
def test_retrievers_give_user_and_item_vectors(world, name):
    _, corpus, _, batch = world
    torch.manual_seed(0)
    model = build_model(name, corpus, **PARAMS.get(name, {})).eval()
    assert model.loss in LOSSES
    n = len(corpus)
    with torch.no_grad():
        items = model.item_vectors(torch.arange(n))
        users = model.user_vectors(batch)
        _finite_rows(items, n, model.dim)
        _finite_rows(users, ROWS, users.shape[1], model.dim)
        _finite_rows(model.score(users, items, batch), ROWS, n)


@pytest.mark.parametrize("name", list_models(family="counting"))
def test_counting_retrievers_score_every_note_once_fitted(world, name):
    log, corpus, valid_start, batch = world
    model = build_model(name, corpus, **PARAMS.get(name, {}))
    assert model.fit_log(log, valid_start) is model
    scores = model.score_batch(batch)
    _finite_rows(scores, ROWS, len(corpus))
    assert (scores != scores[:, :1]).any()          # the counts tell the notes apart
    torch.testing.assert_close(model(batch)["scores"], scores)
