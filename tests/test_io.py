import pyarrow as pa
import pytest

from snsrec.errors import DataError
from snsrec.io import (
    ParquetChunkWriter,
    atomic_dir,
    atomic_path,
    read_json,
    read_parquet,
    write_json,
    write_parquet,
)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    out = tmp_path / "d"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    assert (out / "a").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    with pytest.raises(DataError, match="already exists"), atomic_dir(out, overwrite=False):
        pass


def test_parquet_roundtrip_is_byte_deterministic(tmp_path):
    t = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    write_parquet(tmp_path / "1.parquet", t)
    write_parquet(tmp_path / "2.parquet", t)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()
    assert read_parquet(tmp_path / "1.parquet").equals(t)


def test_chunk_writer_atomic(tmp_path):
    schema = pa.schema([("a", pa.int64())])
    with ParquetChunkWriter(tmp_path / "c.parquet", schema) as w:
        w.write(pa.table({"a": [1, 2]}, schema=schema))
        w.write(pa.table({"a": [3]}, schema=schema))
    assert read_parquet(tmp_path / "c.parquet").column("a").to_pylist() == [1, 2, 3]
    with pytest.raises(ValueError), ParquetChunkWriter(tmp_path / "d.parquet", schema) as w:
        w.write(pa.table({"a": [1]}, schema=schema))
        raise ValueError("stop")
    assert not (tmp_path / "d.parquet").exists()
    assert not any(p.name.startswith(".d.parquet") for p in tmp_path.iterdir())


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.parquet: file not found"):
        read_parquet(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet"):
        read_parquet(bad)
    write_parquet(tmp_path / "ok.parquet", pa.table({"a": [1]}))
    with pytest.raises(DataError, match=r"missing column\(s\) \['zz'\]"):
        read_parquet(tmp_path / "ok.parquet", columns=["a", "zz"])
    j = tmp_path / "x.json"
    j.write_text("{oops")
    with pytest.raises(DataError, match="x.json: not valid JSON"):
        read_json(j)
    write_json(j, {"b": 1, "a": [1]})
    assert read_json(j) == {"a": [1], "b": 1}
