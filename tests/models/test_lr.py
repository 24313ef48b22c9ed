"""LR: shapes, learns a separable problem, save/load round trip via safetensors."""

import numpy as np
import pytest
import torch

from snsrec.data.batches import TensorBatches, to_tensors
from snsrec.eval.metrics import auc
from snsrec.models.layers import MLP, FeatureEmbedding
from snsrec.models.registry import build_model
from snsrec.train.trainer import TrainConfig, Trainer


def _inputs(arrays):
    return {k: v for k, v in arrays.items() if not k.startswith("_")}


def test_feature_embedding_shapes_pooling_and_sharing(toy):
    fmap = toy.ToyFeatureMap()
    emb = FeatureEmbedding(fmap, dim=4)
    assert emb.field_names == ["user_id", "note_id", "hist_note_id", "quality"]
    assert set(emb.tables) == {"user_id", "note_id"}          # the history shares note_id's
    batch = to_tensors(toy.toy_arrays(8, 0))
    out = emb(batch)
    assert out.shape == (8, 4, 4)
    # Mean pooling ignores padding: [5, 0, 0, 0, 0] embeds like note 5 alone.
    hist = torch.tensor([[0, 0, 0, 0, 5], [0, 0, 0, 5, 5]])
    pooled = emb.embed_one(emb.fields[2], hist)
    torch.testing.assert_close(pooled[0], emb.tables["note_id"].weight[5])
    torch.testing.assert_close(pooled[1], emb.tables["note_id"].weight[5])
    assert torch.all(emb.embed_one(emb.fields[2], torch.zeros(1, 5, dtype=torch.long)) == 0)


def test_mlp_shapes():
    mlp = MLP(12, hidden=(8, 4), dropout=0.1, activation="gelu", batch_norm=True, out_dim=1)
    assert mlp(torch.randn(5, 12)).shape == (5, 1) and mlp.out_dim == 1


def test_lr_learns_a_separable_problem(toy):
    fmap = toy.ToyFeatureMap()
    train, valid = toy.toy_arrays(6000, 1), toy.toy_arrays(2000, 2)
    torch.manual_seed(0)
    model = build_model("lr", fmap, fields=["note_id", "quality"])
    trainer = Trainer(TrainConfig(epochs=8, batch_size=256, lr=0.05, early_stop_patience=3))
    fit = trainer.fit(model, TensorBatches(_inputs(train), 256, shuffle=True), valid)
    p = trainer.predict(model, valid)
    # The click rule is additive in note id and quality: LR reaches the Bayes AUC.
    bayes = 1 / (1 + np.exp(-(np.where(valid["note_id"] % 2 == 0, 1.5, -1.5)
                              + valid["quality"])))
    assert auc(valid["click"], p) > auc(valid["click"], bayes) - 0.01
    assert fit["valid"]["auc"] > 0.8
    w = model.embedding.tables["note_id"].weight[:, 0].detach()
    assert (w[2::2].mean() - w[3::2].mean()) > 1.0     # even notes learned as good
    assert 0.7 < float(model.embedding.numeric["quality"][0].detach()) < 1.3   # true weight 1.0


def test_unknown_field_is_a_model_error(toy):
    from snsrec.errors import ModelError

    with pytest.raises(ModelError, match="feature 'nope' is not in the feature map"):
        build_model("lr", toy.ToyFeatureMap(), fields=["nope"])


def test_save_load_round_trip_via_safetensors(tiny_world, tmp_path):
    import json
    import struct

    from snsrec.data.features import FeatureMap
    from snsrec.data.splits import split_events
    from snsrec.data.tables import load_tables
    from snsrec.runs import load_run, save_run

    tables = load_tables(tiny_world)
    splits = split_events(tables)
    fmap = FeatureMap.fit(tables, train=splits["train"])
    valid = fmap.transform(tables, splits["valid"])
    torch.manual_seed(1)
    model = build_model("lr", fmap, fields=["note_id", "position", "hashtags", "hist_feed",
                                            "hour_of_day"])
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    save_run(tmp_path / "run", model, fmap, {"note": "test"}, {"auc": 0.5})
    weights = (tmp_path / "run" / "model.safetensors").read_bytes()
    header = json.loads(weights[8:8 + struct.unpack("<Q", weights[:8])[0]])
    assert header["__metadata__"]["model_name"] == "lr"      # safetensors, not a pickle
    run = load_run(tmp_path / "run")
    batch = to_tensors(valid)
    torch.testing.assert_close(run.model(batch)["logit"], model(batch)["logit"])
    assert run.config["model"] == {"name": "lr", "params": {"fields": [
        "note_id", "position", "hashtags", "hist_feed", "hour_of_day"]}}
    # A checkpoint that does not fit its feature map is a one-line ModelError.
    from safetensors.torch import save_file

    from snsrec.errors import ModelError

    state = {k: v[:3].contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "run" / "model.safetensors"),
              metadata={"model_name": "lr", "model_params": json.dumps(model.model_params)})
    with pytest.raises(ModelError, match="weights do not fit model 'lr'") as e:
        load_run(tmp_path / "run")
    assert "\n" not in str(e.value)


def test_pair_logits_match_the_explicit_cross_batch(toy):
    from snsrec.demo import score_pairs

    model = build_model("lr", toy.ToyFeatureMap())
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    arrays = to_tensors(toy.toy_arrays(7, 3))
    items = to_tensors(toy.toy_arrays(5, 4))
    fields = ["note_id", "quality"]
    fast = model.pair_logits(arrays, items, fields)
    q, n = 7, 5                                   # the explicit q*n batch, by hand
    batch = {k: v.repeat_interleave(n, dim=0) for k, v in arrays.items() if k not in fields}
    batch.update({k: items[k].repeat(q) for k in fields})
    slow = model(batch)["logit"].reshape(q, n)
    torch.testing.assert_close(fast, slow.detach())
    torch.testing.assert_close(score_pairs(model, arrays, items, fields), fast)
