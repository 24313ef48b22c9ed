"""LLM moderation (label-token probabilities, resumable), the hashed n-gram baseline and
`snsrec bench moderation`."""

import json

import numpy as np
import polars as pl
import pytest

from snsrec.errors import DataError
from snsrec.llm import moderation
from snsrec.llm.moderation import LABELS, NgramModerator, bench_moderation, metrics, moderate


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 2, 0])                        # two harmful: scam, gambling
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.4, 0.6, 0, 0, 0], [0.2, 0.8, 0, 0, 0],
                      [0.7, 0.0, 0.3, 0, 0], [1.0, 0, 0, 0, 0]])
    m = metrics(y, probs)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5) and m["type_accuracy"] == 1.0
    assert m["harmful"] == 2 and m["notes"] == 5
    assert m["auc"] == pytest.approx(5 / 6)


def test_ngram_baseline_learns_telling_words():
    rng = np.random.default_rng(0)
    filler = ["coffee", "trip", "lens", "sunset", "recipe", "weekend", "city", "book"]
    texts, y = [], []
    for i in range(400):
        words = list(rng.choice(filler, 12))
        label = [0, 0, 0, 1, 2][i % 5]
        if label == 1:
            words.insert(5, "guaranteed returns wire money")
        if label == 2:
            words.insert(3, "casino jackpot bet now")
        texts.append(" ".join(words))
        y.append(label)
    m = NgramModerator(buckets=1 << 16)
    m.fit(texts[:300], np.array(y[:300]), epochs=5)
    got = metrics(np.array(y[300:]), m.label_probs(texts[300:]))
    assert got["f1"] == 1.0 and got["type_accuracy"] == 1.0
    # Hashed once (ragged rows), fitted on a subset and scored: the same model.
    again = NgramModerator(buckets=1 << 16)
    rows = again.hash.ragged(texts)
    assert rows.flat[rows.starts[2]:rows.starts[2] + rows.lens[2]].tolist() == \
        again.hash.ids(texts[2])
    again.fit(rows, np.array(y[:300]), epochs=5, subset=np.arange(300))
    np.testing.assert_array_equal(again.label_probs(rows)[300:], m.label_probs(texts[300:]))


def test_the_baseline_also_trains_on_every_note_as_a_short_one():
    words = [f"w{i}" for i in range(40)]
    notes = pl.DataFrame({"note_id": [1, 2, 3], "title": ["a title", "b", "c"],
                          "body": [" ".join(words), "", None], "harmful": [True, False, False],
                          "harm_type": ["scam", None, None]})
    texts, labels = moderation.with_short_copies(notes)
    assert texts[:3] == ["a title\n" + " ".join(words), "b\n", "c\n"]
    assert labels.tolist() == [1, 0, 0, 1, 0, 0]
    title, body = texts[3].split("\n")
    assert title == "a title" and body.split() == words[:len(body.split())]
    assert len(body.split()) <= 10 and texts[4:] == ["b\n", "c\n"]
    again, _ = moderation.with_short_copies(notes)
    assert again == texts                                  # seeded


def _notes(tmp_path, n=10):
    path = tmp_path / "notes.parquet"
    pl.DataFrame({"note_id": np.arange(n), "title": [f"title {i}" for i in range(n)],
                  "body": [f"body of note {i}" for i in range(n)]}).write_parquet(path)
    return path


def test_llm_batches_by_length_keep_each_notes_answer():
    # Batches are formed in prompt-length order; each note's probabilities must be its own
    # (as when scored alone) and come back in the notes' order.
    m = moderation.LLMModerator("tiny-qwen2")
    rows = [{"title": f"note {i}", "body": " ".join(["word"] * (3 + 17 * (i % 4)))}
            for i in range(9)]
    alone = np.concatenate([m.label_probs([r], 1) for r in rows])
    batched = m.label_probs(rows, 4)
    assert batched.shape == (9, len(LABELS))
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert len({round(float(x), 6) for x in alone[:, 0]}) > 1    # the notes differ


def test_llm_moderation_scores_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(moderation, "CHUNK", 4)
    notes = _notes(tmp_path)
    full = moderate("tiny-qwen2", notes, tmp_path / "a.parquet", batch_size=3)
    a = pl.read_parquet(tmp_path / "a.parquet")
    assert full["scored"] == 10 and a["note_id"].to_list() == list(range(10))
    probs = a.select([f"p_{lab}" for lab in LABELS]).to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.allclose(a["p_harmful"], 1 - a["p_none"])
    assert set(a["harm_type"]) <= set(LABELS[1:])
    # An interrupted run: its first part is on disk; the rerun scores only the rest.
    parts = tmp_path / "b.parquet.parts"
    parts.mkdir()
    (parts / "run.json").write_text(json.dumps({
        "model": "tiny-qwen2", "notes": str(notes.resolve()), "rows": 10, "chunk": 4,
        "labels": list(LABELS)}))
    a.head(4).write_parquet(parts / "part-00000.parquet")
    again = moderate("tiny-qwen2", notes, tmp_path / "b.parquet", batch_size=3)
    assert again["scored"] == 6 and not parts.exists()
    b = pl.read_parquet(tmp_path / "b.parquet")
    assert np.allclose(b["p_harmful"], a["p_harmful"], atol=1e-5)
    # Parts of another run are refused, not mixed in.
    parts.mkdir()
    (parts / "run.json").write_text("{}")
    with pytest.raises(DataError, match="parts of another moderation run"):
        moderate("tiny-qwen2", notes, tmp_path / "b.parquet")


def test_bad_notes_tables(tmp_path):
    pl.DataFrame({"note_id": [1], "title": ["t"]}).write_parquet(tmp_path / "n.parquet")
    with pytest.raises(DataError, match=r"n.parquet: no column\(s\) body"):
        moderate("tiny-qwen2", tmp_path / "n.parquet", tmp_path / "o.parquet")
    with pytest.raises(DataError, match="no such notes table"):
        moderate("tiny-qwen2", tmp_path / "none.parquet", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_bench_moderation_on_the_tiny_world(tiny_world, tmp_path):
    res = bench_moderation(tiny_world, "tiny-qwen2", tmp_path / "bench", limit=12)["results"]
    assert set(res["systems"]) == {"ngram-lr", "llm:tiny-qwen2"} and res["test_notes"] == 12
    for m in res["systems"].values():
        assert 0.0 <= m["f1"] <= 1.0 and m["notes"] == 12 and m["notes_per_s"] > 0
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == [
        ".snsrec", "llm_scores.parquet", "moderation.json", "moderation.md"]


def test_an_interrupted_bench_resumes_from_its_parts(tiny_world, tmp_path, monkeypatch):
    monkeypatch.setattr(moderation, "CHUNK", 4)
    calls = []
    real = moderation.LLMModerator.label_probs

    def failing(self, rows, batch_size):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt          # stopped while scoring the second part
        return real(self, rows, batch_size)

    monkeypatch.setattr(moderation.LLMModerator, "label_probs", failing)
    with pytest.raises(KeyboardInterrupt):
        bench_moderation(tiny_world, "tiny-qwen2", tmp_path / "bench", limit=12)
    assert not (tmp_path / "bench").exists()
    [work] = tmp_path.glob(".bench.*.work")
    assert len(list(work.glob("llm_scores.parquet.parts/part-*.parquet"))) == 1
    calls.clear()

    def counting(self, rows, batch_size):
        calls.append(len(rows))
        return real(self, rows, batch_size)

    monkeypatch.setattr(moderation.LLMModerator, "label_probs", counting)
    resumed = bench_moderation(tiny_world, "tiny-qwen2", tmp_path / "bench", limit=12)
    assert calls == [4, 4]                   # only the two parts not on disk
    fresh = bench_moderation(tiny_world, "tiny-qwen2", tmp_path / "fresh", limit=12)
    assert not list(tmp_path.glob(".*.work"))                 # gone once written
    a = pl.read_parquet(tmp_path / "bench" / "llm_scores.parquet")
    b = pl.read_parquet(tmp_path / "fresh" / "llm_scores.parquet")
    assert a["note_id"].to_list() == b["note_id"].to_list() and a.height == 12
    np.testing.assert_allclose(a["p_harmful"], b["p_harmful"], atol=1e-5)
    llm = [k for k in resumed["results"]["systems"] if k.startswith("llm:")][0]
    assert resumed["results"]["systems"][llm]["auc"] == pytest.approx(
        fresh["results"]["systems"][llm]["auc"], abs=1e-6)
