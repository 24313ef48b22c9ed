"""snsrec explain: a GDCN trained on a crossed pair ranks that pair among its top crosses."""

import re

import pytest
import torch

from snsrec.data.batches import TensorBatches
from snsrec.errors import ModelError
from snsrec.models.explain import explain_run
from snsrec.models.registry import build_model
from snsrec.runs import save_run
from snsrec.train.trainer import TrainConfig, Trainer

SMALL = {"embedding_dim": 8, "hidden_units": [32], "num_cross_layers": 2}


def _rows(table: str) -> list[tuple[str, str]]:
    return re.findall(r"^\| \d+ \| (\w+) \| (\w+) \|", table, flags=re.M)


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_the_true_cross_ranks_in_the_top_three(toy, tmp_path, structure):
    fmap = toy.cross_feature_map()
    train, valid = toy.cross_arrays(3000, 1), toy.cross_arrays(1000, 2)
    torch.manual_seed(0)
    model = build_model("gdcn", fmap, structure=structure, **SMALL)
    trainer = Trainer(TrainConfig(epochs=4, batch_size=256, lr=1e-2, seed=0))
    fit = trainer.fit(model, TensorBatches({k: v for k, v in train.items()
                                            if not k.startswith("_")}, 256, shuffle=True), valid)
    assert fit["valid"]["auc"] > 0.8
    save_run(tmp_path / "run", model, fmap, {"note": "no data key"}, fit["valid"])
    table = explain_run(tmp_path / "run", top=5)
    pairs = _rows(table)
    assert len(pairs) == 5
    assert ("a", "b") in pairs[:3], table
    assert "drawn uniformly from the vocabularies" in table
    assert len(_rows(explain_run(tmp_path / "run", top=100))) == 21      # 7 fields: 21 pairs


def test_explains_on_the_runs_validation_split(tiny_world, tmp_path):
    from snsrec.data.features import FeatureMap
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables

    tables = load_tables(tiny_world)
    fmap = FeatureMap.fit(tables, train=split_events(tables)["train"])
    torch.manual_seed(0)
    model = build_model("gdcn", fmap, **SMALL)
    save_run(tmp_path / "run", model, fmap, {"data": str(tiny_world)}, {})
    table = explain_run(tmp_path / "run", top=3, rows=500)
    assert "validation rows of" in table and len(_rows(table)) == 3
    assert model.cross.last_gates == [] and len(_rows(table)) == 3   # the saved copy ran


def test_a_model_without_gates_is_a_one_line_error(toy, tmp_path):
    fmap = toy.cross_feature_map()
    save_run(tmp_path / "run", build_model("deepfm", fmap, hidden_units=[8]), fmap, {}, {})
    with pytest.raises(ModelError, match="model 'deepfm' has no gated cross network") as e:
        explain_run(tmp_path / "run")
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="not found"):
        explain_run(tmp_path / "nope")
