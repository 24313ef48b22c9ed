"""`snsrec llm eval`: a tiny random Qwen2 answers a task suite and a folder of SNS-Bench-layout
files; every task is scored; bad task files are one-line errors."""

import json

import pytest

from snsrec.data.sources.snsbench import read_items
from snsrec.errors import DataError
from snsrec.llm.evaluate import evaluate_llm, items_digest
from snsrec.llm.prompts import PROMPTS, messages, render
from snsrec.llm.scoring import score_task
from snsrec.llm.tasks import build_tasks


def test_a_suite_end_to_end_with_a_tiny_model(tiny_world, tmp_path):
    build_tasks(tiny_world, tmp_path / "suite", max_items=5,
                tasks=["Note-Gender", "Note-NER", "Note-MRC-simple"])
    res = evaluate_llm("tiny-qwen2", tmp_path / "suite", tmp_path / "out", limit=3,
                       batch_size=2)["results"]
    assert set(res["results"]) == {"Note-Gender", "Note-NER", "Note-MRC-simple"}
    for task in ("Note-Gender", "Note-NER", "Note-MRC-simple"):
        r = res["results"][task]
        assert r["items"] == 3 and 0.0 <= r["score"] <= 100.0
        # Every item's output beside its index and gold answer: the score is recomputed
        # from the record alone, on all items or any subset.
        gold = read_items(tmp_path / "suite" / "test" / f"{task}.json")[:3]
        assert [o["index"] for o in r["outputs"]] == [0, 1, 2]
        assert [o["answer"] for o in r["outputs"]] == [it["answer"] for it in gold]
        assert r["digest"] == items_digest(gold)
        again = score_task(task, [o["output"] for o in r["outputs"]], gold)
        assert again == r["metrics"]
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["average"] == pytest.approx(
        sum(r["score"] for r in res["results"].values()) / 3)
    assert "| Note-NER | 3 |" in (tmp_path / "out" / "eval.md").read_text()


def test_an_evaluation_cut_short_resumes_from_its_partial_eval_json(tiny_world, tmp_path,
                                                                  monkeypatch):
    """eval.json is written after every task; a rerun answers only the tasks it lacks —
    and only when it is the same evaluation (model, tasks, split, limit, meta)."""
    import snsrec.llm.evaluate as ev

    tasks = ["Note-Gender", "Note-NER", "Note-MRC-simple"]
    build_tasks(tiny_world, tmp_path / "suite", max_items=4, tasks=tasks)
    real, calls = ev.generate, []

    def cut(model, tokenizer, prompts, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt                     # the session ends mid-evaluation
        calls.append(len(prompts))
        return real(model, tokenizer, prompts, *a, **k)

    monkeypatch.setattr(ev, "generate", cut)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        evaluate_llm("tiny-qwen2", tmp_path / "suite", out, limit=3, meta={"run": "a"})
    partial = json.loads((out / "eval.json").read_text())
    assert partial["partial"] is True and len(partial["results"]) == 2
    assert "**partial**: 2 task(s)" in (out / "eval.md").read_text()
    first = dict(partial["results"])

    calls.clear()
    monkeypatch.setattr(ev, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = evaluate_llm("tiny-qwen2", tmp_path / "suite", out, limit=3,
                       meta={"run": "a"})["results"]
    assert len(calls) == 1                                # only the missing task
    assert res["partial"] is False and list(res["results"]) == sorted(tasks)
    for task, r in first.items():
        assert res["results"][task] == r
    assert res["average"] == pytest.approx(
        sum(r["score"] for r in res["results"].values()) / 3)
    # A task recorded for other items (its digest; an older eval.json has none, nor the
    # per-item outputs) is answered again, the others kept.
    stale = json.loads(json.dumps(partial))
    task = next(iter(stale["results"]))
    del stale["results"][task]["digest"], stale["results"][task]["outputs"]
    (out / "eval.json").write_text(json.dumps(stale))
    calls.clear()
    res = evaluate_llm("tiny-qwen2", tmp_path / "suite", out, limit=3,
                       meta={"run": "a"})["results"]
    assert len(calls) == 2 and res["results"][task] == {**first[task],
                                                         "seconds": res["results"][task]
                                                         ["seconds"]}
    # A complete eval.json, or another evaluation's partial one, is not resumed.
    calls.clear()
    evaluate_llm("tiny-qwen2", tmp_path / "suite", out, limit=3, meta={"run": "a"})
    assert len(calls) == 3
    partial["limit"] = 2
    (out / "eval.json").write_text(json.dumps(partial))
    calls.clear()
    evaluate_llm("tiny-qwen2", tmp_path / "suite", out, limit=3, meta={"run": "a"})
    assert len(calls) == 3


def test_sns_bench_layout_files_and_bad_ones(tmp_path):
    flat = tmp_path / "snsbench"
    flat.mkdir()
    (flat / "Note-QueryCorr-explain.json").write_text(json.dumps(
        [{"sentence1": "Where to eat?", "sentence2": "Noodles | Best noodles here",
          "answer": "Yes"}]))
    (flat / "README.json").write_text("[]")                       # not a task: ignored
    res = evaluate_llm("tiny-qwen2", flat, tmp_path / "o")["results"]
    assert list(res["results"]) == ["Note-QueryCorr-explain"]
    (flat / "Note-Gender.json").write_text(json.dumps([{"answer": "Yes"}]))
    with pytest.raises(DataError, match=r"Note-Gender.json: item 0: no field 'content'"):
        evaluate_llm("tiny-qwen2", flat, tmp_path / "o2")
    with pytest.raises(DataError, match="no task files"):
        evaluate_llm("tiny-qwen2", tmp_path / "empty", tmp_path / "o3")


def test_every_prompt_renders_with_and_without_a_chat_template():
    class NoTemplate:
        chat_template = None

    item = {"content": "c", "candidates": "a, b", "query": "q", "question": "q",
            "sentence1": "s1", "sentence2": "s2", "candidates_primary": "[]",
            "candidates_secondary": "[]", "candidates_tertiary": "[]", "answer": "a"}
    for task in PROMPTS:
        text, fallback = render(NoTemplate(), messages(task, item))
        assert fallback and text.endswith("\n") and PROMPTS[task][0] in text


def test_a_model_folder_transformers_cannot_load_is_one_line(tmp_path, capsys):
    from snsrec.cli import main

    tasks = tmp_path / "tasks" / "test"
    tasks.mkdir(parents=True)
    (tasks / "Note-Gender.json").write_text(json.dumps([{
        "task": "Note-Gender", "content": "x", "answer": "yes"}]))
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text("{}")                  # no model_type
    (bad / "tokenizer_config.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        main(["llm", "eval", "--model", str(bad), "--tasks", str(tmp_path / "tasks"),
              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert f"{bad}: not a loadable causal LM" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_batches_in_length_order_answer_each_prompt_as_alone():
    """generate batches prompts by length; every answer is the one the prompt gets alone,
    in the prompts' order, and sampled answers stay beside their prompt."""
    from snsrec.llm.evaluate import generate
    from snsrec.llm.post_train import load_backbone

    lm, tok = load_backbone("tiny-qwen2", 0)
    lm.eval()
    prompts = ["a note about " + "baking bread " * n for n in (9, 1, 14, 3, 0)]
    alone = [generate(lm, tok, [p], 6, 1)[0] for p in prompts]
    assert generate(lm, tok, prompts, 6, 2) == alone
    # sampling at a temperature near zero is greedy: each prompt's three samples are its answer
    sampled = generate(lm, tok, prompts, 6, 2, samples=3, temperature=1e-6)
    assert sampled == [a for a in alone for _ in range(3)]
