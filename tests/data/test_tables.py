import polars as pl
import pyarrow as pa
import pytest

from snsrec.data.tables import load_tables
from snsrec.errors import DataError, SchemaError
from snsrec.io import write_json, write_parquet


def test_loads_lazy_tables_and_meta(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    t = load_tables(root)
    assert isinstance(t.events, pl.LazyFrame) and isinstance(t.notes, pl.LazyFrame)
    assert t.users is not None and t.queries is None
    assert t.meta["split"]["valid_start"].startswith("2024-03-05")
    assert t.events.select(pl.len()).collect().item() == 240
    assert t.get("notes") is t.notes and t.get("truth") is None


def test_dataset_json_is_read_when_no_world_json(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    (root / "world.json").rename(root / "dataset.json")
    assert load_tables(root).meta["preset"] == "handmade"


def test_missing_directory_is_a_data_error(make_data, tmp_path):
    with pytest.raises(DataError, match="data directory not found"):
        load_tables(tmp_path / "nope")


def test_missing_meta_is_named(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    (root / "world.json").unlink()
    with pytest.raises(DataError, match="neither world.json nor dataset.json"):
        load_tables(root)


def test_missing_events_is_named(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    (root / "events.parquet").unlink()
    with pytest.raises(DataError, match="events.parquet: file not found"):
        load_tables(root)


def test_corrupt_parquet_is_a_data_error(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    (root / "notes.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="notes.parquet: not a readable Parquet"):
        load_tables(root)


def test_wrong_schema_is_a_schema_error(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    write_parquet(root / "users.parquet", pa.table({"id": [1, 2]}))
    with pytest.raises(SchemaError, match=r"users table is missing column\(s\) \['user_id'\]"):
        load_tables(root)


def test_meta_must_be_an_object(make_data, tmp_path):
    root = make_data(tmp_path / "w")
    write_json(root / "world.json", [1, 2])
    with pytest.raises(DataError, match="expected a JSON object"):
        load_tables(root)
