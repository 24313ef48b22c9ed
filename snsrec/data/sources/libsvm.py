"""libsvm and libffm text files.

* libsvm: one sample per line, ``label idx:val idx:val ...``
* libffm: one sample per line, ``label field:idx:val field:idx:val ...``

Every line is one event: click = label (0/1; the libsvm convention -1/+1 is read as 0/1),
``feature_idx`` (list<int64>) and ``feature_val`` (list<float64>), plus ``feature_field``
(list<int64>) for libffm. Lines are parsed with Polars string/list operations, not a
Python loop. A trailing ``# comment`` is dropped. No user/item ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from snsrec.data.sources._common import NO_TIME, list_files, need_path, with_event_ids, write_tables
from snsrec.errors import DataError

EXPECTS = {"libsvm": "a text file (or a folder of *.txt / *.svm / *.libsvm files) with lines "
                     "'label idx:val ...'",
           "libffm": "a text file (or a folder of *.txt / *.ffm / *.libffm files) with lines "
                     "'label field:idx:val ...'"}
PARTS = {"libsvm": ("feature_idx", "feature_val"),
         "libffm": ("feature_field", "feature_idx", "feature_val")}


def _parse(f: Path, fmt: str) -> pl.DataFrame:
    try:
        lines = pl.read_csv(f, separator="\x1f", has_header=False, quote_char=None,
                            schema={"line": pl.String})
    except pl.exceptions.NoDataError:
        raise DataError(f"{f}: the file is empty; check the path") from None
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"{f}: cannot be read ({str(e).splitlines()[0]})") from None
    toks = (pl.col("line").str.replace(r"#.*$", "").str.strip_chars()
            .str.replace_all(r"\s+", " "))
    df = lines.select(toks.alias("line")).filter(pl.col("line") != "") \
        .select(pl.col("line").str.split(" ").alias("tok"))
    names = PARTS[fmt]
    feats = pl.col("tok").list.slice(1)
    # Every feature token must have exactly len(names) colon-separated parts.
    bad = df.with_row_index("row").filter(
        feats.list.eval(pl.element().str.count_matches(":") != len(names) - 1).list.any())
    if bad.height:
        raise DataError(f"{f}: line {bad['row'][0] + 1} is not '{fmt}' "
                        f"({' '.join(bad['tok'][0][:4])} ...); each feature must be "
                        f"{':'.join(n.split('_')[1] for n in names)}")
    cols = []
    for i, name in enumerate(names):
        dtype = pl.Float64 if name == "feature_val" else pl.Int64
        cols.append(feats.list.eval(pl.element().str.split(":").list.get(i).cast(dtype))
                    .alias(name))
    try:
        out = df.select(pl.col("tok").list.first().cast(pl.Float64).alias("label"), *cols)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{f}: a label or feature is not a number ({str(e).splitlines()[0]}); "
                        f"fix the line") from None
    labels = out["label"].unique().to_list()
    if not set(labels) <= {0.0, 1.0, -1.0}:
        odd = min(set(labels) - {0.0, 1.0, -1.0})
        raise DataError(f"{f}: label {odd} outside {{0, 1}} (or -1/+1); binarise the labels "
                        f"before importing")
    neg = out.filter(pl.col("feature_idx").list.min() < 0).height
    if neg:
        raise DataError(f"{f}: {neg} line(s) have a negative feature index; indices must be >= 0")
    return out.with_columns((pl.col("label") > 0).cast(pl.Int8).alias("click"))


def load(path: Path, out: Path, fmt: str = "libsvm") -> dict[str, Any]:
    exts = ("txt", "svm", "libsvm") if fmt == "libsvm" else ("txt", "ffm", "libffm")
    files = list_files(need_path(path, fmt, EXPECTS[fmt]), [f"*.{e}" for e in exts], fmt,
                       EXPECTS[fmt])
    ev = with_event_ids(pl.concat([_parse(f, fmt) for f in files]))
    fields = {"files": [f.name for f in files], "click": "label > 0 (-1/+1 or 0/1)",
              "features": list(PARTS[fmt]), "user_id/note_id": "null"}
    return write_tables(out, fmt, path, {"events": ev}, NO_TIME, fields,
                        required={"events": ("click",)})
