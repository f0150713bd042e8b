"""Anomaly benchmarks as data specs: where each public layout lives (parsers in formats.anomaly)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from one4all.data.formats import anomaly as readers
from one4all.data.sources.base import LoaderSettings
from one4all.errors import UserError
from one4all.paths import resolve_data_file


class AnomalySource(LoaderSettings, ABC):
    """Where an anomaly benchmark lives: `folder` under `root` (see anomaly_readers for layouts)."""

    def __init__(self, folder: str, root: str | None = None, batch_size: int = 128,
                 eval_batch_size: int | None = None, num_workers: int = 0, train_fraction: float = 1.0) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        self.folder: Path = resolve_data_file(root, folder)

    @abstractmethod
    def load(self) -> readers.AnomalySeries:
        """Read the benchmark's files."""


class TelemanomData(AnomalySource):
    """One NASA SMAP/MSL channel (telemanom layout)."""

    def __init__(self, channel: str, folder: str = "SMAP_MSL", labels_file: str = "labeled_anomalies.csv",
                 **loader: Any) -> None:
        super().__init__(folder, **loader)
        self.channel, self.labels_file = channel, labels_file

    def load(self) -> readers.AnomalySeries:
        return readers.read_telemanom(self.folder, self.channel, self.labels_file)


class SMDData(AnomalySource):
    """One Server Machine Dataset machine (OmniAnomaly layout), e.g. machine-1-1."""

    def __init__(self, machine: str, folder: str = "ServerMachineDataset", **loader: Any) -> None:
        super().__init__(folder, **loader)
        self.machine = machine

    def load(self) -> readers.AnomalySeries:
        return readers.read_smd(self.folder, self.machine)


class NpyAnomalyData(AnomalySource):
    """TSLib's `<prefix>_train.npy` / `_test.npy` / `_test_label.npy` (SMD, SMAP, MSL)."""

    def __init__(self, prefix: str, folder: str, **loader: Any) -> None:
        super().__init__(folder, **loader)
        self.prefix = prefix

    def load(self) -> readers.AnomalySeries:
        return readers.read_npy_triplet(self.folder, self.prefix)


class PSMData(AnomalySource):
    """eBay's Pooled Server Metrics: train.csv, test.csv, test_label.csv."""

    def load(self) -> readers.AnomalySeries:
        return readers.read_psm(self.folder)


class SWaTData(AnomalySource):
    """SWaT: a normal-operation CSV (train) and an attack CSV (test) with a label column."""

    def __init__(self, train_file: str, test_file: str, label_col: str = "Normal/Attack", folder: str = "SWaT",
                 **loader: Any) -> None:
        super().__init__(folder, **loader)
        self.train_file, self.test_file, self.label_col = train_file, test_file, label_col

    def load(self) -> readers.AnomalySeries:
        return readers.read_swat(self.folder, self.train_file, self.test_file, self.label_col)


class AnomalyCsvData(LoaderSettings):
    """Your own series in one CSV (date column + value columns, NAB-like): train on it, or on a known
    normal span, and score every row. Keys as data=csv where they mean the same (`features`: M = every
    value column, S = `target` only); labels (a 0/1 `label_col` or a `labels_file` of windows) are
    for evaluation only."""

    def __init__(self, path: str, root: str | None = None, name: str | None = None, features: str = "M",
                 target: str | None = None, date_col: str | None = None, columns: list[str] | None = None,
                 label_col: str | None = None, labels_file: str | None = None, normal_span: list | None = None,
                 max_missing_gap: int = 3, **loader: Any) -> None:
        super().__init__(**loader)
        if features not in ("M", "S"):
            raise UserError(f"data.features={features!r}; anomaly detection uses M (every value column) or "
                            "S (data.target only)")
        if features == "S":
            if target is None:
                raise UserError("data.features=S needs data.target: the value column to score")
            columns = [str(target)]
        self.path = resolve_data_file(root, path)
        self.labels_file = None if labels_file is None else resolve_data_file(root, labels_file)
        self.name = name or self.path.stem
        self.date_col = None if date_col is None else str(date_col)
        self.columns = [str(c) for c in columns] if columns else None
        self.label_col = None if label_col is None else str(label_col)
        self.normal_span, self.max_missing_gap = normal_span, max_missing_gap

    def load(self) -> readers.AnomalySeries:
        series = readers.read_anomaly_csv(self.path, self.date_col, self.columns, self.label_col, self.labels_file,
                                          self.normal_span, self.max_missing_gap)
        series.name = self.name
        return series
