"""`snsrec llm cpt | sft | dpo`: the tiny-Qwen2 path CPT → SFT → DPO → eval on TRL, the
general text of the gensim wheel, preference-pair choice, and bad configs."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from snsrec.errors import ConfigError, DataError, ModelError
from snsrec.llm.corpus import (
    answer_text,
    general_documents,
    general_instructions,
    mix,
    note_documents,
)
from snsrec.llm.evaluate import evaluate_llm
from snsrec.llm.post_train import choose_pair, load_post_train_config, post_train
from snsrec.llm.scoring import read_list
from snsrec.llm.tasks import build_tasks, split_of


def test_general_text_and_instructions_ship_in_the_wheel():
    train, test = general_documents("train"), general_documents("test")
    assert len(train) == 300 and len(test) == 50 and not set(train) & set(test)
    assert sum(len(d.split()) for d in train) > 50_000
    qs = general_instructions()
    assert len(qs) == 19_544 and {q["kind"] for q in qs} >= {"capital-world", "family"}
    assert qs[0] == {"kind": "capital-common-countries", "answer": "Iraq",
                     "question": "Athens is to Greece as Baghdad is to what? "
                                 "Answer with one word."}


def test_mixture_share_and_answer_text():
    rows = mix(list(range(30)), [f"g{i}" for i in range(100)], 0.25, seed=1)
    assert len(rows) == 40 and sum(isinstance(r, str) for r in rows) == 10
    assert sorted(r for r in rows if isinstance(r, int)) == list(range(30))
    assert mix([1, 2], ["g"], 0.9, seed=0).count("g") == 1        # capped by what there is
    with pytest.raises(DataError, match="general_ratio 1.0"):
        mix([1], ["g"], 1.0, seed=0)
    assert answer_text("Yes") == "Yes"
    assert read_list(answer_text(["a 'quoted' span", "第二句"])) == ["a 'quoted' span", "第二句"]


def test_notes_split_as_the_suite(tiny_world):
    import polars as pl

    ids = pl.read_parquet(tiny_world / "notes.parquet", columns=["note_id"])["note_id"]
    by = {s: note_documents(tiny_world, s, seed=3) for s in ("train", "valid", "test")}
    assert sum(map(len, by.values())) == len(ids)
    assert len(by["train"]) == sum(split_of(i, 3) == "train" for i in ids)
    assert not set(by["train"]) & set(by["test"])


def test_choose_pair_by_the_task_metric():
    item = {"content": "c", "answer": "Yes"}
    got = choose_pair("Note-Gender", ["No", "Yes, it does", "No"], item)
    assert got["chosen"] == "Yes, it does" and got["rejected"] == "No"
    assert got["source"] == "from_samples" and got["scores"] == [100.0, 0.0]
    ref = choose_pair("Note-Gender", ["No", "maybe"], item)          # all wrong: the reference
    assert ref["chosen"] == "Yes" and ref["source"] == "from_reference"
    assert choose_pair("Note-Gender", ["No", "No"], item, reference_fallback=False) is None
    assert choose_pair("Note-Gender", ["Yes", "Yes"], item) is None  # all right: nothing to learn


def _write(path, text):
    path.write_text(text)
    return path


def test_length_batches_group_similar_lengths_in_random_batch_order():
    from snsrec.llm.post_train import length_batches

    lengths = [7, 300, 12, 280, 9, 310, 11, 290, 150, 160]
    rows = [{"i": i} for i in range(len(lengths))]
    out = length_batches(rows, lengths, 2, seed=3)
    assert sorted(r["i"] for r in out) == list(range(10))           # a permutation
    batches = [[lengths[r["i"]] for r in out[s:s + 2]] for s in range(0, 10, 2)]
    assert sorted(map(sorted, batches)) == [[7, 9], [11, 12], [150, 160], [280, 290],
                                            [300, 310]]
    assert out == length_batches(rows, lengths, 2, seed=3)           # seeded
    orders = {tuple(r["i"] for r in length_batches(rows, lengths, 2, seed=s)) for s in range(8)}
    assert len(orders) > 1                                           # batches shuffled


def test_cpt_sft_dpo_eval_chain_with_a_tiny_model(tiny_world, tmp_path):
    suite = tmp_path / "suite"
    build_tasks(tiny_world, suite, max_items=3, seed=3,
                tasks=["Note-Gender", "Note-Taxonomy-single", "Note-QueryCorr-explain"])
    runs = tmp_path / "runs"
    small = "lora: {rank: 4, alpha: 8}\n" \
            "train: {max_steps: 2, batch_size: 2, max_length: 160, logging_steps: 1}\n"
    cpt = load_post_train_config("cpt", _write(tmp_path / "cpt.yaml", (
        f"name: cpt\nmodel: tiny-qwen2\n"
        f"data: {{world: {tiny_world}, tasks: {suite}, max_documents: 8, held_out: 3}}\n")
        + small))
    m = post_train("cpt", cpt, runs)
    assert m["steps"] == 2 and m["documents"]["notes"] == 8 and m["documents"]["general"] == 2
    for when in ("perplexity_before", "perplexity_after"):
        assert all(math.isfinite(v) and v > 1 for v in m[when].values())
    model_dir = runs / "cpt" / "model"
    assert (model_dir / "config.json").is_file() and (model_dir / "tokenizer.json").is_file()
    assert (runs / "cpt" / "adapter" / "adapter_config.json").is_file()
    # The merged weights moved from the random initialisation the same seed gives.
    from snsrec.text.encoders import load_causal_lm

    base = load_causal_lm("tiny-qwen2", 0)[0].state_dict()
    merged = load_file(str(model_dir / "model.safetensors"))
    key = next(k for k in merged if k.endswith("layers.0.self_attn.q_proj.weight"))
    assert not torch.allclose(merged[key], base[key])

    sft = load_post_train_config("sft", _write(tmp_path / "sft.yaml", (
        f"name: sft\nmodel: {runs / 'cpt'}\ndata: {{tasks: {suite}, general_ratio: 0.25}}\n")
        + small))
    m = post_train("sft", sft, runs)
    assert m["examples"] == {"Note-Gender": 3, "Note-Taxonomy-single": 3,
                             "Note-QueryCorr-explain": 3, "general": 3}
    assert m["chat_template"] is False        # the tiny tokenizer has none: plain prompts

    dpo = load_post_train_config("dpo", _write(tmp_path / "dpo.yaml", (
        f"name: dpo\nmodel: {runs / 'sft'}\n"
        f"data: {{tasks: {suite}, tasks_filter: [Note-Gender]}}\ndpo: {{samples: 2}}\n")
        + small))
    m = post_train("dpo", dpo, runs)
    pairs = [json.loads(line) for line in (runs / "dpo" / "pairs.jsonl").open()]
    assert m["pairs"]["prompts"] == 3 and len(pairs) == 3 - m["pairs"]["tied"] > 0
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    assert json.loads((runs / "dpo" / "metrics.json").read_text())["stage"] == "dpo"

    res = evaluate_llm(str(runs / "dpo"), suite, tmp_path / "eval", limit=2)["results"]
    assert set(res["results"]) == {"Note-Gender", "Note-Taxonomy-single",
                                   "Note-QueryCorr-explain"}
    assert 0.0 <= res["average"] <= 100.0


def test_bad_post_training_configs(tiny_world, tmp_path):
    cfg = _write(tmp_path / "c.yaml", f"name: x\nstage: sft\nmodel: tiny-qwen2\n"
                                      f"data: {{world: {tiny_world}}}\n")
    with pytest.raises(ConfigError, match=r"stage: sft, but this is `snsrec llm cpt`"):
        load_post_train_config("cpt", cfg)
    with pytest.raises(ConfigError, match="sft needs data.tasks"):
        load_post_train_config("sft", cfg)
    ok = load_post_train_config("cpt", _write(tmp_path / "d.yaml", (
        f"name: x\nmodel: tiny-qwen2\ndata: {{world: {tiny_world}}}\n")))
    if not torch.cuda.is_available():
        gpu = ok.model_copy(update={"train": ok.train.model_copy(update={"device": "cuda"})})
        with pytest.raises(ConfigError, match="train.device: cuda, but this machine has no GPU"):
            post_train("cpt", gpu, tmp_path / "runs")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="a model without a tokenizer"):
        post_train("cpt", ok.model_copy(update={"model": str(bare)}), tmp_path / "runs")
    with pytest.raises(ModelError, match="not smollm2-135m, tiny-qwen2 or a local"):
        post_train("cpt", ok.model_copy(update={"model": str(tmp_path / "nope")}),
                   tmp_path / "runs")
    assert not (tmp_path / "runs" / "x").exists()           # nothing half-written
