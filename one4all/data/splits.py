"""Train/val/test borders and a train-only scaler.

Benchmark schemes follow Time-Series-Library (ETT month borders, 70/10/20 by rows). For a user's own
data, `holdout` keeps only the last `val_size` rows for early stopping (and `test_size` rows for a
test, none by default), and `all` trains on every row (the refit after model selection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from one4all.errors import UserError

# ETT benchmark: 12 months train, 4 val, 4 test, 30-day months (Informer/TSLib convention).
_ETT_MONTH_HOURS = 30 * 24


@dataclass(frozen=True)
class Borders:
    """Row ranges [start, end) of each split. val/test start `seq_len` rows early, so their
    first window's input overlaps the previous split but every target lies inside the split.
    A split that the scheme does not hold out (`holdout` without a test, `all`) is None."""

    train: tuple[int, int]
    val: tuple[int, int] | None
    test: tuple[int, int] | None

    def ranges(self) -> dict[str, tuple[int, int] | None]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def as_dict(self) -> dict[str, list[int] | None]:
        return {name: None if rows is None else list(rows) for name, rows in self.ranges().items()}

    def present(self) -> list[str]:
        """The splits this scheme holds, in order."""
        return [name for name, rows in self.ranges().items() if rows is not None]

    @property
    def n_train_rows(self) -> int:
        """Rows whose values training sees (inputs and targets of training windows, and the scaler)."""
        return self.train[1] - self.train[0]


def ett_borders(n_rows: int, seq_len: int, steps_per_hour: int = 1) -> Borders:
    """ETT-small borders: rows [0, 12m), [12m - L, 16m), [16m - L, 20m) with m = 720 h."""
    month = _ETT_MONTH_HOURS * steps_per_hour
    if n_rows < 20 * month:
        raise UserError(f"ETT split needs {20 * month} rows, the file has {n_rows}; use data.split=ratio")
    return Borders((0, 12 * month), (12 * month - seq_len, 16 * month), (16 * month - seq_len, 20 * month))


def _ratio_fits(n_rows: int, seq_len: int, horizon: int, train: float, test: float) -> bool:
    """Whether every split holds a window: train seq_len + horizon rows, val and test `horizon`
    rows of their own (at least 1; they borrow seq_len input rows from the previous split)."""
    n_train, n_test = int(n_rows * train), int(n_rows * test)
    need = max(horizon, 1)
    return n_train >= seq_len + horizon and n_test >= need and n_rows - n_train - n_test >= need


def ratio_min_rows(seq_len: int, horizon: int = 0, train: float = 0.7, test: float = 0.2) -> int:
    """The row count from which on the ratio split always fits (int() rounding makes the shares'
    row counts non-monotonic, so a few shorter files may fit too)."""
    h = max(horizon, 1)
    # Above this bound every share holds its rows whatever the rounding; scan down from it.
    n = max(math.ceil((seq_len + horizon + 1) / train), math.ceil((h + 1) / test),
            math.ceil(h / (1 - train - test)) + 2)
    while n > 1 and _ratio_fits(n - 1, seq_len, horizon, train, test):
        n -= 1
    return n


def ratio_borders(n_rows: int, seq_len: int, horizon: int = 0, train: float = 0.7, test: float = 0.2) -> Borders:
    """Chronological split, TSLib `Dataset_Custom`: int(0.7 n) train, int(0.2 n) test, rest val."""
    if not _ratio_fits(n_rows, seq_len, horizon, train, test):
        need = ratio_min_rows(seq_len, horizon, train, test)
        what = f"seq_len={seq_len} + horizon={horizon}" if horizon else f"seq_len={seq_len}"
        raise UserError(f"{n_rows} rows are too few: {what} with a {train:.0%}/{1 - train - test:.0%}/{test:.0%} "
                        f"split needs at least {need} rows; add rows or lower task.seq_len / task.horizon")
    n_train, n_test = int(n_rows * train), int(n_rows * test)
    n_val = n_rows - n_train - n_test
    return Borders((0, n_train), (n_train - seq_len, n_train + n_val), (n_rows - n_test - seq_len, n_rows))


# Validation windows per series by default: enough to calibrate a 95% interval on a single series.
MIN_VAL_WINDOWS = 20


def default_val_size(horizon: int) -> int:
    """Validation rows when `data.val_size` is null: two horizons, and at least `MIN_VAL_WINDOWS`
    windows of stride 1 (horizon + 19 rows)."""
    h = max(horizon, 1)
    return max(2 * h, h + MIN_VAL_WINDOWS - 1)


def holdout_sizes(seq_len: int, horizon: int, val_size: int | None, test_size: int) -> tuple[int, int]:
    """Validated (val_size, test_size) of the holdout scheme; null val_size = `default_val_size`."""
    val = default_val_size(horizon) if val_size is None else int(val_size)
    h = max(horizon, 1)
    if val < h:
        raise UserError(f"data.val_size={val} is below the horizon {h}: validation (early stopping, interval "
                        f"calibration) needs at least one window; set data.val_size >= {h}")
    if test_size < 0 or 0 < test_size < h:
        raise UserError(f"data.test_size={test_size} is neither 0 (no test) nor at least the horizon {h}; set "
                        f"data.test_size=0 or >= {h}")
    return val, int(test_size)


def holdout_borders(n_rows: int, seq_len: int, horizon: int, val_size: int | None = None,
                    test_size: int = 0) -> Borders:
    """The last `test_size` rows test, the `val_size` rows before them validate, all earlier rows train."""
    val, test = holdout_sizes(seq_len, horizon, val_size, test_size)
    n_train = n_rows - val - test
    if n_train < seq_len + horizon:
        raise UserError(f"{n_rows} rows are too few: seq_len={seq_len} + horizon={horizon} training rows plus "
                        f"val_size={val} and test_size={test} held-out rows need at least "
                        f"{seq_len + horizon + val + test}; add rows or lower task.seq_len / data.val_size")
    return Borders((0, n_train), (n_train - seq_len, n_train + val),
                   (n_rows - test - seq_len, n_rows) if test else None)


def all_borders(n_rows: int, seq_len: int, horizon: int) -> Borders:
    """Every row trains; nothing is held out (a refit after model selection)."""
    if n_rows < seq_len + horizon:
        raise UserError(f"{n_rows} rows are too few for one window of seq_len={seq_len} + horizon={horizon}; "
                        "add rows or lower task.seq_len / task.horizon")
    return Borders((0, n_rows), None, None)


def steps_per_hour(freq: str | None) -> int | None:
    """Rows per hour of a sub-hourly or hourly frequency (`h` -> 1, `15min` -> 4), else None."""
    if not freq:
        return None
    try:
        step = pd.Timedelta(to_offset(freq))
    except (ValueError, TypeError):  # calendar offsets (months, business days) have no fixed length
        return None
    hour = pd.Timedelta(hours=1)
    if step <= pd.Timedelta(0) or step > hour or hour % step != pd.Timedelta(0):
        return None
    return int(hour / step)


# The two ETT protocols: hourly files (ETTh*) and 15-minute files (ETTm*).
_ETT_SCHEMES = {"ett_hour": 1, "ett_minute": 4}


def ett_scheme(freq: str | None, name: str = "the file") -> str:
    """`ett_hour` or `ett_minute` for a file's frequency; other frequencies have no ETT borders."""
    per_hour = steps_per_hour(freq)
    for scheme, steps in _ETT_SCHEMES.items():
        if per_hour == steps:
            return scheme
    raise UserError(f"data.split=ett needs hourly or 15-minute rows, but {name} is at {freq or 'an unknown step'}; "
                    "use data.split=ratio")


def make_borders(scheme: str, n_rows: int, seq_len: int, horizon: int = 0, val_size: int | None = None,
                 test_size: int = 0, freq: str | None = None, name: str = "the file") -> Borders:
    """Borders by scheme name: `ett` (ETT borders at the file's frequency), `ett_hour`, `ett_minute`
    (15-min ETT), `ratio`, `holdout` or `all`; `horizon` (if known) lets the schemes say exactly how
    many rows a forecasting run needs.

    The split follows the data: an explicit `ett_hour`/`ett_minute` that contradicts the rows'
    frequency `freq` (when known) is an error, since its month borders would cut the wrong rows.
    """
    if scheme == "ett":
        scheme = ett_scheme(freq, name)
    if scheme in _ETT_SCHEMES:
        per_hour = steps_per_hour(freq)
        if freq is not None and per_hour != _ETT_SCHEMES[scheme]:
            fits = next((s for s, steps in _ETT_SCHEMES.items() if steps == per_hour), "ratio")
            raise UserError(f"data.split={scheme} assumes {'hourly' if scheme == 'ett_hour' else '15-minute'} rows, "
                            f"but {name} is at {freq}; use data.split={fits} (or data.split=ett, which follows "
                            "the file's frequency)")
        return ett_borders(n_rows, seq_len, _ETT_SCHEMES[scheme])
    if scheme == "ratio":
        return ratio_borders(n_rows, seq_len, horizon)
    if scheme == "holdout":
        return holdout_borders(n_rows, seq_len, horizon, val_size, test_size)
    if scheme == "all":
        return all_borders(n_rows, seq_len, horizon)
    raise UserError(f"unknown data.split={scheme!r}; use holdout, all, ratio, ett (ETT borders at the file's "
                    "frequency), ett_hour or ett_minute")


def scheme_for_file(name: str) -> str:
    """Default split scheme for a file name: ETT files use their fixed borders (at the file's own
    frequency), others 70/10/20."""
    return "ett" if name.lower().startswith("ett") else "ratio"


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
