"""Models by name: ``@register("lr")`` on the class, ``build_model("lr", feature_map)``.

Every model derives from one family class of ``snsrec.models.base``, which
states its contract: ``ranking`` and ``multitask`` models are built as
``Model(feature_map, **params)`` over a FeatureMap, ``retriever`` and
``counting`` models as ``Model(corpus, **params)`` over a Corpus
(``build_model`` passes either as its second argument). ``model_family(name)``
and ``list_models(family)`` answer what a model is. Model files under
``snsrec/models/{ranking,retrieval,multitask}/`` register themselves when
imported; the registry imports them all on first use, so a new model file
needs no edit here.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from snsrec.errors import ModelError
from snsrec.models.base import FAMILIES

M = TypeVar("M", bound=type[nn.Module])

_REGISTRY: dict[str, type[nn.Module]] = {}
_PACKAGES = ("snsrec.models.ranking", "snsrec.models.retrieval", "snsrec.models.multitask")
_discovered = False


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make the model buildable as ``build_model(name, ...)``; the class
    derives from a family class of ``snsrec.models.base``."""

    def wrap(cls: M) -> M:
        other = _REGISTRY.get(name)
        if other is not None and other.__qualname__ != cls.__qualname__:
            raise ValueError(f"model name '{name}' is already registered by {other.__module__}")
        base = FAMILIES.get(getattr(cls, "family", ""))
        if base is None or not issubclass(cls, base):
            raise ValueError(f"model '{name}': {cls.__qualname__} has no model family; derive "
                             "it from one of snsrec.models.base's "
                             f"{', '.join(b.__name__ for b in FAMILIES.values())}")
        cls.model_name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        return cls

    return wrap


def _discover() -> None:
    """Import every model module once so their ``@register`` lines run."""
    global _discovered
    if _discovered:
        return
    for pkg_name in _PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError:
            continue  # a model family not written yet
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            importlib.import_module(f"{pkg_name}.{info.name}")
    _discovered = True


def list_models(family: str | None = None) -> list[str]:
    """The registered names, all or those of one ``family`` (ranking, multitask, ...)."""
    _discover()
    if family is not None and family not in FAMILIES:
        raise ModelError(f"unknown model family '{family}'; families: {', '.join(FAMILIES)}")
    return sorted(n for n, cls in _REGISTRY.items() if family in (None, cls.family))


def get_model_class(name: str) -> type[nn.Module]:
    _discover()
    cls = _REGISTRY.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.4)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ModelError(f"unknown model '{name}'; {hint}registered: {', '.join(sorted(_REGISTRY))}")
    return cls


def model_family(name: str) -> str:
    """The family of model ``name``: ranking, multitask, retriever or counting."""
    return get_model_class(name).family


def model_params(cls: type[nn.Module]) -> list[str]:
    """Keyword hyper-parameters the model's constructor accepts (after its feature map or
    corpus)."""
    sig = inspect.signature(cls.__init__)
    return [p.name for p in list(sig.parameters.values())[2:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_params(name: str, params: dict[str, Any]) -> type[nn.Module]:
    """The model class, once ``name`` and every key of ``params`` are known (before any work)."""
    cls = get_model_class(name)
    valid = model_params(cls)
    for key in params:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(valid) or 'none'}"
            raise ModelError(f"model '{name}': unknown parameter '{key}'; {hint}")
    return cls


def build_model(name: str, feature_map: Any, **params: Any) -> nn.Module:
    """Build the registered model ``name`` over ``feature_map`` (a Corpus for a retriever)
    with hyper-parameters ``params``.

    The built module remembers ``model_name`` and ``model_params`` so a run
    directory can rebuild it (``snsrec.runs.load_run``).
    """
    cls = check_params(name, params)
    model = cls(feature_map, **params)
    model.model_params = dict(params)  # type: ignore[assignment]
    return model
