"""Timestamps of a table: find the date column, parse it, validate it, and settle its frequency.

Policy (docs/guides/own-csv.md):
- the date column is the one named (`data.date_col`), else the first column named like a date
  (date, datetime, timestamp, time, ds, period) that parses, else the first column that parses;
- numeric dates (01/02/2024) are read month first as pandas does, unless a day above 12 shows
  the column is DD/MM/YYYY (then day first, with a notice);
- a zone is kept as given (`...Z` stays UTC); offsets that change within the column (daylight
  saving) are converted to UTC with a notice; a column mixing zoned and zone-less values is an error;
- the frequency is `data.freq` if given (the timestamps must lie on its grid), else inferred; a
  series whose frequency cannot be inferred (missing time steps, irregular sampling) is an error.

Benchmark files (`timestamps: positional` in their data config) are read by position instead, as
the papers do: what is wrong with their timestamps is a warning naming the rows, never a refusal.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from one4all.errors import UserError

log = logging.getLogger(__name__)

DATE_NAMES = ("date", "datetime", "timestamp", "time", "ds", "period")
_ZONE_SUFFIX = r"(?:Z|[+-]\d\d:?\d\d)$"


def _mixed_zones(series: pd.Series, col: str) -> pd.Series:
    """Parse a column whose values carry different UTC offsets: all zoned -> UTC, else an error."""
    text = series.astype(str).str.strip()
    zoned = text.str.contains(_ZONE_SUFFIX, regex=True)
    if not zoned.all():
        row = int(np.flatnonzero(~zoned.to_numpy())[0])
        raise UserError(f"column {col!r} mixes timestamps with and without a time zone (data row {row + 1}: "
                        f"{text.iloc[row]!r}); give every timestamp the same zone")
    log.warning("column %r has changing UTC offsets (daylight saving?); timestamps are converted to UTC", col)
    return pd.to_datetime(series, errors="coerce", format="mixed", utc=True)


def _day_first(series: pd.Series) -> bool:
    """Whether a column of numeric dates (12/01/2024, 13.01.2024) puts the day first.

    pandas reads each value month first when it can and day first when it must, so a sorted
    DD/MM/YYYY column would come out shuffled: day first when some first field exceeds 12 and no
    second field does. ISO dates never match, and a column where neither field exceeds 12 stays
    month first (pandas' default).
    """
    text = series.dropna().astype(str)
    parts = text.str.extract(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?!\d)")
    if text.empty or parts.isna().any(axis=None):
        return False
    first, second = parts[0].astype(int), parts[1].astype(int)
    return bool((first > 12).any() and (second <= 12).all())


def parse_dates(series: pd.Series, col: str) -> pd.Series | None:
    """Timestamps of a column (NaT where a value does not parse), or None if it holds no dates at all."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return None
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        return series
    day_first = _day_first(series)
    if day_first:
        log.warning("column %r holds DD/MM/YYYY dates (a day above 12 comes first); read them day first", col)
    try:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed", dayfirst=day_first)
    except ValueError as err:
        if "Mixed timezones" not in str(err):
            return None
        parsed = _mixed_zones(series, col)
    except (TypeError, OverflowError):
        return None
    if parsed.isna().all():
        return None
    return parsed


def detect_date_column(frame: pd.DataFrame, date_col: str | None) -> tuple[str, pd.DatetimeIndex]:
    """The timestamp column: the named one, else the first date-named column that parses, else the
    first other column whose values all parse and are unique."""
    if date_col is not None:
        if date_col not in frame.columns:
            raise UserError(f"date column {date_col!r} not in the CSV (columns: {list(frame.columns)}); "
                            "fix data.date_col")
        parsed = parse_dates(frame[date_col], date_col)
        if parsed is None:
            raise UserError(f"column {date_col!r} has no parseable timestamps; use ISO dates like 2020-01-31 12:00")
        return date_col, pd.DatetimeIndex(parsed)
    named = [c for c in frame.columns if c.lower() in DATE_NAMES]
    others = [c for c in frame.columns if c not in named]
    fallback = None
    for col in named + others:
        parsed = parse_dates(frame[col], col)
        # A date-named column is the date column even with a few bad values (reported by row);
        # any other column must parse completely, or text columns would be mistaken for dates.
        if parsed is None or (col not in named and parsed.isna().any()):
            continue
        stamps = pd.DatetimeIndex(parsed)
        if stamps.is_unique:
            return col, stamps
        fallback = fallback or (col, stamps)
    if fallback is not None:
        return fallback  # validated (and rejected as duplicated) by the caller
    if named:
        raise UserError(f"no date column found: {named} hold no parseable timestamps; use ISO dates like "
                        "2020-01-31 12:00, or name the date column with data.date_col")
    raise UserError("no date column found; add one (e.g. 'date' with ISO dates like 2020-01-31) or name it "
                    "with data.date_col")


def validate_timestamps(stamps: pd.DatetimeIndex, col: str, raw: pd.Series | None = None) -> None:
    """Reject unparseable, duplicated or non-monotonic timestamps, naming the first offending row."""
    if stamps.hasnans:
        bad = int(np.flatnonzero(stamps.isna())[0])
        value = f" {raw.iloc[bad]!r}" if raw is not None else ""
        raise UserError(f"unparseable timestamp{value} in column {col!r} at data row {bad + 1}; "
                        "fix or drop that row (ISO dates like 2020-01-31 12:00 always parse)")
    if not stamps.is_unique:
        row = int(np.flatnonzero(stamps.duplicated())[0])
        raise UserError(f"duplicated timestamp {stamps[row]} in column {col!r} (data row {row + 1}); "
                        "keep one row per time step")
    if not stamps.is_monotonic_increasing:
        row = int(np.flatnonzero(np.diff(stamps.asi8) < 0)[0]) + 1
        raise UserError(f"timestamps in column {col!r} are not in increasing order ({stamps[row]} at data row "
                        f"{row + 1} comes after {stamps[row - 1]}); sort the file by {col!r}")


# How many rows of each kind a positional read names in its warnings (the count covers the rest).
_SHOWN = 3


def _rows(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)]


def positional_notes(stamps: pd.DatetimeIndex, col: str) -> list[str]:
    """What a benchmark file's timestamps get wrong, one note per kind, each naming its first rows.

    Benchmark rows are read by position, as the papers' loaders do (TSLib `Dataset_Custom`), so
    unparseable, duplicated, out-of-order or irregularly spaced timestamps are kept and reported
    instead of refused. Row numbers count data rows from 1 (the header is not a row).
    """
    notes = []
    kinds = [("unparseable timestamp", _rows(stamps.isna()))]
    valid = stamps[~stamps.isna()]
    if len(valid) == len(stamps):
        kinds.append(("duplicated timestamp", _rows(stamps.duplicated())))
        steps = np.diff(stamps.values)  # timedelta64 in the index's own unit
        zero = np.timedelta64(0, "ns")
        kinds.append(("timestamp earlier than the previous row", [r + 1 for r in _rows(steps < zero)]))
        positive = steps[steps > zero]
        if len(positive):
            values, counts = np.unique(positive, return_counts=True)
            usual = values[counts.argmax()]
            kinds.append((f"irregular step (usual step {to_offset(pd.Timedelta(usual)).freqstr})",
                          [r + 1 for r in _rows((steps > zero) & (steps != usual))]))
    for kind, rows in kinds:
        if not rows:
            continue
        shown = ", ".join(f"data row {r + 1} ({'NaT' if pd.isna(stamps[r]) else stamps[r]})" for r in rows[:_SHOWN])
        more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
        notes.append(f"{len(rows)} x {kind} in column {col!r}: {shown}{more}; kept, rows are read by position")
    for note in notes:
        log.warning(note)
    return notes


def positional_frequency(stamps: pd.DatetimeIndex, freq: str | None = None) -> str | None:
    """The frequency of a positionally read column: `freq` if given, else the inferred one, else the
    most common positive step (what the rows mostly are); None when nothing can be said."""
    if freq:
        try:
            return to_offset(freq).freqstr
        except ValueError as err:
            raise UserError(f"unknown frequency {freq!r}; use a pandas alias like D, h, 30min, W, MS") from err
    valid = stamps[~stamps.isna()]
    if len(valid) < 3:
        return None
    if valid.is_unique and valid.is_monotonic_increasing:
        inferred = infer_frequency(valid)
        if inferred is not None:
            return inferred
    steps = pd.Series(np.diff(valid.values))
    steps = steps[steps > pd.Timedelta(0)]
    return to_offset(pd.Timedelta(steps.mode().iloc[0])).freqstr if len(steps) else None


def infer_frequency(stamps: pd.DatetimeIndex) -> str | None:
    """The pandas frequency of a regular index, or None if it is irregular."""
    if len(stamps) < 3:
        return None
    freq = pd.infer_freq(stamps)
    if freq is not None:
        return freq
    # A calendar-aware alias can fail where a constant step still defines the grid.
    steps = stamps[1:] - stamps[:-1]
    if (steps == steps[0]).all():
        return to_offset(steps[0]).freqstr
    return None


def _first_irregular_step(stamps: pd.DatetimeIndex) -> str:
    steps = pd.Series(stamps[1:] - stamps[:-1])
    usual = steps.mode().iloc[0]
    row = int(np.flatnonzero((steps != usual).to_numpy())[0]) + 1
    return (f"the usual step is {usual} but data row {row + 1} ({stamps[row]}) comes {steps.iloc[row - 1]} "
            "after the previous one")


def resolve_frequency(stamps: pd.DatetimeIndex, col: str, freq: str | None = None) -> str:
    """The series' frequency: `freq` (checked against the timestamps) or the inferred one."""
    if freq:
        try:
            offset = to_offset(freq)
        except ValueError as err:
            raise UserError(f"unknown frequency {freq!r}; use a pandas alias like D, h, 30min, W, MS") from err
        grid = pd.date_range(stamps[0], periods=len(stamps), freq=offset)
        if not grid.equals(stamps):
            row = int(np.flatnonzero(grid != stamps)[0])
            raise UserError(f"timestamps in column {col!r} are not on a regular {offset.freqstr} grid (data row "
                            f"{row + 1} is {stamps[row]}, expected {grid[row]}); add the missing time steps "
                            "(empty values are interpolated) or fix the frequency")
        return offset.freqstr
    if len(stamps) < 3:
        raise UserError(f"{len(stamps)} timestamps are too few to infer a frequency; add rows or set data.freq")
    inferred = infer_frequency(stamps)
    if inferred is None:
        raise UserError(f"cannot infer a regular frequency from column {col!r}: {_first_irregular_step(stamps)}; "
                        "add the missing time steps (empty values are interpolated) or resample the series")
    return inferred


def same_frequency(a: str, b: str) -> bool:
    """Whether two pandas frequency strings name the same offset ('30min' == '30T')."""
    return to_offset(a) == to_offset(b)


def future_dates(last: pd.Timestamp, freq: str, steps: int) -> pd.DatetimeIndex:
    """The `steps` timestamps after `last` at `freq`, in `last`'s zone."""
    return pd.date_range(start=last, periods=steps + 1, freq=to_offset(freq))[1:]
