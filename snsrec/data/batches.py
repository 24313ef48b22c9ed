"""Mini-batches as slices of pre-built tensors.

No per-row ``__getitem__`` and no collate: every array is turned into one tensor
once, and a batch is a contiguous slice (in order) or one index gather per
tensor (shuffled). Shuffling uses a permutation drawn per epoch from a
``torch.Generator`` seeded by (seed, epoch), so a run is reproducible and a
trainer can resume mid-epoch exactly from ``state_dict()``.

With ``lengths`` (e.g. each row's real history length) a shuffled epoch is
*bucketed*: the permutation is cut into runs of ``bucket`` batches, each run
sorted by length and cut into batches, and the batches of the epoch shuffled —
so a batch holds rows of similar length and a model that trims the padding
common to its rows (RED-Rec's user tower) does little padded work, while
every row is still seen once per epoch in a seeded order.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch

from snsrec.errors import DataError


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed generator seed per (seed, epoch), independent of Python's hash()."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


def as_tensor(key: str, value: np.ndarray | torch.Tensor, device: str = "cpu") -> torch.Tensor:
    """One array as a tensor, sharing memory on CPU (no copy)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"array '{key}' has dtype {arr.dtype}, not numeric; drop it from the "
                        f"arrays given to TensorBatches")
    with warnings.catch_warnings():
        # Arrays from Polars are read-only views; the tensors share them and are never written.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.ascontiguousarray(arr), device=device)


def to_tensors(arrays: dict[str, np.ndarray], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Model inputs as tensors; meta keys (starting with ``_``) stay behind."""
    return {k: as_tensor(k, v, device) for k, v in arrays.items() if not k.startswith("_")}


class TensorBatches:
    """Iterate ``dict[str, Tensor]`` batches over equal-length arrays."""

    def __init__(self, arrays: dict[str, np.ndarray | torch.Tensor], batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 lengths: np.ndarray | None = None, bucket: int = 50):
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if not arrays:
            raise DataError("TensorBatches needs at least one array")
        self.tensors = {k: as_tensor(k, v) for k, v in arrays.items()}
        sizes = {k: len(t) for k, t in self.tensors.items()}
        if len(set(sizes.values())) != 1:
            raise DataError(f"arrays differ in length {sizes}; transform them together")
        self.total_rows = next(iter(sizes.values()))
        self.lengths = None
        if lengths is not None:
            self.lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.long)
            if self.lengths.shape != (self.total_rows,):
                raise DataError(f"lengths has shape {tuple(self.lengths.shape)}; give one "
                                f"length per row ({self.total_rows})")
        if bucket < 1:
            raise DataError(f"bucket must be >= 1 batches, got {bucket}")
        self.bucket = bucket
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, \
            drop_last
        self.rank, self.world_size = 0, 1
        self.epoch, self.offset = 0, 0     # offset: batches of this epoch already handed out

    @property
    def n_rows(self) -> int:
        """Rows this (shard of the) loader visits per epoch."""
        return self.total_rows // self.world_size if self.world_size > 1 else self.total_rows

    def __len__(self) -> int:
        n, b = self.n_rows, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch (DDP-style; iteration also advances it)."""
        self.epoch, self.offset = epoch, 0

    def _rows(self) -> torch.Tensor | None:
        """Row order of this epoch for this shard; None means "all rows in order"."""
        n, lo = self.n_rows, self.rank * self.n_rows
        if self.shuffle:
            gen = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
            # One global permutation shared by every rank, then a disjoint block each.
            rows = torch.randperm(self.total_rows, generator=gen)[lo:lo + n]
            return rows if self.lengths is None else self._bucketed(rows, gen)
        return None if self.world_size == 1 else torch.arange(lo, lo + n)

    def _bucketed(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``rows`` regrouped into batches of similar length, the batches in random order."""
        b, run = self.batch_size, self.batch_size * self.bucket
        parts = []
        for s in range(0, len(rows), run):
            chunk = rows[s:s + run]
            parts.append(chunk[torch.argsort(self.lengths[chunk], stable=True)])
        rows = torch.cat(parts)
        full = len(rows) // b
        # Whole batches shuffled; a last partial batch (if any) stays last.
        order = torch.randperm(full, generator=gen)
        head = rows[:full * b].view(full, b)[order].reshape(-1)
        return torch.cat([head, rows[full * b:]])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rows, n, b = self._rows(), self.n_rows, self.batch_size
        for i in range(self.offset, len(self)):
            lo, hi = i * b, min((i + 1) * b, n)
            if rows is None:
                batch = {k: t[lo:hi] for k, t in self.tensors.items()}
            elif not self.shuffle:          # an unshuffled shard is one contiguous block
                start = int(rows[0])
                batch = {k: t[start + lo:start + hi] for k, t in self.tensors.items()}
            else:
                idx = rows[lo:hi]
                batch = {k: t[idx] for k, t in self.tensors.items()}
            self.offset = i + 1
            yield batch
        self.epoch, self.offset = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed}

    def load_state_dict(self, d: dict) -> None:
        if d.get("seed", self.seed) != self.seed:
            raise DataError(f"batch state was saved with seed {d['seed']}, this loader has "
                            f"{self.seed}; resume with the same seed")
        self.epoch, self.offset = int(d["epoch"]), int(d["offset"])

    def shard(self, rank: int, world_size: int) -> TensorBatches:
        """This rank's disjoint, equal-sized share (the remainder rows are left out)."""
        if self.world_size != 1:
            raise DataError("shard() of an already sharded TensorBatches; shard the full one")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} outside 0..{world_size - 1}")
        if self.total_rows < world_size:
            raise DataError(f"{self.total_rows} rows cannot be split over {world_size} ranks")
        out = TensorBatches.__new__(TensorBatches)
        out.__dict__.update(self.__dict__)
        out.rank, out.world_size = rank, world_size
        out.epoch, out.offset = self.epoch, 0
        return out
