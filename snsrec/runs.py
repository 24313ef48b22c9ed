"""The run directory (DESIGN.md): what ``snsrec train`` writes and everything else reads.

``save_run`` writes a complete run atomically: ``config.yaml`` (the resolved
config with the model's registry name and parameters), the ``FeatureMap``
(``feature_map.json``) or a retrieval ``Corpus`` (``corpus.parquet``),
``model.safetensors`` (weights, with the model's name and parameters in its
metadata — no pickle), ``log.jsonl`` (one line per epoch) and ``metrics.json``
last, so its presence marks a complete run. ``load_run`` rebuilds the model from
those files alone, as a ``Run`` a notebook can use directly: ``run.predict(events)``
(rankers), ``run.recommend(user_ids, k, scenario=)`` and ``run.encode_items()``
(retrievers) — see docs/api.md.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel
from torch import nn

from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.io import (
    atomic_dir,
    jsonable,
    out_dir,
    read_json,
    settle,
    write_json,
    write_jsonl,
    write_text,
)
from snsrec.train.trainer import checkpoint_dir_of

# What a run directory written before the .snsrec mark holds (snsrec.io: legacy): the
# metrics of a finished run, or the checkpoint of one cut short.
RUN_LEGACY = ("metrics.json", "checkpoint/state.json")


@dataclass
class Run:
    """A trained model with what it was built over (a ``FeatureMap`` for rankers, a
    ``Corpus`` for retrievers), its resolved config and its metrics."""

    model: nn.Module
    feature_map: Any
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``ranking``, ``multitask``, ``retriever`` or ``counting`` (snsrec.models.base)."""
        return self.model.family

    def _need(self, families: tuple[str, ...], call: str) -> None:
        if self.family not in families:
            name = self.config.get("model", {}).get("name", "?")
            raise ModelError(f"run.{call}: a {self.family} model ({name}) has no {call}; it is "
                             f"for {' / '.join(families)} runs")

    def tables(self) -> Any:
        """The data set the run was trained on (its config's ``data`` and ``cache``)."""
        from snsrec.data.datasets import DEFAULT_CACHE, resolve_dataset
        from snsrec.data.tables import load_tables

        data = self.config.get("data")
        if not data:
            raise ConfigError("this run's config.yaml names no data; pass tables= (e.g. "
                              "snsrec.data.tables.load_tables(PATH))")
        return load_tables(resolve_dataset(data, Path(self.config.get("cache") or
                                                      DEFAULT_CACHE)))

    def predict(self, events: Any, tables: Any = None) -> np.ndarray:
        """P(click) of each row of ``events`` (a Polars frame shaped like the data's
        events: ``user_id``, ``note_id``, ``scenario``, ``ts``, ... — labels not needed),
        its features looked up in ``tables`` (the run's own data by default). A ranking
        or multi-task run."""
        import polars as pl

        from snsrec.train.trainer import TrainConfig, Trainer

        self._need(("ranking", "multitask"), "predict")
        frame = events if isinstance(events, (pl.DataFrame, pl.LazyFrame)) else \
            pl.DataFrame(events)
        arrays = self.feature_map.transform(self.tables() if tables is None else tables,
                                            frame)
        inputs = {k: v for k, v in arrays.items() if not k.startswith("_")}
        return Trainer(TrainConfig()).predict(self.model, inputs)

    def encode_items(self, note_ids: Any = None) -> np.ndarray:
        """``[n, dim]`` item-tower vectors of ``note_ids`` (every corpus note, in the
        corpus's sorted order, by default). A two-tower retrieval run."""
        import torch

        from snsrec.data.sequences import rows_in
        from snsrec.eval.protocols import corpus_vectors

        self._need(("retriever",), "encode_items")
        corpus = self.feature_map
        with torch.no_grad():
            if note_ids is None:
                return corpus_vectors(self.model, len(corpus)).numpy()
            rows, known = rows_in(corpus.note_ids, note_ids)
            if not known.all():
                raise DataError(f"run.encode_items: note ids not in the run's corpus: "
                                f"{np.asarray(note_ids)[~known][:5].tolist()}")
            return self.model.item_vectors(torch.from_numpy(rows)).numpy()

    def recommend(self, user_ids: Any, k: int = 10, *, scenario: str = "feed",
                  at: int | None = None, tables: Any = None, exclude_seen: bool = True
                  ) -> dict[int, list[int]]:
        """The top ``k`` note ids for each user in ``scenario``, best first, from the
        user's clicks and searches in ``tables`` (the run's own data by default) before
        ``at`` (epoch seconds; after the last event by default). Notes created after
        ``at`` are not candidates; with ``exclude_seen`` neither are notes the user
        clicked. Every note of the corpus is scored (no index): the full-corpus
        protocol's ranking (``snsrec.eval.protocols``); serving's fresh-note channel
        is not blended in. A retrieval run (trained or counted)."""
        import torch

        from snsrec.data.batches import to_tensors
        from snsrec.data.schema import SCENARIOS
        from snsrec.data.sequences import NOTE, BehaviourLog, SequenceConfig, history_arrays
        from snsrec.eval.protocols import SCORE_BUDGET, corpus_scores, corpus_vectors

        self._need(("retriever", "counting"), "recommend")
        if scenario not in SCENARIOS:
            raise ConfigError(f"run.recommend: scenario {scenario!r}; use one of "
                              f"{', '.join(SCENARIOS)}")
        if k < 1:
            raise ConfigError(f"run.recommend: k={k}; ask for at least 1 note")
        corpus = self.feature_map
        log = BehaviourLog.from_tables(self.tables() if tables is None else tables,
                                       corpus.note_ids)
        users = np.asarray(user_ids, np.int64).reshape(-1)
        t = int(at) if at is not None else (int(log.ts.max()) + 1 if len(log) else 0)
        times = np.full(len(users), t, np.int64)
        seq = SequenceConfig.model_validate(self.config.get("retrieval", {}).get("sequence", {}))
        rows = history_arrays(log, users, times, seq)
        rows.update(target_scenario=np.full(len(users), SCENARIOS.index(scenario), np.int8),
                    query_ts=times)
        model = self.model.eval()
        clicked = (log.kind == NOTE) & (log.ts < t)
        top = np.empty((len(users), min(k, len(corpus))), np.int64)
        finite = np.zeros(top.shape, bool)
        # [users × corpus] scores a chunk at a time, as the evaluation protocol bounds them.
        step = max(1, SCORE_BUDGET // max(len(corpus), 1))
        with torch.no_grad():
            items = None if self.family == "counting" else corpus_vectors(model, len(corpus))
            for s in range(0, len(users), step):
                chunk = {key: v[s:s + step] for key, v in rows.items()}
                scores = corpus_scores(model, to_tensors(chunk, "cpu"), items).double().numpy()
                scores[:, corpus.created > t] = -np.inf
                for i, u in enumerate(users[s:s + step].tolist() if exclude_seen else []):
                    scores[i, log.item[clicked & (log.user == u)]] = -np.inf
                order = np.argsort(-scores, axis=1, kind="stable")[:, :top.shape[1]]
                top[s:s + step] = order
                finite[s:s + step] = np.isfinite(np.take_along_axis(scores, order, 1))
        return {int(u): corpus.note_ids[top[i][finite[i]]].astype(int).tolist()
                for i, u in enumerate(users.tolist())}


def _config_dict(config: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    return dict(config)


def save_run(run_dir: str | Path, model: nn.Module, feature_map: Any,
             config: BaseModel | dict[str, Any] | None, metrics: dict[str, Any],
             history: list[dict[str, Any]] | None = None,
             extra: Callable[[Path], None] | None = None, force: bool = False) -> Path:
    """Write a complete run directory atomically (a crash leaves the old one or none); an
    existing ``run_dir`` is replaced when it is snsrec's (``RUN_LEGACY``) or with ``force``.

    ``model.safetensors`` carries the model's registry name and parameters in
    its metadata, so ``load_run`` needs nothing else to rebuild it. ``extra``
    writes more files (a report) into the directory before it is moved into
    place; ``metrics.json`` is written last, so its presence marks a complete run.
    """
    from safetensors.torch import save_file

    name = getattr(model, "model_name", None)
    if name is None:
        raise ModelError(f"{type(model).__name__} is not a registered model; build it with "
                         "snsrec.models.registry.build_model")
    params = getattr(model, "model_params", {})
    resolved = {"model": {"name": name, "params": params}, **_config_dict(config)}
    run_dir = Path(run_dir)
    with atomic_dir(run_dir, "train", force=force, legacy=RUN_LEGACY) as tmp:
        write_text(tmp / "config.yaml", yaml.safe_dump(resolved, sort_keys=False,
                                                       allow_unicode=True))
        # The FeatureMap (feature_map.json), or a retrieval Corpus (corpus.parquet).
        feature_map.save(tmp / getattr(feature_map, "FILE", "feature_map.json"))
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"),
                  metadata={"model_name": name, "model_params": json.dumps(params)})
        write_jsonl(tmp / "log.jsonl", history or [])
        if extra is not None:
            extra(tmp)
        write_json(tmp / "metrics.json", jsonable(metrics))
    return run_dir


def load_run(run_dir: str | Path) -> Run:
    """Rebuild a saved model by its registry name and load its weights (no pickle)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from snsrec.data.features import FeatureMap
    from snsrec.data.sequences import Corpus
    from snsrec.models.registry import build_model

    run_dir = settle(run_dir)       # a replace cut short by a kill: its old copy comes back
    weights = run_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights}: not found; is {run_dir} a run directory (snsrec train)?")
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{weights}: unreadable safetensors file ({e}); re-run training") from None
    if "model_name" not in meta:
        raise ModelError(f"{weights}: no model name in its metadata; save it with save_run")
    if (run_dir / Corpus.FILE).is_file():                   # a retrieval run
        feature_map: Any = Corpus.load(run_dir / Corpus.FILE)
    else:
        feature_map = FeatureMap.load(run_dir / "feature_map.json")
    model = build_model(meta["model_name"], feature_map, **json.loads(meta.get("model_params")
                                                                      or "{}"))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        source = Corpus.FILE if isinstance(feature_map, Corpus) else "feature_map.json"
        raise ModelError(f"{weights}: weights do not fit model '{meta['model_name']}' on "
                         f"{run_dir / source} ({first}); was the run dir mixed?") from None
    model.eval()
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) \
        if (run_dir / "config.yaml").is_file() else {}
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    return Run(model=model, feature_map=feature_map, config=config or {}, metrics=metrics)


# -- a run's life: resumed, or started afresh over an old directory ------------------

def is_complete(run_dir: Path) -> bool:
    """A finished run: its ``metrics.json`` is written last."""
    return (Path(run_dir) / "metrics.json").is_file()


def check_resume(run_dir: Path) -> None:
    """``--resume``: refused (one line) when the run is complete or has no checkpoint."""
    if is_complete(run_dir):
        raise ModelError(f"{run_dir}: this run is already complete (metrics.json); nothing to "
                         f"resume; train without --resume to run it again")
    phases = [run_dir / "checkpoint", *sorted(run_dir.glob("checkpoint-*"))]   # fit_phases
    if all(checkpoint_dir_of(p) is None for p in phases):
        raise ModelError(f"{run_dir / 'checkpoint'}: no checkpoint to resume from; train "
                         f"without --resume")


def start_fresh(run_dir: Path, force: bool = False) -> None:
    """A new run over an old directory (snsrec's, or any with ``force``): marked as the run's,
    incomplete from now on, its checkpoint gone."""
    out_dir(run_dir, "train", force=force, legacy=RUN_LEGACY)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    for p in [*run_dir.glob("checkpoint*"), *run_dir.glob(".checkpoint*.old")]:
        shutil.rmtree(p, ignore_errors=True)
