"""Named data sets resolve to canonical directories, built once and reused."""

import polars as pl
import pytest

from snsrec.data.datasets import resolve_dataset
from snsrec.errors import ConfigError


def test_world_is_reused_only_when_it_matches(tmp_path, monkeypatch):
    import snsrec.data.world.generate as gen
    from snsrec import __version__
    from snsrec.data.datasets import ensure_world
    from snsrec.io import write_json

    calls = []
    monkeypatch.setattr(gen, "generate_world", lambda *a, **k: calls.append(a))
    root = tmp_path / "worlds" / "tiny-seed7"
    meta = {"preset": "tiny", "seed": 7, "snsrec_version": __version__,
            "config": gen.world_config("tiny").model_dump(mode="json")}
    write_json(root / "world.json", meta)
    assert ensure_world(root, "tiny", 7) == root and calls == []
    write_json(root / "world.json", {**meta, "seed": 8})
    ensure_world(root, "tiny", 7)
    assert calls == [("tiny", 7, root)]


def test_world_spec_builds_once(tmp_path):
    root = resolve_dataset("world:tiny:3", cache=tmp_path)
    assert root == tmp_path / "world-tiny-seed3" and (root / "events.parquet").is_file()
    stamp = (root / "events.parquet").stat().st_mtime_ns
    assert resolve_dataset("world:tiny:3", cache=tmp_path) == root
    assert (root / "events.parquet").stat().st_mtime_ns == stamp


def test_movielens_as_ctr_task(tmp_path):
    root = resolve_dataset("recbole:ml-100k", cache=tmp_path)
    ev = pl.read_parquet(root / "events.parquet", columns=["click", "rating"])
    assert ev.height == 100_000
    assert (ev["click"] == (ev["rating"] >= 4).cast(pl.Int8)).all()
    assert 0.4 < ev["click"].mean() < 0.7          # BARS ML: about 55% positives
    stamp = (root / "events.parquet").stat().st_mtime_ns
    assert resolve_dataset("recbole:ml-100k", cache=tmp_path) == root
    assert (root / "events.parquet").stat().st_mtime_ns == stamp


def test_bars_folder_and_plain_directory(tmp_path):
    src = tmp_path / "frappe"
    src.mkdir()
    for split in ("train", "valid", "test"):
        (src / f"{split}.csv").write_text("label,user,item,daytime\n1,3,7,morning\n0,4,8,night\n")
    root = resolve_dataset(f"bars:{src}", cache=tmp_path / "cache")
    assert pl.read_parquet(root / "events.parquet")["split"].to_list() == ["train"] * 2 + \
        ["valid"] * 2 + ["test"] * 2
    assert resolve_dataset(str(root)) == root


@pytest.mark.parametrize("spec", ["world:tiny:x", "movielens:ml-1m", "recbole:ml-20m", "nowhere"])
def test_bad_specs_name_the_forms(spec, tmp_path):
    with pytest.raises(ConfigError, match="world:PRESET"):
        resolve_dataset(spec, cache=tmp_path)


def test_unknown_preset_fails_before_work(tmp_path):
    with pytest.raises(ConfigError, match="tiny"):
        resolve_dataset("world:huge", cache=tmp_path)
    assert not any(tmp_path.iterdir())
