"""A hand-made feature map and arrays for model and trainer tests (no world needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ToyField:
    name: str
    kind: str
    vocab_size: int = 0
    max_len: int = 0
    share_vocab_with: str | None = None


class ToyFeatureMap:
    """Duck-types the FeatureMap surface models use: ``.fields``."""

    def __init__(self, n_items: int = 50, n_users: int = 40):
        self.fields = [
            ToyField("user_id", "categorical", n_users + 2),
            ToyField("note_id", "categorical", n_items + 2),
            ToyField("hist_note_id", "sequence", n_items + 2, 5, share_vocab_with="note_id"),
            ToyField("quality", "numeric"),
        ]


def toy_arrays(n: int, seed: int, n_items: int = 50, n_users: int = 40) -> dict[str, np.ndarray]:
    """Clicks driven by the item id (even items good) and a numeric feature: LR can fit it."""
    rng = np.random.default_rng(seed)
    note = rng.integers(2, n_items + 2, n)
    user = rng.integers(2, n_users + 2, n)
    hist = rng.integers(0, n_items + 2, (n, 5))
    quality = rng.normal(size=n).astype(np.float32)
    logit = np.where(note % 2 == 0, 1.5, -1.5) + 1.0 * quality
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return {"user_id": user, "note_id": note, "hist_note_id": hist, "quality": quality,
            "click": click, "_user_id": user, "_scenario": (user % 4).astype(np.int8),
            "_ts": np.arange(n, dtype=np.int64) * 60}



# -- a pairwise-interaction problem over a real FeatureMap (for the CTR zoo) -----------

CROSS_VALUES = 8       # values per categorical field: ids 2..9


def cross_feature_map():
    """A real ``FeatureMap`` (saveable, so runs round-trip) for ``cross_arrays``.

    Fields: categorical a, b, c, d (8 values each), numeric x, multi-valued tags
    (vocab 6, 3 slots) and a sequence hist sharing c's vocabulary (4 slots).
    """
    from snsrec.data.features import (
        CategoricalSpec,
        FeatureMap,
        FeatureSpec,
        MultiSpec,
        NumericSpec,
        SequenceSpec,
        Vocab,
    )

    spec = FeatureSpec(
        categorical=[CategoricalSpec(name=n, column=f"events.{n}") for n in "abcd"],
        numeric=[NumericSpec(name="x", column="events.x")],
        multi=[MultiSpec(name="tags", column="notes.tags", max_len=3)],
        sequences=[SequenceSpec(name="hist", max_len=4, share_vocab_with="c")],
        text=[], labels=["click"])
    vocabs = {n: Vocab("int", list(range(CROSS_VALUES))) for n in "abcd"}
    vocabs["tags"] = Vocab("int", list(range(6)))
    return FeatureMap(spec, vocabs, {"x": {"mean": 0.0, "std": 1.0}})


def cross_arrays(n: int, seed: int, strength: float = 3.0) -> dict[str, np.ndarray]:
    """Clicks driven only by the parity of a + b (an XOR of two fields).

    Every value of a (or b) alone has a click rate of exactly one half, so a
    model without field interactions (LR) cannot beat AUC 0.5; a pairwise one
    can reach the Bayes AUC (about 0.95 at ``strength`` 3).
    """
    rng = np.random.default_rng(seed)
    ids = {k: rng.integers(2, CROSS_VALUES + 2, n).astype(np.int32) for k in "abcd"}
    same = (ids["a"] + ids["b"]) % 2 == 0
    logit = np.where(same, strength, -strength)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    tags = rng.integers(0, 8, (n, 3)).astype(np.int32)
    hist = rng.integers(0, CROSS_VALUES + 2, (n, 4)).astype(np.int32)
    users = rng.integers(0, 50, n)
    return {**ids, "x": rng.normal(size=n).astype(np.float32), "tags": tags, "hist": hist,
            "click": click, "_user_id": users, "_scenario": (users % 4).astype(np.int8)}


def membership_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """``cross_arrays`` with clicks at log-odds ±3 by whether c (the target of ``hist``,
    which holds c's ids) is among the history's ids: target attention's problem. Every
    field alone is uninformative, so LR stays near AUC 0.5."""
    arrays = cross_arrays(n, seed)
    rng = np.random.default_rng(seed + 100)
    inside = (arrays["hist"] == arrays["c"][:, None]).any(1)
    logit = np.where(inside, 3.0, -3.0)
    arrays["click"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return arrays


def fit_membership_auc(name: str, **params) -> float:
    """Validation AUC of a model trained (shared Trainer) on ``membership_arrays``."""
    import torch

    from snsrec.data.batches import TensorBatches
    from snsrec.eval.metrics import auc
    from snsrec.models.registry import build_model
    from snsrec.train.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model(name, cross_feature_map(), **params)
    train, valid = membership_arrays(6000, 1), membership_arrays(2000, 2)
    trainer = Trainer(TrainConfig(epochs=8, batch_size=256, lr=1e-2, early_stop_patience=2,
                                  threads=1))
    trainer.fit(model, TensorBatches({k: v for k, v in train.items() if not k.startswith("_")},
                                     256, shuffle=True), valid)
    return auc(valid["click"], trainer.predict(model, valid))


def conversion_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """``cross_arrays`` relabelled as click → conversion: pCTR by a's parity (0.7 / 0.15),
    pCVR by b's parity (0.6 / 0.1), ``convert`` only on a click; ``_p_cvr`` is the truth."""
    arrays = cross_arrays(n, seed)
    rng = np.random.default_rng(seed + 200)
    p_ctr = np.where(arrays["a"] % 2 == 0, 0.7, 0.15)
    p_cvr = np.where(arrays["b"] % 2 == 0, 0.6, 0.1)
    click = rng.random(n) < p_ctr
    arrays["click"] = click.astype(np.float32)
    arrays["convert"] = (click & (rng.random(n) < p_cvr)).astype(np.float32)
    arrays["_p_cvr"] = p_cvr
    return arrays


def vector_feature_map(n: int = 30, text: int = 5, cover: int = 8, seed: int = 0):
    """A real FeatureMap with one vector field, ``note_vec`` (``n`` notes: ``text`` normal
    dims then ``cover`` dims in [0, 1]; rows 0 and 1 zero), and ``position``: what AdSEE
    needs."""
    from snsrec.data.features import CategoricalSpec, FeatureMap, FeatureSpec, VectorSpec, Vocab

    rng = np.random.default_rng(seed)
    vectors = np.zeros((n + 2, text + cover), np.float32)
    vectors[2:, :text] = rng.normal(size=(n, text))
    vectors[2:, text:] = rng.random((n, cover))
    spec = FeatureSpec(categorical=[CategoricalSpec(name="position", column="events.position")],
                       numeric=[], multi=[], sequences=[], text=[], labels=["click"],
                       vectors=[VectorSpec(name="note_vec", path="unused.parquet")])
    return FeatureMap(spec, {"note_vec": Vocab("int", list(range(n))),
                             "position": Vocab("int", list(range(3)))}, {},
                      {"note_vec": vectors})


def vector_arrays(n: int, seed: int, notes: int = 30) -> dict[str, np.ndarray]:
    """Rows over ``vector_feature_map(notes)``: note ids, positions and clicks."""
    rng = np.random.default_rng(seed)
    return {"note_vec": rng.integers(2, notes + 2, n), "position": rng.integers(2, 5, n),
            "click": rng.integers(0, 2, n).astype(np.float32)}
