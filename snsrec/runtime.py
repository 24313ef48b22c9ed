"""Process-wide settings the command line applies once, before any work.

``keep_freed_memory``: glibc's malloc serves every block over 32 MB by ``mmap`` and
returns it to the system on ``free``, so each large activation tensor of a training
step (DIN's activation unit holds ``batch × behaviours × units`` floats: 320 MB for
1,024 rows of 1,000 behaviours) is page-faulted in afresh, step after step. With
``mmap`` off and the heap trimmed only past ~2 GB of free top, freed blocks are reused:
one DIN training step at 1,000 behaviours went from ~7 s to ~1.7 s on one thread,
for a higher peak resident size (freed blocks stay with the process).
``SNSREC_MALLOC=system`` keeps the C library's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1      # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_BYTES = (1 << 31) - 1     # the largest an int holds: ~2 GB


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above; False where it does not apply (not Linux / glibc, or
    ``SNSREC_MALLOC=system``)."""
    if not sys.platform.startswith("linux") or os.environ.get("SNSREC_MALLOC") == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):         # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
