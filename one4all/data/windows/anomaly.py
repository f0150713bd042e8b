"""Anomaly detection data: sources (Hydra data specs), windows, and the protocol.

Protocol (TSLib / GPT4TS, with the evaluation leaks removed):
- the training series is split in time: the first `1 - val_fraction` rows train, the last
  `val_fraction` (TSLib: 20%) validate; the scaler is fitted on the training rows only;
- training and validation use windows of `seq_len` (100) at stride 1, loss = reconstruction MSE;
- scoring reconstructs train, val and test with windows at `score_stride` (default `seq_len`:
  disjoint windows, as TSLib's threshold loader) plus one window flush with the end, so every
  point is scored (TSLib drops the tail); a point's score is the per-step MSE over channels,
  averaged over the windows that cover it;
- the threshold comes from train + val scores only (tasks.anomaly); test labels are read only
  to compute metrics, and a test series without labels (a user's CSV) gets scores only.

For a user's series (`data=anomaly_csv`) the test series is the whole file and "train" is the
file or its known-normal span; the per-point scores are written to the run directory
(anomaly_files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from one4all.anomaly_files import ScoreTable
from one4all.contract import IOSpec
from one4all.data.formats import anomaly as readers
from one4all.data.sources.anomaly import AnomalyCsvData, AnomalySource
from one4all.data.splits import StandardScaler
from one4all.data.windows.base import WindowDataset, refuse_marks
from one4all.errors import UserError

SPLITS = ("train", "val", "test")


def window_starts(n_rows: int, seq_len: int, stride: int) -> np.ndarray:
    """Starts at 0, stride, 2 stride, ... plus `n_rows - seq_len` when the last window falls short."""
    if n_rows < seq_len:
        raise UserError(f"a split has {n_rows} rows, fewer than task.seq_len={seq_len}")
    starts = np.arange(0, n_rows - seq_len + 1, stride)
    return starts if starts[-1] == n_rows - seq_len else np.append(starts, n_rows - seq_len)


class Windows(WindowDataset):
    """Windows `x[seq_len, channels]` of several series at given starts, tagged with their series
    (`split`: index into `names`) and `start`, so scores can be placed back on the time axis."""

    paper_drop_last = False  # the papers score every test sample here (TSLib: drop_last=False)

    def __init__(self, series: dict[str, np.ndarray], seq_len: int, stride: int,
                 max_windows: int | None = None) -> None:
        self.names = list(series)
        self.values = torch.from_numpy(np.concatenate(list(series.values())).astype(np.float32))
        offsets = np.cumsum([0] + [len(v) for v in series.values()])[:-1]
        tags = [(k, s) for k, v in enumerate(series.values()) for s in window_starts(len(v), seq_len, stride)]
        tags = tags if max_windows is None else tags[: max(1, max_windows)]
        self.split = torch.tensor([k for k, _ in tags], dtype=torch.long)
        self.start = torch.tensor([s for _, s in tags], dtype=torch.long)
        self.row = torch.tensor([offsets[k] + s for k, s in tags], dtype=torch.long)
        self._offsets = torch.arange(seq_len)

    def __len__(self) -> int:
        return len(self.row)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = self.values[self.row[idx][:, None] + self._offsets]
        return {"x": x, "split": self.split[idx], "start": self.start[idx]}


@dataclass
class AnomalyData:
    """Scaled splits of one benchmark, its test labels and scaler."""

    series: readers.AnomalySeries
    scaled: dict[str, np.ndarray]
    scaler: StandardScaler


@dataclass
class AnomalyProtocol:
    """Anomaly-detection protocol (task.protocol); see the module docstring."""

    seq_len: int = 100
    val_fraction: float = 0.2
    score_stride: int | None = None

    def load(self, data: AnomalySource | AnomalyCsvData) -> AnomalyData:
        series = data.load()
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"task.protocol.val_fraction={self.val_fraction} must be in (0, 1)")
        n_fit = int(len(series.train) * (1 - self.val_fraction))
        scaler = StandardScaler.fit(series.train[:n_fit])
        scaled = {"train": scaler.transform(series.train[:n_fit]), "val": scaler.transform(series.train[n_fit:]),
                  "test": scaler.transform(series.test)}
        for split, rows in scaled.items():
            if len(rows) < self.seq_len:
                raise UserError(f"{series.name}: the {split} split has {len(rows)} rows, fewer than task.seq_len="
                                f"{self.seq_len}; lower task.seq_len or task.protocol.val_fraction")
        return AnomalyData(series, scaled, scaler)

    def io_spec(self, data: AnomalyData) -> IOSpec:
        return IOSpec(seq_len=self.seq_len, n_channels=data.series.train.shape[1], kind="reconstruct")

    def datasets(self, data: AnomalyData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, Windows]:
        """train/val: stride-1 windows; test: the scoring windows over train, val and test.
        Windows hold every channel whatever `channel_independent` says."""
        refuse_marks(time_features, "anomaly data")
        n_train = len(data.scaled["train"]) - self.seq_len + 1
        limit = int(n_train * train_fraction) if train_fraction < 1.0 else None
        stride = self.score_stride or self.seq_len
        return {"train": Windows({"train": data.scaled["train"]}, self.seq_len, 1, limit),
                "val": Windows({"val": data.scaled["val"]}, self.seq_len, 1),
                "test": Windows(data.scaled, self.seq_len, stride)}

    def task_inputs(self, data: AnomalyData) -> dict[str, Any]:
        series = data.series
        if series.timestamps is not None:
            index, name = series.timestamps, series.meta.get("date_col") or "timestamp"
        else:
            index, name = pd.RangeIndex(len(series.test)), "row"
        outputs = ScoreTable(index, name, series.test, series.columns, series.labels)
        return {"test_labels": series.labels, "n_points": {k: len(v) for k, v in data.scaled.items()},
                "n_channels": series.train.shape[1], "outputs": outputs}

    def describe(self, data: AnomalyData) -> dict[str, Any]:
        """The `data` block of metrics.json (n_test_samples counts the scoring windows of all splits)."""
        return {"name": data.series.name, "n_channels": data.series.train.shape[1],
                "n_points": {k: len(v) for k, v in data.scaled.items()},
                "test_anomaly_share": None if data.series.labels is None else float(data.series.labels.mean()),
                "seq_len": self.seq_len,
                "score_stride": self.score_stride or self.seq_len, "val_fraction": self.val_fraction,
                **{k: v for k, v in data.series.meta.items() if k != "anomaly_ranges"}}

    def artifact_meta(self, data: AnomalyData) -> dict[str, Any]:
        """The channel names and the fitted scaler."""
        return {"columns": data.series.columns, "scaler": data.scaler.to_dict()}
