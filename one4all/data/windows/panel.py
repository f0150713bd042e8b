"""Forecasting windows over many series of different lengths (long format): one global model.

A sample is one (series, start) window; every batch carries the series index as `channel`, so the
task's per-channel error sums are per-series sums and errors in original units use each series'
own scale. Channel-independent networks (One-for-All, PatchTST) see the target only, as
`[batch, seq_len, 1]`; a network that mixes channels sees the exogenous columns too (and forecasts
the target from them, like `features=MS` on a wide file).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from one4all.contract import IOSpec
from one4all.data.sources.long import PanelData, SplitWindows
from one4all.data.windows.base import WindowDataset, refuse_marks
from one4all.data.windows.forecast import ForecastProtocol

log = logging.getLogger(__name__)


class PanelWindows(WindowDataset):
    """Every window of one split across all series, stride 1, gathered in one vectorised step per batch."""

    def __init__(self, values: np.ndarray, indptr: np.ndarray, windows: SplitWindows, seq_len: int, horizon: int,
                 channel_independent: bool, target: int) -> None:
        self.values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        count = np.maximum(windows.count, 0)
        # Series-major sample order: sample i belongs to the series whose cumulative count passes i.
        self.cumulative = torch.from_numpy(np.cumsum(count).astype(np.int64))
        # Validation and test hold as many windows per series: they are ordered window-major instead,
        # so a prefix of the split (trainer.limit_val_batches) covers every series, not the first few.
        self.per_series = int(count[0]) if len(count) and (count == count[0]).all() else None
        self.first = torch.from_numpy((indptr[:-1] + windows.first).astype(np.int64))
        self.seq_len, self.horizon = seq_len, horizon
        self.channel_independent, self.target = channel_independent, target
        self._in_offsets = torch.arange(seq_len)
        self._out_offsets = torch.arange(seq_len, seq_len + horizon)

    def __len__(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def locate(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(series index, first input row in the flat array) of each sample."""
        if self.per_series is not None:
            series = indices % len(self.first)
            return series, self.first[series] + indices // len(self.first)
        series = torch.searchsorted(self.cumulative, indices, right=True)
        before = torch.where(series > 0, self.cumulative[(series - 1).clamp_min(0)], 0)
        return series, self.first[series] + indices - before

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        series, start = self.locate(torch.as_tensor(indices, dtype=torch.long))
        rows_in = start[:, None] + self._in_offsets
        rows_out = start[:, None] + self._out_offsets
        x = self.values[rows_in, self.target].unsqueeze(-1) if self.channel_independent else self.values[rows_in]
        y = self.values[rows_out, self.target].unsqueeze(-1)
        return {"x": x, "y": y, "channel": series}


@dataclass
class PanelProtocol(ForecastProtocol):
    """Forecasting protocol over long-format data (`data=long`): the windows and schema of a `PanelData`."""

    def io_spec(self, data: PanelData) -> IOSpec:
        return IOSpec(seq_len=self.seq_len, n_channels=data.n_channels, kind="forecast", horizon=self.horizon)

    def datasets(self, data: PanelData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, PanelWindows]:
        """Windows of each split the scheme holds; `train_fraction` keeps each series' first share."""
        refuse_marks(time_features, "long-format series")
        if channel_independent and data.n_channels > 1:
            log.warning("this network is channel-independent: it forecasts %r from its own history and ignores "
                        "the exogenous columns %s", data.panel.columns[-1], data.panel.columns[:-1])
        out = {}
        for split, windows in data.splits.items():
            if split == "train" and train_fraction < 1.0:
                windows = SplitWindows(windows.first, (windows.count * train_fraction).astype(np.int64))
            out[split] = PanelWindows(data.scaled, data.panel.indptr, windows, self.seq_len, self.horizon,
                                      channel_independent, data.target_channel)
        return out

    def task_inputs(self, data: PanelData) -> dict[str, Any]:
        # Per-series accumulators: the batch's `channel` is the series index, the scale its target std.
        return {"target_channels": [data.target_channel], "scale": data.std[:, data.target_channel]}

    def describe(self, data: PanelData) -> dict[str, Any]:
        return {"name": data.name, "n_channels": data.n_channels, **data.meta}

    def artifact_meta(self, data: PanelData) -> dict[str, Any]:
        """The long-format schema and each series' scaler: prediction replays them."""
        panel = data.panel
        return {"layout": "long", "columns": panel.columns, "freq": panel.freq,
                **{k: data.meta[k] for k in ("id_col", "time_col", "target_col", "exog", "max_missing_gap")},
                "series": {"ids": [_json_id(i) for i in panel.ids], "mean": data.mean.tolist(),
                           "std": data.std.tolist()}}


def _json_id(value: Any) -> Any:
    """An id as JSON keeps it (numbers and strings as they are, anything else as its text), so a
    prediction frame's ids match the training ones."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return str(value)
