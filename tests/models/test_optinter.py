"""OptInter: both phases (search, then re-train the fixed architecture), save/load, errors."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from snsrec.data.batches import TensorBatches
from snsrec.errors import ModelError
from snsrec.models.ranking.optinter import CHOICES, search_architecture
from snsrec.models.registry import build_model
from snsrec.train.trainer import TrainConfig

_SPEC = importlib.util.spec_from_file_location("ctr_toy", Path(__file__).with_name("ctr_toy.py"))
toy = sys.modules.setdefault("snsrec_tests_ctr_toy", importlib.util.module_from_spec(_SPEC))
if not hasattr(toy, "arrays"):
    _SPEC.loader.exec_module(toy)

SMALL = {"embedding_dim": 8, "hidden_units": (32, 32)}
PAIRS = 15          # 6 fields: a, b, c, d (categorical), x (numeric), tags (multi)


def _arch(default: str = "naive", **choices: str) -> dict[str, str]:
    arch = dict.fromkeys(build_model("optinter", toy.feature_map()).keys, default)
    return {**arch, **{k.replace("_", "|"): v for k, v in choices.items()}}


def test_shapes_in_both_phases_and_hashed_memorising():
    torch.manual_seed(0)
    search = build_model("optinter", toy.feature_map())
    toy.check_shape(search)
    assert search.arch_weights().shape == (PAIRS, 3)
    # Pairs with the numeric or multi-valued field cannot be memorised: weight exactly 0.
    w = search.arch_weights(sample=True)
    assert w[[k for k, key in enumerate(search.keys) if "x" in key.split("|")], 0].eq(0).all()
    assert set(search.choices()) == set(search.keys) and len(search.keys) == PAIRS
    # 14 * 14 = 196 cells > 50 buckets: a|b is hashed into 50 rows; c|d (64 cells) too.
    fixed = build_model("optinter", toy.feature_map(), memorise_buckets=50,
                        architecture=_arch("factorise", a_b="memorise", c_d="memorise",
                                           x_tags="naive"))
    toy.check_shape(fixed, n=200)
    assert fixed.cross.table.num_embeddings == 100


def test_architecture_errors_name_the_pair():
    fmap = toy.feature_map()
    with pytest.raises(ModelError, match="lacks pair"):
        build_model("optinter", fmap, architecture={"a|b": "memorise"})
    with pytest.raises(ModelError, match="'a\\|x' cannot be memorised"):
        build_model("optinter", fmap, architecture=_arch(a_x="memorise"))
    with pytest.raises(ModelError, match="'a\\|zz'"):
        build_model("optinter", fmap, architecture={**_arch(), "a|zz": "naive"})
    with pytest.raises(ModelError, match="leave 'architecture' unset"):
        search_architecture(fmap, [], {}, TrainConfig(), architecture=_arch())


def test_search_then_retrain_learns_the_crossed_pair():
    train, valid = toy.arrays(6000, 1), toy.arrays(2000, 2)
    found = []
    for seed in range(3):
        batches = TensorBatches(train, 256, shuffle=True, seed=seed)
        config = TrainConfig(epochs=4, batch_size=256, lr=0.01, seed=seed, threads=1)
        found.append(search_architecture(toy.feature_map(), batches, valid, config, **SMALL))
    crossed = [arch[toy.CROSSED] for arch in found]
    print("a|b chosen:", crossed)
    assert all(set(arch.values()) <= set(CHOICES) for arch in found)
    assert sum(c != "naive" for c in crossed) > sum(c == "naive" for c in crossed)
    # Re-train from scratch with the searched architecture, fixed.
    torch.manual_seed(0)
    model = build_model("optinter", toy.feature_map(), architecture=found[0], **SMALL)
    search = build_model("optinter", toy.feature_map(), **SMALL)
    got, lr = toy.fit_auc(model), toy.lr_auc()
    print(f"optinter toy AUC {got:.4f} (LR {lr:.4f}), {toy.n_params(model)} parameters "
          f"(search model {toy.n_params(search)})")
    assert lr < 0.6
    assert got > 0.8


def test_finalise_fixes_the_argmax_and_keeps_the_other_params():
    search = build_model("optinter", toy.feature_map(), **SMALL)
    with torch.no_grad():
        search.arch_logits[:] = torch.tensor([0.0, 0.0, 1.0])           # naive everywhere
        search.arch_logits[search.keys.index(toy.CROSSED)] = torch.tensor([0.0, 1.0, 0.0])
    model = search.finalise()
    assert model.model_params == {**SMALL, "architecture": _arch(a_b="factorise")}
    assert not model.searching and model.cross is None and len(model.fac_left) == 1


def test_save_load_round_trip_keeps_the_architecture(tmp_path):
    torch.manual_seed(1)
    arch = _arch("factorise", a_b="memorise", c_x="naive")
    model = build_model("optinter", toy.feature_map(), architecture=arch, **SMALL)
    loaded = toy.check_round_trip(model, tmp_path / "run")
    assert loaded.model_params["architecture"] == arch
    search = build_model("optinter", toy.feature_map(), **SMALL)
    toy.check_round_trip(search, tmp_path / "search")       # the search phase saves too
