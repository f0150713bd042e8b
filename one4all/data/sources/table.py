"""Data specs: where a dataset comes from, how it is split and scaled, and how it is fed.

A spec is built by Hydra from `configs/data/*.yaml`; `load(seq_len, horizon)` returns arrays ready for
the task's windowing. Scalers are always fitted on the training rows only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one4all.data.formats.table import Table, frame_to_table, read_table
from one4all.data.sources.base import LoaderSettings
from one4all.data.splits import Borders, StandardScaler, ett_scheme, make_borders, scheme_for_file
from one4all.errors import UserError
from one4all.marks import compute_marks, mark_names
from one4all.paths import default_data_root, resolve_data_file

FEATURES = ("M", "S", "MS")
# strict: a user's own series (refuse bad timestamps); positional: benchmark files, read by position.
TIMESTAMPS = ("strict", "positional")


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
        start, end = self.borders.ranges()[split]
        return self.scaled[start:end]

    def marks(self, split: str, time_features: str) -> np.ndarray | None:
        """Time-feature marks `[rows, n_marks]` of the split's rows (one4all.marks); None for `none`."""
        if time_features == "none":
            return None
        if self.timestamps is None:
            mark_names(time_features, None)  # refuses: marks need timestamps
        start, end = self.borders.as_dict()[split]
        return compute_marks(self.timestamps[start:end], time_features, self.freq)


def select_features(table: Table, features: str, target: str | None) -> tuple[list[int], list[int]]:
    """Column indices for inputs and targets under TSLib's features M / S / MS."""
    if features not in FEATURES:
        raise UserError(f"unknown data.features={features!r}; use M (all->all), S (target->target) or MS")
    if target in table.dropped:
        raise UserError(f"data.target={target!r} is a {table.dropped[target]} column, so it cannot be forecast; "
                        f"choose a numeric column (numeric columns: {table.columns})")
    if features == "M":
        if target is not None and target not in table.columns:
            raise UserError(f"data.target={target!r} is not a column (columns: {table.columns}); fix data.target "
                            "(with data.features=M every column is forecast, the target only names one)")
        idx = list(range(len(table.columns)))
        return idx, idx
    if target is None or target not in table.columns:
        raise UserError(f"target column {target!r} not found (columns: {table.columns}); set data.target")
    t = table.columns.index(target)
    if features == "S":
        return [t], [0]
    inputs = [i for i in range(len(table.columns)) if i != t] + [t]
    return inputs, [len(inputs) - 1]


def _name(column: Any) -> str | None:
    return None if column is None else str(column)


class TableData(LoaderSettings, ABC):
    """A table-shaped series (date column + value columns): features, split, train-only scaling.

    Subclasses say where the table comes from (`read`); everything after reading is shared.
    """

    def __init__(
        self,
        name: str,
        features: str = "M",
        target: str | None = "OT",
        date_col: str | None = None,
        columns: list[str] | None = None,
        freq: str | None = None,
        split: str = "ratio",
        val_size: int | None = None,
        test_size: int = 0,
        max_missing_gap: int = 3,
        timestamps: str = "strict",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        train_fraction: float = 1.0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        if timestamps not in TIMESTAMPS:
            raise UserError(f"unknown data.timestamps={timestamps!r}; use strict (your own series: bad timestamps "
                            "are errors) or positional (benchmark files: rows by position, bad timestamps warned)")
        self.timestamps = timestamps
        self.name = name
        # Column names are strings: `data.target=6` reaches us as the int 6 (exchange_rate has a column "6").
        self.features, self.target, self.date_col = features, _name(target), _name(date_col)
        self.columns = [str(c) for c in columns] if columns else None
        self.freq, self.max_missing_gap, self.split = freq, max_missing_gap, split
        self.val_size, self.test_size = val_size, test_size

    @abstractmethod
    def read(self) -> Table:
        """The validated raw table (original units)."""

    def describe_source(self) -> dict:
        """Where the data came from, for metrics.json."""
        return {}

    @property
    def positional(self) -> bool:
        """Whether rows are read by position (benchmark files) rather than by validated timestamps."""
        return self.timestamps == "positional"

    def load(self, seq_len: int, horizon: int = 0) -> SeriesData:
        """Read, select features, split (borders follow the rows' frequency), and scale with statistics
        of the training rows."""
        table = self.read()
        inputs, targets = select_features(table, self.features, self.target)
        values = table.values[:, inputs]
        split = ett_scheme(table.freq, self.name) if self.split == "ett" else self.split
        borders = make_borders(split, table.n_rows, seq_len, horizon, self.val_size, self.test_size,
                               freq=table.freq, name=self.name)
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
            meta={**self.describe_source(), "features": self.features, "target": self.target,
                  "split": split, "n_rows": table.n_rows, "max_missing_gap": self.max_missing_gap,
                  "timestamps": self.timestamps, "repairs": table.repairs,
                  # Which rows trained (and the scaler saw): metrics.json states it for every fit mode.
                  "rows": borders.as_dict(), "n_train_rows": borders.n_train_rows},
        )


class CsvData(TableData):
    """A CSV with a date column (ETT, exchange rate, your own file, or a packaged file)."""

    def __init__(self, path: str, root: str | None = None, split: str = "auto", name: str | None = None,
                 **settings: Any) -> None:
        resolved = resolve_data_file(root, path)
        super().__init__(name=name or Path(resolved).stem,
                         split=scheme_for_file(resolved.name) if split == "auto" else split, **settings)
        self.path = resolved
        self.requested, self.root = str(path), root

    def read(self) -> Table:
        relative = not Path(self.requested).expanduser().is_absolute() and not self.requested.startswith("pkg://")
        if relative and not self.path.exists():
            base = default_data_root()
            if self.root:
                where = f"is not under data.root={self.root}"
            elif base:
                where = f"is neither in the working directory {Path.cwd()} nor in the data root {base}"
            else:
                where = f"is not in the working directory {Path.cwd()}"
            raise UserError(f"data file not found: {self.requested} {where}; check data.path and data.root (an "
                            "absolute data.path is used as it is)")
        return read_table(self.path, self.date_col, self.columns, self.freq, self.max_missing_gap,
                          self.positional)

    def describe_source(self) -> dict:
        return {"path": str(self.path)}


class FrameData(TableData):
    """An in-memory pandas DataFrame (the Python API): a date column or DatetimeIndex plus value columns.

    The frame is not part of the config: it is passed at build time (`train.run(..., data_inputs=)`).
    """

    def __init__(self, frame: pd.DataFrame, name: str | None = None, split: str = "holdout", **settings: Any) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise UserError(f"expected a pandas DataFrame, got {type(frame).__name__}; pass pd.read_csv(...) output")
        super().__init__(name=name or "dataframe", split=split, **settings)
        self.frame = frame

    def read(self) -> Table:
        return frame_to_table(self.frame, self.date_col, self.columns, self.freq, self.max_missing_gap,
                              source="the DataFrame", positional=self.positional)
