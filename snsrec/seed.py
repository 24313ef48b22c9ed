"""One seeding function for Python, NumPy and PyTorch."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also fills every fresh tensor with NaN (a debugging aid, not
    # needed for reproducibility): 11 % of a DeepFM step on CPU. Results are unchanged.
    torch.utils.deterministic.fill_uninitialized_memory = False
