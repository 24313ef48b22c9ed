"""The model registry: build by name, helpful errors."""

import pytest
import torch

from snsrec.errors import ModelError
from snsrec.models.base import RankingModel
from snsrec.models.registry import build_model, list_models, model_family, register


def test_lists_the_foundation_models():
    assert {"lr", "popularity"} <= set(list_models())
    assert "lr" in list_models(family="ranking") and "lr" not in list_models(family="counting")
    assert model_family("itemcf") == "counting" and model_family("esmm") == "multitask"
    with pytest.raises(ModelError, match="unknown model family 'ctr'; families: ranking, "):
        list_models(family="ctr")


def test_unknown_name_suggests_closest(toy):
    with pytest.raises(ModelError, match=r"unknown model 'lrr'; did you mean 'lr'\?") as e:
        build_model("lrr", toy.ToyFeatureMap())
    assert "\n" not in str(e.value) and "popularity" in str(e.value)


def test_unknown_parameter_is_a_model_error(toy):
    with pytest.raises(ModelError, match=r"unknown parameter 'feilds'; did you mean 'fields'\?"):
        build_model("lr", toy.ToyFeatureMap(), feilds=["note_id"])


def test_build_remembers_name_and_params(toy):
    model = build_model("lr", toy.ToyFeatureMap(), fields=["note_id", "quality"])
    assert model.model_name == "lr" and model.model_params == {"fields": ["note_id", "quality"]}
    out = model({"note_id": torch.tensor([2, 3]), "quality": torch.tensor([0.5, -1.0])})
    assert out["logit"].shape == (2,)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        @register("lr")
        class Other(RankingModel):
            pass


def test_a_model_without_a_family_is_refused():
    with pytest.raises(ValueError, match=r"Plain has no model family; derive it from one of "
                                         r"snsrec.models.base's RankingModel, MultiTaskModel"):
        @register("plain")
        class Plain(torch.nn.Module):
            pass
    assert "plain" not in list_models()
