"""What every task dataset shares: batches are gathered in one vectorised step."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from one4all.errors import UserError


class WindowDataset(Dataset):
    """A task dataset whose `__getitems__` returns a whole batch (a dict of stacked tensors), so the
    loader needs no per-sample collation.

    `paper_drop_last`: whether GPT4TS/One-for-All drop the last test batch of this kind of data
    (windowed forecasting and imputation do; anomaly, classification and M4 score every sample).
    Only `paper_compat=true` reproduces it.
    """

    paper_drop_last: bool = True

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitems__")


def collate_prebatched(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`__getitems__` already returns a batch; keep it as is."""
    return batch


def refuse_marks(time_features: str, data: str) -> None:
    """Protocols whose data has no timestamps serve no time-feature marks."""
    if time_features != "none":
        raise UserError(f"{data} has no timestamps, so no time-feature marks; set model.time_features=none")
