"""`snsrec encode notes SOURCE --notes PATH --out PATH`: a note table → one vector per note.

``SOURCE`` is a retrieval run directory (its item tower: backbone + head, the
vectors its index holds) or a text-backbone YAML (a ``TextConfig``: the raw
backbone vectors, e.g. MiniLM's 384-d). Notes are read from a Parquet table
with ``note_id`` and ``title`` / ``body`` / ``hashtags`` (missing text columns
count as empty), encoded in batches with a progress bar, and written as
Parquet (``note_id``, ``vector``) — or ``.npy`` (vectors) plus ``.ids.npy``.

Resumable: every batch of ``chunk`` notes is saved under ``OUT.parts/`` as it
completes; a re-run with the same source and notes skips the saved chunks,
and the output is assembled (atomically) only when all are done.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from snsrec.data.sequences import note_text
from snsrec.errors import ConfigError, DataError
from snsrec.io import (
    atomic_path,
    check_out_file,
    parquet_columns,
    read_json,
    read_parquet,
    write_json,
    write_parquet,
)
from snsrec.progress import Progress

TEXT_COLUMNS = ("title", "body", "hashtags")


def _encoder(source: Path) -> tuple[Any, str]:
    """(texts → ``[n, d]`` float32, a description) for a run directory or a TextConfig YAML."""
    from snsrec.config import load_config
    from snsrec.text.encoders import TextConfig, build_text_backbone

    if source.is_dir():
        from snsrec.runs import load_run

        run = load_run(source)
        tower = getattr(run.model, "text", None)
        if tower is None or getattr(run.model, "ids", None) is not None:
            raise ConfigError(f"{source}: its model has no text item tower (an id model or "
                              "not a retrieval run); pass a text run or a backbone YAML")

        @torch.no_grad()
        def run_encode(texts: list[str]) -> np.ndarray:
            return tower.head(tower.backbone(tower.backbone.prepare(texts))).float().numpy()

        return run_encode, f"item tower of {source}"
    if not source.is_file():
        raise ConfigError(f"{source}: neither a run directory nor a text-backbone YAML")
    cfg = load_config(TextConfig, source)
    torch.manual_seed(0)        # an untrained hash table is random: the same one every run
    backbone = build_text_backbone(cfg).eval()

    @torch.no_grad()
    def backbone_encode(texts: list[str]) -> np.ndarray:
        return backbone(backbone.prepare(texts)).float().numpy()

    return backbone_encode, f"{cfg.backbone} backbone ({source})"


def read_note_texts(path: Path) -> tuple[np.ndarray, list[str]]:
    table = read_parquet(path)
    names = table.column_names
    if "note_id" not in names:
        raise DataError(f"{path}: no 'note_id' column; a note table needs note_id and "
                        f"title / body / hashtags (has {', '.join(names)})")
    if not any(c in names for c in TEXT_COLUMNS):
        raise DataError(f"{path}: none of the text columns {', '.join(TEXT_COLUMNS)}; "
                        f"nothing to encode")
    cols = {c: table.column(c).to_pylist() if c in names else [None] * table.num_rows
            for c in TEXT_COLUMNS}
    ids = np.asarray(table.column("note_id").to_numpy(), dtype=np.int64)
    return ids, [note_text(t, b, h) for t, b, h in zip(cols["title"], cols["body"],
                                                       cols["hashtags"], strict=True)]


def read_covers(path: Path) -> np.ndarray:
    """``[n, k]`` float32: each note's cover-style floats (the ``cover`` struct's fields in
    their order; a missing cover or field is 0)."""
    from snsrec.data.schema import cover_matrix

    if "cover" not in parquet_columns(path):
        raise DataError(f"{path}: no 'cover' column (a struct of floats); drop --with-cover "
                        "or use a note table that has one")
    try:
        return cover_matrix(read_parquet(path, columns=["cover"]).column("cover"))
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def job_key(source: Path, notes: Path, n: int, chunk: int) -> str:
    """What saved parts must match to be reused: the same source, notes and chunking."""
    return hashlib.sha256(f"{source.resolve()}|{notes.resolve()}|{n}|{chunk}".encode()
                          ).hexdigest()


def _is_encoded(path: Path) -> bool:
    """Whether ``path`` is an output of ``encode_notes``: a (note_id, vector) Parquet table,
    or one of the .npy + .ids.npy pair."""
    if path.suffix == ".parquet":
        try:
            return parquet_columns(path) == ["note_id", "vector"]
        except DataError:
            return False
    stem = path.name.removesuffix(".ids.npy").removesuffix(".npy")
    return all((path.parent / f"{stem}{end}").is_file() for end in (".npy", ".ids.npy"))


def encode_notes(source: str | Path, notes: str | Path, out: str | Path,
                 batch_size: int = 256, chunk: int = 4096,
                 with_cover: bool = False, force: bool = False) -> dict[str, Any]:
    """``with_cover``: append each note's cover-style floats to its text vector (the
    multimodal item vector of QIN). An existing ``out`` is replaced when this command wrote
    it, or with ``force``."""
    source, notes, out = Path(source), Path(notes), Path(out)
    if out.suffix not in (".parquet", ".npy"):
        raise ConfigError(f"--out {out}: end it in .parquet (note_id, vector) or .npy")
    for path in [out, *([out.with_suffix(".ids.npy")] if out.suffix == ".npy" else [])]:
        check_out_file(path, force=force, ours=_is_encoded, kind="encoded notes",
                       inputs=[notes, source])
    ids, texts = read_note_texts(notes)
    covers = read_covers(notes) if with_cover else None
    encode, what = _encoder(source)
    parts = out.with_name(out.name + ".parts")
    key = job_key(source, notes, len(texts), chunk)
    if parts.exists() and not (parts / "job.json").is_file():
        raise DataError(f"{parts}: not the parts of an encode job (no job.json), yet where "
                        "this one keeps them; move it away or choose another --out")
    if (parts / "job.json").is_file() and read_json(parts / "job.json").get("key") != key:
        shutil.rmtree(parts)                  # parts of another job: start over
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / "job.json", {"key": key})
    n_chunks = -(-len(texts) // chunk)
    done = 0
    with Progress(f"encode notes ({what})", total=len(texts), unit="notes") as bar:
        for c in range(n_chunks):
            lo, hi = c * chunk, min((c + 1) * chunk, len(texts))
            part = parts / f"part-{c:06d}.npy"
            if part.is_file():
                bar.update(hi - lo)
                continue
            vecs = np.concatenate([encode(texts[s:min(s + batch_size, hi)])
                                   for s in range(lo, hi, batch_size)])
            with atomic_path(part) as tmp, open(tmp, "wb") as f:
                np.save(f, vecs.astype(np.float32), allow_pickle=False)
            done += hi - lo
            bar.update(hi - lo)
    vectors = np.concatenate([np.load(parts / f"part-{c:06d}.npy", allow_pickle=False)
                              for c in range(n_chunks)]) if n_chunks else np.zeros((0, 0))
    if covers is not None and len(vectors):
        vectors = np.concatenate([vectors, covers], 1)
        what += f" + {covers.shape[1]} cover floats"
    if out.suffix == ".npy":
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
        with atomic_path(out.with_suffix(".ids.npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, ids, allow_pickle=False)
    else:
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        write_parquet(out, pa.table({"note_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.reshape(-1)), dim)}))
    shutil.rmtree(parts)
    text = (f"encoded {len(texts):,} notes ({vectors.shape[1] if vectors.ndim == 2 else 0}-d, "
            f"{what}; {done:,} this run, {len(texts) - done:,} resumed) → {out}")
    return {"text": text, "vectors": vectors, "ids": ids}
