"""Data specs: where a dataset comes from, how it is split and scaled, and how it is fed.

A spec is built by Hydra from `configs/data/*.yaml`; `load(seq_len)` returns arrays ready for the
task's windowing. Scalers are always fitted on the training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.data.readers import Table, read_table
from one4all.data.splits import Borders, StandardScaler, make_borders, scheme_for_file
from one4all.errors import UserError
from one4all.paths import resolve_data_file

FEATURES = ("M", "S", "MS")


@dataclass
class SeriesData:
    """A scaled multivariate series with its split borders.

    `columns` are the network's input channels; `target_channels` index the channels the task
    predicts and scores (all of them for M, the target for S and MS).
    """

    name: str
    scaled: np.ndarray  # float32 [rows, channels]
    borders: Borders
    scaler: StandardScaler
    columns: list[str]
    target_channels: list[int]
    timestamps: pd.DatetimeIndex | None = None
    freq: str | None = None
    date_col: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    def rows(self, split: str) -> np.ndarray:
        start, end = getattr(self.borders, split)
        return self.scaled[start:end]


def select_features(table: Table, features: str, target: str | None) -> tuple[list[int], list[int]]:
    """Column indices for inputs and targets under TSLib's features M / S / MS."""
    if features not in FEATURES:
        raise UserError(f"unknown data.features={features!r}; use M (all->all), S (target->target) or MS")
    if features == "M":
        idx = list(range(len(table.columns)))
        return idx, idx
    if target is None or target not in table.columns:
        raise UserError(f"target column {target!r} not found (columns: {table.columns}); set data.target")
    t = table.columns.index(target)
    if features == "S":
        return [t], [0]
    inputs = [i for i in range(len(table.columns)) if i != t] + [t]
    return inputs, [len(inputs) - 1]


@dataclass
class LoaderSettings:
    """How batches are fed: shared by every data spec."""

    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 0
    train_fraction: float = 1.0


class CsvData(LoaderSettings):
    """A CSV with a date column (ETT, exchange rate, your own file, or a packaged file)."""

    def __init__(
        self,
        path: str,
        root: str | None = None,
        features: str = "M",
        target: str | None = "OT",
        date_col: str | None = None,
        columns: list[str] | None = None,
        freq: str | None = None,
        split: str = "auto",
        max_missing_gap: int = 3,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        train_fraction: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        if not 0.0 < train_fraction <= 1.0:
            raise UserError(f"data.train_fraction={train_fraction} must be in (0, 1]")
        self.path = resolve_data_file(root, path)
        self.features, self.target, self.date_col = features, target, date_col
        self.columns = list(columns) if columns else None
        self.freq, self.max_missing_gap = freq, max_missing_gap
        self.split = scheme_for_file(self.path.name) if split == "auto" else split
        self.name = name or Path(self.path).stem

    def read(self) -> Table:
        """The validated raw table (original units)."""
        return read_table(self.path, self.date_col, self.columns, self.freq, self.max_missing_gap)

    def load(self, seq_len: int) -> SeriesData:
        """Read, select features, split, and scale with statistics of the training rows."""
        table = self.read()
        inputs, targets = select_features(table, self.features, self.target)
        values = table.values[:, inputs]
        borders = make_borders(self.split, table.n_rows, seq_len)
        train_start, train_end = borders.train
        scaler = StandardScaler.fit(values[train_start:train_end])
        return SeriesData(
            name=self.name,
            scaled=scaler.transform(values),
            borders=borders,
            scaler=scaler,
            columns=[table.columns[i] for i in inputs],
            target_channels=targets,
            timestamps=table.timestamps,
            freq=table.freq,
            date_col=table.date_col,
            meta={"path": str(self.path), "features": self.features, "target": self.target,
                  "split": self.split, "n_rows": table.n_rows},
        )
