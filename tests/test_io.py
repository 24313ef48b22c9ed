from pathlib import Path

import pyarrow as pa
import pytest

from snsrec import __version__
from snsrec.errors import DataError
from snsrec.io import (
    MARK,
    ParquetChunkWriter,
    atomic_dir,
    atomic_path,
    check_out,
    check_out_file,
    out_dir,
    read_json,
    read_parquet,
    settle,
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
    with atomic_dir(out, "test") as tmp:
        (tmp / "a").write_text("1")
    assert (out / "a").read_text() == "1"
    assert read_json(out / MARK) == {"written_by": "snsrec test", "snsrec_version": __version__,
                                     "owner": "snsrec"}
    with pytest.raises(RuntimeError), atomic_dir(out, "test") as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == [MARK, "a"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    with atomic_dir(out, "test") as tmp:            # its own output: replaced, no --force
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == [MARK, "c"]


def _users_folder(tmp_path):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    (mine / "sub" / "photo.jpg").write_bytes(b"\xff\xd8")
    return mine


def _unchanged(mine, *extra):
    assert sorted(p.name for p in mine.iterdir()) == sorted(["notes.txt", "sub", *extra])
    assert (mine / "notes.txt").read_text() == "mine"
    assert (mine / "sub" / "photo.jpg").read_bytes() == b"\xff\xd8"
    assert [p.name for p in mine.parent.iterdir()] == ["mine"]      # no temporary left


def test_a_folder_snsrec_did_not_write_is_refused_unless_forced(tmp_path):
    mine = _users_folder(tmp_path)
    for write in (lambda **kw: atomic_dir(mine, "test", **kw).__enter__(),
                  lambda **kw: out_dir(mine, "test", **kw),
                  lambda **kw: check_out(mine, **kw)):
        with pytest.raises(DataError) as e:
            write()
        assert str(e.value) == (f"{mine}: a folder snsrec did not write (no .snsrec mark of "
                                "its own) and not empty; choose another --out, or pass --force "
                                "to write over it")
        _unchanged(mine)
    # --force into it: files are added, the user's stay, and it is marked as the user's:
    # the records written into it (world.json here) do not make it snsrec's.
    assert out_dir(mine, "test", force=True, legacy=["world.json"]) == mine
    write_json(mine / "world.json", {})
    _unchanged(mine, MARK, "world.json")
    assert read_json(mine / MARK)["owner"] == "user"
    with pytest.raises(DataError, match="pass --force"):
        check_out(mine, legacy=["world.json"])
    out_dir(mine, "test", force=True)
    assert read_json(mine / MARK)["owner"] == "user"
    with atomic_dir(mine, "test", force=True) as tmp:   # replaced whole: snsrec's from now on
        (tmp / "new").write_text("x")
    assert sorted(p.name for p in mine.iterdir()) == [MARK, "new"]
    assert read_json(mine / MARK)["owner"] == "snsrec"
    (mine / MARK).write_text("{not json")             # a mark snsrec cannot read is no mark
    with pytest.raises(DataError, match="pass --force"):
        check_out(mine)


def test_empty_legacy_and_marked_folders_are_snsrecs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert out_dir(empty, "bench x") == empty and (empty / MARK).is_file()
    old = tmp_path / "old"               # written before the mark: known by its record
    old.mkdir()
    (old / "world.json").write_text("{}")
    with pytest.raises(DataError, match="pass --force"):
        check_out(old)
    assert check_out(old, legacy=["world.json"]) == old
    out_dir(old, "world generate", legacy=["world.json"])
    assert (old / MARK).is_file()        # recognised once: marked from now on
    assert check_out(old) == old
    nested = tmp_path / "run"            # a legacy record may sit in a subfolder
    (nested / "checkpoint").mkdir(parents=True)
    (nested / "checkpoint" / "state.json").write_text("{}")
    assert check_out(nested, legacy=["metrics.json", "checkpoint/state.json"]) == nested


@pytest.mark.parametrize("odd", [".", "..", "/", "~", "sub/..", "link", "file", "in",
                                 "in/inner", "parent"])
def test_odd_output_paths_are_one_line_errors(odd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "parent" / "in").mkdir(parents=True)
    inputs = [tmp_path / "in", tmp_path / "parent" / "in"]
    path = Path(odd).expanduser()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for call in (lambda: check_out(path, force=True, inputs=inputs),
                 lambda: out_dir(path, "test", force=True, inputs=inputs),
                 lambda: atomic_dir(path, "test", force=True, inputs=inputs).__enter__()):
        with pytest.raises(DataError) as e:
            call()
        assert "\n" not in str(e.value) and str(e.value).startswith(f"{path}: ")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_files_are_replaced_only_when_the_command_wrote_them(tmp_path):
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    with pytest.raises(DataError) as e:
        check_out_file(mine, ours=lambda p: "format" in read_json(p), kind="a feature map")
    assert str(e.value) == (f"{mine}: a file snsrec did not write (not a feature map); choose "
                            "another --out, or pass --force to replace it")
    ours = {"ours": lambda p: "format" in read_json(p), "kind": "a feature map"}
    assert check_out_file(mine, force=True, **ours) == mine
    write_json(mine, {"format": "x"})
    assert check_out_file(mine, **ours) == mine
    with pytest.raises(DataError, match="is the input"):
        check_out_file(mine, force=True, inputs=[tmp_path / "notes.json"], **ours)
    with pytest.raises(DataError, match="a folder; give a file name"):
        check_out_file(tmp_path, force=True, **ours)


def test_settle_brings_back_the_old_copy_or_drops_the_leftover(tmp_path):
    out, old = tmp_path / "d", tmp_path / ".d.old"
    old.mkdir()
    (old / "a").write_text("old")
    assert settle(out) == out                 # killed between the renames: the old comes back
    assert (out / "a").read_text() == "old" and not old.exists()
    old.mkdir()
    (old / "a").write_text("older")
    settle(out)                               # killed after them: the leftover goes
    assert (out / "a").read_text() == "old" and not old.exists()


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
