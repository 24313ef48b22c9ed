"""Markdown reports for runs and benchmarks: tables of metrics, sections, figures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from snsrec.io import write_text


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` places (none from 1000 up), ints with separators, NaN/None as ``–``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        # Rates and counts (samples/s) need no decimals; metrics keep ``digits``.
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    rows = [list(r) for r in rows]
    align = ["---:" if rows and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
             else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(fmt(v, digits) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def metrics_table(results: Mapping[str, Mapping[str, Any]], columns: Sequence[str],
                  row_label: str = "model", digits: int = 4,
                  headers: Mapping[str, str] | None = None) -> str:
    """One row per entry of ``results`` (e.g. model → metrics), one column per metric name.

    A metric missing from a row shows as ``–``.
    """
    headers = headers or {}
    header = [row_label, *(headers.get(c, c) for c in columns)]
    rows = [[name, *(metrics.get(c) for c in columns)] for name, metrics in results.items()]
    return markdown_table(header, rows, digits)


def image(path: str | Path, alt: str) -> str:
    return f"![{alt}]({Path(path).as_posix()})\n"


def write_report(run_dir: str | Path, sections: Mapping[str, str] | Sequence[tuple[str, str]],
                 title: str = "snsrec report", name: str = "report.md") -> Path:
    """Write ``run_dir/report.md``: a title and one ``##`` section per (heading, body), atomically."""
    items = list(sections.items()) if isinstance(sections, Mapping) else list(sections)
    parts = [f"# {title}\n"]
    parts += [f"## {heading}\n\n{body.rstrip()}\n" for heading, body in items]
    path = Path(run_dir) / name
    write_text(path, "\n".join(parts))
    return path
