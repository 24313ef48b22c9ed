"""FinalMLP: shapes, gates and fusion by hand, save/load, and it learns an XOR cross."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from snsrec.data.batches import to_tensors
from snsrec.errors import ModelError
from snsrec.models.ranking.finalmlp import BilinearFusion
from snsrec.models.registry import build_model

_SPEC = importlib.util.spec_from_file_location("ctr_toy", Path(__file__).with_name("ctr_toy.py"))
toy = sys.modules.setdefault("snsrec_tests_ctr_toy", importlib.util.module_from_spec(_SPEC))
if not hasattr(toy, "arrays"):
    _SPEC.loader.exec_module(toy)

SMALL = {"embedding_dim": 8, "mlp1_hidden_units": (32, 32), "mlp2_hidden_units": (32, 16),
         "num_heads": 2, "gate_hidden": (16,)}


@pytest.mark.parametrize("gates", [{}, {"gate1_fields": ["a", "c"], "gate2_fields": []},
                                   {"feature_gating": False}])
def test_shapes_for_each_gate_context(gates):
    torch.manual_seed(0)
    toy.check_shape(build_model("finalmlp", toy.feature_map(), **{**SMALL, **gates}))


def test_defaults_build_and_gates_start_at_one():
    torch.manual_seed(0)
    model = build_model("finalmlp", toy.feature_map())
    toy.check_shape(model)
    emb = model.embedding(to_tensors(toy.arrays(5, 0)))
    for gate in model.gates:     # 2·σ(0) = 1: each stream starts as a plain MLP
        torch.testing.assert_close(gate(emb), emb.flatten(1))


def test_bilinear_fusion_matches_the_formula():
    torch.manual_seed(0)
    fusion = BilinearFusion(6, 4, num_heads=2)
    o1, o2 = torch.randn(3, 6), torch.randn(3, 4)
    want = o1 @ fusion.w1.weight[0] + o2 @ fusion.w2.weight[0]
    for h in range(2):
        want = want + ((o1[:, 3 * h:3 * h + 3] @ fusion.w3[h]) * o2[:, 2 * h:2 * h + 2]).sum(-1)
    torch.testing.assert_close(fusion(o1, o2), want)


def test_bad_parameters_are_model_errors():
    with pytest.raises(ModelError, match="num_heads=3 must divide"):
        build_model("finalmlp", toy.feature_map(), **{**SMALL, "num_heads": 3})
    with pytest.raises(ModelError, match=r"gate field\(s\) \['nope'\]"):
        build_model("finalmlp", toy.feature_map(), gate1_fields=["nope"])


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = build_model("finalmlp", toy.feature_map(), gate1_fields=["a"], **SMALL)
    toy.check_round_trip(model, tmp_path / "run")


def test_learns_an_interaction_lr_cannot():
    torch.manual_seed(2)
    model = build_model("finalmlp", toy.feature_map(), gate1_fields=["a"], gate2_fields=["b"],
                        **SMALL)
    got, lr = toy.fit_auc(model), toy.lr_auc()
    print(f"finalmlp toy AUC {got:.4f} (LR {lr:.4f}), {toy.n_params(model)} parameters")
    assert lr < 0.6
    assert got > 0.8
