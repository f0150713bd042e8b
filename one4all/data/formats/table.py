"""Parse a CSV (or a DataFrame) into a numeric table with timestamps; validate it with one-line errors.

Timestamps are handled in `one4all.data.formats.timestamps`: strictly for a user's own series (the
future's dates depend on them), by position for benchmark files (`positional=True`). Channels:
numeric columns (or `data.columns`); boolean and text columns are ignored with a notice. Missing
values (empty cells, NaN, inf) are interpolated linearly in runs of at most `data.max_missing_gap`
steps; a longer run is an error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.data.formats.timestamps import (
    detect_date_column,
    positional_frequency,
    positional_notes,
    resolve_frequency,
    validate_timestamps,
)
from one4all.errors import UserError

log = logging.getLogger(__name__)

_SEPARATORS = (",", ";", "\t")


@dataclass
class Table:
    """A regular multivariate series: `values[t, c]` observed at `timestamps[t]`."""

    values: np.ndarray  # float32 [rows, channels]
    columns: list[str]
    timestamps: pd.DatetimeIndex | None
    date_col: str | None
    freq: str | None
    # Columns left out as channels, with why ("boolean", "non-numeric"), to explain a missing target.
    dropped: dict[str, str] = field(default_factory=dict)
    # What reading changed or tolerated (interpolated cells, kept irregular timestamps): metrics.json.
    repairs: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])


def _separator(head: bytes) -> str:
    """Comma, unless the header line has none and holds semicolons or tabs (spreadsheet exports)."""
    header = head.splitlines()[0] if head else b""
    counts = {sep: header.count(sep.encode()) for sep in _SEPARATORS}
    if counts[","] or not any(counts.values()):
        return ","
    return max(counts, key=counts.get)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a CSV into a DataFrame with clear errors for missing, empty, binary or malformed files."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a CSV file; give the path of the .csv file inside it")
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.path / data.root or --csv)")
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head:
        raise UserError(f"{path} is a binary file, not a CSV; export it as a comma-separated UTF-8 text file")
    try:
        # utf-8-sig drops a BOM; pandas handles CRLF line endings itself.
        frame = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True, sep=_separator(head))
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not a UTF-8 text CSV ({err.reason} at byte {err.start}); "
                        "export it as a comma-separated UTF-8 text file") from err
    except pd.errors.EmptyDataError as err:
        raise UserError(f"{path} is empty; give a CSV with a header row and data rows") from err
    except pd.errors.ParserError as err:
        first = str(err).splitlines()[0]
        raise UserError(f"{path} could not be parsed as CSV ({first}); give a comma-separated file with the "
                        "same number of fields on every line") from err
    if frame.empty:
        raise UserError(f"{path} has a header but no data rows; add the series' rows below the header")
    return frame


# Numbers as spreadsheets format them: 1,234.5 / 1.234,5 / 1 234,5 / 1'234.5 (thousands) or 0,5 (decimal comma).
_FORMATTED_NUMBER = re.compile(r"[+-]?(\d{1,3}([,.' \u00a0]\d{3})+([.,]\d+)?|\d+,\d+)")


def _formatted_numbers(col: str, series: pd.Series) -> None:
    """Refuse a column of numbers written with thousands separators or decimal commas: dropping it
    as text would lose a channel (or the target) the user meant."""
    text = series.dropna().astype(str).str.strip()
    matches = text.str.fullmatch(_FORMATTED_NUMBER)
    if len(text) and matches.mean() >= 0.9:
        row = int(np.flatnonzero(matches.to_numpy())[0])
        raise UserError(f"column {col!r} holds numbers written with thousands separators or a decimal comma "
                        f"({text.iloc[row]!r} at data row {series.index.get_loc(text.index[row]) + 1}); export "
                        "plain numbers such as 1234.5, or leave the column out with data.columns")


def numeric_columns(frame: pd.DataFrame, exclude: set[str], wanted: list[str] | None,
                    dropped: dict[str, str] | None = None) -> list[str]:
    """Columns usable as channels; announce the ones that are dropped (and record why in `dropped`)."""
    dropped = {} if dropped is None else dropped
    if wanted:
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise UserError(f"columns {missing} not in the CSV (columns: {list(frame.columns)}); fix data.columns")
        return list(wanted)
    keep = []
    for col in frame.columns:
        if col in exclude:
            continue
        series = frame[col]
        if pd.api.types.is_bool_dtype(series):
            dropped[col] = "boolean"
        elif pd.api.types.is_numeric_dtype(series):
            keep.append(col)
        elif pd.to_numeric(series, errors="coerce").notna().sum() >= 0.9 * series.notna().sum():
            keep.append(col)  # a numeric column with a few bad cells: to_float_matrix names them
        else:
            _formatted_numbers(col, series)
            dropped[col] = "non-numeric"
    if dropped:
        log.warning("ignoring columns %s; list them in data.columns to use them",
                    ", ".join(f"{col} ({why})" for col, why in dropped.items()))
    return keep


def to_float_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Columns as float64 [rows, channels]; booleans become 0/1; empty cells NaN; other text is an error."""
    parts = []
    for col in columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        numbers = pd.to_numeric(series, errors="coerce")
        bad = numbers.isna() & series.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"column {col!r} has a non-numeric value {series.iloc[row]!r} at data row {row + 1}; "
                            "fix it or leave the cell empty (interpolated)")
        parts.append(numbers.to_numpy(dtype=np.float64))
    return np.stack(parts, axis=1) if parts else np.empty((len(frame), 0))


def fill_missing(values: np.ndarray, columns: list[str], max_gap: int) -> tuple[np.ndarray, list[str]]:
    """Linearly interpolate runs of at most `max_gap` missing values; longer runs are an error.

    inf counts as missing. Leading/trailing runs are filled from the nearest value. Returns the
    values and one note per column that was filled.
    """
    values = np.where(np.isfinite(values), values, np.nan)
    if not np.isnan(values).any():
        return values, []
    notes = []
    frame = pd.DataFrame(values, columns=columns)
    for col in columns:
        missing = frame[col].isna().to_numpy()
        if not missing.any():
            continue
        if missing.all():
            raise UserError(f"column {col!r} has no finite values; drop it or fix the file")
        run, start = longest_run(missing)
        if run > max_gap:
            raise UserError(f"column {col!r} has {run} consecutive missing/inf values (from data row {start + 1}); "
                            f"at most data.max_missing_gap={max_gap} are interpolated: fill the gap or raise the limit")
        frame[col] = frame[col].interpolate(method="linear", limit_direction="both")
        notes.append(f"interpolated {int(missing.sum())} missing/inf value(s) in column {col!r} "
                     f"(first at data row {int(np.flatnonzero(missing)[0]) + 1})")
    return frame.to_numpy(dtype=np.float64), notes


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """Length and start of the longest run of True."""
    padded = np.concatenate([[0], mask.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    lengths = edges[1::2] - edges[0::2]
    best = int(np.argmax(lengths))
    return int(lengths[best]), int(edges[0::2][best])


def frame_to_table(
    frame: pd.DataFrame,
    date_col: str | None = None,
    columns: list[str] | None = None,
    freq: str | None = None,
    max_missing_gap: int = 3,
    source: str = "the data",
    positional: bool = False,
) -> Table:
    """Validate a DataFrame (date column or DatetimeIndex, value columns) into a `Table`.

    `positional`: a benchmark file read by position; bad timestamps are warnings (`Table.repairs`).
    """
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    if isinstance(frame.index, pd.DatetimeIndex) and (date_col or "date") not in frame.columns:
        frame = frame.rename_axis(date_col or frame.index.name or "date").reset_index()
    if frame.empty:
        raise UserError(f"{source} has no rows; give the series' rows")
    col, stamps = detect_date_column(frame, date_col)
    if positional:
        repairs, freq = positional_notes(stamps, col), positional_frequency(stamps, freq)
    else:
        validate_timestamps(stamps, col, frame[col])
        repairs, freq = [], resolve_frequency(stamps, col, freq)
    dropped: dict[str, str] = {}
    channels = numeric_columns(frame, exclude={col}, wanted=columns, dropped=dropped)
    if not channels:
        raise UserError(f"{source} has no numeric columns besides {col!r}; add value columns")
    values, filled = fill_missing(to_float_matrix(frame, channels), channels, max_missing_gap)
    _check_float32_range(values, channels)
    return Table(values=values.astype(np.float32), columns=channels, timestamps=stamps, date_col=col, freq=freq,
                 dropped=dropped, repairs=repairs + filled)


def _check_float32_range(values: np.ndarray, columns: list[str]) -> None:
    """Training runs in float32: a larger value would become inf and every metric NaN."""
    beyond = np.abs(values) > np.finfo(np.float32).max
    if beyond.any():
        row, channel = (int(i[0]) for i in np.nonzero(beyond))
        raise UserError(f"column {columns[channel]!r} has the value {values[row, channel]:.3g} at data row {row + 1}, "
                        "beyond float32's range (3.4e38); rescale the column, e.g. to thousands or millions")


def read_table(
    path: str | Path,
    date_col: str | None = None,
    columns: list[str] | None = None,
    freq: str | None = None,
    max_missing_gap: int = 3,
    positional: bool = False,
) -> Table:
    """Read a CSV with a date column into a validated `Table` (`positional`: see `frame_to_table`)."""
    return frame_to_table(read_frame(path), date_col, columns, freq, max_missing_gap, source=str(path),
                          positional=positional)
