"""`snsrec llm cpt | sft | dpo CONFIG.yaml`: RedOne's three post-training stages on TRL.

- **cpt** — continued pre-training: causal-LM loss over the training notes of a
  world (title, body, hashtags) mixed with general text (``general_ratio`` of the
  mixture; ``snsrec.llm.corpus``), packed into ``max_length`` blocks. Reports
  perplexity on held-out general text (the Lee test articles) and on the test
  notes, before and after: the general one shows what the mixture kept.
- **sft** — supervised fine-tuning on the task suite's training items (all
  tasks, or ``data.tasks_filter`` for single-task models), in the evaluator's
  own prompts through the backbone's chat template (plain text when it has
  none, stated), mixed with general instructions; loss on the answers only.
- **dpo** — preference optimisation on pairs from the model's own samples:
  ``dpo.samples`` sampled answers per training prompt are scored by the task's
  metric against the reference; the best is chosen and the worst rejected
  when they differ; when every sample scores the same and below the
  reference's own score, the reference is chosen (``dpo.reference_fallback``).

SFT and DPO train on batches of similar-length rows, the batches in random order
(``length_batches``): a batch pads to its longest row. Each stage is TRL's trainer
(``SFTTrainer`` / ``DPOTrainer``) with PEFT LoRA by default (``lora: null``: full
fine-tuning); the adapters are merged, so every run holds a plain Hugging Face
model: ``OUT/<name>/model/`` (safetensors and the tokenizer), ``adapter/`` (the LoRA
weights), ``config.yaml``, ``metrics.json``, ``log.jsonl`` (TRL's log), ``report.md``
and, for DPO, ``pairs.jsonl``. A run directory is written whole or not at all. ``model:`` is
``tiny-qwen2``, ``smollm2-135m``, a Hugging Face model directory or an earlier
run's directory, so stages chain: cpt → sft → dpo.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import Field as PField

from snsrec.config import PlainName, StrictModel, load_config
from snsrec.errors import ConfigError, DataError
from snsrec.io import atomic_dir, check_out, read_json, write_json, write_jsonl, write_text
from snsrec.progress import Progress, echo

STAGES = ("cpt", "sft", "dpo")
RUN_LEGACY = ("metrics.json",)     # a run written before the .snsrec mark (snsrec.io)


class LoraSettings(StrictModel):
    rank: int = PField(16, ge=1)
    alpha: float = 32.0
    dropout: float = PField(0.05, ge=0.0, lt=1.0)
    targets: list[str] = PField(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


class DataSettings(StrictModel):
    world: str | None = None          # cpt: the world whose training notes are the domain text
    tasks: str | None = None          # sft / dpo: a suite from `snsrec llm tasks build`
    split_seed: int | None = None     # cpt: the suite's split seed (default: the suite's, or 0)
    tasks_filter: list[str] = PField(default_factory=list)   # sft / dpo: only these tasks
    max_items: int | None = PField(None, ge=1)               # per task (sft / dpo)
    max_documents: int | None = PField(None, ge=1)           # cpt: domain notes kept
    general_ratio: float = PField(0.2, ge=0.0, lt=1.0)
    held_out: int = PField(50, ge=1)    # cpt: held-out documents of each kind for perplexity


class TrainSettings(StrictModel):
    epochs: float = PField(1.0, gt=0)
    max_steps: int = -1
    batch_size: int = PField(8, ge=1)
    grad_accum: int = PField(1, ge=1)
    lr: float = PField(2e-4, gt=0)
    warmup_ratio: float = PField(0.03, ge=0.0, lt=1.0)
    max_length: int = PField(512, ge=8)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    bf16: bool = False                  # bfloat16 mixed precision (a GPU run)
    threads: int | None = PField(None, ge=1)
    logging_steps: int = PField(10, ge=1)
    # Recompute activations in the backward pass: memory for time (~a third more compute).
    # Off by default — a small model's activations fit; a 7B model on a GPU turns it on.
    gradient_checkpointing: bool = False


class DPOSettings(StrictModel):
    samples: int = PField(4, ge=2)
    temperature: float = PField(1.0, gt=0)
    beta: float = PField(0.1, gt=0)
    max_prompts: int | None = PField(None, ge=1)   # per task
    reference_fallback: bool = True
    batch_size: int = PField(8, ge=1)               # prompts per sampling batch


class PostTrainConfig(StrictModel):
    name: PlainName                 # the run goes to OUT/<name>
    stage: Literal["cpt", "sft", "dpo"] | None = None
    model: str
    seed: int = 0
    data: DataSettings = PField(default_factory=DataSettings)
    lora: LoraSettings | None = PField(default_factory=LoraSettings)
    train: TrainSettings = PField(default_factory=TrainSettings)
    dpo: DPOSettings = PField(default_factory=DPOSettings)


def load_post_train_config(stage: str, path: Path | None, overrides: list[str] | None = None
                           ) -> PostTrainConfig:
    cfg = load_config(PostTrainConfig, path, overrides)
    if cfg.stage not in (None, stage):
        raise ConfigError(f"{path}: stage: {cfg.stage}, but this is `snsrec llm {stage}`; "
                          f"run `snsrec llm {cfg.stage} {path}`")
    cfg = cfg.model_copy(update={"stage": stage})
    need = {"cpt": "world", "sft": "tasks", "dpo": "tasks"}[stage]
    if getattr(cfg.data, need) is None:
        raise ConfigError(f"{path}: {stage} needs data.{need} "
                          + ("(a world directory)" if need == "world"
                             else "(a suite from `snsrec llm tasks build`)"))
    return cfg


# -- models -------------------------------------------------------------------------

def device_of(setting: str) -> str:
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda, but this machine has no GPU; use cpu or auto")
    return "cuda" if setting == "auto" and torch.cuda.is_available() else \
        ("cpu" if setting == "auto" else setting)


def load_backbone(model: str, seed: int = 0) -> tuple[Any, Any]:
    from snsrec.text.encoders import load_causal_lm

    lm, tok = load_causal_lm(model, seed)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return lm, tok


def peft_config(cfg: PostTrainConfig) -> Any:
    if cfg.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.targets, task_type="CAUSAL_LM")


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: list[str], max_length: int = 512,
               batch_size: int = 8) -> float:
    """exp of the mean next-token loss over every token of ``texts`` (each cut to
    ``max_length`` tokens)."""
    model.eval()
    tokenizer.padding_side = "right"
    nll, n = 0.0, 0
    for s in range(0, len(texts), batch_size):
        enc = tokenizer(texts[s:s + batch_size], return_tensors="pt", padding=True,
                        truncation=True, max_length=max_length)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        logits = model(**enc).logits[:, :-1].float()
        target = enc["input_ids"][:, 1:]
        mask = enc["attention_mask"][:, 1:].bool()
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        nll += float(loss[mask].sum())
        n += int(mask.sum())
    return math.exp(nll / max(n, 1))


# -- the stages ------------------------------------------------------------------------

def _args(cls: Any, cfg: PostTrainConfig, out: Path, device: str, **extra: Any) -> Any:
    t = cfg.train
    return cls(output_dir=str(out), num_train_epochs=t.epochs, max_steps=t.max_steps,
               per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
               learning_rate=t.lr, warmup_steps=t.warmup_ratio,  # a float < 1: a share of the steps
               lr_scheduler_type="cosine",
               logging_steps=t.logging_steps, save_strategy="no", report_to=[],
               seed=cfg.seed, data_seed=cfg.seed, use_cpu=device == "cpu",
               max_length=t.max_length, bf16=t.bf16,
               gradient_checkpointing=t.gradient_checkpointing, **extra)


def length_batches(rows: list[dict[str, Any]], lengths: list[int], batch_size: int,
                   seed: int) -> list[dict[str, Any]]:
    """``rows`` reordered for a sequential sampler: batches of ``batch_size`` rows of
    similar length (sorted by length, ties in random order), the batches themselves in
    random order. A batch pads to its longest row; on the small world's multi-task
    mixture, batches of 4 in random order compute 1.5× the real tokens, these 1.004×."""
    import random

    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return [rows[i] for b in batches for i in b]


def split_seed(cfg: PostTrainConfig) -> int:
    if cfg.data.split_seed is not None:
        return cfg.data.split_seed
    if cfg.data.tasks and (Path(cfg.data.tasks) / "manifest.json").is_file():
        return int(read_json(Path(cfg.data.tasks) / "manifest.json").get("seed", 0))
    return 0


def cpt_data(cfg: PostTrainConfig) -> dict[str, Any]:
    from snsrec.llm.corpus import general_documents, mix, note_documents

    seed = split_seed(cfg)
    notes = note_documents(cfg.data.world, "train", seed)[:cfg.data.max_documents]
    if not notes:
        raise DataError(f"{cfg.data.world}: no training notes to pre-train on")
    docs = mix(notes, general_documents("train"), cfg.data.general_ratio, cfg.seed)
    return {"train": docs, "notes": len(notes), "general": len(docs) - len(notes),
            "held_out_general": general_documents("test")[:cfg.data.held_out],
            "held_out_notes": note_documents(cfg.data.world, "test", seed)[:cfg.data.held_out]}


def run_cpt(cfg: PostTrainConfig, lm: Any, tok: Any, run: Path, scratch: Path, device: str
            ) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = cpt_data(cfg)

    def held_out(model: Any) -> dict[str, float]:
        return {kind: perplexity(model, tok, data[f"held_out_{kind}"], cfg.train.max_length)
                for kind in ("general", "notes")}

    before = held_out(lm)
    echo(f"llm cpt: {data['notes']:,} notes + {data['general']:,} general documents; held-out "
         f"perplexity general {before['general']:.2f}, notes {before['notes']:.2f}")
    args = _args(SFTConfig, cfg, scratch, device, packing=True, packing_strategy="wrapped",
                 dataset_text_field="text")
    trainer = SFTTrainer(model=lm, args=args, processing_class=tok, peft_config=peft_config(cfg),
                         train_dataset=Dataset.from_list([{"text": d} for d in data["train"]]))
    trainer.train()
    model = _merged(trainer, run)
    after = held_out(model)
    echo(f"llm cpt: held-out perplexity general {before['general']:.2f} → {after['general']:.2f},"
         f" notes {before['notes']:.2f} → {after['notes']:.2f}")
    return trainer, {"documents": {"notes": data["notes"], "general": data["general"]},
                     "perplexity_before": before, "perplexity_after": after}


def run_sft(cfg: PostTrainConfig, lm: Any, tok: Any, run: Path, scratch: Path, device: str
            ) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from snsrec.llm.corpus import sft_examples, task_items

    items = task_items(cfg.data.tasks, "train", cfg.data.tasks_filter or None, cfg.data.max_items)
    rows, fallback = sft_examples(tok, items, cfg.data.general_ratio, cfg.seed)
    counts: dict[str, int] = {}
    for r in rows:
        key = "general" if r["task"].startswith("general:") else r["task"]
        counts[key] = counts.get(key, 0) + 1
    echo(f"llm sft: {len(rows):,} examples ({', '.join(f'{k} {v}' for k, v in counts.items())})"
         + ("; no chat template, plain-text prompts" if fallback else ""))
    rows = _length_batched(cfg, tok, [{"prompt": r["prompt"], "completion": r["completion"]}
                                      for r in rows])
    args = _args(SFTConfig, cfg, scratch, device, completion_only_loss=True,
                 train_sampling_strategy="sequential")
    trainer = SFTTrainer(model=lm, args=args, processing_class=tok, peft_config=peft_config(cfg),
                         train_dataset=Dataset.from_list(rows))
    trainer.train()
    return trainer, {"examples": counts, "chat_template": not fallback}


def _length_batched(cfg: PostTrainConfig, tok: Any, rows: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """``rows`` (training texts by field) in ``length_batches`` order, a row's length its
    token count over all its fields (the texts a training batch pads)."""
    lengths = [sum(len(ids) for ids in tok(list(r.values()))["input_ids"]) for r in rows]
    return length_batches(rows, lengths, cfg.train.batch_size, cfg.seed)


def choose_pair(task: str, answers: list[str], item: dict[str, Any],
                reference_fallback: bool = True) -> dict[str, Any] | None:
    """One preference pair from a prompt's sampled ``answers``, scored by ``task``'s metric
    against ``item``'s reference: the best sample chosen, the worst rejected; when all score
    the same and below the reference itself, the reference chosen (if
    ``reference_fallback``); None when nothing separates them."""
    from snsrec.llm.corpus import answer_text
    from snsrec.llm.scoring import score_task

    scores = [score_task(task, [a], [item])["score"] for a in answers]
    hi = max(range(len(scores)), key=scores.__getitem__)
    lo = min(range(len(scores)), key=scores.__getitem__)
    if scores[hi] > scores[lo]:
        return {"chosen": answers[hi].strip(), "rejected": answers[lo].strip(),
                "scores": [scores[hi], scores[lo]], "source": "from_samples"}
    ref = answer_text(item["answer"])
    ref_score = score_task(task, [ref], [item])["score"]
    if not reference_fallback or scores[lo] >= ref_score:
        return None
    return {"chosen": ref, "rejected": answers[lo].strip(), "scores": [ref_score, scores[lo]],
            "source": "from_reference"}


def preference_pairs(cfg: PostTrainConfig, lm: Any, tok: Any) -> tuple[list[dict], dict]:
    """DPO pairs from ``dpo.samples`` sampled answers per training prompt (see the module doc)."""
    from snsrec.llm.corpus import task_items
    from snsrec.llm.evaluate import generate
    from snsrec.llm.prompts import max_new_tokens, render_items
    from snsrec.llm.scoring import SCORERS

    d = cfg.dpo
    items = task_items(cfg.data.tasks, "train", cfg.data.tasks_filter or None,
                       d.max_prompts or cfg.data.max_items)
    pairs: list[dict] = []
    stats = {"prompts": 0, "from_samples": 0, "from_reference": 0, "tied": 0}
    torch.manual_seed(cfg.seed)
    lm.eval()
    for task, rows in items.items():
        if task not in SCORERS:
            continue
        prompts = render_items(tok, task, rows, task)[0]
        with Progress(f"llm dpo: sampling {task}", total=len(prompts) * d.samples,
                      unit="answers") as bar:
            outs = generate(lm, tok, prompts, max_new_tokens(task), d.batch_size, bar,
                            samples=d.samples, temperature=d.temperature)
        for i, (prompt, it) in enumerate(zip(prompts, rows, strict=True)):
            stats["prompts"] += 1
            pair = choose_pair(task, outs[i * d.samples:(i + 1) * d.samples], it,
                               d.reference_fallback)
            stats[pair["source"] if pair else "tied"] += 1
            if pair:
                pairs.append({"task": task, "prompt": prompt, **pair})
    return pairs, stats


def run_dpo(cfg: PostTrainConfig, lm: Any, tok: Any, run: Path, scratch: Path, device: str
            ) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    pairs, stats = preference_pairs(cfg, lm, tok)
    echo(f"llm dpo: {len(pairs):,} pairs from {stats['prompts']:,} prompts "
         f"({stats['from_samples']:,} from samples, {stats['from_reference']:,} with the "
         f"reference chosen, {stats['tied']:,} tied and skipped)")
    if not pairs:
        raise DataError(f"{cfg.data.tasks}: no preference pairs (every prompt's samples tied); "
                        "raise dpo.samples or dpo.temperature")
    write_jsonl(run / "pairs.jsonl", pairs)
    rows = _length_batched(cfg, tok, [{k: p[k] for k in ("prompt", "chosen", "rejected")}
                                      for p in pairs])
    args = _args(DPOConfig, cfg, scratch, device, beta=cfg.dpo.beta,
                 train_sampling_strategy="sequential")
    lora = peft_config(cfg)
    trainer = DPOTrainer(model=lm, ref_model=None if lora else copy.deepcopy(lm), args=args,
                         processing_class=tok, peft_config=lora,
                         train_dataset=Dataset.from_list(rows))
    trainer.train()
    return trainer, {"pairs": stats}


RUNNERS = {"cpt": run_cpt, "sft": run_sft, "dpo": run_dpo}


def _merged(trainer: Any, run: Path) -> Any:
    """The trained model as a plain transformers model (LoRA adapters saved into
    ``run/adapter``, then merged)."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(str(run / "adapter"))
        model = model.merge_and_unload()
        trainer.model = model
    return model


def post_train(stage: str, cfg: PostTrainConfig, out: str | Path = "runs", *,
               force: bool = False) -> dict[str, Any]:
    """Run one stage into ``OUT/<name>/`` (replaced when it is a run snsrec wrote, or with
    ``force``); return its metrics."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    cfg = cfg.model_copy(update={"stage": stage})
    run_dir = check_out(Path(out) / cfg.name, force=force, legacy=RUN_LEGACY)   # before work
    device = device_of(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    lm, tok = load_backbone(cfg.model, cfg.seed)
    lm.to(device)
    t0 = time.perf_counter()
    with atomic_dir(run_dir, f"llm {stage}", force=force, legacy=RUN_LEGACY) as tmp, \
            tempfile.TemporaryDirectory() as scratch:
        trainer, metrics = RUNNERS[stage](cfg, lm, tok, tmp, Path(scratch), device)
        model = _merged(trainer, tmp)
        log = [r for r in trainer.state.log_history if "loss" in r or "train_loss" in r]
        metrics.update({"stage": stage, "model": cfg.model, "name": cfg.name,
                        "steps": trainer.state.global_step,
                        "train_loss": next((r["train_loss"] for r in reversed(log)
                                            if "train_loss" in r), None),
                        "train_time_s": time.perf_counter() - t0,
                        "lora": cfg.lora is not None, "device": device})
        model.save_pretrained(str(tmp / "model"), safe_serialization=True)
        tok.save_pretrained(str(tmp / "model"))
        write_text(tmp / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"),
                                                        sort_keys=False, allow_unicode=True))
        write_json(tmp / "metrics.json", metrics)
        write_jsonl(tmp / "log.jsonl", trainer.state.log_history)
        write_text(tmp / "report.md", report(cfg, metrics, run_dir))
    echo(f"llm {stage}: {run_dir} ({metrics['steps']} steps, {metrics['train_time_s']:.0f} s)")
    return metrics


def report(cfg: PostTrainConfig, m: dict[str, Any], run_dir: Path) -> str:
    lines = [f"# {cfg.name}: {m['stage']} of {cfg.model}\n",
             f"{m['steps']} steps in {m['train_time_s']:.0f} s on {m['device']}, "
             f"{'LoRA r=' + str(cfg.lora.rank) if cfg.lora else 'full fine-tuning'}, "
             f"final training loss {m['train_loss'] if m['train_loss'] is None else round(m['train_loss'], 4)}.\n"]
    if "perplexity_before" in m:
        b, a = m["perplexity_before"], m["perplexity_after"]
        lines.append("| held-out perplexity | before | after |\n|---|---|---|\n"
                     f"| general text (Lee test) | {b['general']:.2f} | {a['general']:.2f} |\n"
                     f"| test notes | {b['notes']:.2f} | {a['notes']:.2f} |\n")
    if "pairs" in m:
        p = m["pairs"]
        lines.append(f"Preference pairs: {p['from_samples']} from samples, "
                     f"{p['from_reference']} with the reference chosen, {p['tied']} tied "
                     f"(of {p['prompts']} prompts).\n")
    lines.append(f"Model: `{run_dir}/model` (Hugging Face format); evaluate with "
                 f"`snsrec llm eval --model {run_dir} --tasks SUITE`.\n")
    return "\n".join(lines)
