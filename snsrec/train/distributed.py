"""Data-parallel helpers: the same trainer under ``torchrun`` (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node N -m snsrec.cli train CONFIG`` starts N processes
with ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_*`` in their
environment. ``setup`` joins the process group once; everything else here is a
no-op in a plain single process, so the trainer calls these unconditionally.

What each rank does (the contract the trainer follows):

- every rank builds the same data, feature map and model (same seed);
- training batches: one permutation per epoch shared by all ranks, a disjoint
  equal-sized block each (``TensorBatches.shard``); DDP averages gradients;
- evaluation: each rank predicts a contiguous block of rows and the blocks are
  gathered, so every rank computes the same metrics and takes the same
  early-stopping decision without further messages;
- only rank 0 writes checkpoints and the run directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from snsrec.errors import ConfigError, SnsrecError
from snsrec.progress import set_quiet

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1


def launched() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched); valid before setup."""
    return int(os.environ.get("RANK", "0"))


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def info() -> DistInfo:
    if not active():
        return DistInfo()
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                    local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE",
                                                        str(dist.get_world_size()))))


def is_main() -> bool:
    return info().rank == 0


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def setup(device: str) -> bool:
    """Join the process group when launched by torchrun; True if this call created it."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch has no torch.distributed; "
                          "run without torchrun")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={device} under torchrun but CUDA is not available; "
                              f"set train.device=cpu (gloo)")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend_for(device))
    if dist.get_rank() != 0:
        set_quiet(True)     # one set of progress lines: rank 0's
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: str) -> str:
    """``cuda`` → ``cuda:LOCAL_RANK`` under torchrun (one GPU per process)."""
    if active() and device == "cuda":
        return f"cuda:{info().local_rank}"
    return device


def barrier() -> None:
    if active():
        dist.barrier()


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous block ``[lo, hi)`` of ``n`` rows for ``rank`` (sizes differ by at most 1)."""
    return n * rank // world_size, n * (rank + 1) // world_size


def gather_rows(local: np.ndarray, n: int) -> np.ndarray:
    """Concatenate every rank's ``shard_bounds`` block of a length-``n`` float vector."""
    if not active():
        return local
    d = info()
    width = -(-n // d.world_size)   # the largest block; shorter ones are padded
    buf = torch.zeros(width, dtype=torch.float64, device=_comm_device())
    buf[:len(local)] = torch.as_tensor(local, dtype=torch.float64)
    parts = [torch.empty_like(buf) for _ in range(d.world_size)]
    dist.all_gather(parts, buf)
    out = [p[: hi - lo].cpu().numpy() for r, p in enumerate(parts)
           for lo, hi in [shard_bounds(n, r, d.world_size)]]
    return np.concatenate(out)


def gather_cat(*tensors: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """Every rank's ``tensors`` concatenated along dim 0 in rank order (the first dim may
    differ between ranks, equal across one rank's tensors), and where this rank's rows
    start. The local rows keep their autograd graph; the other ranks' rows are constants
    (each rank's loss differentiates its own rows, DDP averages the gradients — the usual
    way contrastive training shares in-batch negatives). Every rank must call it, also one
    with no rows. Without DDP: the tensors themselves, offset 0."""
    if not active():
        return list(tensors), 0
    d = info()
    n = torch.tensor([tensors[0].shape[0]], dtype=torch.int64, device=_comm_device())
    sizes = [torch.zeros_like(n) for _ in range(d.world_size)]
    dist.all_gather(sizes, n)
    counts = [int(c) for c in sizes]
    out = []
    for t in tensors:
        buf = torch.zeros((max(counts), *t.shape[1:]), dtype=t.dtype, device=t.device)
        buf[:len(t)] = t.detach()
        parts = [torch.empty_like(buf) for _ in range(d.world_size)]
        dist.all_gather(parts, buf)
        rows = [p[:c] for p, c in zip(parts, counts, strict=True)]
        rows[d.rank] = t
        out.append(torch.cat(rows))
    return out, sum(counts[:d.rank])


def _comm_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0, then on the other ranks (e.g. build a data cache once).

    A bad-input error on rank 0 is sent to the others so no rank waits forever.
    """
    if not active():
        return fn()
    failure: list[str | None] = [None]
    if is_main():
        try:
            out = fn()
        except SnsrecError as e:
            failure[0] = str(e)
            dist.broadcast_object_list(failure, src=0)
            raise
        dist.broadcast_object_list(failure, src=0)
        return out
    dist.broadcast_object_list(failure, src=0)
    if failure[0] is not None:
        raise SnsrecError(failure[0])
    return fn()
