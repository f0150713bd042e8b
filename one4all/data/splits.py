"""Train/val/test borders (Time-Series-Library conventions) and a train-only scaler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from one4all.errors import UserError

# ETT benchmark: 12 months train, 4 val, 4 test, 30-day months (Informer/TSLib convention).
_ETT_MONTH_HOURS = 30 * 24


@dataclass(frozen=True)
class Borders:
    """Row ranges [start, end) of each split. val/test start `seq_len` rows early, so their
    first window's input overlaps the previous split but every target lies inside the split."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def ett_borders(n_rows: int, seq_len: int, steps_per_hour: int = 1) -> Borders:
    """ETT-small borders: rows [0, 12m), [12m - L, 16m), [16m - L, 20m) with m = 720 h."""
    month = _ETT_MONTH_HOURS * steps_per_hour
    if n_rows < 20 * month:
        raise UserError(f"ETT split needs {20 * month} rows, the file has {n_rows}; use data.split=ratio")
    return Borders((0, 12 * month), (12 * month - seq_len, 16 * month), (16 * month - seq_len, 20 * month))


def ratio_borders(n_rows: int, seq_len: int, train: float = 0.7, test: float = 0.2) -> Borders:
    """Chronological split, TSLib `Dataset_Custom`: int(0.7 n) train, int(0.2 n) test, rest val."""
    n_train, n_test = int(n_rows * train), int(n_rows * test)
    n_val = n_rows - n_train - n_test
    if min(n_train, n_val, n_test) <= 0 or n_train - seq_len < 0:
        raise UserError(f"{n_rows} rows are too few to split {train:.0%}/{1 - train - test:.0%}/{test:.0%} "
                        f"with seq_len={seq_len}")
    return Borders((0, n_train), (n_train - seq_len, n_train + n_val), (n_rows - n_test - seq_len, n_rows))


def make_borders(scheme: str, n_rows: int, seq_len: int) -> Borders:
    """Borders by scheme name: `ett_hour`, `ett_minute` (15-min ETT) or `ratio`."""
    if scheme == "ett_hour":
        return ett_borders(n_rows, seq_len, 1)
    if scheme == "ett_minute":
        return ett_borders(n_rows, seq_len, 4)
    if scheme == "ratio":
        return ratio_borders(n_rows, seq_len)
    raise UserError(f"unknown data.split={scheme!r}; use ett_hour, ett_minute or ratio")


def scheme_for_file(name: str) -> str:
    """Default split scheme for a file name: ETT files use their fixed borders, others 70/10/20."""
    stem = name.lower()
    if stem.startswith("etth"):
        return "ett_hour"
    if stem.startswith("ettm"):
        return "ett_minute"
    return "ratio"


@dataclass
class StandardScaler:
    """Per-channel standardisation, fitted on training rows only and saved with the model."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        """Fit on `values[rows, channels]` (biased std, as sklearn); constant channels get std 1."""
        values = np.asarray(values, dtype=np.float64)
        std = values.std(axis=0)
        return cls(mean=values.mean(axis=0), std=np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray, channels: list[int] | None = None) -> np.ndarray:
        """Undo the scaling; `channels` selects which fitted channels the last axis holds."""
        idx = slice(None) if channels is None else channels
        return values * self.std[idx] + self.mean[idx]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, list[float]]) -> StandardScaler:
        return cls(mean=np.asarray(state["mean"], dtype=np.float64), std=np.asarray(state["std"], dtype=np.float64))
