"""Time-feature marks: what a network may read about each step's timestamp besides its values.

Two encodings, as Time-Series-Library's `--embed` option (a network embeds them, models.encoder):

- `timeF`: calendar positions scaled to [-0.5, 0.5], the set chosen by the sampling frequency
  (hourly data: hour of day, day of week, day of month, day of year; 15-minute data adds minute of
  hour first; daily drops the hour; weekly keeps day of month and ISO week; monthly and quarterly
  keep the month; yearly has none). Each is `position / (count - 1) - 0.5` with positions from 0.
- `fixed`: calendar fields as integers (month, day of month, weekday, hour, and for data sampled
  more often than hourly the quarter-hour), each embedded by a fixed sinusoidal table.

`none` means no marks. Marks depend on timestamps only, never on values, so they are the same for
every channel and are computed for future dates as easily as for past ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries import offsets
from pandas.tseries.frequencies import to_offset

from one4all.errors import UserError

TIME_FEATURES = ("none", "timeF", "fixed")

# timeF features by the granularity of the sampling step, in Time-Series-Library's order (a trained
# mark embedding's columns follow it). Month and quarter offsets of either anchor (start or end)
# count as monthly; TSLib knows only the end-anchored ones.
_TIMEF_BY_STEP = (
    ((offsets.YearEnd, offsets.YearBegin), ()),
    ((offsets.QuarterEnd, offsets.QuarterBegin, offsets.MonthEnd, offsets.MonthBegin, offsets.BusinessMonthEnd,
      offsets.BusinessMonthBegin), ("month_of_year",)),
    ((offsets.Week,), ("day_of_month", "week_of_year")),
    ((offsets.Day, offsets.BusinessDay), ("day_of_week", "day_of_month", "day_of_year")),
    ((offsets.Hour,), ("hour_of_day", "day_of_week", "day_of_month", "day_of_year")),
    ((offsets.Minute,), ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year")),
    ((offsets.Second,), ("second_of_minute", "minute_of_hour", "hour_of_day", "day_of_week", "day_of_month",
                         "day_of_year")),
)

# fixed: calendar fields and the size of each one's embedding table (TSLib's TemporalEmbedding).
FIXED_FIELDS = {"month": 13, "day": 32, "weekday": 7, "hour": 24, "quarter_hour": 4}


def _offset(freq: str) -> offsets.BaseOffset:
    try:
        return to_offset(freq)
    except ValueError as err:
        raise UserError(f"unknown frequency {freq!r} for time features; use a pandas alias like h, 15min, D") from err


def timef_names(freq: str) -> tuple[str, ...]:
    """The timeF features of data sampled at `freq`, in order."""
    step = _offset(freq)
    for kinds, names in _TIMEF_BY_STEP:
        if isinstance(step, kinds):
            return names
    raise UserError(f"no time features are defined for frequency {freq!r}; use model.time_features=none")


def fixed_names(freq: str) -> tuple[str, ...]:
    """The calendar fields of the `fixed` encoding: the quarter-hour only for data finer than hourly."""
    sub_hourly = isinstance(_offset(freq), (offsets.Minute, offsets.Second))
    return ("month", "day", "weekday", "hour", *(("quarter_hour",) if sub_hourly else ()))


def mark_names(kind: str, freq: str | None) -> tuple[str, ...]:
    """The marks a network of `time_features=kind` reads for data sampled at `freq` (() for none)."""
    check_kind(kind)
    if kind == "none":
        return ()
    if freq is None:
        raise UserError(f"model.time_features={kind} needs timestamps, and this data has none (no date column, "
                        "or a task without dates); use model.time_features=none")
    names = timef_names(freq) if kind == "timeF" else fixed_names(freq)
    if not names:
        raise UserError(f"frequency {freq!r} has no {kind} time features; use model.time_features=none")
    return names


def check_kind(kind: str) -> None:
    """Refuse an unknown `model.time_features` value."""
    if kind not in TIME_FEATURES:
        raise UserError(f"model.time_features={kind!r}; use one of {', '.join(TIME_FEATURES)}")


def _scaled(position: np.ndarray, count: int) -> np.ndarray:
    return position / (count - 1) - 0.5


def _timef(stamps: pd.DatetimeIndex, name: str) -> np.ndarray:
    if name == "second_of_minute":
        return _scaled(stamps.second, 60)
    if name == "minute_of_hour":
        return _scaled(stamps.minute, 60)
    if name == "hour_of_day":
        return _scaled(stamps.hour, 24)
    if name == "day_of_week":
        return _scaled(stamps.day_of_week, 7)
    if name == "day_of_month":
        return _scaled(stamps.day - 1, 31)
    if name == "day_of_year":
        return _scaled(stamps.day_of_year - 1, 366)
    if name == "month_of_year":
        return _scaled(stamps.month - 1, 12)
    return _scaled(stamps.isocalendar().week.to_numpy() - 1, 53)  # week_of_year


def _fixed(stamps: pd.DatetimeIndex, name: str) -> np.ndarray:
    if name == "quarter_hour":
        return stamps.minute // 15
    field = {"month": stamps.month, "day": stamps.day, "weekday": stamps.day_of_week, "hour": stamps.hour}
    return field[name]


def compute_marks(stamps: pd.DatetimeIndex, kind: str, freq: str | None) -> np.ndarray:
    """Marks `[len(stamps), n]` (float32) for the timestamps, `n = len(mark_names(kind, freq))`."""
    names = mark_names(kind, freq)
    encode = _timef if kind == "timeF" else _fixed
    columns = [np.asarray(encode(stamps, name), dtype=np.float64) for name in names]
    return np.stack(columns, axis=1).astype(np.float32)
