"""`snsrec bench multimodal` on the tiny world: note vectors once, the table, new notes."""

from __future__ import annotations

import pytest

from snsrec.bench.multimodal import bench_multimodal
from snsrec.errors import ConfigError
from snsrec.progress import set_quiet

FAST = ["train.epochs=1", "train.threads=1", "model.params.embedding_dim=4"]


def test_vectors_once_the_table_and_new_notes(tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path)
    set_quiet(True)     # the autouse _not_quiet fixture turns it off again
    res = bench_multimodal(["world:tiny"], ["qin", "qin_id"], 1, tmp_path / "b",
                           backbone="hash", overrides=FAST, cache=cache)
    block = res["results"]["data"]["world_tiny"]
    assert [r["variant"] for r in block["table"]] == ["qin", "qin_id"]
    for r in block["runs"]:
        assert 0 < r["new_note_rows"] < r["rows"] and 0.0 <= r["auc_new_notes"] <= 1.0
    # the multimodal variant has the vector projection, the ablation does not
    assert block["runs"][0]["params"] > block["runs"][1]["params"]
    vectors = tmp_path / "b" / "world_tiny" / "note_vectors-hash.parquet"
    stamp = vectors.stat().st_mtime_ns
    bench_multimodal(["world:tiny"], ["qin"], 1, tmp_path / "b", backbone="hash",
                     overrides=FAST, cache=cache)
    assert vectors.stat().st_mtime_ns == stamp                     # encoded once
    assert "AUC on new notes" in res["markdown"]
    with pytest.raises(ConfigError, match="--backbone"):
        bench_multimodal(["world:tiny"], ["qin"], 1, tmp_path / "x", backbone="bert",
                         cache=cache)
    with pytest.raises(ConfigError, match="no config .*'dien'"):
        bench_multimodal(["world:tiny"], ["dien"], 1, tmp_path / "b", backbone="hash",
                         cache=cache)
