"""`snsrec report docs`: every measured table in the docs, rendered from a committed record.

A table of measured numbers in ``README.md`` or ``docs/*.md`` sits between two markers
that name its record (a benchmark's JSON under ``bench/``) and what to show of it::

    <!-- record bench/sequence/sequence.json table=1 -->
    | model | history | test AUC | ...
    _Record: `snsrec bench sequence ...`; commit ...; ..._
    <!-- /record -->

``heading=TEXT`` is the first table under that heading in the benchmark's own Markdown
report of that record (the function that wrote its ``.md`` beside the JSON), ``table=N``
the N-th table (from 1; of those under the heading, if one is given), and ``view=NAME`` a view
of one or more records (comma-separated paths) defined here, for tables that join
records or pick from them (e.g. ``view=moderation``). Every block ends with the
record's provenance line (command, commit, machine, wall time, seeds).

``render_docs`` rewrites what lies between the markers; ``check=True`` only compares, and
the docs test fails on any difference, so a number in the docs is the number in git.
"""

from __future__ import annotations

import importlib
import re
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from snsrec.errors import DataError
from snsrec.io import read_json, write_text
from snsrec.records import REPO_ROOT, provenance_line
from snsrec.report.markdown import markdown_table

BLOCK = re.compile(r"(?P<open><!-- record (?P<args>[^\n]*?) -->\n)(?P<body>.*?)(?P<close>"
                   r"<!-- /record -->)", re.S)
# The Markdown report each benchmark writes beside its JSON: "module:function(record)".
REPORTS = {
    "ctr": "snsrec.bench.ctr:leaderboard_markdown",
    "retrieval": "snsrec.bench.retrieval:markdown",
    "conversion": "snsrec.bench.conversion:markdown",
    "sequence": "snsrec.bench.sequence:markdown",
    "multimodal": "snsrec.bench.multimodal:markdown",
    "throughput": "snsrec.bench.throughput:_markdown",
    "index": "snsrec.bench.index:_markdown",
    "serve": "snsrec.bench.serve:_markdown",
    "adsee": "snsrec.adsee:markdown",
    "compress": "snsrec.train.compress:markdown",
    "world": "snsrec.bench.world:markdown",
    "moderation": "snsrec.llm.moderation:markdown",
    "experiment": "snsrec.llm.experiment:markdown",
    "sim-ab": "snsrec.sim.ab:markdown",
    "demo": "snsrec.demo:markdown",
}
VIEWS: dict[str, Callable[..., str]] = {}


def view(name: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    def wrap(fn: Callable[..., str]) -> Callable[..., str]:
        VIEWS[name] = fn
        return fn
    return wrap


def default_files(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def load_record(path: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    return read_json(root / path)


def tables(markdown: str) -> list[tuple[str, str]]:
    """The Markdown tables of a text, each with the last heading above it (without its
    ``#``s; "" before the first)."""
    out, current, heading = [], [], ""
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
            continue
        if current:
            out.append((heading, "\n".join(current) + "\n"))
            current = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return out


def report_of(record: dict[str, Any], where: str) -> str:
    kind = record.get("benchmark")
    if kind not in REPORTS:
        raise DataError(f"{where}: no report for benchmark {kind!r}; known: "
                        f"{', '.join(sorted(REPORTS))}")
    module, _, fn = REPORTS[kind].partition(":")
    return getattr(importlib.import_module(module), fn)(record)


def render_block(args: str, root: Path = REPO_ROOT) -> str:
    """The Markdown between one block's markers: its table(s) and provenance line(s)."""
    words = shlex.split(args)
    if not words:
        raise DataError("a <!-- record --> marker names no record; give its path")
    paths, params = words[0].split(","), dict(w.partition("=")[::2] for w in words[1:])
    records = [load_record(p, root) for p in paths]
    if "table" in params or "heading" in params:
        found = tables(report_of(records[0], paths[0]))
        if "heading" in params:
            found = [t for t in found if t[0] == params["heading"]]
        n = int(params.get("table", 1))
        if not 1 <= n <= len(found):
            under = f" under heading {params['heading']!r}" if "heading" in params else ""
            raise DataError(f"{paths[0]}: no table {n}{under} in its report ({len(found)} "
                            "found)")
        body = found[n - 1][1]
    elif params.get("view") in VIEWS:
        body = VIEWS[params.pop("view")](records, **params)
    else:
        raise DataError(f"<!-- record {args} -->: give heading=TEXT, table=N or view=NAME (views: "
                        f"{', '.join(sorted(VIEWS))})")
    lines = list(dict.fromkeys(provenance_line(r) for r in records))
    return body.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def render_text(text: str, root: Path = REPO_ROOT, where: str = "") -> str:
    def one(m: re.Match[str]) -> str:
        try:
            body = render_block(m["args"], root)
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
        return m["open"] + body + m["close"]

    # Fenced code shows markers (as in docs/benchmarks.md), it does not hold blocks.
    parts = re.split(r"(```.*?```)", text, flags=re.S)
    return "".join(p if p.startswith("```") else BLOCK.sub(one, p) for p in parts)


def root_of(path: Path) -> Path:
    """The checkout a Markdown file belongs to (record paths are relative to it): the
    nearest folder above it that holds ``bench/``."""
    for folder in Path(path).resolve().parents:
        if (folder / "bench").is_dir():
            return folder
    raise DataError(f"{path}: no bench/ folder above it; its record paths name files under "
                    "a checkout's bench/")


def render_docs(files: Iterable[Path] | None = None, *, check: bool = False) -> list[Path]:
    """Re-render every record block (record paths relative to each file's checkout); return
    the files whose text differs (``check``: left as they are)."""
    changed = []
    for path in files or default_files():
        text = path.read_text(encoding="utf-8")
        new = render_text(text, root_of(path), str(path))
        if new != text:
            changed.append(path)
            if not check:
                write_text(path, new)
    return changed


def unrecorded_tables(text: str) -> list[str]:
    """Tables with a decimal number that lie outside every record block (measured numbers
    typed by hand), each as its first line."""
    outside = BLOCK.sub("", text)
    outside = re.sub(r"```.*?```", "", outside, flags=re.S)      # code shows output, not claims
    return [t.splitlines()[0] for _, t in tables(outside) if re.search(r"\d\.\d", t)]


# -- views ------------------------------------------------------------------------------

@view("moderation")
def moderation_view(records: list[dict[str, Any]], **_: str) -> str:
    """One row per moderation system over several `bench moderation` records (the n-gram
    baseline once, each record's LLM)."""
    rows, seen = [], set()
    for r in records:
        for name, s in r["systems"].items():
            if name in seen:
                continue
            seen.add(name)
            rows.append([name.removeprefix("llm:"), s["precision"], s["recall"], s["f1"],
                         s["auc"], s.get("type_accuracy"), s["notes_per_s"], s["notes"],
                         s["harmful"]])
    return markdown_table(["system", "precision", "recall", "F1", "AUC", "harm-type accuracy",
                           "notes/s", "test notes", "harmful"], rows, digits=3)


def per_seed(record: dict[str, Any], name: str, metric: str, target: str = "",
             data: str = "") -> dict[int, float]:
    """``{seed: value}`` of one model / variant in a ``ctr`` or ``retrieval`` record:
    ``metric`` of its test split (retrieval: of ``target``, e.g. ``feed/all``)."""
    blocks = record["data"]
    block = blocks[data] if data else next(iter(blocks.values()))
    out = {}
    for r in block["runs"]:
        if r.get("variant", r.get("model")) != name:
            continue
        if target:
            t, _, part = target.partition("/")
            value = r["test"].get(t, {}).get(part or "all", {}).get(metric)
        else:
            value = r.get(metric)
        if value is not None:
            out[int(r["seed"])] = float(value)
    return out


@view("paired")
def paired_view(records: list[dict[str, Any]], pairs: str, metric: str = "auc",
                targets: str = "", data: str = "") -> str:
    """A − B over the seeds both ran (paired: the same seed, the same data), with a 95%
    t interval (``snsrec.eval.metrics.paired_difference``): "A ahead" / "B ahead" only
    when the interval excludes 0, else "tie". ``pairs``: ``a:b,a:c``; ``targets``:
    retrieval targets."""
    from snsrec.eval.metrics import higher_is_better, paired_difference

    rows = []
    for pair in pairs.split(","):
        a, _, b = pair.partition(":")
        for target in targets.split(",") if targets else [""]:
            xa, xb = (per_seed(records[0], m, metric, target, data) for m in (a, b))
            seeds = sorted(set(xa) & set(xb))
            d = paired_difference([xa[s] for s in seeds], [xb[s] for s in seeds],
                                  higher_is_better=higher_is_better(metric))
            reading = {"a": f"{a} ahead", "b": f"{b} ahead", "tie": "tie",
                       "one run": "one seed: no claim"}[d["reading"]]
            rows.append([f"{a} − {b}", *([target] if targets else []), f"{d['mean']:+.4f}",
                         f"[{d['lo']:+.4f}, {d['hi']:+.4f}]", d["n"], reading])
    header = ["difference", *(["target"] if targets else []), f"mean {metric}",
              "95% interval", "seeds", "reading"]
    return markdown_table(header, rows)
