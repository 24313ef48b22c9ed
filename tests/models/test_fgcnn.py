"""FGCNN: shapes, the generator's field arithmetic, save/load, and it learns an XOR cross."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from snsrec.errors import ModelError
from snsrec.models.ranking.fgcnn import FeatureGenerator, PairwiseInnerProduct
from snsrec.models.registry import build_model

_SPEC = importlib.util.spec_from_file_location("ctr_toy", Path(__file__).with_name("ctr_toy.py"))
toy = sys.modules.setdefault("snsrec_tests_ctr_toy", importlib.util.module_from_spec(_SPEC))
if not hasattr(toy, "arrays"):
    _SPEC.loader.exec_module(toy)

SMALL = {"embedding_dim": 8, "channels": (6, 8), "kernel_heights": (3, 3),
         "pooling_sizes": (2, 2), "recombined_channels": (2, 2), "hidden_units": (32, 32)}


def test_shapes_with_defaults_and_shared_embedding():
    torch.manual_seed(0)
    toy.check_shape(build_model("fgcnn", toy.feature_map()))
    shared = build_model("fgcnn", toy.feature_map(), share_embedding=True, **SMALL)
    toy.check_shape(shared)
    assert shared.gen_embedding is None


def test_generator_field_counts_and_inner_products():
    # 6 fields, pool 2 (ceil): 6 -> 3 -> 2; 2 and 3 recombined maps: 2*3 + 3*2 new features.
    gen = FeatureGenerator(6, 4, channels=(5, 7), kernel_heights=(3, 5), pooling_sizes=(2, 2),
                           recombined_channels=(2, 3))
    assert gen(torch.randn(10, 6, 4)).shape == (10, 12, 4) and gen.out_fields == 12
    emb = torch.randn(3, 4, 5)
    got = PairwiseInnerProduct(4)(emb)
    want = torch.stack([(emb[:, i] * emb[:, j]).sum(-1) for i in range(4) for j in range(i + 1, 4)],
                       dim=1)
    torch.testing.assert_close(got, want)
    with pytest.raises(ModelError, match="one entry per conv block"):
        build_model("fgcnn", toy.feature_map(), channels=(4, 4), kernel_heights=(3,))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    toy.check_round_trip(build_model("fgcnn", toy.feature_map(), **SMALL), tmp_path / "run")


def test_learns_an_interaction_lr_cannot():
    torch.manual_seed(2)
    model = build_model("fgcnn", toy.feature_map(), **SMALL)
    got, lr = toy.fit_auc(model), toy.lr_auc()
    print(f"fgcnn toy AUC {got:.4f} (LR {lr:.4f}), {toy.n_params(model)} parameters")
    assert lr < 0.6
    assert got > 0.8
