"""SNS-Bench task files: one JSON file per task, each a list of objects.

Every object has ``answer`` and nearly every one ``content`` (the whole prompt, note
included; QueryCorr-explain has ``sentence1`` / ``sentence2`` instead); tasks add
``candidates``, ``candidates_primary`` / ``_secondary`` / ``_tertiary`` (taxonomy),
``query`` (MRC-simple), ``question`` (NER), ``sentence1`` / ``sentence2``
(QueryCorr-explain). The import writes ``tasks.parquet`` — not notes/events — with
``task`` (the file name without .json), ``index`` (position in the file), ``content``,
``answer`` and the optional fields as strings (lists and objects JSON-encoded; null when
absent), and ``extra``: the remaining fields as one JSON object string.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from snsrec.data.sources._common import list_files, need_path
from snsrec.errors import DataError, SchemaError
from snsrec.io import write_json, write_parquet

EXPECTS = "SNS-Bench task JSON files (a JSON list per task, e.g. Note_Taxonomy.json) or a folder"
REQUIRED = ("answer",)
OPTIONAL = ("content", "candidates", "candidates_primary", "candidates_secondary",
            "candidates_tertiary", "query", "question", "sentence1", "sentence2")
COLUMNS = ("task", "index", "content", "answer", *OPTIONAL[1:], "extra")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def read_items(f: Path) -> list[dict[str, Any]]:
    """The items of one SNS-Bench task file (a JSON list of objects, each with ``answer``)."""
    try:
        items = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{f}: not valid JSON ({e}); SNS-Bench files are one JSON list") from None
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise DataError(f"{f}: expected a JSON list of objects (SNS-Bench layout)")
    for i, item in enumerate(items):
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise SchemaError(f"{f}: item {i} is missing field(s) {missing}; every SNS-Bench "
                              f"item has an answer")
    return items


def _rows(f: Path) -> list[dict[str, Any]]:
    rows = []
    # Per-item Python is fine: benchmark files are thousands of items, not millions.
    for i, item in enumerate(read_items(f)):
        rest = {k: v for k, v in item.items() if k not in REQUIRED and k not in OPTIONAL}
        rows.append({"task": f.stem, "index": i,
                     **{k: _text(item.get(k)) for k in COLUMNS[2:-1]},
                     "extra": json.dumps(rest, ensure_ascii=False, sort_keys=True)})
    return rows


def load(path: Path, out: Path) -> dict[str, Any]:
    base = need_path(path, "snsbench", EXPECTS)
    files = list_files(base, ("*.json",), "snsbench", EXPECTS)
    rows = [r for f in files for r in _rows(f)]
    schema = pa.schema([("task", pa.string()), ("index", pa.int64()),
                        *[(c, pa.string()) for c in COLUMNS[2:]]])
    table = pa.Table.from_pylist(rows, schema=schema)
    tasks = sorted({r["task"] for r in rows})
    info = {"source": "snsbench", "path": str(path), "rows": {"tasks": table.num_rows},
            "split": None,
            "fields": {"tasks": {t: sum(r["task"] == t for r in rows) for t in tasks},
                       "columns": list(COLUMNS),
                       "encoding": "non-string values are JSON strings"}}
    write_parquet(out / "tasks.parquet", table)
    write_json(out / "dataset.json", info)
    return info
