"""Every run YAML shipped under configs/ loads and names a registered model with valid params."""

from pathlib import Path

import pytest

from snsrec.demo import load_demo_config
from snsrec.models.registry import check_params
from snsrec.train.pipeline import check_run_config, load_run_config

ROOT = Path(__file__).resolve().parents[2] / "configs"
RUN_YAMLS = sorted([*(ROOT / "train").glob("*.yaml"), *(ROOT / "bench" / "ctr").glob("*-*.yaml")])


def test_there_are_shipped_run_configs():
    assert len(RUN_YAMLS) >= 22


@pytest.mark.parametrize("path", RUN_YAMLS, ids=lambda p: p.name)
def test_shipped_run_config_is_valid(path):
    cfg = load_run_config(path)
    check_run_config(cfg)            # model name and every parameter key known
    if "text" in cfg.model.params:   # a text tower's settings, too
        from snsrec.text.encoders import TextConfig

        TextConfig.model_validate(cfg.model.params["text"])
    if cfg.features is not None:
        assert (ROOT.parent / cfg.features).is_file(), f"{path}: features {cfg.features}"


def test_shipped_demo_config_is_valid():
    cfg = load_demo_config(ROOT / "demo.yaml")
    check_params(cfg.ranker.name, cfg.ranker.params)
