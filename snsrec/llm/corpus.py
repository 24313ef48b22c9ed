"""The text of post-training: SNS notes, general text, general instructions, task examples.

General text must keep a small model's general ability while it learns the
platform's language, and nothing is downloaded at run time, so it comes from a
wheel: the gensim wheel carries, as test data, the **Lee news corpus** (300
Australian Broadcasting Corporation news articles, ~60k words; its 50-article
test set is the held-out general text) and Mikolov's **word analogy questions**
(19,544 in 14 kinds: capitals, currencies, family, plurals, tenses, …), which
make the general instructions ("Athens is to Greece as Baghdad is to …?
Iraq"). The files are read where the wheel put them; gensim itself is never
imported (``requirements/carriers.txt`` installs it ``--no-deps``).

Notes are split by ``snsrec.llm.tasks.split_of`` with the suite's seed, so
continued pre-training sees the training notes only and the test notes stay
unseen text for every stage.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from snsrec.errors import DataError, ModelError

CARRIER = "gensim"
GENERAL_TEXT = {"train": "lee_background.cor", "test": "lee.cor"}
ANALOGIES = "questions-words.txt"


def carrier_file(name: str) -> Path:
    """A file of the gensim wheel's ``test/test_data`` folder (found without importing gensim)."""
    spec = importlib.util.find_spec(CARRIER)
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / "test" / "test_data" / name if roots else None
    if path is None or not path.is_file():
        raise ModelError(f"general text: no {name} (it ships in the gensim wheel); "
                         "pip install --no-deps gensim==4.4.0")
    return path


def general_documents(split: str = "train") -> list[str]:
    """The Lee corpus: one news article a line; ``train`` 300, ``test`` 50 (held out)."""
    text = carrier_file(GENERAL_TEXT[split]).read_text(encoding="latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def general_instructions() -> list[dict[str, str]]:
    """Word analogies as instructions: ``{"kind", "question", "answer"}`` per question."""
    out, kind = [], ""
    for line in carrier_file(ANALOGIES).read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            kind = line[1:].strip()
            continue
        words = line.split()
        if len(words) == 4:
            a, b, c, d = words
            out.append({"kind": kind, "answer": d,
                        "question": f"{a} is to {b} as {c} is to what? Answer with one word."})
    return out


GENERAL_SYSTEM = "You are a helpful assistant. Answer briefly."


def note_documents(world: str | Path, split: str, seed: int = 0) -> list[str]:
    """The text of the world's notes in ``split`` (title, body, hashtags), by note id."""
    from snsrec.llm.tasks import splits_of

    path = Path(world) / "notes.parquet"
    if not path.is_file():
        raise DataError(f"{path}: no such file; point `world` at a world directory "
                        "(`snsrec world generate`)")
    notes = pl.read_parquet(path, columns=["note_id", "title", "body", "hashtags"]
                            ).sort("note_id")
    notes = notes.filter(pl.Series(splits_of(notes["note_id"].to_list(), seed) == split))
    out = []
    for r in notes.iter_rows(named=True):
        tags = " ".join(f"#{t}" for t in (r["hashtags"] or []))
        out.append("\n".join(p for p in (r["title"], r["body"], tags) if p))
    return out


def general_count(domain: int, ratio: float, available: int) -> int:
    """How many general examples make ``ratio`` of a mixture with ``domain`` domain ones
    (at most ``available``)."""
    if not 0.0 <= ratio < 1.0:
        raise DataError(f"general_ratio {ratio}: give a share in [0, 1)")
    return min(available, round(domain * ratio / (1.0 - ratio)))


def mix(domain: list[Any], general: list[Any], ratio: float, seed: int) -> list[Any]:
    """``domain`` plus a seeded sample of ``general`` making ``ratio`` of the whole, shuffled."""
    rng = np.random.default_rng(seed)
    k = general_count(len(domain), ratio, len(general))
    picked = [general[i] for i in rng.choice(len(general), k, replace=False)] if k else []
    rows = domain + picked
    return [rows[i] for i in rng.permutation(len(rows))]


def answer_text(answer: Any) -> str:
    """The completion a task item teaches: its answer as the prompts ask for it (a list as
    a Python list literal, as SNS-Bench writes MRC answers)."""
    if isinstance(answer, list):
        return "[" + ", ".join(repr(str(a)) for a in answer) + "]"
    return str(answer)


def task_items(tasks: str | Path, split: str, names: list[str] | None = None,
               max_items: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every task file of a suite's ``split`` (or those in ``names``), at most ``max_items``
    items a task (the first ones)."""
    from snsrec.data.sources.snsbench import read_items
    from snsrec.llm.tasks import task_files

    files = task_files(Path(tasks), split)
    have = {p.stem for p in files}
    missing = sorted(set(names or ()) - have)
    if missing:
        raise DataError(f"{tasks}: no {split} file for task(s) {missing}; tasks there: "
                        f"{', '.join(sorted(have))}")
    return {p.stem: read_items(p)[:max_items] for p in files if not names or p.stem in names}


def sft_examples(tokenizer: Any, items: dict[str, list[dict[str, Any]]],
                 general_ratio: float = 0.0, seed: int = 0) -> tuple[list[dict[str, str]], bool]:
    """Prompt / completion pairs of the task items (the evaluator's prompts, through the
    tokenizer's chat template) mixed with general instructions; and whether the
    plain-text fallback was used (no chat template)."""
    from snsrec.llm.prompts import render, render_items

    domain, fallback = [], False
    for task, rows in items.items():
        texts, fb = render_items(tokenizer, task, rows, task)
        fallback |= fb
        domain += [{"task": task, "prompt": text, "completion": answer_text(it["answer"])}
                   for text, it in zip(texts, rows, strict=True)]
    general = []
    if general_ratio > 0:
        for q in general_instructions():
            text, _ = render(tokenizer, [{"role": "system", "content": GENERAL_SYSTEM},
                                         {"role": "user", "content": q["question"]}])
            general.append({"task": f"general:{q['kind']}", "prompt": text,
                            "completion": q["answer"]})
    return mix(domain, general, general_ratio, seed), fallback
