"""`snsrec llm tasks build`: the SNS task files from a world, split by note, each answer true to
the world, and scored 100 by its own metric when answered with the gold."""

import json

import pytest

from snsrec.errors import ConfigError, DataError
from snsrec.llm.scoring import SCORERS, score_task
from snsrec.llm.tasks import BUILDERS, build_tasks, split_of


@pytest.fixture(scope="module")
def suite(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    manifest = build_tasks(tiny_world, out, max_items=10_000, seed=3)
    return out, manifest


def _load(out, split, task):
    return json.loads((out / split / f"{task}.json").read_text(encoding="utf-8"))


def test_every_task_and_split_is_written_in_the_sns_bench_layout(suite):
    out, manifest = suite
    assert set(manifest["counts"]) == set(BUILDERS)
    for task, counts in manifest["counts"].items():
        for split, n in counts.items():
            items = _load(out, split, task)
            assert len(items) == n and n > 0, (task, split)
            assert all("answer" in it for it in items)
            assert all(("content" in it) != ("sentence2" in it) for it in items)


def test_no_note_is_in_two_splits(suite):
    out, _ = suite
    seen = {split: {it["content"] for it in _load(out, split, "Note-Moderation")}
            for split in ("train", "valid", "test")}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["valid"]
    assert {split_of(n, 3) for n in range(200)} == {"train", "valid", "test"}


def test_answers_are_true_to_the_world(suite):
    out, _ = suite
    for it in _load(out, "train", "Note-Taxonomy-single"):
        assert it["answer"] in it["candidates"].split(", ")
    import ast as _ast

    for it in _load(out, "train", "Note-Taxonomy-multiple"):
        levels = it["answer"].split(" | ")
        assert len(levels) == 3 and levels[2] in it["content"]
        for level, key in zip(levels, ("primary", "secondary", "tertiary"), strict=True):
            assert level in _ast.literal_eval(it[f"candidates_{key}"])
    for it in _load(out, "train", "Note-Hashtag-single"):
        cands = it["candidates"].split(", ")
        assert it["answer"] in cands and len(cands) == 4 and "end" not in it["answer"]
    for it in _load(out, "train", "Note-Hashtag-multiple"):
        assert set(it["answer"].split(", ")) <= set(it["candidates"].split(", "))
    for it in _load(out, "train", "Note-NER"):
        assert all(e in it["content"] for e in it["answer"].split(", "))
    mrc = _load(out, "train", "Note-MRC-simple")
    assert all(all(a in it["content"] for a in it["answer"]) for it in mrc)
    assert any(it["answer"] == [] for it in mrc) and any(it["answer"] for it in mrc)
    mod = _load(out, "train", "Note-Moderation")
    assert {it["answer"] for it in mod} >= {"none"} and any(it["answer"] != "none" for it in mod)
    assert {it["answer"] for it in _load(out, "train", "Note-Gender")} == {"Yes", "No"}
    import ast

    for it in _load(out, "train", "Note-CHLW"):
        comment = it["content"].split("\n\nPossible highlight word options list:\n")[0]
        options = ast.literal_eval(it["content"].split("options list:\n")[1].split("\n")[0])
        answer = ast.literal_eval(it["answer"])
        assert set(answer) <= set(options) and all(a in comment for a in answer)
    levels = {it["answer"] for it in _load(out, "train", "Note-QueryCorr-topic")}
    assert levels <= {"-1", "0", "1", "2", "3"} and "-1" in levels and "3" in levels
    assert all(it["answer"] for it in _load(out, "train", "Note-QueryGen"))
    from snsrec.llm.scoring import read_result

    results = [read_result(it["answer"]) for it in _load(out, "train", "Note-MRC-complex")]
    assert all(r is not None for r in results) and any(results) and any(not r for r in results)
    for it, res in zip(_load(out, "train", "Note-MRC-complex"), results, strict=True):
        assert all(opt in it["content"] for opt in res)


def test_the_gold_answers_score_100(suite):
    out, _ = suite
    for task in BUILDERS:
        if task not in SCORERS:
            continue
        items = _load(out, "test", task)
        gold = [str(it["answer"]) for it in items]
        got = score_task(task, gold, items)
        if task == "Note-MRC-simple":   # BLEU-4 of an answer under four words is 0 (reference)
            assert got["success_f1"] == pytest.approx(100.0, abs=0.01)
            assert got["success_rouge_l"] == pytest.approx(100.0, abs=0.01)
            continue
        assert got["score"] == pytest.approx(100.0, abs=1e-3), task


def test_bad_input(tmp_path, tiny_world):
    with pytest.raises(DataError, match="no notes.parquet"):
        build_tasks(tmp_path, tmp_path / "o")
    with pytest.raises(ConfigError, match="unknown task"):
        build_tasks(tiny_world, tmp_path / "o", tasks=["Note-Poetry"])
    with pytest.raises(ConfigError, match="--harmful-share 1.5"):
        build_tasks(tiny_world, tmp_path / "o", harmful_share=1.5)


def test_harmful_share_balances_moderation_training_only(tiny_world, tmp_path):
    def answers(out, split):
        return [it["answer"] for it in _load(out, split, "Note-Moderation")]

    natural = build_tasks(tiny_world, tmp_path / "a", tasks=["Note-Moderation"],
                          max_items=10_000, seed=3)
    share = sum(a != "none" for a in answers(tmp_path / "a", "train")) / \
        natural["counts"]["Note-Moderation"]["train"]
    assert 0 < share < 0.2                                  # the world's mix: rare harm
    m = build_tasks(tiny_world, tmp_path / "b", tasks=["Note-Moderation"], max_items=20,
                    seed=3, harmful_share=0.5)
    train = answers(tmp_path / "b", "train")
    assert len(train) == 20 and sum(a != "none" for a in train) == 10
    assert m["harmful_share"] == 0.5
    # Valid and test do not depend on it (they are stratified either way).
    plain = build_tasks(tiny_world, tmp_path / "c", tasks=["Note-Moderation"], max_items=20,
                        seed=3)
    for split in ("valid", "test"):
        assert answers(tmp_path / "b", split) == answers(tmp_path / "c", split)
    assert "harmful_share" not in plain


def test_moderation_is_scored_on_half_harmful_test_notes(tiny_world, tmp_path):
    """The world has ~3% harmful notes: on its natural mix answering `none` scores ~97. The
    valid and test samples are half harmful, in every prefix (eval --limit reads one), and
    hold the split's notes only — the notes `snsrec bench moderation` tests on."""
    from snsrec.llm.moderation import read_notes, split_notes
    from snsrec.llm.tasks import EVAL_HARMFUL_SHARE, _note_content

    m = build_tasks(tiny_world, tmp_path, tasks=["Note-Moderation"], max_items=10, seed=0)
    assert m["eval_harmful_share"] == EVAL_HARMFUL_SHARE == 0.5
    notes = split_notes(read_notes(tiny_world / "notes.parquet"), seed=0)
    for split in ("valid", "test"):
        items = _load(tmp_path, split, "Note-Moderation")
        harmful = [it["answer"] != "none" for it in items]
        assert sum(harmful) >= 2 and sum(harmful) == len(items) / 2, split
        for n in range(1, len(items) + 1):
            assert abs(sum(harmful[:n]) - n / 2) <= 1, (split, n)
        own = {_note_content(r) for r in notes[split].iter_rows(named=True)}
        assert all(it["content"] in own for it in items)
    # The test split has 6 harmful notes among 105: 5 of them (half of 10) and 5 benign.
    assert len(_load(tmp_path, "test", "Note-Moderation")) == 10
    # With room for more items than there are harmful notes the share still holds: fewer
    # items, all 6 harmful ones.
    build_tasks(tiny_world, tmp_path / "big", tasks=["Note-Moderation"], max_items=40, seed=0)
    test = [it["answer"] != "none" for it in _load(tmp_path / "big", "test", "Note-Moderation")]
    assert len(test) == 12 and sum(test) == 6
