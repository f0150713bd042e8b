"""Imputation data: windows of `seq_len` steps with random point masks (GPT4TS / TSLib protocol).

Each entry of a window is hidden with probability `mask_ratio` (TSLib: `rand <= ratio` is
masked); hidden entries are set to 0 in the input and the network also receives the mask. Loss
and metrics use the hidden entries only. Training draws fresh masks at every step; validation
and test masks are fixed per window (seeded by (mask_seed, split, window index)), so metrics do
not change between runs or batch sizes. Splits, scaling and window starts are those of
forecasting (data.sources), with horizon 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from one4all.contract import IOSpec
from one4all.data.sources.table import SeriesData
from one4all.data.windows.base import WindowDataset
from one4all.errors import UserError

_SPLIT_IDS = {"val": 1, "test": 2}


class MaskedWindows(WindowDataset):
    """Every window (stride 1, all channels) of one split with its point mask.

    `seed=None` draws a new mask at every access from torch's global generator (seeded per run
    and per worker by Lightning); otherwise window i always gets the mask drawn from
    `numpy.random.default_rng([*seed, i])`.
    """

    def __init__(self, values: np.ndarray, seq_len: int, mask_ratio: float, seed: tuple[int, ...] | None,
                 max_windows: int | None = None, marks: np.ndarray | None = None) -> None:
        self.values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        self.marks = None if marks is None else torch.from_numpy(np.ascontiguousarray(marks, dtype=np.float32))
        self.seq_len, self.mask_ratio, self.seed = seq_len, mask_ratio, seed
        available = len(values) - seq_len + 1
        if available <= 0:
            raise UserError(f"a split has {len(values)} rows but task.seq_len={seq_len}; use a shorter window")
        self.n_windows = available if max_windows is None else max(1, min(available, max_windows))
        self._offsets = torch.arange(seq_len)

    def __len__(self) -> int:
        return self.n_windows

    def _uniform(self, indices: list[int], shape: tuple[int, int]) -> torch.Tensor:
        if self.seed is None:
            return torch.rand(len(indices), *shape)
        draws = [np.random.default_rng([*self.seed, i]).random(shape, dtype=np.float32) for i in indices]
        return torch.from_numpy(np.stack(draws))

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        y = self.values[idx[:, None] + self._offsets]
        mask = (self._uniform(indices, tuple(y.shape[1:])) > self.mask_ratio).float()
        batch = {"x": y * mask, "y": y, "mask": mask}
        if self.marks is not None:  # time features of the window's steps (never masked: dates are known)
            batch["x_mark"] = self.marks[idx[:, None] + self._offsets]
        return batch


@dataclass
class ImputationProtocol:
    """Imputation protocol (task.protocol): windows of `seq_len`, `mask_ratio` of entries hidden."""

    seq_len: int
    mask_ratio: float
    mask_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise UserError(f"task.mask_ratio={self.mask_ratio} must be in (0, 1), e.g. 0.125, 0.25, 0.375, 0.5")

    def load(self, data: Any) -> SeriesData:
        return data.load(self.seq_len)

    def io_spec(self, data: SeriesData) -> IOSpec:
        return IOSpec(seq_len=self.seq_len, n_channels=data.n_channels, kind="reconstruct", masked=True,
                      freq=data.freq)

    def datasets(self, data: SeriesData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, MaskedWindows]:
        """Windows hold every channel whatever `channel_independent` says (a network that treats
        channels independently does so inside its forward), and `x_mark` when `time_features` is
        set. `train_fraction` keeps the first share of training windows."""
        out = {}
        for split in ("train", "val", "test"):
            rows = data.rows(split)
            limit = int((len(rows) - self.seq_len + 1) * train_fraction) if split == "train" else None
            seed = None if split == "train" else (self.mask_seed, _SPLIT_IDS[split])
            out[split] = MaskedWindows(rows, self.seq_len, self.mask_ratio, seed, limit,
                                       data.marks(split, time_features))
        return out

    def task_inputs(self, data: SeriesData) -> dict[str, Any]:
        return {"scale": data.scaler.std}

    def describe(self, data: SeriesData) -> dict[str, Any]:
        """The `data` block of metrics.json."""
        return {"name": data.name, "n_channels": data.n_channels, "mask_ratio": self.mask_ratio,
                "mask_seed": self.mask_seed, **data.meta}

    def artifact_meta(self, data: SeriesData) -> dict[str, Any]:
        """The data schema and the fitted scaler."""
        return {"columns": data.columns, "date_col": data.date_col, "freq": data.freq,
                "scaler": data.scaler.to_dict(), "mask_ratio": self.mask_ratio}
