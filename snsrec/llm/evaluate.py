"""`snsrec llm eval --model M --tasks DIR`: a causal LM on the SNS tasks, scored per task.

``DIR`` is a suite from `snsrec llm tasks build` (the ``--split`` folder is read)
or a folder of SNS-Bench task files (``Note-*.json``), read as they are. Every
file with a known prompt (``snsrec.llm.prompts``) is answered by greedy
decoding in batches (left-padded, the KV cache of ``generate``), at most
``--limit`` items a task, and scored with its metric (``snsrec.llm.scoring``;
a task without one yet is answered and listed unscored). Writes ``eval.json``
(per task: items, score, every metric, the digest of the items scored, and every
item's output beside its index in the task file and its gold answer — so a score can
be recomputed on any subset of the items) and ``eval.md``; the average is over the
scored tasks.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from snsrec.data.sources.snsbench import read_items
from snsrec.errors import ConfigError, DataError
from snsrec.io import check_out, out_dir, read_json, write_json, write_text
from snsrec.llm.tasks import task_files
from snsrec.progress import Progress, echo


def items_digest(items: list[dict[str, Any]]) -> str:
    """sha256 of task items as JSON: which items an evaluation answered."""
    return hashlib.sha256(json.dumps(items, ensure_ascii=False, sort_keys=True)
                          .encode("utf-8")).hexdigest()


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
             batch_size: int, bar: Progress | None = None, samples: int = 1,
             temperature: float = 0.0) -> list[str]:
    """Continuations of ``prompts`` (left padding, batched): greedy, or with a
    ``temperature`` ``samples`` sampled ones a prompt, a prompt's samples side by side.

    Batches are formed in order of prompt length (the answers come back in the prompts'
    order), so a batch pads to a length close to its own: a note-length prompt in a batch
    of short ones made the whole batch pay for its prefill."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    ids = tokenizer(prompts)["input_ids"] if prompts else []
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    out: list[list[str]] = [[] for _ in prompts]
    for s in range(0, len(prompts), batch_size):
        take = order[s:s + batch_size]
        enc = tokenizer.pad({"input_ids": [ids[i] for i in take]}, return_tensors="pt")
        enc = {k: v.to(model.device) for k, v in enc.items()}
        how = ({"do_sample": True, "temperature": temperature, "top_k": 0,
                "num_return_sequences": samples} if temperature > 0 else {"do_sample": False})
        gen = model.generate(**enc, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id, **how)
        text = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                      skip_special_tokens=True)
        for j, i in enumerate(take):
            out[i] = text[j * samples:(j + 1) * samples]
        if bar is not None:
            bar.update(len(gen))
    return [t for per_prompt in out for t in per_prompt]


def evaluate_llm(model: str, tasks: str | Path, out: str | Path, *, split: str = "test",
                 limit: int | None = None, batch_size: int = 8, threads: int | None = None,
                 only: list[str] | None = None, meta: dict[str, Any] | None = None,
                 force: bool = False) -> dict[str, Any]:
    """Answer and score every task file of ``tasks`` (those named in ``only``, if given);
    ``meta`` is recorded in ``eval.json`` as it is (what a caller needs to reuse it).

    ``eval.json`` is written after every task (``"partial": true`` until the last), and a
    partial one of the same model, tasks, split, limit and ``meta`` is resumed: its tasks
    are kept where they answered the same items (their digest; an older eval.json has
    none, nor per-item outputs), the others answered — an evaluation cut short loses one
    task at most."""
    from snsrec.llm.prompts import max_new_tokens, render_items
    from snsrec.llm.scoring import SCORERS, score_task
    from snsrec.text.encoders import load_causal_lm

    if (limit is not None and limit < 1) or batch_size < 1:
        raise ConfigError("llm eval: --limit and --batch-size must be >= 1")
    tasks, out = Path(tasks), Path(out)
    files = [p for p in task_files(tasks, split) if only is None or p.stem in only]
    if only is not None and len(files) != len(set(only)):
        raise DataError(f"{tasks}: no {split} file for task(s) "
                        f"{sorted(set(only) - {p.stem for p in files})}")
    where = {"force": force, "legacy": ["eval.json"], "inputs": [tasks]}
    check_out(out, **where)                 # refused before the model loads
    if threads:
        torch.set_num_threads(threads)
    lm, tokenizer = load_causal_lm(model)
    lm.eval()
    out_dir(out, "llm eval", **where)
    ident = {"model": model, "tasks": str(tasks), "split": split, "limit": limit,
             **(meta or {})}
    results, fallback = _resumed(out / "eval.json", ident)
    if results:
        echo(f"llm eval: resuming {out / 'eval.json'} ({len(results)} task(s) scored)")

    def save(partial: bool) -> tuple[dict[str, Any], str]:
        scored = [r["score"] for r in results.values() if r["score"] is not None]
        summary = {**ident, "chat_template": not fallback, "partial": partial,
                   "average": sum(scored) / len(scored) if scored else None,
                   "results": results}
        md = markdown(summary)
        write_json(out / "eval.json", summary)
        write_text(out / "eval.md", md)
        return summary, md

    for path in files:
        task = path.stem
        items = read_items(path)[:limit]         # SNS-Bench layout, checked
        if task in results and results[task].get("digest") == items_digest(items):
            continue
        prompts, fb = render_items(tokenizer, task, items, str(path))
        fallback |= fb
        t0 = time.perf_counter()
        with Progress(f"llm eval {task}", total=len(prompts), unit="items") as bar:
            outputs = generate(lm, tokenizer, prompts, max_new_tokens(task), batch_size, bar)
        seconds = time.perf_counter() - t0
        metrics = score_task(task, outputs, items) if task in SCORERS else {}
        results[task] = {"items": len(items), "score": metrics.get("score"),
                         "metrics": metrics, "seconds": seconds, "digest": items_digest(items),
                         "outputs": [{"index": i, "output": o, "answer": it["answer"]}
                                     for i, (o, it) in enumerate(zip(outputs, items,
                                                                     strict=True))]}
        echo(f"llm eval: {task}: " + (f"{metrics['score']:.2f}" if metrics else "unscored") +
             f" ({len(items)} items, {seconds:.0f} s)")
        if any(f.stem not in results for f in files):
            save(partial=True)
    if fallback:
        echo("llm eval: the tokenizer has no chat template; prompts were plain text")
    results = {p.stem: results[p.stem] for p in files}         # in the files' order
    summary, md = save(partial=False)
    return {"markdown": md, "results": summary}


def _resumed(saved: Path, ident: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(task results, prompts were plain text) of a partial ``eval.json`` of the same
    evaluation (``ident``); nothing when there is none."""
    if not saved.is_file():
        return {}, False
    res = read_json(saved)
    if not res.get("partial") or any(res.get(k) != v for k, v in ident.items()):
        return {}, False
    return dict(res.get("results") or {}), not res.get("chat_template", True)


def markdown(s: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    rows = [[t, r["items"], "unscored" if r["score"] is None else f"{r['score']:.2f}",
             f"{r['seconds']:.0f}"] for t, r in s["results"].items()]
    avg = "–" if s["average"] is None else f"{s['average']:.2f}"
    return "\n".join([f"# SNS tasks: {s['model']}\n",
                      f"Tasks `{s['tasks']}` ({s['split']}), at most {s['limit'] or 'all'} "
                      f"items a task; greedy decoding"
                      + (f"; **partial**: {len(s['results'])} task(s) so far"
                         if s.get("partial") else "")
                      + ("" if s["chat_template"] else "; no chat template (plain prompts)")
                      + f". Average over scored tasks: **{avg}**.\n",
                      markdown_table(["task", "items", "score", "seconds"], rows), ""])
