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
evaluations are reused (the experiment resumes): an evaluation of a run whose
config is unchanged needs neither the run nor its weights again, so the records
alone (each run's ``metrics.json`` and ``config.yaml``, each ``eval.json``; what
git keeps under ``bench/``) carry an experiment over to a fresh clone.
``experiment.json`` and ``experiment.md`` hold the table, per task and average,
with the command and the minutes of training and evaluation summed over every
stage. An evaluation is reused only when it answered the suite's current test items
(each task's digest in ``eval.json``) and kept every item's output: an older
``eval.json`` is answered again (a run whose config is unchanged is not retrained).

Beside the variants (``snsrec.llm.compare``): two constant-answer rows — the best
constant answer of each task on its test items, and the training split's majority
label; a cell where a variant does not beat the best constant answer is marked †
and left out of that variant's average over informative tasks, shown beside the
plain one; and for each difference ``COMPARISONS`` names, the paired bootstrap 95%
interval over items of the difference of the plain averages — a tie where it
spans zero.

The thread count is how a run is computed, not what it is: a record made with
another ``threads`` is reused. ``jobs`` > 1 runs the independent chains of
stages side by side, one process each (``threads`` each, by default the cores
shared out): the CPT → SFT → DPO chain, the multi-task SFT, the base model's
evaluation and each single-task model. On a few cores two one-thread processes
get more done than one process on two threads (a 135M model's matrices are
too small to split well), and the chains do not wait for each other.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import Field as PField

from snsrec.config import PlainName, StrictModel, deep_merge, load_config, validate_config
from snsrec.io import check_out, out_dir, read_json, write_json
from snsrec.progress import echo
from snsrec.records import code_fingerprint, write_record

# The code a stage's run and an evaluation's scores depend on (snsrec.records): a record
# made by other code is made again.
TRAIN_CODE = ("snsrec.llm.post_train",)
EVAL_CODE = ("snsrec.llm.evaluate",)

VARIANTS = ("base", "single-task", "multi-task", "cpt+multi-task", "cpt+multi-task+dpo")
BASELINES = ("best-constant", "majority-label")
# (A, B, what A − B measures): every variant against base, then each stage's own effect.
COMPARISONS = (*((v, "base", "vs base") for v in VARIANTS[1:]),
               ("multi-task", "single-task", "multi-task training"),
               ("cpt+multi-task", "multi-task", "CPT"),
               ("cpt+multi-task+dpo", "cpt+multi-task", "DPO"))


class SuiteSettings(StrictModel):
    max_items: int = PField(64, ge=1)
    seed: int = 0
    tasks: list[str] = PField(default_factory=list)     # empty: every task


class EvalSettings(StrictModel):
    limit: int | None = PField(50, ge=1)
    batch_size: int = PField(8, ge=1)


class ExperimentConfig(StrictModel):
    name: PlainName = "redone"       # the default --out is bench/<name>
    model: str = "smollm2-135m"
    world: str = "world:small"
    threads: int | None = PField(None, ge=1)    # each job's; None: all cores, shared out
    jobs: int = PField(1, ge=1)                  # chains of stages run side by side
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
        self._specs: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
        self._digests: dict[str, str] = {}
        cores = len(os.sched_getaffinity(0))
        self.threads = cfg.threads or (max(1, cores // cfg.jobs) if cfg.jobs > 1 else None)

    def build_suite(self) -> list[str]:
        from snsrec.llm.scoring import SCORERS
        from snsrec.llm.tasks import EVAL_HARMFUL_SHARE, build_tasks

        s = self.cfg.suite
        manifest = self.suite / "manifest.json"
        want = {"world": str(self.world), "seed": s.seed, "max_items": s.max_items,
                "eval_harmful_share": EVAL_HARMFUL_SHARE}
        if not manifest.is_file() or any(read_json(manifest).get(k) != v
                                         for k, v in want.items()):
            build_tasks(self.world, self.suite, tasks=s.tasks or None,
                        max_items=s.max_items, seed=s.seed)
        counts = read_json(manifest)["counts"]
        return [t for t in counts if t in SCORERS and counts[t]["train"] and counts[t]["test"]]

    def prepare(self, tasks: list[str]) -> None:
        """The runs of ``tasks`` (``specs``) and the digests of the test items scored."""
        from snsrec.llm.corpus import task_items
        from snsrec.llm.evaluate import items_digest

        self._specs = self.specs(tasks)
        self._digests = {t: items_digest(items) for t, items in
                         task_items(self.suite, "test", tasks, self.cfg.eval.limit).items()}

    def specs(self, tasks: list[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
        """Every post-training run: name → (stage, the run it starts from or None for the
        backbone, its data)."""
        suite = {"tasks": str(self.suite)}
        return {**{f"sft-{t}": ("sft", None, {**suite, "tasks_filter": [t]}) for t in tasks},
                "sft-multi": ("sft", None, suite),
                "cpt": ("cpt", None, {"world": str(self.world), **suite}),
                "cpt-sft-multi": ("sft", "cpt", suite),
                "cpt-sft-multi-dpo": ("dpo", "cpt-sft-multi", suite)}

    def config(self, name: str) -> Any:
        """The resolved `snsrec llm <stage>` config of run ``name`` (as its config.yaml)."""
        from snsrec.llm.post_train import PostTrainConfig

        stage, parent, data = self._specs[name]
        model = self.cfg.model if parent is None else str(self.runs / parent)
        raw = deep_merge(getattr(self.cfg, stage), {
            "name": name, "model": model, "seed": self.cfg.suite.seed,
            "data": deep_merge(getattr(self.cfg, stage).get("data", {}), data)})
        if self.threads:
            raw = deep_merge(raw, {"train": {"threads": self.threads}})
        cfg = validate_config(PostTrainConfig, raw, f"experiment {stage} ({name})")
        return cfg.model_copy(update={"stage": stage})

    def recorded(self, name: str) -> bool:
        """Whether run ``name`` finished with its current config and by the current code
        (its metrics.json, config.yaml and the code fingerprint in its bench.json; its
        weights may be gone — git keeps the records, not the weights)."""
        run = self.runs / name
        return (run / "metrics.json").is_file() and (run / "config.yaml").is_file() and \
            _same_config(run / "config.yaml", self.config(name)) and \
            _stamped_code(run / "bench.json") == code_fingerprint(TRAIN_CODE)["sha256"]

    def trained(self, name: str) -> Path:
        """Run ``name``'s directory with its weights: reused, or trained (after the run
        it starts from)."""
        from snsrec.llm.post_train import post_train

        run = self.runs / name
        if self.recorded(name) and (run / "model" / "config.json").is_file():
            echo(f"llm experiment: reusing {run}")
            return run
        stage, parent, _ = self._specs[name]
        if parent is not None:
            self.trained(parent)
        post_train(stage, self.config(name), self.runs)
        write_json(run / "bench.json", {"code": code_fingerprint(TRAIN_CODE)})
        return run

    def metrics(self, name: str) -> dict[str, Any]:
        if not self.recorded(name):
            self.trained(name)
        return read_json(self.runs / name / "metrics.json")

    def saved_eval(self, name: str, only: list[str]) -> dict[str, Any] | None:
        """Run ``name``'s eval.json (``base``: the backbone's) when it scored the same tasks,
        limit and test items (their digests; an older eval.json has none, nor the per-item
        outputs) of a run with the same config; None otherwise."""
        saved = self.out / "eval" / name / "eval.json"
        if not saved.is_file():
            return None
        res = read_json(saved)
        trained = None if name == "base" else _comparable(self.config(name))
        done = res.get("trained", False)
        if not res.get("partial") and res.get("limit") == self.cfg.eval.limit and \
                (res.get("code") or {}).get("sha256") == code_fingerprint(EVAL_CODE)["sha256"] \
                and \
                sorted(res["results"]) == sorted(only) and \
                all(res["results"][t].get("digest") == self._digests[t] for t in only) and \
                (_comparable(done) if isinstance(done, dict) else done) == trained and \
                (trained is not None or res.get("model") == self.cfg.model) and \
                (name == "base" or self.recorded(name)):       # its run: this code's too
            return res
        return None

    def evaluate(self, name: str, only: list[str]) -> dict[str, Any]:
        """The scores of the backbone (``base``) or of run ``name``: reused when
        ``saved_eval`` has them — no training then, even where the run's weights are
        gone."""
        from snsrec.llm.evaluate import evaluate_llm

        res = self.saved_eval(name, only)
        if res is not None:
            echo(f"llm experiment: reusing {self.out / 'eval' / name / 'eval.json'}")
            return res
        e = self.cfg.eval
        trained = None if name == "base" else self.config(name).model_dump(mode="json")
        model = self.cfg.model if trained is None else str(self.trained(name))
        return evaluate_llm(model, self.suite, self.out / "eval" / name, limit=e.limit,
                            batch_size=e.batch_size, threads=self.threads, only=only,
                            meta={"trained": trained,
                                  "code": code_fingerprint(EVAL_CODE)})["results"]

    def chains(self, tasks: list[str]) -> list[list[tuple[str, list[str]]]]:
        """The evaluations in chains that share no run, longest first: each chain's
        evaluations (and the runs they train) in order."""
        return [[("cpt-sft-multi", tasks), ("cpt-sft-multi-dpo", tasks)],
                [("sft-multi", tasks)], [("base", tasks)],
                *[[(f"sft-{t}", [t])] for t in tasks]]

    def side_by_side(self, tasks: list[str]) -> None:
        """Run the chains with work left in ``jobs`` processes; a failure in one stops
        the ones not started and is raised here."""
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        todo = [c for c in self.chains(tasks)
                if any(self.saved_eval(n, only) is None for n, only in c)]
        if not todo:
            return
        echo(f"llm experiment: {len(todo)} chains of stages on {self.cfg.jobs} jobs, "
             f"{self.threads} thread(s) each")
        cfg = self.cfg.model_dump(mode="json")
        with ProcessPoolExecutor(min(self.cfg.jobs, len(todo)),
                                 mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_chain, cfg, str(self.out), self.command, tasks, c)
                       for c in todo]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def run(self) -> dict[str, Any]:
        from snsrec.llm.compare import constant_baselines

        t0, started = time.perf_counter(), time.time()
        tasks = self.build_suite()
        self.prepare(tasks)
        if self.cfg.jobs > 1:
            self.side_by_side(tasks)
        scores: dict[str, dict[str, float]] = {}
        outputs: dict[str, dict[str, list[str]]] = {}       # variant → task → item outputs
        answers: dict[str, list[Any]] = {}                  # task → gold answers
        seconds = 0.0           # training and evaluation, as recorded (across resumptions)

        def scored(variant: str, res: dict[str, Any]) -> None:
            nonlocal seconds
            seconds += sum(r.get("seconds") or 0.0 for r in res["results"].values())
            scores.setdefault(variant, {}).update(
                {t: r["score"] for t, r in res["results"].items() if r["score"] is not None})
            for t, r in res["results"].items():
                outputs.setdefault(variant, {})[t] = [o["output"] for o in r["outputs"]]
                answers[t] = [o["answer"] for o in r["outputs"]]

        scored("base", self.evaluate("base", tasks))
        for task in tasks:
            scored("single-task", self.evaluate(f"sft-{task}", [task]))
        scored("multi-task", self.evaluate("sft-multi", tasks))
        scored("cpt+multi-task", self.evaluate("cpt-sft-multi", tasks))
        scored("cpt+multi-task+dpo", self.evaluate("cpt-sft-multi-dpo", tasks))
        seconds += sum(read_json(self.runs / n / "metrics.json")["train_time_s"]
                       for n in self._specs if self.recorded(n))
        cpt, dpo = self.metrics("cpt"), self.metrics("cpt-sft-multi-dpo")
        baselines = constant_baselines(self.suite, tasks, self.cfg.eval.limit)
        result = {"benchmark": "experiment", "name": self.cfg.name, "model": self.cfg.model,
                  "world": str(self.world),
                  "tasks": tasks, "scores": scores,
                  "average": {v: _mean(scores[v].values()) for v in VARIANTS},
                  **significance(scores, baselines, outputs, answers, self.cfg.suite.seed),
                  "perplexity": {"before": cpt["perplexity_before"],
                                 "after": cpt["perplexity_after"]},
                  "pairs": dpo["pairs"],
                  "config": self.cfg.model_dump(mode="json"), "command": self.command,
                  "seconds": seconds, "wall_s": time.perf_counter() - t0}
        result, md = write_record(self.out, "experiment", result, markdown,
                                  default_command=self.command, started=started,
                                  seeds=[self.cfg.suite.seed])
        return {"markdown": md, "result": result}


def significance(scores: dict[str, dict[str, float]],
                 baselines: dict[str, dict[str, dict[str, Any]]],
                 outputs: dict[str, dict[str, list[str]]], answers: dict[str, list[Any]],
                 seed: int) -> dict[str, Any]:
    """The constant-answer rows, each variant's informative tasks and their average, and
    the ``COMPARISONS`` with their paired bootstrap intervals (``experiment.json`` keys)."""
    from snsrec.llm.compare import (
        CONFIDENCE,
        REPLICATES,
        informative,
        item_bootstrap_difference,
    )

    best = baselines["best-constant"]
    useful = {v: informative(scores[v], best) for v in VARIANTS}
    return {
        "baselines": {b: {"answers": {t: x["answer"] for t, x in baselines[b].items()},
                          "scores": {t: x["score"] for t, x in baselines[b].items()},
                          "average": _mean(x["score"] for x in baselines[b].values())}
                      for b in BASELINES},
        "informative": useful,
        "informative_average": {v: _mean(scores[v][t] for t in useful[v]) if useful[v]
                                else None for v in VARIANTS},
        "differences": [{"a": a, "b": b, "measures": what,
                         **item_bootstrap_difference(outputs[a], outputs[b], answers,
                                                     seed=seed)}
                        for a, b, what in COMPARISONS],
        "bootstrap": {"replicates": REPLICATES, "confidence": CONFIDENCE, "seed": seed}}


def _run_chain(cfg: dict[str, Any], out: str, command: str, tasks: list[str],
               chain: list[tuple[str, list[str]]]) -> None:
    """One chain of ``Experiment.side_by_side``, in its own process."""
    exp = Experiment(ExperimentConfig.model_validate(cfg), Path(out), command)
    exp.prepare(tasks)
    for name, only in chain:
        exp.evaluate(name, only)


def _comparable(cfg: Any) -> dict[str, Any]:
    """A run's config (or its dump) without what only says how it was computed: the
    thread count."""
    d = cfg if isinstance(cfg, dict) else cfg.model_dump(mode="json")
    return {**d, "train": {k: v for k, v in (d.get("train") or {}).items() if k != "threads"}}


def _stamped_code(path: Path) -> str | None:
    """The code fingerprint a run's bench.json stamp holds (None: no stamp)."""
    return (read_json(path).get("code") or {}).get("sha256") if path.is_file() else None


def _same_config(path: Path, cfg: Any) -> bool:
    import yaml

    return _comparable(yaml.safe_load(path.read_text(encoding="utf-8")) or {}) == \
        _comparable(cfg)


def _threads(cfg: dict[str, Any]) -> str:
    jobs, threads = cfg.get("jobs", 1), cfg.get("threads")
    each = f"{threads} thread(s)" if threads else "all threads" if jobs == 1 else \
        "the cores shared out"
    return each if jobs == 1 else f"{jobs} jobs side by side, {each} each"


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _short(answer: str, width: int = 24) -> str:
    """An answer for a sentence: one line, at most ``width`` characters, in backticks."""
    one = " ".join(answer.split())
    return f"`{one if len(one) <= width else one[:width - 1] + '…'}`" if one else "the empty answer"


def markdown(r: dict[str, Any]) -> str:
    from snsrec.report.markdown import markdown_table

    base = r["average"]["base"]
    rows = []
    for name in BASELINES:
        x = r["baselines"][name]
        rows.append([name, *[f"{x['scores'][t]:.1f}" for t in r["tasks"]],
                     f"{x['average']:.1f}", "–", f"{x['average'] - base:+.1f}"])
    for v in VARIANTS:
        s, useful = r["scores"][v], set(r["informative"][v])
        rows.append([v, *[f"{s[t]:.1f}" + ("" if t in useful else "†") if t in s else "–"
                          for t in r["tasks"]],
                     f"**{r['average'][v]:.1f}**", "–" if not useful else
                     f"{r['informative_average'][v]:.1f} ({len(useful)})",
                     f"{r['average'][v] - base:+.1f}"])
    diffs = [[f"{d['a']} − {d['b']}" + ("" if d["measures"] == "vs base"
                                        else f" ({d['measures']})"),
              f"{d['difference']:+.1f}", f"[{d['low']:+.1f}, {d['high']:+.1f}]",
              "tie" if d["tie"] else "better" if d["low"] > 0 else "worse"]
             for d in r["differences"]]
    short = [t.removeprefix("Note-") for t in r["tasks"]]
    best = r["baselines"]["best-constant"]["answers"]
    boot = r["bootstrap"]
    b, a = r["perplexity"]["before"], r["perplexity"]["after"]
    p = r["pairs"]
    return "\n".join([
        f"# RedOne experiment: {r['model']} on {r['world']}\n",
        markdown_table(["variant", *short, "average", "informative average (tasks)",
                        "vs base"], rows), "",
        f"Test split, at most {r['config']['eval']['limit']} items a task, greedy decoding. "
        "best-constant: the one fixed answer that scores highest on a task's test items ("
        + ", ".join(f"{t.removeprefix('Note-')} {_short(best[t])}" for t in r["tasks"])
        + "); "
        "majority-label: the training split's commonest answer, answered to every item. "
        "† a score not above the best constant answer's, left out of the variant's "
        "informative average. "
        f"CPT held-out perplexity: general text {b['general']:.2f} → {a['general']:.2f}, "
        f"test notes {b['notes']:.2f} → {a['notes']:.2f}. DPO pairs: {p['from_samples']} from "
        f"samples, {p['from_reference']} with the reference chosen, {p['tied']} tied. "
        f"{r['seconds'] / 60:.0f} minutes of training and evaluation "
        f"({_threads(r['config'])})"
        + (f"; this run took {r['wall_s'] / 60:.0f} minutes from start to table (reused "
           "records cost nothing)" if "wall_s" in r else "") + ".\n",
        markdown_table(["difference of averages", "points", f"{boot['confidence']:.0%} "
                        "interval", "verdict"], diffs), "",
        f"Paired bootstrap over test items: {boot['replicates']:,} resamples of each task's "
        f"items (seed {boot['seed']}), both variants scored on the same resample, each "
        "task's metric recomputed on it, averaged over all tasks; percentile interval. A "
        "tie: the interval spans zero.\n",
        f"Reproduce: `{r['command']}`\n"])


def run_experiment(cfg: ExperimentConfig, out: str | Path, command: str, *,
                   force: bool = False) -> dict[str, Any]:
    """The experiment in ``out`` (snsrec's or new, or any folder with ``force``), resumed from
    what it holds."""
    where = {"force": force, "legacy": ["experiment.json"]}
    exp = Experiment(cfg, check_out(out, **where), command)     # its world, once checked
    out_dir(out, "llm experiment", **where)
    return exp.run()
