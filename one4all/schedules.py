"""Learning-rate schedules that torch does not ship, for reproducing published baseline runs."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def hold_then_decay(optimizer: torch.optim.Optimizer, gamma: float, hold_epochs: int) -> LambdaLR:
    """Epoch k (from 0) trains at lr0 * gamma ** max(0, k - hold_epochs); step it once per epoch.

    Time-Series-Library's `--lradj type1` is gamma 0.5, hold 1 (lr0 for two epochs, then halved each
    epoch); PatchTST's `type3` is gamma 0.9, hold 3.
    """
    return LambdaLR(optimizer, lambda epoch: gamma ** max(0, epoch - hold_epochs))
