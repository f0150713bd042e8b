"""Parse a CSV file into a numeric table with timestamps; validate it with one-line errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.errors import UserError

log = logging.getLogger(__name__)

DATE_NAMES = ("date", "datetime", "timestamp", "time", "ds", "period")


@dataclass
class Table:
    """A regular multivariate series: `values[t, c]` observed at `timestamps[t]`."""

    values: np.ndarray  # float32 [rows, channels]
    columns: list[str]
    timestamps: pd.DatetimeIndex | None
    date_col: str | None
    freq: str | None

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a CSV into a DataFrame with clear errors for missing, empty or non-CSV files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.path / data.root or --csv)")
    try:
        # utf-8-sig drops a BOM; pandas handles CRLF line endings itself.
        frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True)
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not a text CSV file ({err.reason}); give a comma-separated text file") from err
    except pd.errors.EmptyDataError as err:
        raise UserError(f"{path} is empty; give a CSV with a header row and data rows") from err
    except pd.errors.ParserError as err:
        first = str(err).splitlines()[0]
        raise UserError(f"{path} could not be parsed as CSV ({first}); give a comma-separated file") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise UserError(f"{path} has a header but no data rows; add at least seq_len + horizon rows")
    return frame


def _parse_dates(series: pd.Series) -> pd.DatetimeIndex | None:
    """Parse a column as timestamps, or None if it is not a date column."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return None
    try:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    except (ValueError, TypeError, OverflowError):
        return None
    if parsed.isna().mean() > 0.01:
        return None
    return pd.DatetimeIndex(parsed)


def detect_date_column(frame: pd.DataFrame, date_col: str | None) -> tuple[str, pd.DatetimeIndex]:
    """Find the timestamp column: the named one, else the first unique date-like column."""
    if date_col is not None:
        if date_col not in frame.columns:
            raise UserError(f"date column {date_col!r} not in the CSV (columns: {list(frame.columns)}); "
                            "fix data.date_col")
        parsed = _parse_dates(frame[date_col])
        if parsed is None:
            raise UserError(f"column {date_col!r} has unparseable timestamps; use ISO dates like 2020-01-31 12:00")
        return date_col, parsed
    named = [c for c in frame.columns if c.lower() in DATE_NAMES]
    others = [c for c in frame.columns if c not in named]
    fallback = None
    for col in named + others:
        parsed = _parse_dates(frame[col])
        if parsed is None:
            continue
        if parsed.is_unique:
            return col, parsed
        fallback = fallback or (col, parsed)
    if fallback is not None:
        return fallback  # validated (and rejected as duplicated) by the caller
    raise UserError("no date column found; name one with data.date_col (or --date-col), e.g. a column 'date'")


def validate_timestamps(stamps: pd.DatetimeIndex, col: str) -> None:
    """Reject unparseable, duplicated or non-monotonic timestamps."""
    if stamps.hasnans:
        bad = int(np.flatnonzero(stamps.isna())[0])
        raise UserError(f"unparseable timestamp in column {col!r} at data row {bad + 1}; fix or drop that row")
    if not stamps.is_unique:
        dup = stamps[stamps.duplicated()][0]
        raise UserError(f"duplicated timestamp {dup} in column {col!r}; keep one row per time step")
    if not stamps.is_monotonic_increasing:
        raise UserError(f"timestamps in column {col!r} are not in increasing order; sort the file by {col!r}")


def infer_frequency(stamps: pd.DatetimeIndex) -> str | None:
    """The pandas frequency of a regular index, or None if it is irregular."""
    if len(stamps) < 3:
        return None
    freq = pd.infer_freq(stamps)
    if freq is not None:
        return freq
    # A calendar-aware alias can fail on a few gaps; a constant step still defines the grid.
    steps = np.diff(stamps.asi8)
    if np.all(steps == steps[0]):
        return pd.tseries.frequencies.to_offset(pd.Timedelta(int(steps[0]), unit="ns")).freqstr
    return None


def numeric_columns(frame: pd.DataFrame, exclude: set[str], wanted: list[str] | None) -> list[str]:
    """Columns usable as channels; announce the ones that are dropped."""
    if wanted:
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise UserError(f"columns {missing} not in the CSV (columns: {list(frame.columns)}); fix data.columns")
        return list(wanted)
    keep, dropped = [], []
    for col in frame.columns:
        if col in exclude:
            continue
        series = frame[col]
        if pd.api.types.is_bool_dtype(series):
            dropped.append(f"{col} (boolean)")
        elif pd.api.types.is_numeric_dtype(series):
            keep.append(col)
        else:
            coerced = pd.to_numeric(series, errors="coerce")
            if coerced.notna().mean() >= 0.99:
                keep.append(col)
            else:
                dropped.append(f"{col} (non-numeric)")
    if dropped:
        log.warning("ignoring columns %s; list them in data.columns to use them", ", ".join(dropped))
    return keep


def to_float_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Columns as float64 [rows, channels]; booleans become 0/1, other text becomes NaN."""
    parts = []
    for col in columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        parts.append(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64))
    return np.stack(parts, axis=1) if parts else np.empty((len(frame), 0))


def fill_missing(values: np.ndarray, columns: list[str], max_gap: int) -> np.ndarray:
    """Linearly interpolate runs of at most `max_gap` missing values; longer runs are an error.

    inf counts as missing. Leading/trailing runs are filled from the nearest value.
    """
    values = np.where(np.isfinite(values), values, np.nan)
    if not np.isnan(values).any():
        return values
    frame = pd.DataFrame(values, columns=columns)
    for col in columns:
        missing = frame[col].isna().to_numpy()
        if not missing.any():
            continue
        if missing.all():
            raise UserError(f"column {col!r} has no finite values; drop it or fix the file")
        run = _longest_run(missing)
        if run > max_gap:
            start = int(np.flatnonzero(missing)[0])
            raise UserError(f"column {col!r} has {run} consecutive missing/inf values (first at data row "
                            f"{start + 1}); at most data.max_missing_gap={max_gap} are interpolated")
        frame[col] = frame[col].interpolate(method="linear", limit_direction="both")
    return frame.to_numpy(dtype=np.float64)


def _longest_run(mask: np.ndarray) -> int:
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max()) if len(edges) else 0


def read_table(
    path: str | Path,
    date_col: str | None = None,
    columns: list[str] | None = None,
    freq: str | None = None,
    max_missing_gap: int = 3,
) -> Table:
    """Read a CSV with a date column into a validated `Table`."""
    frame = read_frame(path)
    col, stamps = detect_date_column(frame, date_col)
    validate_timestamps(stamps, col)
    channels = numeric_columns(frame, exclude={col}, wanted=columns)
    if not channels:
        raise UserError(f"{path} has no numeric columns besides {col!r}; add value columns")
    values = fill_missing(to_float_matrix(frame, channels), channels, max_missing_gap)
    return Table(
        values=values.astype(np.float32),
        columns=channels,
        timestamps=stamps,
        date_col=col,
        freq=freq or infer_frequency(stamps),
    )
