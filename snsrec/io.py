"""Atomic writes, checked reads, and outputs that never destroy what snsrec did not write.

Nothing half-written is ever left behind: every artefact is written to a
temporary sibling and renamed into place, so an interrupted or failed run leaves
either the old file or none.

Every directory a command writes carries a mark, ``.snsrec`` (the command and
the version that wrote it, and ``owner``). A command replaces or writes into an
existing directory only when its mark says ``"owner": "snsrec"``, it is empty,
or — written before the mark existed — it holds the record its writer has always
left there (``legacy``: a world's ``world.json``, a run's ``metrics.json``, ...).
Anything else is the user's: a one-line error names it and ``--force``, and
nothing is touched. A folder of the user's that ``--force`` let a command write
files into is marked ``"owner": "user"``: the next command asks for ``--force``
again, though it now holds snsrec's records.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from snsrec import __version__
from snsrec.errors import DataError

MARK = ".snsrec"          # in every directory snsrec writes: what wrote it
Paths = Sequence[str | Path]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# -- outputs: what a command may write over -------------------------------------------------

def _old(path: Path) -> Path:
    """Where a replace parks the previous ``path`` between its two renames."""
    return path.with_name(f".{path.name}.old")


def settle(path: str | Path) -> Path:
    """Finish a replace that a kill interrupted; return ``path``.

    A replace renames ``path`` to ``.NAME.old``, the new directory to ``path``, then
    removes ``.NAME.old``. Killed between the renames, only ``.NAME.old`` is left: it is
    renamed back (the old output survives whole). Killed after them, ``.NAME.old`` is
    the leftover it was about to remove. Writers and the main readers call this first.
    """
    path = Path(path)
    if path.name in ("", ".", ".."):    # "/", ".": no swap ever names them
        return path
    old = _old(path)
    if old.is_dir() and not old.is_symlink():
        if path.exists() or path.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    return path


def _owner(path: Path, legacy: Paths) -> str | None:
    """Whose the directory is, as far as snsrec knows: its mark's owner ("snsrec" or "user"),
    "snsrec" for a record only its writer leaves (``legacy``), else None."""
    if (path / MARK).is_file():
        with contextlib.suppress(DataError):
            mark = read_json(path / MARK)
            if isinstance(mark, dict) and mark.get("owner") in ("snsrec", "user"):
                return mark["owner"]
        return None                        # a mark snsrec cannot read is no mark
    return "snsrec" if any((path / name).exists() for name in legacy) else None


def _check_place(path: Path, inputs: Paths) -> None:
    """Paths no output may take: /, home, the working directory or a folder above it, one
    ending in '..', a symbolic link, an input, a folder inside an input or one holding it."""
    real = path.resolve()
    if real == Path(real.anchor) or real == Path.home().resolve() \
            or Path.cwd().resolve().is_relative_to(real):
        raise DataError(f"{path}: the current directory, a folder above it, your home or / "
                        f"cannot be an output; name a new folder, e.g. {path / 'out'}")
    if path.name in ("", ".", ".."):
        raise DataError(f"{path}: give the output's own folder name, e.g. {real}")
    if path.is_symlink():
        raise DataError(f"{path}: a symbolic link; give the folder it points to, or a new one")
    for given in inputs:
        inp = Path(given).resolve()
        if real == inp or real.is_relative_to(inp) or inp.is_relative_to(real):
            raise DataError(f"{path}: overlaps the input {given} (the same path, inside it "
                            "or holding it); write the output somewhere else")


def check_out(path: str | Path, *, force: bool = False, legacy: Paths = (),
              inputs: Paths = ()) -> Path:
    """``path`` if a command may write the directory there, else a one-line DataError.

    It may when ``path`` is absent, empty, marked as snsrec's (or holds one of the
    ``legacy`` records), or ``force`` is given; never when it is an odd place (see
    ``_check_place``) or a file. Call it before long work, so a refusal costs nothing.
    """
    path = Path(path)
    _check_place(path, inputs)
    settle(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: a file, not a folder; choose another --out")
    if path.is_dir() and not force and any(path.iterdir()) and \
            _owner(path, legacy) != "snsrec":
        raise DataError(f"{path}: a folder snsrec did not write (no {MARK} mark of its own) "
                        "and not empty; choose another --out, or pass --force to write over it")
    return path


def _mark(folder: Path, what: str, owner: str = "snsrec") -> None:
    write_json(folder / MARK, {"written_by": f"snsrec {what}", "snsrec_version": __version__,
                               "owner": owner})


def out_dir(path: str | Path, what: str, *, force: bool = False, legacy: Paths = (),
            inputs: Paths = ()) -> Path:
    """The directory a command writes its files into (``what``: the command, for the mark).

    Checked as ``check_out``, created and marked as snsrec's — or, a folder of the user's
    that ``force`` lets the command write into, marked as the user's: the records it gets
    must not make it look like snsrec's to the next command (which could replace it).
    """
    path = check_out(path, force=force, legacy=legacy, inputs=inputs)
    fresh = not path.exists() or not any(path.iterdir())
    owner = "snsrec" if fresh else _owner(path, legacy) or "user"
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MARK).is_file():
        _mark(path, what, owner)
    return path


def _pause_for_tests() -> None:
    """The moment a kill is most dangerous (between the two renames of a replace): a test
    sets SNSREC_TEST_SWAP_PAUSE to a file, waits for it to appear, and sends SIGKILL."""
    flag = os.environ.get("SNSREC_TEST_SWAP_PAUSE")
    if flag:
        Path(flag).touch()
        time.sleep(600)


@contextlib.contextmanager
def atomic_dir(path: str | Path, what: str, *, force: bool = False, legacy: Paths = (),
               inputs: Paths = ()) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; mark it and move it to ``path`` on success.

    ``path`` is checked (``check_out``) on entry and again before the move, and an existing
    one is replaced only once the new content is complete; a kill mid-way leaves the old
    directory or the new one (``settle``).
    """
    path = check_out(path, force=force, legacy=legacy, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _mark(tmp, what)
        check_out(path, force=force, legacy=legacy, inputs=inputs)   # still ours after the work
        if path.exists():
            os.replace(path, _old(path))
            _pause_for_tests()
            os.replace(tmp, path)
            shutil.rmtree(_old(path), ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_out_file(path: str | Path, *, ours: Callable[[Path], bool], kind: str,
                   force: bool = False, inputs: Paths = ()) -> Path:
    """``path`` if a command may write its output file there, else a one-line DataError:
    an existing file is replaced only when ``ours(path)`` recognises it as this command's
    output (``kind`` names what that is) or ``force`` is given; never an input."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a folder; give a file name for --out")
    real = path.resolve()
    for given in inputs:
        if real == Path(given).resolve():
            raise DataError(f"{path}: is the input {given}; write the output somewhere else")
    if path.exists() and not force and not ours(path):
        raise DataError(f"{path}: a file snsrec did not write (not {kind}); choose another "
                        "--out, or pass --force to replace it")
    return path


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def jsonable(obj: Any) -> Any:
    """NaN → null so metrics.json stays strict JSON."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line (a training log, an SFT or DPO data set), atomically."""
    write_text(path, "".join(json.dumps(jsonable(r), sort_keys=True, ensure_ascii=False) + "\n"
                             for r in rows))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); regenerate or fix the file") from None


# Fixed writer settings so the same table gives the same bytes on every run.
_PARQUET_OPTS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


def write_parquet(path: str | Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **_PARQUET_OPTS)


class ParquetChunkWriter:
    """Append record batches to one Parquet file; atomic on ``close()``."""

    def __init__(self, path: str | Path, schema: pa.Schema):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._writer = pq.ParquetWriter(self._tmp, schema, **_PARQUET_OPTS)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ParquetChunkWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def parquet_columns(path: str | Path) -> list[str]:
    """The column names of a Parquet file (its schema only, no data read)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path or generate the data first")
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable Parquet file ({msg}); regenerate it") from None


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file, turning a missing or corrupt file into a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path or generate the data first")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if columns and "No match for FieldRef" in msg:
            have = pq.read_schema(path).names
            missing = [c for c in columns if c not in have]
            raise DataError(f"{path}: missing column(s) {missing}; the file has {have}") from None
        raise DataError(f"{path}: not a readable Parquet file ({msg}); regenerate it") from None
