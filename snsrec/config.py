"""The one config loader: YAML → pydantic models with unknown keys rejected.

Every config class derives from ``StrictModel`` (``extra="forbid"``). A typo in
a YAML file or a ``--set key=value`` override becomes a one-line ConfigError
that names the key and suggests the closest valid one.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from snsrec.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def plain_name(v: str) -> str:
    """A config name that becomes one folder under ``--out``: it must stay there (no path
    separator, no '..') and not take a hidden name (snsrec's temporary and swap folders
    start with '.')."""
    if not v or v.startswith(".") or v != v.strip() or any(c in v for c in "/\\\0"):
        raise ValueError("must be a plain folder name (no '/', '\\', leading '.' or outer "
                         "spaces), e.g. deepfm_small")
    return v


# The type of every config key whose value names a folder (a run, an experiment, an arm).
PlainName = Annotated[str, AfterValidator(plain_name)]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation: ``M``, ``list[M]``, ``M | None``, ``dict[str, M]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid field names of the (nested) model that owns ``loc``."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue  # a list index: stay on the list's item model
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _first_error(err: ValidationError) -> dict:
    """An unknown key is usually the cause of a "missing" one (a typo of it): report it first."""
    errors = err.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    first = _first_error(err)
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc)
    if first["type"] == "extra_forbidden":
        valid = _fields_at(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
        return f"{source}: unknown key '{key}'; {hint}"
    if first["type"] == "missing":
        return f"{source}: missing required key '{key}'; add it"
    return f"{source}: key '{key}': {first['msg']} (got {first.get('input')!r})"


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """``["train.lr=0.01", "name=x"]`` → nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.001")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def validate_config(model: type[T], data: dict, source: str) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, model, source)) from None


def read_mapping(path: str | Path) -> dict:
    """A YAML file's top-level mapping; a one-line ConfigError for a missing file, invalid
    YAML or anything but a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return loaded


def load_config(model: type[T], path: str | Path | None = None,
                overrides: list[str] | None = None, base: dict | None = None) -> T:
    """Load ``path`` (YAML) over ``base``, apply ``--set`` overrides, validate into ``model``."""
    data: dict = dict(base or {})
    source = "--set"
    if path is not None:
        source = str(path)
        data = deep_merge(data, read_mapping(path))
    extra = parse_overrides(overrides)
    merged = deep_merge(data, extra)
    try:
        return model.model_validate(merged)
    except ValidationError as e:
        # Blame --set when the failing key came from an override, else the file.
        loc = [p for p in _first_error(e)["loc"] if not isinstance(p, int)]
        node: Any = extra
        for part in loc:
            node = node.get(part) if isinstance(node, dict) else None
        raise ConfigError(format_validation_error(e, model, "--set" if node is not None
                                                  else source)) from None


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
