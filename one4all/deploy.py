"""Forecast with an exported package (`one4all export`): needs numpy and torch *or* onnxruntime, nothing else.

This file is copied verbatim into every export as `predict.py`, so it imports nothing from
one4all (nor pandas, Lightning, Hydra, transformers or peft). From a shell on the device:

    python predict.py --csv history.csv --out forecast.csv

forecasts the `horizon` steps after the last row of the CSV in the data's units, in the format of
`one4all forecast` (a date column + one column per forecast channel). From Python:

    from predict import Package            # or: from one4all.deploy import Package
    package = Package.load("exported/")
    forecast = package.forecast_csv("history.csv")   # .dates, .values[horizon, channels], .to_csv()

The CSV must have the training schema: the trained value columns (extra columns are ignored),
ISO 8601 timestamps (2016-07-01 00:00:00, 2016/07/01, ...T..Z, ...+10:00) at the trained
frequency, and at least `seq_len` rows; runs of at most `max_missing_gap` empty or non-finite
values are interpolated linearly, as in training.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import io
import json
import math
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "one4all-export"
VERSION = 1
SCHEMA = "package.json"
RUNTIMES = {"torchscript": "torch", "onnx": "onnxruntime"}
DATE_NAMES = ("date", "datetime", "timestamp", "time", "ds", "period")
# Cells read as missing, as pandas' default NA strings (then interpolated like the training data).
MISSING = {"", "nan", "na", "n/a", "null", "none", "#n/a", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity"}
_SEPARATORS = (",", ";", "\t")
_TIMESTAMP = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                        r"\s*(Z|[+-]\d{2}:?\d{2})?")


class DeployError(Exception):
    """Bad input to the exported package: the message names the problem and the fix in one line."""


# ---------------------------------------------------------------------------------------------
# The package: schema + model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The series' frequency as calendar arithmetic: a fixed duration, months, or business days."""

    unit: str  # "microseconds" | "months" | "business_days"
    n: int
    anchor: str | None = None  # months: "start" (first day) or "end" (last day of the month)

    def after(self, stamp: datetime, count: int = 1) -> datetime:
        """The timestamp `count` steps after `stamp`."""
        if self.unit == "microseconds":
            return stamp + timedelta(microseconds=self.n * count)
        if self.unit == "months":
            month = stamp.year * 12 + stamp.month - 1 + self.n * count
            year, month = divmod(month, 12)
            day = 1 if self.anchor == "start" else calendar.monthrange(year, month + 1)[1]
            return stamp.replace(year=year, month=month + 1, day=day)
        days = self.n * count
        while days:  # business days: Monday..Friday
            stamp += timedelta(days=1)
            days -= stamp.weekday() < 5
        return stamp


def _field(schema: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = schema.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise DeployError(f"{SCHEMA} field {key!r} is missing or malformed; re-export the model with one4all export")
    return value


class Package:
    """An exported forecaster: its schema (columns, scaler, frequency, sizes) and its runtime."""

    def __init__(self, directory: Path, schema: dict[str, Any], threads: int | None = None) -> None:
        self.directory, self.schema = directory, schema
        try:
            self._read_schema(schema)
        except (TypeError, ValueError) as err:
            raise DeployError(f"{SCHEMA} is malformed ({err}); re-export the model with one4all export") from err
        if not all(0 <= i < len(self.columns) for i in self.targets):
            raise DeployError(f"{SCHEMA} target_channels {self.targets} do not index its {len(self.columns)} columns; "
                              "re-export the model")
        self.runtime = _field(schema, "runtime", str)
        if self.runtime not in RUNTIMES:
            raise DeployError(f"{SCHEMA} names runtime {self.runtime!r}; this loader knows {', '.join(RUNTIMES)}")
        model_file = _field(schema, "model_file", str)
        if Path(model_file).name != model_file:
            raise DeployError(f"{SCHEMA} model_file {model_file!r} must be a file name inside the package")
        self.model_path = directory / model_file
        if not self.model_path.is_file():
            raise DeployError(f"the package lacks its model file {model_file}; copy the whole export folder")
        self._run = _load_runtime(self.runtime, self.model_path, threads)

    def _read_schema(self, schema: dict[str, Any]) -> None:
        self.seq_len, self.horizon = _field(schema, "seq_len", int), _field(schema, "horizon", int)
        self.columns = [str(c) for c in _field(schema, "columns", list)]
        self.targets = [int(i) for i in _field(schema, "target_channels", list)]
        self.independent = _field(schema, "channel_independent", bool)
        self.date_col = str(_field(schema, "date_col", str))
        self.max_missing_gap = _field(schema, "max_missing_gap", int)
        self.freq = str(_field(schema, "freq", str))
        step = _field(schema, "step", dict)
        self.step = Step(str(step.get("unit")), int(step.get("n", 0)), step.get("anchor"))
        if self.step.unit not in ("microseconds", "months", "business_days") or self.step.n < 1:
            raise DeployError(f"{SCHEMA} has an unknown step {step}; re-export the model with one4all export")
        scaler = _field(schema, "scaler", dict)
        self.mean = np.asarray(scaler.get("mean"), dtype=np.float64)
        self.std = np.asarray(scaler.get("std"), dtype=np.float64)
        if self.mean.shape != (len(self.columns),) or self.std.shape != self.mean.shape:
            raise DeployError(f"{SCHEMA} scaler does not match its {len(self.columns)} columns; re-export the model")

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> Package:
        """Read `directory/package.json` and load the model (`threads`: CPU threads, default the runtime's)."""
        directory = Path(directory).expanduser()
        path = directory / SCHEMA
        if not path.is_file():
            raise DeployError(f"no exported package at {directory} ({SCHEMA} missing); pass the folder written "
                              "by `one4all export`")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DeployError(f"corrupt {path}: {err}; re-export the model") from err
        if not isinstance(schema, dict) or schema.get("format") != FORMAT:
            raise DeployError(f"{path} is not a one4all export; pass the folder written by `one4all export`")
        if schema.get("version") != VERSION:
            raise DeployError(f"export version {schema.get('version')} is not supported by this loader "
                              f"(expects {VERSION}); re-export the model")
        return cls(directory, schema, threads)

    @property
    def output_columns(self) -> list[str]:
        """The forecast channels (all for M, the target for S and MS)."""
        return [self.columns[i] for i in self.targets]

    def predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """The raw network: `x[batch, seq_len, channels]` (scaled, float32) -> `[batch, horizon, channels]`."""
        return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def predict_window(self, window: np.ndarray) -> np.ndarray:
        """`window[seq_len, columns]` in data units -> forecast `[horizon, outputs]` in data units."""
        scaled = ((window.astype(np.float64) - self.mean) / self.std).astype(np.float32)
        # As in training: a channel-independent network sees each forecast channel as its own
        # univariate sample [k, seq_len, 1]; a joint one sees all channels and we keep the targets.
        x = scaled[:, self.targets].T[:, :, None] if self.independent else scaled[None]
        y = self.predict_scaled(x)
        y = y[..., 0].T if self.independent else y[0][:, self.targets]
        return y.astype(np.float64) * self.std[self.targets] + self.mean[self.targets]

    def forecast_csv(self, path: str | Path, horizon: int | None = None) -> Forecast:
        """The `horizon` steps after the last row of the CSV at `path`, in the data's units."""
        horizon = self.horizon if horizon is None else int(horizon)
        if not 1 <= horizon <= self.horizon:
            raise DeployError(f"horizon {horizon} is outside 1..{self.horizon} (the model's horizon); "
                              "ask for fewer steps or retrain with a longer task.horizon")
        stamps, values, date_col = self.read_history(Path(path))
        forecast = self.predict_window(values[-self.seq_len:])[:horizon]
        names = self.output_columns
        return Forecast([self.step.after(stamps[-1], i + 1) for i in range(horizon)], forecast, names,
                        "date" if "date" not in names else date_col)

    def read_history(self, path: Path) -> tuple[list[datetime], np.ndarray, str]:
        """Validate the CSV against the training schema: (timestamps, values[rows, columns] float32, date column)."""
        header, rows = read_csv(path)
        missing = [c for c in self.columns if c not in header]
        if missing:
            raise DeployError(f"{path} lacks column(s) {missing} the model was trained on (trained columns: "
                              f"{self.columns}); give a file with the training schema")
        if len(rows) < self.seq_len:
            raise DeployError(f"{path} has {len(rows)} rows; the model needs at least its seq_len={self.seq_len} "
                              "most recent rows to forecast: give a longer history")
        date_col = self._date_column(header)
        extra = [c for c in header if c not in self.columns and c != date_col]
        if extra:
            print(f"note: ignoring columns not seen in training: {', '.join(extra)}", file=sys.stderr)
        stamps = parse_timestamps([r[header.index(date_col)] for r in rows], date_col)
        self._check_steps(stamps, date_col)
        columns = [header.index(c) for c in self.columns]
        values = np.stack([fill_missing(numbers([r[i] for r in rows], name), name, self.max_missing_gap)
                           for i, name in zip(columns, self.columns)], axis=1)
        return stamps, values.astype(np.float32), date_col

    def _date_column(self, header: list[str]) -> str:
        if self.date_col in header:
            return self.date_col
        for name in header:
            if name.lower() in DATE_NAMES:
                return name
        raise DeployError(f"no date column: the model was trained with {self.date_col!r}; name the CSV's "
                          f"timestamp column {self.date_col!r}")

    def _check_steps(self, stamps: list[datetime], col: str) -> None:
        for row in range(1, len(stamps)):
            if stamps[row] != self.step.after(stamps[row - 1]):
                raise DeployError(f"timestamps in column {col!r} do not follow the trained frequency {self.freq}: "
                                  f"data row {row + 1} ({stamps[row]}) does not come one step after "
                                  f"{stamps[row - 1]}; give the series at the training frequency without gaps "
                                  "(empty values are interpolated)")


def _load_runtime(runtime: str, path: Path, threads: int | None):
    """A function float32 [batch, seq_len, channels] -> float32 [batch, horizon, channels]."""
    if threads is not None and threads < 1:
        raise DeployError(f"--threads {threads}; give a positive number of CPU threads")
    try:
        if runtime == "torchscript":
            import torch
        else:
            import onnxruntime
    except ImportError as err:
        raise DeployError(f"this package runs on {RUNTIMES[runtime]}, which is not installed "
                          f"({err}); pip install {RUNTIMES[runtime]} numpy") from err
    if runtime == "torchscript":
        if threads is not None:
            torch.set_num_threads(threads)
        with warnings.catch_warnings():
            # TorchScript is deprecated upstream (it still ships and loads): not the user's concern here.
            warnings.simplefilter("ignore")
            model = torch.jit.load(str(path), map_location="cpu").eval()

        def run_torch(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(x)).float().numpy()

        return run_torch
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run_onnx


# ---------------------------------------------------------------------------------------------
# The CSV: rows, timestamps, numbers
# ---------------------------------------------------------------------------------------------


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (stripped names) and data rows of a comma- (or semicolon-/tab-) separated UTF-8 file."""
    if not path.is_file():
        raise DeployError(f"data file not found: {path}; check --csv")
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DeployError(f"{path} is a binary file, not a CSV; export it as a comma-separated UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DeployError(f"{path} is not a UTF-8 text CSV ({err.reason} at byte {err.start}); "
                          "export it as a comma-separated UTF-8 text file") from err
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DeployError(f"{path} is empty; give a CSV with a header row and data rows")
    counts = {sep: lines[0].count(sep) for sep in _SEPARATORS}
    sep = "," if counts[","] or not any(counts.values()) else max(counts, key=counts.get)
    table = [row for row in csv.reader(lines, delimiter=sep, skipinitialspace=True) if row]
    header = [name.strip() for name in table[0]]
    rows = table[1:]
    if not rows:
        raise DeployError(f"{path} has a header but no data rows; add the series' rows below the header")
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise DeployError(f"{path} data row {number} has {len(row)} fields, the header {len(header)}; "
                              "give the same number of fields on every line")
    return header, rows


def parse_timestamps(cells: list[str], col: str) -> list[datetime]:
    """ISO 8601 timestamps; one zone for all (offsets that change, e.g. daylight saving, -> UTC)."""
    stamps = []
    for row, cell in enumerate(cells, start=1):
        match = _TIMESTAMP.fullmatch(cell.strip())
        try:
            if match is None:
                raise ValueError(cell)
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            tz = None
            if zone is not None:
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = timezone.utc if zone == "Z" else timezone(sign * timedelta(hours=int(digits[:2]),
                                                                                minutes=int(digits[2:])))
            stamps.append(datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), micro, tzinfo=tz))
        except ValueError as err:
            raise DeployError(f"unparseable timestamp {cell!r} in column {col!r} at data row {row}; use ISO dates "
                              "like 2020-01-31 12:00:00") from err
    zoned = [s.tzinfo is not None for s in stamps]
    if any(zoned) and not all(zoned):
        row = zoned.index(not zoned[0]) + 1
        raise DeployError(f"column {col!r} mixes timestamps with and without a time zone (data row {row}: "
                          f"{cells[row - 1]!r}); give every timestamp the same zone")
    if all(zoned) and len({s.utcoffset() for s in stamps}) > 1:
        print(f"note: column {col!r} has changing UTC offsets (daylight saving?); timestamps are converted to UTC",
              file=sys.stderr)
        stamps = [s.astimezone(timezone.utc) for s in stamps]
    for row in range(1, len(stamps)):
        if stamps[row] <= stamps[row - 1]:
            what = "duplicated" if stamps[row] == stamps[row - 1] else "not in increasing order"
            raise DeployError(f"timestamps in column {col!r} are {what} at data row {row + 1} ({cells[row]!r}); "
                              f"keep one row per time step, sorted by {col!r}")
    return stamps


def numbers(cells: list[str], col: str) -> np.ndarray:
    """A column as float64; missing cells (empty, nan, inf, ...) are NaN; any other text is an error."""
    out = np.empty(len(cells), dtype=np.float64)
    for row, cell in enumerate(cells):
        text = cell.strip()
        if text.lower() in MISSING:
            out[row] = math.nan
            continue
        try:
            out[row] = float(text)
        except ValueError:
            raise DeployError(f"column {col!r} has a non-numeric value {cell!r} at data row {row + 1}; fix it or "
                              "leave the cell empty (interpolated)") from None
    return out


def fill_missing(values: np.ndarray, col: str, max_gap: int) -> np.ndarray:
    """Linearly interpolate runs of at most `max_gap` missing values (ends: nearest value); longer is an error."""
    missing = ~np.isfinite(values)
    if not missing.any():
        return values
    if missing.all():
        raise DeployError(f"column {col!r} has no finite values; drop it or fix the file")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(np.int8), [0]])))
    lengths = edges[1::2] - edges[0::2]
    if lengths.max() > max_gap:
        start = int(edges[0::2][int(np.argmax(lengths))])
        raise DeployError(f"column {col!r} has {int(lengths.max())} consecutive missing/inf values (from data row "
                          f"{start + 1}); at most max_missing_gap={max_gap} are interpolated: fill the gap")
    index = np.arange(len(values))
    filled = values.copy()
    filled[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return filled


# ---------------------------------------------------------------------------------------------
# The output: the CSV format of `one4all forecast`
# ---------------------------------------------------------------------------------------------


def format_dates(dates: list[datetime]) -> list[str]:
    """Timestamps as pandas writes a date column: dates only when every time is midnight (and no zone),
    else `YYYY-MM-DD HH:MM:SS`, with milli/microseconds when present and the UTC offset when zoned."""
    zoned = dates[0].tzinfo is not None
    if not zoned and all(d.hour == d.minute == d.second == d.microsecond == 0 for d in dates):
        return [d.strftime("%Y-%m-%d") for d in dates]
    micro = any(d.microsecond for d in dates)
    milli_only = all(d.microsecond % 1000 == 0 for d in dates)
    out = []
    for d in dates:
        text = d.strftime("%Y-%m-%d %H:%M:%S")
        if micro:
            text += f".{d.microsecond // 1000:03d}" if milli_only else f".{d.microsecond:06d}"
        if zoned:
            offset = d.utcoffset() or timedelta(0)
            sign = "-" if offset < timedelta(0) else "+"
            minutes = abs(int(offset.total_seconds())) // 60
            text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        out.append(text)
    return out


@dataclass
class Forecast:
    """Forecast dates and values[horizon, channels] in the data's units, with the output column names."""

    dates: list[datetime]
    values: np.ndarray
    columns: list[str]
    date_name: str

    def to_csv(self) -> str:
        """CSV text in the format of `one4all forecast`: a date column + one column per forecast channel."""
        rows = [[self.date_name, *self.columns]]
        # repr: the shortest text that reads back as the same float64, as pandas writes floats.
        rows += [[stamp, *(repr(float(v)) for v in row)] for stamp, row in zip(format_dates(self.dates), self.values)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """`python predict.py --csv FILE --out OUT.csv [--horizon N] [--threads N] [--package DIR]`."""
    parser = argparse.ArgumentParser(prog="predict.py", description="Forecast the steps after the last row of a "
                                     "CSV with this exported one4all model; values in the CSV's units.")
    parser.add_argument("--csv", required=True, help="history with the training schema (date + trained columns)")
    parser.add_argument("--out", required=True, help="forecast CSV to write: date + one column per channel")
    parser.add_argument("--horizon", type=int, help="steps to forecast (default and maximum: the model's)")
    parser.add_argument("--threads", type=int, help="CPU threads for the runtime (default: its own choice)")
    parser.add_argument("--package", default=str(Path(__file__).resolve().parent),
                        help="the exported folder (default: the folder of this file)")
    args = parser.parse_args(argv)
    try:
        csv_path, out = Path(args.csv).expanduser(), Path(args.out).expanduser()
        if out.is_dir():
            raise DeployError(f"--out {out} is a directory; give a file name such as {out / 'forecast.csv'}")
        if out.exists() and csv_path.exists() and out.resolve() == csv_path.resolve():
            raise DeployError(f"--out {out} is the input CSV; write the forecast to another file")
        package = Package.load(args.package, threads=args.threads)
        forecast = package.forecast_csv(csv_path, args.horizon)
        write_atomic(out, forecast.to_csv())
    except DeployError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot write {err.filename or args.out}: {err.strerror}; choose a writable path",
              file=sys.stderr)
        return 2
    stamps = format_dates(forecast.dates)
    print(f"forecast: {len(stamps)} steps ({stamps[0]} .. {stamps[-1]}) x {len(forecast.columns)} channel(s) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
