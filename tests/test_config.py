import pytest
import yaml

from snsrec.config import PlainName, StrictModel, load_config, parse_overrides
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


def test_errors_blame_the_file_or_the_override(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lr: 0.01\n")
    with pytest.raises(ConfigError, match=r"^--set: unknown key 'optim.lrr'"):
        load_config(Cfg, p, ["optim.lrr=0.1"])
    p.write_text("optim:\n  lrr: 0.01\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'optim.lrr'"):
        load_config(Cfg, p, ["epochs=2"])


class Need(StrictModel):
    name: str


def test_required_key_may_come_from_an_override(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("{}\n")
    assert load_config(Need, p, ["name=x"]).name == "x"
    with pytest.raises(ConfigError, match="c.yaml: missing required key 'name'"):
        load_config(Need, p)


class Item(StrictModel):
    column: str
    min_count: int = 1


class WithList(StrictModel):
    items: list[Item] = []
    maybe: Item | None = None


def test_typos_inside_lists_and_optionals_get_suggestions():
    with pytest.raises(ConfigError, match=r"'items.0.min_cout'; did you mean 'min_count'"):
        load_config(WithList, None, base={"items": [{"column": "a", "min_cout": 2}]})
    with pytest.raises(ConfigError, match=r"'maybe.colum'; did you mean 'column'"):
        load_config(WithList, None, ["maybe.colum=x"])


class Named(StrictModel):
    name: PlainName
    arms: dict[PlainName, int] = {}


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "..", ".", ".hidden", "/abs", "",
                                 " padded", "nul\0"])
def test_a_name_that_would_leave_out_names_its_key(bad, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"name": bad}))
    with pytest.raises(ConfigError) as e:
        load_config(Named, p)
    assert str(e.value).startswith(f"{p}: key 'name': Value error, must be a plain folder "
                                   "name"), str(e.value)
    p.write_text(yaml.safe_dump({"name": "ok", "arms": {bad: 1}}))
    with pytest.raises(ConfigError, match=r"key 'arms\..*': Value error, must be a plain"):
        load_config(Named, p)
    p.write_text(yaml.safe_dump({"name": "deepfm_small-2.v1", "arms": {"b": 1}}))
    assert load_config(Named, p).name == "deepfm_small-2.v1"
