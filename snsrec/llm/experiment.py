"""`snsrec llm experiment`: the RedOne comparison on one backbone and one world's task suite.

Variants, each trained with `snsrec llm cpt | sft | dpo` and scored with `snsrec llm
eval` on the suite's test split:

- ``base`` — the backbone as it is;
- ``single-task`` — one SFT model per task, trained on that task's items only and
  scored on that task (the per-task fine-tuning RedOne compares against);
- ``multi-task`` — one SFT model on every task's items (+ general instructions);
- ``cpt+multi-task`` — the same SFT after continued pre-training;
- ``cpt+multi-task+dpo`` — that model after DPO on pairs from its own samples.

Every SFT sees its data for the same number of epochs, so the single-task models
together train on exactly what the multi-task model does. Finished runs and
evaluations are reused (the experiment resumes); ``experiment.json`` and
``experiment.md`` hold the table, per task and average, with the command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field as PField

from snsrec.config import StrictModel, deep_merge, load_config, validate_config
from snsrec.io import read_json, write_json, write_text
from snsrec.progress import echo

VARIANTS = ("base", "single-task", "multi-task", "cpt+multi-task", "cpt+multi-task+dpo")


class SuiteSettings(StrictModel):
    max_items: int = PField(64, ge=1)
    seed: int = 0
    tasks: list[str] = PField(default_factory=list)     # empty: every task


class EvalSettings(StrictModel):
    limit: int | None = PField(50, ge=1)
    batch_size: int = PField(8, ge=1)


class ExperimentConfig(StrictModel):
    name: str = "redone"
    model: str = "smollm2-135m"
    world: str = "world:small"
    threads: int | None = PField(None, ge=1)
    suite: SuiteSettings = PField(default_factory=SuiteSettings)
    eval: EvalSettings = PField(default_factory=EvalSettings)
    # Each a partial `snsrec llm <stage>` config (data / lora / train / dpo keys); the
    # experiment fills in name, model and the data paths.
    cpt: dict[str, Any] = PField(default_factory=dict)
    sft: dict[str, Any] = PField(default_factory=dict)
    dpo: dict[str, Any] = PField(default_factory=dict)


def load_experiment_config(path: Path | None, overrides: list[str] | None = None
                           ) -> ExperimentConfig:
    return load_config(ExperimentConfig, path, overrides)


class Experiment:
    def __init__(self, cfg: ExperimentConfig, out: Path, command: str):
        from snsrec.data.datasets import resolve_dataset

        self.cfg, self.out, self.command = cfg, Path(out), command
        self.world = resolve_dataset(cfg.world)
        self.suite = self.out / "suite"
        self.runs = self.out / "runs"

    def build_suite(self) -> list[str]:
        from snsrec.llm.scoring import SCORERS
        from snsrec.llm.tasks import build_tasks

        s = self.cfg.suite
        manifest = self.suite / "manifest.json"
        want = {"world": str(self.world), "seed": s.seed, "max_items": s.max_items}
        if not manifest.is_file() or any(read_json(manifest).get(k) != v
                                         for k, v in want.items()):
            build_tasks(self.world, self.suite, tasks=s.tasks or None,
                        max_items=s.max_items, seed=s.seed)
        counts = read_json(manifest)["counts"]
        return [t for t in counts if t in SCORERS and counts[t]["train"] and counts[t]["test"]]

    def stage(self, stage: str, name: str, model: str, data: dict[str, Any]) -> Path:
        """Run (or reuse) one post-training stage; its run directory."""
        from snsrec.llm.post_train import PostTrainConfig, post_train

        run = self.runs / name
        raw = deep_merge(getattr(self.cfg, stage), {
            "name": name, "model": model, "seed": self.cfg.suite.seed,
            "data": deep_merge(getattr(self.cfg, stage).get("data", {}), data)})
        if self.cfg.threads:
            raw = deep_merge(raw, {"train": {"threads": self.cfg.threads}})
        cfg = validate_config(PostTrainConfig, raw, f"experiment {stage} ({name})")
        done = run / "metrics.json"
        if done.is_file() and (run / "config.yaml").is_file() and \
                _same_config(run / "config.yaml", cfg.model_copy(update={"stage": stage})):
            echo(f"llm experiment: reusing {run}")
        else:
            post_train(stage, cfg, self.runs)
        return run

    def evaluate(self, name: str, model: str, only: list[str]) -> dict[str, Any]:
        from snsrec.llm.evaluate import evaluate_llm

        out = self.out / "eval" / name
        e = self.cfg.eval
        saved = out / "eval.json"
        trained = Path(model) / "metrics.json"      # a run re-trained since: evaluate again
        if saved.is_file() and (not trained.is_file() or
                                saved.stat().st_mtime >= trained.stat().st_mtime):
            res = read_json(saved)
            if res.get("limit") == e.limit and sorted(res["results"]) == sorted(only):
                echo(f"llm experiment: reusing {saved}")
                return res
        return evaluate_llm(model, self.suite, out, limit=e.limit, batch_size=e.batch_size,
                            threads=self.cfg.threads, only=only)["results"]

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        tasks = self.build_suite()
        suite = {"tasks": str(self.suite)}
        scores: dict[str, dict[str, float]] = {}

        def scored(variant: str, res: dict[str, Any]) -> None:
            scores.setdefault(variant, {}).update(
                {t: r["score"] for t, r in res["results"].items() if r["score"] is not None})

        scored("base", self.evaluate("base", self.cfg.model, tasks))
        for task in tasks:
            run = self.stage("sft", f"sft-{task}", self.cfg.model,
                             {**suite, "tasks_filter": [task]})
            scored("single-task", self.evaluate(f"sft-{task}", str(run), [task]))
        multi = self.stage("sft", "sft-multi", self.cfg.model, suite)
        scored("multi-task", self.evaluate("sft-multi", str(multi), tasks))
        cpt = self.stage("cpt", "cpt", self.cfg.model, {"world": str(self.world), **suite})
        cpt_sft = self.stage("sft", "cpt-sft-multi", str(cpt), suite)
        scored("cpt+multi-task", self.evaluate("cpt-sft-multi", str(cpt_sft), tasks))
        dpo = self.stage("dpo", "cpt-sft-multi-dpo", str(cpt_sft), suite)
        scored("cpt+multi-task+dpo", self.evaluate("cpt-sft-multi-dpo", str(dpo), tasks))
        cpt_metrics = read_json(cpt / "metrics.json")
        result = {"name": self.cfg.name, "model": self.cfg.model, "world": str(self.world),
                  "tasks": tasks, "scores": scores,
                  "average": {v: _mean(scores[v].values()) for v in VARIANTS},
                  "perplexity": {"before": cpt_metrics["perplexity_before"],
                                 "after": cpt_metrics["perplexity_after"]},
                  "pairs": read_json(dpo / "metrics.json")["pairs"],
                  "config": self.cfg.model_dump(mode="json"), "command": self.command,
                  "seconds": time.perf_counter() - t0}
        md = markdown(result)
        write_json(self.out / "experiment.json", result)
        write_text(self.out / "experiment.md", md)
        return {"markdown": md, "result": result}


def _same_config(path: Path, cfg: Any) -> bool:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8")) == cfg.model_dump(mode="json")


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def markdown(r: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    base = r["average"]["base"]
    rows = []
    for v in VARIANTS:
        s = r["scores"][v]
        rows.append([v, *[f"{s[t]:.1f}" if t in s else "–" for t in r["tasks"]],
                     f"**{r['average'][v]:.1f}**", f"{r['average'][v] - base:+.1f}"])
    short = [t.removeprefix("Note-") for t in r["tasks"]]
    b, a = r["perplexity"]["before"], r["perplexity"]["after"]
    p = r["pairs"]
    return "\n".join([
        f"# RedOne experiment: {r['model']} on {r['world']}\n",
        markdown_table(["variant", *short, "average", "vs base"], rows), "",
        f"Test split, at most {r['config']['eval']['limit']} items a task, greedy decoding. "
        f"CPT held-out perplexity: general text {b['general']:.2f} → {a['general']:.2f}, "
        f"test notes {b['notes']:.2f} → {a['notes']:.2f}. DPO pairs: {p['from_samples']} from "
        f"samples, {p['from_reference']} with the reference chosen, {p['tied']} tied. "
        f"{r['seconds'] / 60:.0f} minutes.\n",
        f"Reproduce: `{r['command']}`\n"])


def run_experiment(cfg: ExperimentConfig, out: str | Path, command: str) -> dict[str, Any]:
    return Experiment(cfg, Path(out), command).run()
