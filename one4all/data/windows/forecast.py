"""Task datasets built from split arrays: forecasting windows (stride 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from one4all.contract import IOSpec
from one4all.data.sources.table import SeriesData
from one4all.data.windows.base import WindowDataset
from one4all.errors import UserError


class ForecastWindows(WindowDataset):
    """Every (input, target) window of one split, stride 1.

    With `channel_independent`, each (channel, start) pair is its own univariate sample, indexed
    channel-major as in Time-Series-Library, so the sample count is windows x channels. Otherwise a
    sample holds all channels. Batches are gathered in one vectorised step (`__getitems__`).
    `marks[rows, n_marks]` (time features of the rows, when the network reads them) adds each
    input window's marks as `x_mark`.
    """

    def __init__(
        self,
        values: np.ndarray,
        seq_len: int,
        horizon: int,
        channel_independent: bool,
        target_channels: list[int] | None = None,
        max_windows: int | None = None,
        marks: np.ndarray | None = None,
    ) -> None:
        self.values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        self.marks = None if marks is None else torch.from_numpy(np.ascontiguousarray(marks, dtype=np.float32))
        self.seq_len, self.horizon = seq_len, horizon
        self.channel_independent = channel_independent
        n_channels = self.values.shape[1]
        self.target_channels = list(range(n_channels)) if target_channels is None else list(target_channels)
        available = len(values) - seq_len - horizon + 1
        if available <= 0:
            raise UserError(f"a split has {len(values)} rows but seq_len + horizon = {seq_len + horizon}; "
                            "use a shorter seq_len/horizon or more data")
        self.n_windows = available if max_windows is None else max(1, min(available, max_windows))
        # Under channel independence only the scored channels become samples (S/M: all of them).
        self.sample_channels = self.target_channels if channel_independent else []
        self._in_offsets = torch.arange(seq_len)
        self._out_offsets = torch.arange(seq_len, seq_len + horizon)

    def __len__(self) -> int:
        if self.channel_independent:
            return self.n_windows * len(self.sample_channels)
        return self.n_windows

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.channel_independent:
            channel = torch.as_tensor(self.sample_channels)[idx // self.n_windows]
            start = idx % self.n_windows
            x = self.values[start[:, None] + self._in_offsets, channel[:, None]].unsqueeze(-1)
            y = self.values[start[:, None] + self._out_offsets, channel[:, None]].unsqueeze(-1)
            batch = {"x": x, "y": y, "channel": channel}
        else:
            start = idx
            x = self.values[idx[:, None] + self._in_offsets]
            y = self.values[idx[:, None] + self._out_offsets][..., self.target_channels]
            batch = {"x": x, "y": y}
        if self.marks is not None:
            batch["x_mark"] = self.marks[start[:, None] + self._in_offsets]
        return batch


@dataclass
class ForecastProtocol:
    """Forecasting protocol: input `seq_len` steps, predict the next `horizon`.

    The training loop asks a protocol: load the data, the network's IOSpec, the split datasets,
    the data-derived arguments of the task module, and what to record in metrics.json (`describe`)
    and in the artifact (`artifact_meta`).
    """

    seq_len: int
    horizon: int

    def load(self, data: Any) -> SeriesData:
        return data.load(self.seq_len, horizon=self.horizon)

    def io_spec(self, data: SeriesData) -> IOSpec:
        return IOSpec(seq_len=self.seq_len, n_channels=data.n_channels, kind="forecast", horizon=self.horizon,
                      freq=data.freq)

    def datasets(self, data: SeriesData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, ForecastWindows]:
        """Windows of the splits the data holds (train, and val/test unless the scheme has none), with
        `x_mark` when `time_features` is set. `train_fraction` keeps the first share of training windows."""
        out = {}
        for split in data.borders.present():
            limit = None
            if split == "train" and train_fraction < 1.0:
                full = len(data.rows("train")) - self.seq_len - self.horizon + 1
                limit = int(full * train_fraction)
            out[split] = ForecastWindows(data.rows(split), self.seq_len, self.horizon, channel_independent,
                                         data.target_channels, limit, data.marks(split, time_features))
        return out

    def task_inputs(self, data: SeriesData) -> dict[str, Any]:
        return {"target_channels": data.target_channels, "scale": data.scaler.std}

    def describe(self, data: SeriesData) -> dict[str, Any]:
        """The `data` block of metrics.json (sample counts are added by the data module)."""
        return {"name": data.name, "n_channels": data.n_channels, **data.meta}

    def artifact_meta(self, data: SeriesData) -> dict[str, Any]:
        """What inference needs besides the network: the data schema and the fitted scaler."""
        return {"columns": data.columns, "target_channels": data.target_channels, "date_col": data.date_col,
                "freq": data.freq, "scaler": data.scaler.to_dict(),
                **{k: data.meta.get(k) for k in ("features", "target", "max_missing_gap")}}
