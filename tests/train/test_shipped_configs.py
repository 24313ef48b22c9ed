"""Every run YAML shipped under configs/ loads and names a registered model with valid params."""

from pathlib import Path

import pytest

from snsrec.demo import load_demo_config
from snsrec.models.registry import check_params
from snsrec.train.pipeline import check_run_config, load_run_config

ROOT = Path(__file__).resolve().parents[2] / "configs"
RUN_YAMLS = sorted((ROOT / "train").glob("*.yaml"))
CTR_MODELS = sorted(p.stem for p in (ROOT / "bench" / "ctr" / "models").glob("*.yaml"))


def test_there_are_shipped_run_configs():
    assert len(RUN_YAMLS) >= 9 and len(CTR_MODELS) >= 13


@pytest.mark.parametrize("data", ["world:small", "recbole:ml-1m"])
@pytest.mark.parametrize("model", CTR_MODELS)
def test_every_bench_ctr_model_resolves_on_each_data_set(model, data):
    """base.yaml + models/<model>.yaml + the data set's entry: a valid run config whose
    model is the file's and whose features file exists."""
    from snsrec.bench.ctr import features_for, resolve_config

    cfg, used = resolve_config(data, model, 0, features_for(data, Path("unused"), Path("unused")))
    assert cfg.model.name == model and f"models/{model}.yaml" in used
    assert Path(cfg.features).is_file()


@pytest.mark.parametrize("path", RUN_YAMLS, ids=lambda p: p.name)
def test_shipped_run_config_is_valid(path):
    cfg = load_run_config(path)
    check_run_config(cfg)            # model name and every parameter key known
    if "text" in cfg.model.params:   # a text tower's settings, too
        from snsrec.text.encoders import TextConfig

        TextConfig.model_validate(cfg.model.params["text"])
    if cfg.features is not None:
        assert (ROOT.parent / cfg.features).is_file(), f"{path}: features {cfg.features}"


@pytest.mark.parametrize("name", ["demo.yaml", "demo_full.yaml"])
def test_shipped_demo_config_is_valid(name):
    cfg = load_demo_config(ROOT / name)
    check_params(cfg.ranker.name, cfg.ranker.params)
