import pytest

from snsrec.config import StrictModel, load_config, parse_overrides
from snsrec.errors import ConfigError


class Optim(StrictModel):
    lr: float = 0.001
    weight_decay: float = 0.0


class Cfg(StrictModel):
    name: str = "run"
    epochs: int = 3
    optim: Optim = Optim()


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\noptim:\n  lr: 0.01\n")
    cfg = load_config(Cfg, p, ["epochs=5", "optim.weight_decay=1e-4"])
    assert (cfg.name, cfg.epochs, cfg.optim.lr, cfg.optim.weight_decay) == ("x", 5, 0.01, 1e-4)


def test_unknown_top_level_key_suggests_closest(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'; did you mean 'epochs'\?"):
        load_config(Cfg, p)


def test_unknown_nested_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"'optim.lrr'; did you mean 'lr'"):
        load_config(Cfg, None, ["optim.lrr=0.1"])


def test_bad_value_names_key():
    with pytest.raises(ConfigError, match="key 'epochs'"):
        load_config(Cfg, None, ["epochs=many"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Cfg, p)
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Cfg, p)


def test_parse_overrides_requires_equals():
    assert parse_overrides(["a.b=1", "c=x"]) == {"a": {"b": 1}, "c": "x"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])
