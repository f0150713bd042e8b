"""Anomaly benchmarks as data specs: where each public layout lives (parsers in formats.anomaly)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from one4all.data.formats import anomaly as readers
from one4all.data.sources.base import LoaderSettings
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
