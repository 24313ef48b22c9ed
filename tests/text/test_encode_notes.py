"""`snsrec encode notes`: a note table to vectors, resumable, with clear errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snsrec.errors import ConfigError, DataError
from snsrec.io import write_json
from snsrec.text.encode import encode_notes, job_key


@pytest.fixture()
def notes(tmp_path):
    path = tmp_path / "notes.parquet"
    pq.write_table(pa.table({"note_id": [10, 11, 12, 13, 14],
                             "title": ["coffee", "hike", None, "cat", "tea"],
                             "hashtags": [["a"], [], ["b", "c"], None, ["d"]]}), path)
    return path


@pytest.fixture()
def backbone(tmp_path):
    path = tmp_path / "hash.yaml"
    path.write_text("backbone: hash\nbuckets: 1024\ndim: 8\n")
    return path


def test_parquet_and_npy_outputs_agree_and_are_deterministic(tmp_path, notes, backbone):
    a = encode_notes(backbone, notes, tmp_path / "a.parquet", batch_size=2, chunk=3)
    t = pq.read_table(tmp_path / "a.parquet")
    assert t.column("note_id").to_pylist() == [10, 11, 12, 13, 14]
    vecs = np.array(t.column("vector").to_pylist(), dtype=np.float32)
    assert vecs.shape == (5, 8)
    np.testing.assert_array_equal(vecs, a["vectors"])
    encode_notes(backbone, notes, tmp_path / "b.npy", chunk=3)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), vecs)
    assert np.load(tmp_path / "b.ids.npy").tolist() == [10, 11, 12, 13, 14]
    assert not (tmp_path / "a.parquet.parts").exists()


def test_an_interrupted_job_reuses_its_finished_chunks(tmp_path, notes, backbone):
    whole = encode_notes(backbone, notes, tmp_path / "w.npy", chunk=3)["vectors"]
    out = tmp_path / "r.npy"
    parts = tmp_path / "r.npy.parts"
    parts.mkdir()
    write_json(parts / "job.json", {"key": job_key(backbone, notes, 5, 3)})
    np.save(parts / "part-000000.npy", np.full((3, 8), 7.0, np.float32))   # a finished chunk
    res = encode_notes(backbone, notes, out, chunk=3)
    got = np.load(out)
    assert (got[:3] == 7.0).all()                      # reused, not recomputed
    np.testing.assert_array_equal(got[3:], whole[3:])
    assert "2 this run, 3 resumed" in res["text"]
    # Parts of another job (other chunking) are discarded.
    parts.mkdir()
    write_json(parts / "job.json", {"key": "other"})
    np.save(parts / "part-000000.npy", np.full((3, 8), 7.0, np.float32))
    np.testing.assert_array_equal(encode_notes(backbone, notes, out, chunk=3)["vectors"], whole)


def test_bad_input(tmp_path, notes, backbone):
    with pytest.raises(ConfigError, match=r"\.parquet.*\.npy"):
        encode_notes(backbone, notes, tmp_path / "x.csv")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": [1], "title": ["x"]}), bad)
    with pytest.raises(DataError, match="no 'note_id' column"):
        encode_notes(backbone, bad, tmp_path / "x.npy")
    with pytest.raises(ConfigError, match="neither a run directory nor"):
        encode_notes(tmp_path / "missing.yaml", notes, tmp_path / "x.npy")


def test_with_cover_appends_the_cover_floats(tmp_path, notes, backbone):
    table = pq.read_table(notes)
    cover = pa.array([{"brightness": 0.1 * i, "faces": 1.0 - 0.1 * i} for i in range(4)] + [None],
                     pa.struct([("brightness", pa.float32()), ("faces", pa.float32())]))
    pq.write_table(table.append_column("cover", cover), tmp_path / "covered.parquet")
    text = encode_notes(backbone, notes, tmp_path / "t.npy")["vectors"]
    both = encode_notes(backbone, tmp_path / "covered.parquet", tmp_path / "c.parquet",
                        with_cover=True)
    assert both["vectors"].shape == (5, 10)
    np.testing.assert_array_equal(both["vectors"][:, :8], text)
    np.testing.assert_allclose(both["vectors"][:4, 8], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    assert (both["vectors"][4, 8:] == 0).all()                 # no cover: zeros
    assert "2 cover floats" in both["text"]
    with pytest.raises(DataError, match="no 'cover' column"):
        encode_notes(backbone, notes, tmp_path / "x.npy", with_cover=True)
