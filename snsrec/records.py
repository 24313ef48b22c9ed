"""Benchmark records: where every measured number comes from.

A record is the JSON a benchmark writes under ``bench/<name>/``; the docs render
their tables from it (``snsrec report docs``). Each one carries a ``provenance``
block saying how to make it again and what made it:

- ``command`` — the exact command line (the CLI's own argv when run through it);
- ``git`` — the commit of the checkout and whether its code was dirty (uncommitted
  changes under ``snsrec/``, ``configs/`` or the dependency files);
- ``versions`` — snsrec, Python and the libraries whose code shapes the numbers;
- ``machine`` — CPU model, cores (logical, and those this process may use), memory,
  the accelerator if any;
- ``wall_s`` — from the benchmark's start to the record, and ``seeds``.

A benchmark that reuses finished runs also keeps the **code fingerprint** of each
run (``code_fingerprint``): the hash of every snsrec module the run's code can
import, found by reading their import statements (function-level ones too). A
finished run is reused only while that hash is unchanged, so a rerun after a change
to the trainer, a model or the features trains again, while a change to serving or
to a report does not touch a CTR run.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from snsrec import __version__

PACKAGE_ROOT = Path(__file__).resolve().parent          # .../snsrec
REPO_ROOT = PACKAGE_ROOT.parent
# Libraries whose versions a record names (those installed).
LIBRARIES = ("torch", "numpy", "polars", "pyarrow", "scipy", "transformers", "trl", "peft",
             "sentence-transformers", "faiss-cpu", "scikit-learn", "torch-rechub",
             "deepctr-torch", "recbole", "fastapi", "uvicorn", "redis")
# What counts as the checkout's code for the dirty flag.
CODE_PATHS = ("snsrec", "configs", "pyproject.toml", "constraints.txt", "requirements")

_command: list[str] | None = None


def set_command(argv: Sequence[str] | None) -> None:
    """Remember the CLI's arguments for ``command`` while ``snsrec.cli.main`` runs (None:
    its end)."""
    global _command
    _command = None if argv is None else ["snsrec", *argv]
    if argv is not None:
        git_state()         # the checkout as the command starts, not as it ends

def command(default: str) -> str:
    """The command line that is running: the CLI's own words, else ``default`` (a library
    call rebuilds its equivalent command)."""
    return shlex.join(_command) if _command is not None else default


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                             text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def git_state() -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the checkout snsrec runs from
    (None where it is not a git checkout, e.g. an installed wheel)."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--", *CODE_PATHS)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    out = {"snsrec": __version__, "python": platform.python_version()}
    for name in (*LIBRARIES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def machine() -> dict[str, Any]:
    import psutil
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "gpu": gpu}


def provenance(default_command: str, *, started: float, seeds: Sequence[int] | None = None
               ) -> dict[str, Any]:
    """The ``provenance`` block of a record finished now, begun at ``started``
    (``time.time()``)."""
    return {"command": command(default_command), "git": git_state(), "versions": versions(),
            "machine": machine(), "wall_s": round(time.time() - started, 1),
            "seeds": list(seeds) if seeds is not None else None,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_record(out: str | Path, stem: str, result: dict[str, Any],
                 render: Callable[[dict[str, Any]], str], *, default_command: str,
                 started: float, seeds: Sequence[int] | None = None
                 ) -> tuple[dict[str, Any], str]:
    """Write ``OUT/STEM.json`` (``result`` with its provenance, as strict JSON) and
    ``OUT/STEM.md`` (``render`` of that very record, ending in its provenance line, so
    the Markdown is what ``snsrec report docs`` renders from the JSON); return both."""
    from snsrec.io import jsonable, write_json, write_text

    # As the JSON file holds it (keys sorted), which is what the docs render from.
    record = json.loads(json.dumps(jsonable({**result, "provenance": provenance(
        default_command, started=started, seeds=seeds)}), sort_keys=True))
    text = render(record).rstrip("\n") + "\n\n" + provenance_line(record) + "\n"
    out = Path(out)
    write_json(out / f"{stem}.json", record)
    write_text(out / f"{stem}.md", text)
    return record, text


def provenance_line(record: dict[str, Any]) -> str:
    """One Markdown line naming what made a record: command, commit, machine, time."""
    p = record.get("provenance")
    if not p:
        return "_Record made before snsrec kept provenance (command, commit, machine)._"
    git = p.get("git") or {}
    commit = (git.get("commit") or "no git checkout")[:10]
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    m = p.get("machine") or {}
    v = p.get("versions") or {}
    seeds = p.get("seeds")
    parts = [f"`{p['command']}`", f"commit {commit}{dirty}",
             f"{m.get('cpu', '?')}, {m.get('usable_cores', '?')} of {m.get('cores', '?')} cores"
             + (f", {m['gpu']}" if m.get("gpu") else ""),
             f"torch {v.get('torch', '?')}", f"{p['wall_s'] / 60:.0f} min wall"]
    if seeds:
        parts.append(f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}")
    return "_Record: " + "; ".join(parts) + "._"


# -- code fingerprints ----------------------------------------------------------------

def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for path in (REPO_ROOT / rel.with_suffix(".py"), REPO_ROOT / rel / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str) -> set[str]:
    """snsrec modules ``path`` imports anywhere in its body (function-level ones too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)   # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "snsrec" and _module_file(m) is not None}


def _package_modules(name: str) -> list[str]:
    """``name`` and, for a package, every module below it (e.g. the model files the
    registry imports by discovery, which no import statement names)."""
    folder = REPO_ROOT / Path(*name.split("."))
    if not (folder / "__init__.py").is_file():
        return [name]
    return sorted(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(
        ".__init__") for p in folder.rglob("*.py"))


@functools.cache
def import_closure(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Every snsrec module reachable from ``roots`` through import statements."""
    seen: set[str] = set()
    todo = [m for r in roots for m in _package_modules(r)]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(path, name))
        # Importing ``snsrec.a.b`` runs ``snsrec/a/__init__.py`` too.
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return tuple(sorted(seen))


@functools.cache
def code_fingerprint(roots: tuple[str, ...]) -> dict[str, Any]:
    """``{"sha256", "modules", "roots"}``: the hash of the source of every snsrec module
    the ``roots`` can import (paths and contents), computed once per process."""
    modules = import_closure(roots)
    h = hashlib.sha256()
    for name in modules:
        path = _module_file(name)
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {"sha256": h.hexdigest(), "modules": len(modules), "roots": list(roots)}
