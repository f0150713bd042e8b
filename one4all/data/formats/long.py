"""Long-format series (`unique_id, ds, y` + optional exogenous columns) from CSV, Parquet or a DataFrame.

Policies (docs/guides/forecasting.md):
- the id, time and target columns are named by `id_col`, `time_col`, `target_col`; exogenous
  columns are used only when listed (`exog`), other columns are ignored with a notice;
- rows may come in any order; a repeated (id, timestamp) pair, an unparseable timestamp, a
  non-numeric target and a missing id are errors naming the row;
- all series share one frequency (`freq`, else inferred from the data); timestamps off that grid
  are an error; absent time steps inside a series become missing values, and missing values are
  interpolated within a series in runs of at most `max_missing_gap` (longer runs are an error
  naming the series);
- series keep their own start and end: lengths differ freely (too-short series are the data
  spec's business, since what is too short depends on the window).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from one4all.data.formats.table import fill_missing, longest_run, read_frame
from one4all.data.formats.timestamps import infer_frequency, parse_dates
from one4all.errors import UserError

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")


class FrequencyError(UserError):
    """No series shows the frequency (each has fewer than 3 regular rows) and none was given."""


@dataclass
class Panel:
    """Many regular series on one frequency, stored flat: series `i` is `values[indptr[i]:indptr[i+1]]`,
    observed at `starts[i] + k * freq`. `columns` are the channels: exogenous first, the target last."""

    ids: list  # the id values as given (int, str, ...)
    starts: list[pd.Timestamp]
    indptr: np.ndarray  # int64 [n_series + 1]
    values: np.ndarray  # float64 [total rows, channels], the given values (backtests report them exactly)
    columns: list[str]
    freq: str
    observed: np.ndarray | None = None  # bool [total rows]: the target was given (not filled in)

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def series(self, i: int) -> np.ndarray:
        return self.values[self.indptr[i]:self.indptr[i + 1]]

    def timestamps(self, i: int) -> pd.DatetimeIndex:
        return pd.date_range(self.starts[i], periods=int(self.lengths[i]), freq=to_offset(self.freq))

    def ends(self) -> pd.DatetimeIndex:
        """The last timestamp of every series."""
        return shift_stamps(pd.DatetimeIndex(self.starts), self.lengths - 1, self.freq)

    def truncate(self, cutoff: pd.Timestamp) -> Panel:
        """Every series' rows up to and including `cutoff` (series starting after it keep no rows)."""
        keep = np.minimum(self.lengths, [grid_steps(start, cutoff, self.freq) for start in self.starts])
        parts = [self.values[self.indptr[i]:self.indptr[i] + keep[i]] for i in range(self.n_series)]
        indptr = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        values = np.concatenate(parts) if parts else self.values[:0]
        observed = None if self.observed is None else np.concatenate(
            [self.observed[self.indptr[i]:self.indptr[i] + keep[i]] for i in range(self.n_series)])
        return Panel(list(self.ids), list(self.starts), indptr, values, list(self.columns), self.freq, observed)

    def select(self, keep: np.ndarray) -> Panel:
        """The series at indices `keep`, in that order."""
        rows = np.concatenate([np.arange(self.indptr[i], self.indptr[i + 1]) for i in keep]) if len(keep) else \
            np.zeros(0, dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(self.lengths[keep])]).astype(np.int64)
        return Panel([self.ids[i] for i in keep], [self.starts[i] for i in keep], indptr, self.values[rows],
                     list(self.columns), self.freq, None if self.observed is None else self.observed[rows])

    def to_frame(self, id_col: str, time_col: str, observed_only: bool = True) -> pd.DataFrame:
        """Long format again: id, time and one column per channel (rows filled in dropped by default)."""
        frame = pd.DataFrame({id_col: np.repeat(np.asarray(self.ids, dtype=object), self.lengths),
                              time_col: shift_stamps(pd.DatetimeIndex(self.starts).repeat(self.lengths),
                                                     np.arange(len(self.values)) - np.repeat(self.indptr[:-1],
                                                                                              self.lengths),
                                                     self.freq),
                              **{c: self.values[:, j] for j, c in enumerate(self.columns)}})
        frame[id_col] = frame[id_col].infer_objects()
        if observed_only and self.observed is not None:
            frame = frame[self.observed].reset_index(drop=True)
        return frame


def _fixed_step(freq: str) -> pd.Timedelta | None:
    """The length of one step of `freq`, or None for calendar offsets (months, quarters, ...)."""
    try:
        return pd.Timedelta(to_offset(freq))
    except ValueError:
        return None


def shift_stamps(stamps: pd.DatetimeIndex, steps: np.ndarray, freq: str) -> pd.DatetimeIndex:
    """`stamps[i] + steps[i] * freq` for every i (vectorised for fixed-length frequencies)."""
    step = _fixed_step(freq)
    steps = np.asarray(steps, dtype=np.int64)
    if step is not None:
        return stamps + pd.to_timedelta(steps * step.value, unit="ns")
    offset = to_offset(freq)
    return pd.DatetimeIndex([t + int(k) * offset for t, k in zip(stamps, steps)])


def future_stamps(ends: pd.DatetimeIndex, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The `horizon` timestamps after each of `ends`, series by series (length len(ends) * horizon)."""
    return shift_stamps(ends.repeat(horizon), np.tile(np.arange(1, horizon + 1), len(ends)), freq)


def grid_steps(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> int:
    """How many points of the `freq` grid starting at `start` lie at or before `end` (0 if end < start)."""
    if end < start:
        return 0
    step = _fixed_step(freq)
    if step is None:
        return len(pd.date_range(start, end, freq=to_offset(freq)))
    return int((end - start) // step) + 1


def read_long_frame(path: str | Path) -> pd.DataFrame:
    """A long-format file as a DataFrame: Parquet by suffix (needs pyarrow), else CSV."""
    path = Path(path)
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        return read_frame(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.path / data.root)")
    try:
        import pyarrow  # noqa: F401  (pandas' Parquet engine; optional dependency)
    except ImportError as err:
        raise UserError(f"reading {path} needs pyarrow: pip install 'one4all[parquet]' (or pyarrow), or give "
                        "a CSV") from err
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except Exception as err:  # pyarrow raises its own error types for corrupt or foreign files
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path} could not be read as Parquet ({first}); give a Parquet or CSV file") from err
    if frame.empty:
        raise UserError(f"{path} has no rows; give the series' rows")
    return frame


def _row(position: int) -> str:
    return f"data row {position + 1}"


def _id(value: object) -> str:
    """An id as the user wrote it: 10 for an integer id, 'H1' (quoted) for a text id."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_columns(frame: pd.DataFrame, id_col: str, time_col: str, target_col: str,
                   exog: list[str]) -> None:
    for role, col in (("id", id_col), ("time", time_col), ("target", target_col)):
        if col not in frame.columns:
            raise UserError(f"long-format data lacks the {role} column {col!r} (columns: {list(frame.columns)}); "
                            f"name it with data.{role}_col (Python: {role}_col=...)")
    missing = [c for c in exog if c not in frame.columns]
    if missing:
        raise UserError(f"exogenous column(s) {missing} not in the data (columns: {list(frame.columns)}); "
                        "fix data.exog")
    ignored = [c for c in frame.columns if c not in (id_col, time_col, target_col, *exog)]
    if ignored:
        log.warning("ignoring columns %s; list them in data.exog to use them as inputs", ", ".join(map(str, ignored)))


def _numbers(frame: pd.DataFrame, col: str, ids: pd.Series, stamps: pd.Series) -> np.ndarray:
    series = frame[col]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(float)
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"column {col!r} has a non-numeric value {series.iloc[row]!r} ({_row(row)}, "
                        f"series {_id(ids.iloc[row])} at {stamps.iloc[row]}); fix it or leave the cell empty")
    return numbers.to_numpy(dtype=np.float64)


def _frequency(stamps: pd.Series, codes: np.ndarray, freq: str | None) -> str:
    """The shared frequency: `freq`, else the one inferred from the longest series (cross-checked later)."""
    if freq:
        try:
            return to_offset(freq).freqstr
        except ValueError as err:
            raise UserError(f"unknown frequency {freq!r}; use a pandas alias like D, h, 30min, W, MS") from err
    counts = np.bincount(codes)
    for code in np.argsort(-counts, kind="stable")[:5]:  # the longest series; a gap in one is not fatal
        if counts[code] < 3:
            break
        inferred = infer_frequency(pd.DatetimeIndex(stamps[codes == code]))
        if inferred is not None:
            return inferred
    raise FrequencyError("cannot infer the series' frequency (no series has 3 regularly spaced rows); set data.freq "
                         "(Python: freq=...), e.g. h, D, W, MS")


def _positions(stamps: pd.Series, codes: np.ndarray, starts: pd.Series, freq: str,
               ids: pd.Series) -> np.ndarray:
    """Each row's step index within its series on the `freq` grid; rows off the grid are an error."""
    offset = to_offset(freq)
    first = starts.to_numpy()[codes]
    step = _fixed_step(freq)
    if step is not None:
        # In nanoseconds whatever resolution pandas parsed to (pandas 3 keeps microseconds).
        delta = (pd.DatetimeIndex(stamps) - pd.DatetimeIndex(first)).as_unit("ns").asi8
        pos, rest = np.divmod(delta, step.as_unit("ns").value)
        off_grid = rest != 0
    else:
        pos = np.empty(len(stamps), dtype=np.int64)
        off_grid = np.zeros(len(stamps), dtype=bool)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            grid = pd.date_range(first[rows[0]], stamps.iloc[rows[-1]], freq=offset)
            found = grid.get_indexer(pd.DatetimeIndex(stamps.iloc[rows]))
            pos[rows] = found
            off_grid[rows] = found < 0
    if off_grid.any():
        row = int(np.flatnonzero(off_grid)[0])
        raise UserError(f"series {_id(ids.iloc[row])}: timestamp {stamps.iloc[row]} is not on the {freq} grid that "
                        f"starts at its first row ({pd.Timestamp(first[row])}); give every series the same "
                        "frequency (or set data.freq)")
    return pos.astype(np.int64)


def frame_to_panel(frame: pd.DataFrame, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
                   exog: list[str] | None = None, freq: str | None = None, max_missing_gap: int = 3,
                   source: str = "the data") -> Panel:
    """Validate a long-format DataFrame into a `Panel` (see the module docstring for the policies)."""
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"expected a pandas DataFrame, got {type(frame).__name__}; pass pd.read_csv(...) output")
    frame = frame.rename(columns=lambda c: str(c).strip())
    exog = [str(c) for c in (exog or [])]
    if frame.empty:
        raise UserError(f"{source} has no rows; give the series' rows")
    _check_columns(frame, id_col, time_col, target_col, exog)
    if target_col in exog:
        raise UserError(f"data.exog lists the target {target_col!r}; list only the other inputs")
    frame = frame.reset_index(drop=True)
    ids = frame[id_col]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise UserError(f"missing {id_col!r} at {_row(row)} of {source}; give every row its series id")
    parsed = parse_dates(frame[time_col], time_col)
    if parsed is None:
        raise UserError(f"column {time_col!r} of {source} holds no timestamps; use ISO dates like 2020-01-31 12:00 "
                        "(integer time indices are not supported)")
    stamps = pd.Series(pd.DatetimeIndex(parsed), index=frame.index)
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise UserError(f"unparseable timestamp {frame[time_col].iloc[row]!r} in column {time_col!r} at "
                        f"{_row(row)} (series {_id(ids.iloc[row])}); fix or drop that row")
    duplicated = pd.DataFrame({"id": ids, "ds": stamps}).duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise UserError(f"series {_id(ids.iloc[row])} has two rows for {stamps.iloc[row]} ({_row(row)}); "
                        f"keep one row per ({id_col}, {time_col})")
    channels = [*exog, target_col]
    values = np.stack([_numbers(frame, c, ids, stamps) for c in channels], axis=1)
    # Series in order of first appearance; rows by time within each series.
    codes, uniques = pd.factorize(ids, sort=False)
    order = np.lexsort((pd.DatetimeIndex(stamps).asi8, codes))
    codes, stamps, values = codes[order], stamps.iloc[order].reset_index(drop=True), values[order]
    ids_sorted = ids.iloc[order].reset_index(drop=True)
    freq = _frequency(stamps, codes, freq)
    starts = stamps.groupby(codes).min()
    pos = _positions(stamps, codes, starts, freq, ids_sorted)
    lengths = pd.Series(pos).groupby(codes).max().to_numpy() + 1
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # Regular grid per series: absent time steps are missing values, filled below.
    grid = np.full((int(indptr[-1]), len(channels)), np.nan)
    grid[indptr[codes] + pos] = values
    observed = np.isfinite(grid[:, -1])
    gaps = np.flatnonzero(~np.isfinite(grid).all(axis=1))
    for i in np.unique(np.searchsorted(indptr, gaps, side="right") - 1):
        rows = grid[indptr[i]:indptr[i + 1]]
        for c, col in enumerate(channels):
            missing = ~np.isfinite(rows[:, c])
            run, start = longest_run(missing) if missing.any() else (0, 0)
            if missing.all() or run > max_missing_gap:
                when = pd.Timestamp(starts.iloc[i]) + start * to_offset(freq)
                what = "has no values" if missing.all() else f"misses {run} steps in a row from {when}"
                raise UserError(f"series {_id(uniques[i])}: {col!r} {what} (absent rows count as missing); at most "
                                f"data.max_missing_gap={max_missing_gap} are interpolated: fill the gap (e.g. "
                                "utilsforecast.preprocessing.fill_gaps and a value) or drop the series")
        grid[indptr[i]:indptr[i + 1]] = fill_missing(rows, channels, max_missing_gap)[0]
    return Panel(ids=list(uniques), starts=list(starts), indptr=indptr, values=grid,
                 columns=channels, freq=freq, observed=observed)


def is_long_format(frame: pd.DataFrame, id_col: str = "unique_id", time_col: str = "ds",
                   target_col: str = "y") -> bool:
    """Whether `frame` has the long-format columns (the Python API's format detection)."""
    names = {str(c).strip() for c in frame.columns}
    return {id_col, time_col, target_col} <= names
