"""LLM moderation of notes, its fast n-gram baseline, and their comparison.

`snsrec llm moderate --model M --notes PATH --out PATH` asks a causal LM the
Note-Moderation question of the task suite (harm type among ``none`` and the
world's harm types) for every note and reads the answer off the next-token
distribution: the probability of each label is that of its first token,
renormalised over the labels (the labels' first tokens must differ), so
``p_harmful = 1 − p(none)`` and ``harm_type`` is the likeliest harmful label.
Notes go in left-padded batches; every chunk of notes is written as a part file
as soon as it is scored, so an interrupted run resumes where it stopped, and
the output Parquet (``note_id, p_harmful, harm_type, p_<label>...``) appears
only when every note is scored. Notes/s is reported.

The baseline is a hashed word + character n-gram logistic regression (a
multinomial one over the same labels, the n-grams of the hash text tower, summed),
trained with Adagrad on the training notes (about a minute on one core for the
`small` world's 16k notes).

`snsrec bench moderation --world DIR --model M` trains the baseline on the
world's training notes (split as the task suite), scores the test notes with
both and reports precision / recall / F1 of "harmful" at p ≥ 0.5, the harm-type
accuracy on the harmful notes, ROC AUC and notes/s (``moderation.json`` / ``.md``).
Its notes are split by the suite's note hash, not by the suite's task files: every
test note is scored, at the world's mix of harm — the precision a moderator has in
use. The suite's Note-Moderation test file, sampled half harmful so that answering
``none`` does not pass for a score, is a subset of these test notes, so no note
the n-gram baseline trains on is in it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from snsrec import __version__
from snsrec.data.schema import HARM_TYPES
from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.io import (
    atomic_dir,
    atomic_path,
    check_out,
    check_out_file,
    parquet_columns,
    read_json,
    write_json,
)
from snsrec.progress import Progress, echo
from snsrec.records import write_record
from snsrec.text.encoders import Ragged

HARM_NONE = "none"
LABELS = (HARM_NONE, *HARM_TYPES)
CHUNK = 256


def read_notes(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such notes table; give a notes.parquet "
                        "(note_id, title, body)")
    have = parquet_columns(path)
    missing = [c for c in ("note_id", "title", "body") if c not in have]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)}; a notes table needs "
                        "note_id, title and body")
    extra = [c for c in ("harmful", "harm_type") if c in have]
    return pl.read_parquet(path, columns=["note_id", "title", "body", *extra]).sort("note_id")


def note_text(row: dict[str, Any]) -> str:
    return f"{row['title'] or ''}\n{row['body'] or ''}"


# -- the LLM ------------------------------------------------------------------------------

class LLMModerator:
    """A causal LM answering the Note-Moderation prompt, read as label probabilities."""

    def __init__(self, model: str):
        from snsrec.llm.post_train import load_backbone

        self.name = model
        self.lm, self.tok = load_backbone(model)
        self.lm.eval()
        self.tok.padding_side = "left"
        probe = self.prompt({"title": "t", "body": "b"})
        base = len(self.tok(probe)["input_ids"])
        self.label_ids = [self.tok(probe + lab)["input_ids"][base] for lab in LABELS]
        if len(set(self.label_ids)) != len(LABELS):
            raise ModelError(f"{model}: the labels {', '.join(LABELS)} share a first token in "
                             "this tokenizer; their probabilities cannot be read apart")

    def prompt(self, row: dict[str, Any]) -> str:
        from snsrec.llm.prompts import messages, render
        from snsrec.llm.tasks import _note_content

        item = {"content": _note_content(row), "candidates": ", ".join(LABELS)}
        return render(self.tok, messages("Note-Moderation", item))[0]

    @torch.no_grad()
    def label_probs(self, rows: list[dict[str, Any]], batch_size: int) -> np.ndarray:
        """``[n, len(LABELS)]`` probabilities of each label as the answer's first token.

        Batches are formed in order of prompt length, so a batch pads to a length close to
        its own: on the small world's test notes (122–892 tokens) batches of 16 in note
        order compute 2.2× the real tokens, in length order 1.01×."""
        out = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
        ids = self.tok([self.prompt(r) for r in rows])["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        for s in range(0, len(rows), batch_size):
            take = order[s:s + batch_size]
            enc = self.tok.pad({"input_ids": [ids[i] for i in take]}, return_tensors="pt")
            logits = self.lm(**{k: v.to(self.lm.device) for k, v in enc.items()},
                             logits_to_keep=1).logits[:, -1]     # the next token's only
            out[take] = torch.softmax(logits.float()[:, self.label_ids], dim=-1).cpu().numpy()
        return out


def frame_of(note_ids: np.ndarray, probs: np.ndarray) -> pl.DataFrame:
    harmful = probs[:, 1:]
    return pl.DataFrame({
        "note_id": note_ids, "p_harmful": 1.0 - probs[:, 0],
        "harm_type": np.asarray(LABELS[1:])[harmful.argmax(1)] if len(probs) else [],
        **{f"p_{lab}": probs[:, i] for i, lab in enumerate(LABELS)}},
        schema_overrides={"harm_type": pl.Utf8})


def is_scores(path: Path) -> bool:
    """Whether ``path`` is a Parquet file of moderation scores (``moderate`` wrote it)."""
    try:
        return {"note_id", "p_harmful"} <= set(parquet_columns(path))
    except DataError:
        return False


def moderate(model: str, notes: str | Path, out: str | Path, *, batch_size: int = 16,
             limit: int | None = None, threads: int | None = None,
             force: bool = False) -> dict[str, Any]:
    """Score every note of ``notes`` with ``model`` into the Parquet ``out`` (resumable); an
    existing ``out`` is replaced when it holds moderation scores, or with ``force``."""
    if batch_size < 1 or (limit is not None and limit < 1):
        raise ConfigError("llm moderate: --batch-size and --limit must be >= 1")
    out = check_out_file(out, force=force, ours=is_scores, kind="moderation scores",
                         inputs=[notes])
    if threads:
        torch.set_num_threads(threads)
    table = read_notes(notes).head(limit) if limit else read_notes(notes)
    parts = out.with_name(out.name + ".parts")
    stamp = {"model": model, "notes": str(Path(notes).resolve()), "rows": table.height,
             "chunk": CHUNK, "labels": list(LABELS)}
    if parts.is_dir() and (not (parts / "run.json").is_file()
                           or read_json(parts / "run.json") != stamp):
        raise DataError(f"{parts}: parts of another moderation run; remove it or use another "
                        "--out")
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / "run.json", stamp)
    moderator = LLMModerator(model)
    rows = table.to_dicts()
    chunks = range(0, len(rows), CHUNK)
    todo = [s for s in chunks if not (parts / f"part-{s // CHUNK:05d}.parquet").is_file()]
    t0, scored = time.perf_counter(), 0
    with Progress("llm moderate", total=len(rows), unit="notes") as bar:
        bar.update(len(rows) - sum(min(CHUNK, len(rows) - s) for s in todo))
        for s in todo:
            block = rows[s:s + CHUNK]
            probs = moderator.label_probs(block, batch_size)
            with atomic_path(parts / f"part-{s // CHUNK:05d}.parquet") as tmp:
                frame_of(np.array([r["note_id"] for r in block]), probs).write_parquet(tmp)
            scored += len(block)
            bar.update(len(block))
    seconds = time.perf_counter() - t0
    result = pl.concat([pl.read_parquet(parts / f"part-{s // CHUNK:05d}.parquet")
                        for s in chunks]) if rows else frame_of(np.zeros(0, np.int64),
                                                                np.zeros((0, len(LABELS))))
    with atomic_path(out) as tmp:
        result.write_parquet(tmp)
    shutil.rmtree(parts)
    rate = scored / seconds if scored and seconds > 0 else None
    echo(f"llm moderate: {out} ({len(rows):,} notes"
         + (f", {rate:.1f} notes/s" if rate else "") + ")")
    return {"out": str(out), "notes": len(rows), "scored": scored, "notes_per_s": rate}


# -- the n-gram baseline -------------------------------------------------------------------

def with_short_copies(notes: pl.DataFrame, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """The baseline's training texts and labels: every note, then every note again as a
    short one — its title and the first U{0..¼} of its body's words, what a posted note
    often is.

    The baseline sums its n-gram weights, so a long note's many ordinary n-grams add up
    to strong "not harmful" evidence; fitted on long notes alone, its intercept sits far
    towards harmful and a short benign note reads as harmful (31% of the small world's
    benign test titles did). With the short copies: 1.3%; on the full test notes F1
    0.935 → 0.929, AUC 0.956 → 0.951, harm-type accuracy 0.939 → 0.988. Thinning the
    n-gram bags at random instead did worse (12% of titles, F1 0.914): a title is not
    a random sample of its body's n-grams.
    """
    labels = label_index(notes)
    return ([note_text(r) for r in notes.select("title", "body").iter_rows(named=True)]
            + short_copies(notes, seed), np.concatenate([labels, labels]))


def short_copies(notes: pl.DataFrame, seed: int = 0) -> list[str]:
    """The short copies of ``with_short_copies`` alone, in the notes' order."""
    rng = np.random.default_rng([seed, 17])
    short = []
    for r in notes.select("title", "body").iter_rows(named=True):
        words = (r["body"] or "").split()
        keep = int(rng.integers(0, len(words) // 4 + 1))
        short.append(note_text({"title": r["title"], "body": " ".join(words[:keep])}))
    return short


class NgramModerator(nn.Module):
    """Multinomial logistic regression over hashed word + character n-grams (trained on
    ``with_short_copies``)."""

    def __init__(self, buckets: int = 1 << 20):
        super().__init__()
        from snsrec.text.encoders import HashBackbone

        # Summed, not averaged: a few telling n-grams in a long note keep their weight.
        self.hash = HashBackbone(buckets=buckets, dim=len(LABELS), max_tokens=4096, mode="sum")
        nn.init.zeros_(self.hash.bag.weight)
        # Sparse gradients: Adagrad then updates the buckets a batch touched instead of all
        # 1M rows a step (the same updates: untouched rows' steps are zero).
        self.hash.bag.sparse = True
        self.bias = nn.Parameter(torch.zeros(len(LABELS)))

    def forward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.hash(rows) + self.bias

    def _logits(self, rows: Ragged, idx: np.ndarray) -> torch.Tensor:
        return self.hash.bag(*rows.bag(idx)) + self.bias

    def fit(self, texts: list[str] | Ragged, labels: np.ndarray, epochs: int = 8,
            lr: float = 0.5, batch_size: int = 256, seed: int = 0,
            subset: np.ndarray | None = None) -> None:
        """``subset``: fit on these rows of ``texts`` (Ragged) only — ``labels`` are theirs —
        without copying them out (a million notes' n-grams are gigabytes)."""
        torch.manual_seed(seed)
        rows = texts if isinstance(texts, Ragged) else self.hash.ragged(texts)
        at = np.arange(len(rows)) if subset is None else np.asarray(subset, np.int64)
        y = torch.as_tensor(labels, dtype=torch.long)
        if len(at) != len(y):
            raise DataError(f"n-gram baseline: {len(y)} labels for {len(at)} texts")
        opt = torch.optim.Adagrad(self.parameters(), lr=lr)
        order = np.random.default_rng(seed)
        self.train()
        steps = max(1, len(y) // batch_size)
        # A corpus fit takes minutes (a million notes: tens of them): show it.
        bar = Progress("n-gram baseline: fitting", total=epochs * steps, unit="batches") \
            if len(y) >= self.hash.QUIET_BELOW else None
        # Adagrad's sparse gradients are well formed: no invariant checks (nor the warning).
        with torch.sparse.check_sparse_tensor_invariants(enable=False), \
                bar or contextlib.nullcontext():
            for _ in range(epochs):
                for idx in np.array_split(order.permutation(len(y)), steps):
                    loss = nn.functional.cross_entropy(self._logits(rows, at[idx]),
                                                       y[torch.as_tensor(idx)])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if bar is not None:
                        bar.update()

    @torch.no_grad()
    def label_probs(self, texts: list[str] | Ragged, batch_size: int = 4096) -> np.ndarray:
        self.eval()
        rows = texts if isinstance(texts, Ragged) else self.hash.ragged(texts)
        out = [torch.softmax(self._logits(rows, np.arange(s, min(s + batch_size, len(rows)))),
                             -1).numpy() for s in range(0, len(rows), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(LABELS)), dtype=np.float32)


def split_notes(notes: pl.DataFrame, seed: int = 0) -> dict[str, pl.DataFrame]:
    """The notes of each split of the task suite with ``seed`` (``snsrec.llm.tasks``)."""
    from snsrec.llm.tasks import SPLITS, splits_of

    split = splits_of(notes["note_id"].to_list(), seed)
    return {name: notes.filter(pl.Series(split == name)) for name, _ in SPLITS}


def fit_baseline(train: pl.DataFrame, seed: int = 0) -> NgramModerator:
    """The n-gram baseline trained on ``train`` (notes with their harm labels)."""
    model = NgramModerator()
    model.fit(*with_short_copies(train, seed), seed=seed)
    return model


def label_index(rows: pl.DataFrame) -> np.ndarray:
    if "harmful" not in rows.columns:
        raise DataError("the notes have no `harmful` column; moderation metrics need a "
                        "world's notes (harmful, harm_type)")
    types = rows["harm_type"].fill_null(HARM_NONE).to_list()
    return np.array([LABELS.index(t) if h else 0
                     for h, t in zip(rows["harmful"].to_list(), types, strict=True)])


def metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float | None]:
    """Harmful-vs-not precision / recall / F1 at p ≥ 0.5, ROC AUC, and the harm-type
    accuracy on the truly harmful notes (the likeliest harmful label)."""
    from snsrec.eval.metrics import auc, binary_prf

    truth, p = y > 0, 1.0 - probs[:, 0]
    precision, recall, f1 = binary_prf(p >= 0.5, truth)
    kind = (probs[:, 1:].argmax(1) + 1)[truth]
    return {"precision": precision, "recall": recall, "f1": f1,
            "auc": float(auc(truth.astype(np.float64), p)) if 0 < truth.sum() < len(y)
            else None,
            "type_accuracy": float((kind == y[truth]).mean()) if truth.any() else None,
            "harmful": int(truth.sum()), "notes": len(y)}


def bench_moderation(world: str | Path, model: str, out: str | Path, *, seed: int = 0,
                     batch_size: int = 16, limit: int | None = None,
                     threads: int | None = None, force: bool = False) -> dict[str, Any]:
    started = time.time()
    world = Path(world)
    # ``out`` is replaced at the end (when it is snsrec's, or with ``force``): refused now if not.
    out = check_out(out, force=force, legacy=["moderation.json"], inputs=[world])
    splits = split_notes(read_notes(world / "notes.parquet"), seed)
    train, test = splits["train"], splits["test"]
    if limit:
        test = test.head(limit)
    y_test = label_index(test)
    t0 = time.perf_counter()
    base = fit_baseline(train, seed)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_base = base.label_probs([note_text(r) for r in test.iter_rows(named=True)])
    base_s = time.perf_counter() - t0
    # The LLM scores the test notes in a work directory beside ``out`` named by what decides
    # them, so an interrupted benchmark (an hour for a 135M model on a CPU core) resumes
    # from its part files; it goes once the results are written.
    key = zlib.crc32(json.dumps([str(world.resolve()), seed, limit, model]).encode())
    work = out.parent / f".{out.name}.{key:08x}.work"
    work.mkdir(parents=True, exist_ok=True)
    notes = work / "test_notes.parquet"
    if not notes.is_file():
        with atomic_path(notes) as t:
            test.select("note_id", "title", "body").write_parquet(t)
    if (work / "llm.json").is_file():
        llm = read_json(work / "llm.json")
    else:
        llm = moderate(model, notes, work / "llm_scores.parquet", batch_size=batch_size,
                       threads=threads)
        write_json(work / "llm.json", llm)
    with atomic_dir(out, "bench moderation", force=force, legacy=["moderation.json"],
                    inputs=[world]) as tmp:
        shutil.copyfile(work / "llm_scores.parquet", tmp / "llm_scores.parquet")
        p_llm = pl.read_parquet(tmp / "llm_scores.parquet").select(
            [f"p_{lab}" for lab in LABELS]).to_numpy()
        result = {
            "benchmark": "moderation", "version": __version__, "world": str(world),
            "seed": seed, "train_notes": train.height, "test_notes": test.height,
            "command": shlex.join(["snsrec", "bench", "moderation", "--world", str(world),
                                   "--model", model, "--out", str(out), "--seed", str(seed),
                                   *(["--limit", str(limit)] if limit else [])]),
            "systems": {
                "ngram-lr": {**metrics(y_test, p_base), "fit_s": fit_s,
                             "notes_per_s": test.height / base_s if base_s else None},
                f"llm:{model}": {**metrics(y_test, p_llm), "notes_per_s": llm["notes_per_s"]}}}
        result, md = write_record(tmp, "moderation", result, markdown,
                                  default_command=result["command"], started=started,
                                  seeds=[seed])
    shutil.rmtree(work)
    echo(md)
    return {"markdown": md, "results": result}


def markdown(r: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    def f(v: Any, spec: str = ".3f") -> str:
        return "–" if v is None else format(v, spec)

    rows = [[name, f(m["precision"]), f(m["recall"]), f(m["f1"]), f(m["auc"]),
             f(m["type_accuracy"]), f(m["notes_per_s"], ",.1f")]
            for name, m in r["systems"].items()]
    return "\n".join([
        f"# Moderation on {r['world']}: {r['test_notes']:,} test notes "
        f"({next(iter(r['systems'].values()))['harmful']} harmful)\n",
        markdown_table(["system", "precision", "recall", "F1", "AUC", "type accuracy",
                        "notes/s"], rows), "",
        f"Harmful at p ≥ 0.5; type accuracy over the truly harmful notes. The n-gram "
        f"baseline trained on {r['train_notes']:,} training notes. `{r['command']}`\n"])

