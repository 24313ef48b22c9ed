"""Peer CTR libraries run on our arrays: torch-rechub and DeepCTR-Torch.

A benchmark is only a comparison when every library sees the same rows with
the same model. ``CtrArrays`` is the common ground: categorical fields as int
ids ``0..vocab-1`` (snsrec's FeatureMap ids: 0 = pad, 1 = OOV) plus a float
``label``; every library takes that without further preprocessing.

``run_peer`` builds the peer's own DeepFM / DCNv2 through its public API,
trains it with the peer's own training loop (``CTRTrainer.train_one_epoch`` /
``BaseModel.fit``) and scores it with the peer's own ``predict``; only the
timing and the metrics (``snsrec.eval.metrics``) are ours.

Model configuration shared with snsrec's side (``bench/throughput.py``):

- embedding ``embedding_dim`` per field, MLP ``mlp`` with ReLU, BatchNorm and
  no dropout — torch-rechub's MLP always has BatchNorm, so the others switch it
  on too;
- DeepFM: first-order term + FM + MLP on the concatenated embeddings;
- DCNv2: full-rank (matrix) cross network of ``CROSS_LAYERS`` layers in
  parallel with the MLP, concatenated into one output layer (DeepCTR-Torch's
  ``DCN(cross_parameterization="matrix")``; torch-rechub's
  ``DCNv2(model_structure="parallel", use_low_rank_mixture=False)``);
- Adam with learning rate ``lr``, no weight decay, no L2 penalty (both peers
  default to small penalties, which snsrec's run does not have).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import random
import resource
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from snsrec.errors import ConfigError, DataError
from snsrec.eval.metrics import auc, logloss

PEERS: tuple[str, ...] = ("torch-rechub", "deepctr-torch")
MODELS: tuple[str, ...] = ("deepfm", "dcnv2")
CROSS_LAYERS = 3
LABEL = "label"
_MODULES = {"torch-rechub": "torch_rechub", "deepctr-torch": "deepctr_torch"}
_INSTALL = "install the bench extra: make bench (or pip install -c constraints.txt '.[bench]')"


@dataclass
class CtrArrays:
    """Plain categorical CTR data every library can take."""

    train: dict[str, np.ndarray]    # field -> int ids (0..vocab-1), plus "label" (float32 0/1)
    test: dict[str, np.ndarray]
    vocab_sizes: dict[str, int]

    @property
    def fields(self) -> list[str]:
        return list(self.vocab_sizes)

    @property
    def n_train(self) -> int:
        return len(self.train[LABEL])

    @property
    def n_test(self) -> int:
        return len(self.test[LABEL])

    def save(self, root: str | os.PathLike) -> None:
        """One ``.npy`` per array (children memory-map them; no pickle)."""
        from snsrec.io import write_json

        root = os.fspath(root)
        for split in ("train", "test"):
            for key, arr in getattr(self, split).items():
                np.save(os.path.join(root, f"{split}.{key}.npy"), arr)
        write_json(os.path.join(root, "vocab_sizes.json"), self.vocab_sizes)

    @classmethod
    def load(cls, root: str | os.PathLike) -> CtrArrays:
        from snsrec.io import read_json

        root = os.fspath(root)
        vocab = {k: int(v) for k, v in read_json(os.path.join(root, "vocab_sizes.json")).items()}
        splits = {s: {k: np.load(os.path.join(root, f"{s}.{k}.npy"))
                      for k in [*vocab, LABEL]} for s in ("train", "test")}
        return cls(splits["train"], splits["test"], vocab)


def ctr_arrays_from_features(arrays_train: dict[str, np.ndarray],
                             arrays_test: dict[str, np.ndarray], feature_map: Any,
                             fields: Sequence[str] | None = None,
                             label: str = "click") -> CtrArrays:
    """CtrArrays from snsrec FeatureMap outputs: the categorical fields (or exactly ``fields``)."""
    by_name = {f.name: f for f in feature_map.fields}
    names = list(fields) if fields is not None else [
        f.name for f in feature_map.fields if f.kind == "categorical"]
    for name in names:
        f = by_name.get(name)
        if f is None or f.kind != "categorical":
            kind = "missing" if f is None else f"of kind '{f.kind}'"
            raise DataError(f"field '{name}' is {kind}; CtrArrays takes categorical FeatureMap "
                            f"fields only: {', '.join(n for n, g in by_name.items() if g.kind == 'categorical')}")
    if not names:
        raise DataError("the feature map has no categorical fields to benchmark")

    def pick(arrays: dict[str, np.ndarray], split: str) -> dict[str, np.ndarray]:
        if label not in arrays:
            raise DataError(f"{split} arrays lack the label '{label}'; transform with a "
                            f"FeatureMap whose labels include it")
        out = {n: np.ascontiguousarray(arrays[n], dtype=np.int32) for n in names}
        out[LABEL] = np.ascontiguousarray(arrays[label], dtype=np.float32)
        return out

    return CtrArrays(pick(arrays_train, "train"), pick(arrays_test, "test"),
                     {n: int(by_name[n].vocab_size) for n in names})


def peer_available(name: str) -> bool:
    """Whether the peer library is importable (the ``bench`` extra installs both)."""
    module = _MODULES.get(name)
    return module is not None and importlib.util.find_spec(module) is not None


def check_peers(names: Sequence[str]) -> None:
    """ConfigError naming the first unknown or uninstalled peer, before any work."""
    for name in names:
        if name not in _MODULES:
            raise ConfigError(f"unknown peer '{name}'; choose from {', '.join(PEERS)}")
        if not peer_available(name):
            raise ConfigError(f"peer '{name}' is not installed; {_INSTALL}")


def check_model(model: str) -> None:
    if model not in MODELS:
        raise ConfigError(f"unknown benchmark model '{model}'; choose from {', '.join(MODELS)}")


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Peers print devices, summaries and tqdm bars on every call; keep the benchmark's clean."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss`` is kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def n_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def result(library: str, model: str, data: CtrArrays, train_s: float, infer_s: float,
           p: np.ndarray, params: int) -> dict[str, Any]:
    """One library × model row: throughput from the timed sections, metrics on the test split."""
    y = data.test[LABEL]
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    return {"library": library, "model": model, "train_rows": data.n_train,
            "test_rows": data.n_test, "train_s": train_s, "infer_s": infer_s,
            "train_samples_per_s": data.n_train / max(train_s, 1e-9),
            "infer_samples_per_s": data.n_test / max(infer_s, 1e-9),
            "test_auc": auc(y, p), "test_logloss": logloss(y, p), "params": params,
            "peak_rss_gb": peak_rss_gb()}


# ----------------------------------------------------------------------------- torch-rechub


def _run_rechub(model: str, data: CtrArrays, embedding_dim: int, mlp: Sequence[int],
                batch_size: int, epochs: int, lr: float) -> dict[str, Any]:
    from torch.utils.data import DataLoader
    from torch_rechub.basic.features import SparseFeature
    from torch_rechub.models.ranking import DCNv2, DeepFM
    from torch_rechub.trainers import CTRTrainer
    from torch_rechub.utils.data import TorchDataset

    feats = [SparseFeature(n, vocab_size=v, embed_dim=embedding_dim)
             for n, v in data.vocab_sizes.items()]
    mlp_params = {"dims": list(mlp), "dropout": 0.0, "activation": "relu"}
    if model == "deepfm":
        net = DeepFM(deep_features=feats, fm_features=feats, mlp_params=mlp_params)
    else:
        net = DCNv2(features=feats, n_cross_layers=CROSS_LAYERS, mlp_params=mlp_params,
                    model_structure="parallel", use_low_rank_mixture=False)
    x_train = {n: data.train[n] for n in data.fields}
    x_test = {n: data.test[n] for n in data.fields}
    # The library's own data path: a Dataset with per-row __getitem__ and collate.
    train_dl = DataLoader(TorchDataset(x_train, data.train[LABEL]), batch_size=batch_size,
                          shuffle=True)
    test_dl = DataLoader(TorchDataset(x_test, data.test[LABEL]), batch_size=batch_size,
                         shuffle=False)
    with tempfile.TemporaryDirectory(prefix="snsrec-rechub-") as tmp, quiet_output():
        trainer = CTRTrainer(net, optimizer_params={"lr": lr, "weight_decay": 0.0},
                             n_epoch=epochs, device="cpu", model_path=tmp)
        t0 = time.perf_counter()
        for _ in range(epochs):      # CTRTrainer.fit minus validation and checkpoint saving
            trainer.train_one_epoch(train_dl)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        p = np.asarray(trainer.predict(net, test_dl))
        infer_s = time.perf_counter() - t0
    return result("torch-rechub", model, data, train_s, infer_s, p, n_params(net))


# ----------------------------------------------------------------------------- DeepCTR-Torch


def import_deepctr() -> None:
    """Import DeepCTR-Torch without its import-time network call.

    ``deepctr_torch/__init__.py`` runs ``utils.check_version``, which starts a
    thread that GETs pypi.python.org (and needs ``requests``, which the wheel
    does not declare). That module holds nothing else, so a no-op stands in for
    it: snsrec downloads nothing at run time.
    """
    if "deepctr_torch" in sys.modules:
        return
    stub = types.ModuleType("deepctr_torch.utils")
    stub.check_version = lambda version: None  # type: ignore[attr-defined]
    sys.modules.setdefault("deepctr_torch.utils", stub)
    importlib.import_module("deepctr_torch")


def _run_deepctr(model: str, data: CtrArrays, embedding_dim: int, mlp: Sequence[int],
                 batch_size: int, epochs: int, lr: float, seed: int) -> dict[str, Any]:
    import_deepctr()
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import DCN, DeepFM

    cols = [SparseFeat(n, vocabulary_size=v, embedding_dim=embedding_dim)
            for n, v in data.vocab_sizes.items()]
    common = {"dnn_hidden_units": tuple(mlp), "l2_reg_linear": 0.0, "l2_reg_embedding": 0.0,
              "l2_reg_dnn": 0.0, "dnn_dropout": 0.0, "dnn_use_bn": True, "seed": seed,
              "task": "binary", "device": "cpu"}
    if model == "deepfm":
        net = DeepFM(cols, cols, **common)
    else:
        net = DCN(cols, cols, cross_num=CROSS_LAYERS, cross_parameterization="matrix",
                  l2_reg_cross=0.0, **common)
    net.compile(torch.optim.Adam(net.parameters(), lr=lr), "binary_crossentropy")
    x_train = {n: data.train[n] for n in data.fields}
    x_test = {n: data.test[n] for n in data.fields}
    with quiet_output():
        t0 = time.perf_counter()
        net.fit(x_train, data.train[LABEL], batch_size=batch_size, epochs=epochs, verbose=0,
                shuffle=True)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        p = net.predict(x_test, batch_size=batch_size)
        infer_s = time.perf_counter() - t0
    return result("deepctr-torch", model, data, train_s, infer_s, p, n_params(net))


def run_peer(name: str, model: str, data: CtrArrays, *, embedding_dim: int = 16,
             mlp: Sequence[int] = (400, 400, 400), batch_size: int = 4096, epochs: int = 1,
             lr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Train ``model`` ("deepfm" | "dcnv2") with peer ``name`` on ``data``; time and score it.

    Returns ``library, model, train_samples_per_s, infer_samples_per_s, test_auc,
    test_logloss, params, peak_rss_gb`` (this process's peak so far: run each
    peer in its own process for a clean number) plus the timed seconds and rows.
    """
    check_peers([name])
    check_model(model)
    # Seeded the way the peers' own examples seed (no deterministic-algorithms mode,
    # which snsrec's trainer switches on for itself): each library runs as its users run it.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # Peers warn about deprecated torch calls on every batch; the report is not the place.
        warnings.simplefilter("ignore")
        if name == "torch-rechub":
            return _run_rechub(model, data, embedding_dim, mlp, batch_size, epochs, lr)
        return _run_deepctr(model, data, embedding_dim, mlp, batch_size, epochs, lr, seed)

