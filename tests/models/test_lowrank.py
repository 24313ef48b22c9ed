"""Low-rank compression: exact on layers whose outputs are low-rank, the padding rows stay zero,
the compressed run round-trips, and `snsrec compress` writes a run with its report."""

import numpy as np
import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.ranking.lowrank import LowRankLinear, LowRankTable, compress
from snsrec.models.registry import build_model
from snsrec.runs import load_run, save_run


def _batches(toy, n=600, size=200):
    arrays = {k: v for k, v in toy.cross_arrays(n, 5).items() if not k.startswith("_")}
    t = to_tensors(arrays)
    return [{k: v[s:s + size] for k, v in t.items()} for s in range(0, n, size)]


def _low_rank_model(toy, r=4):
    """A DeepFM whose hidden layers and embeddings have rank-r weights (outputs rank <= r)."""
    torch.manual_seed(0)
    model = build_model("deepfm", toy.cross_feature_map(), embedding_dim=8,
                        hidden_units=[64, 64], batch_norm=True).eval()
    with torch.no_grad():
        for bn in (model.mlp.net[1], model.mlp.net[4]):         # trained-looking statistics
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        for lin in (model.mlp.net[0], model.mlp.net[3]):
            out_f, in_f = lin.weight.shape
            lin.weight.copy_(torch.randn(out_f, r) @ torch.randn(r, in_f) * 0.1)
        for shard in model.embedding.shards:
            shard.weight.copy_(torch.randn(shard.weight.shape[0], r) @ torch.randn(r, 8))
        for s, start, _ in model.embedding._blocks.values():    # every block's padding row
            model.embedding.shards[s].weight[start] = 0
    return model


def test_exact_when_the_outputs_are_low_rank_and_padding_stays_zero(toy):
    model = _low_rank_model(toy)
    small = compress(model, toy.cross_feature_map(), _batches(toy), rank=4, embedding_rank=4)
    shells = [m for m in small.modules() if isinstance(m, (LowRankLinear, LowRankTable))]
    assert sum(isinstance(m, LowRankLinear) for m in shells) == 2        # not the logit layer
    assert sum(isinstance(m, LowRankTable) for m in shells) == len(model.embedding.shards)
    batch = to_tensors({k: v for k, v in toy.cross_arrays(64, 9).items()
                        if not k.startswith("_")})
    with torch.no_grad():
        torch.testing.assert_close(small(batch)["logit"], model(batch)["logit"],
                                   rtol=1e-4, atol=1e-4)
        for table in small.base.embedding.tables.values():
            assert table.weight[0].abs().max() == 0
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(small) < n(model)


def test_a_low_rank_approximation_round_trips_and_bad_ranks_fail(toy, tmp_path):
    torch.manual_seed(1)
    model = build_model("dcnv2", toy.cross_feature_map(), embedding_dim=8,
                        hidden_units=[64, 64]).eval()
    small = compress(model, toy.cross_feature_map(), _batches(toy), rank=8)
    assert small.model_params["linear_ranks"] and not small.model_params["table_ranks"]
    assert any(".cross." in p for p in small.model_params["linear_ranks"])
    save_run(tmp_path / "r", small, toy.cross_feature_map(), {"note": "lowrank"}, {})
    back = load_run(tmp_path / "r").model
    batch = _batches(toy)[0]
    with torch.no_grad():
        torch.testing.assert_close(back(batch)["logit"], small(batch)["logit"], rtol=0, atol=0)
    with pytest.raises(ModelError, match="rank"):
        compress(model, toy.cross_feature_map(), _batches(toy), rank=0)
    with pytest.raises(ModelError, match="lowrank one"):
        compress(small, toy.cross_feature_map(), _batches(toy), rank=4)
    with pytest.raises(ModelError, match="calibration sample is empty"):
        compress(model, toy.cross_feature_map(), [], rank=4)


def test_snsrec_compress_writes_a_run_with_its_report(tiny_world, tmp_path, capsys):
    import json

    from snsrec.cli import main

    def cli(argv):
        with pytest.raises(SystemExit) as e:
            main(["--quiet", *argv])
        out = capsys.readouterr()
        return int(e.value.code or 0), out.out, out.err

    import yaml

    cfg = {"name": "dfm", "data": str(tiny_world), "cache": str(tmp_path / "cache"),
           "model": {"name": "deepfm", "params": {"embedding_dim": 8, "hidden_units": [64, 64]}},
           "train": {"epochs": 1, "batch_size": 512, "threads": 1}}
    (tmp_path / "dfm.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = cli(["train", str(tmp_path / "dfm.yaml"), "--out", str(tmp_path / "runs")])
    assert code == 0, err
    run = tmp_path / "runs" / "dfm"
    code, _, err = cli(["compress", str(run), "--rank", "8", "--embedding-rank", "4",
                        "--calibration", "2000"])
    assert code == 0, err
    new = tmp_path / "runs" / "dfm-r8"
    m = json.loads((new / "metrics.json").read_text())
    r = m["compression"]
    assert m["model"] == "lowrank" and r["rank"] == 8 and r["calibration_rows"] == 2000
    assert r["params"]["after"] < r["params"]["before"] and r["smaller"] > 1
    assert np.isclose(r["auc_change"], r["test_auc"]["after"] - r["test_auc"]["before"])
    code, out, err = cli(["evaluate", str(new)])
    assert code == 0 and f"{r['test_auc']['after']:.4f}" in out, err
    code, out, err = cli(["bench", "compress", str(run), "--rank", "8", "--embedding-rank", "4",
                          "--calibration", "2000", "--out", str(tmp_path / "bc")])
    assert code == 0, err
    saved = json.loads((tmp_path / "bc" / "compress.json").read_text())
    (row,) = saved["models"]
    assert row["model"] == "deepfm" and row["runs"] == 1 and row["smaller"] > 1
    assert isinstance(row["meets_target"], bool) and (tmp_path / "bc" / "dfm-r8").is_dir()
    assert "| deepfm | 1 |" in (tmp_path / "bc" / "compress.md").read_text()
    for argv, needle in ((["compress", str(tmp_path / "nope"), "--rank", "8"], "not a complete"),
                         (["compress", str(run), "--rank", "8", "--out", str(run)],
                          "overlaps the input")):
        code, _, err = cli(argv)
        assert code == 2 and needle in err and err.count("\n") == 1, err
