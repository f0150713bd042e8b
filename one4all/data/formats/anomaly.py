"""Readers for the anomaly benchmarks' public layouts -> `AnomalySeries` (train, test, test labels).

| dataset | layout |
|---|---|
| SMAP / MSL (telemanom) | `{train,test}/<chan>.npy`; `labeled_anomalies.csv`: 0-based `[start, end]`, end included |
| SMD (OmniAnomaly) | `{train,test,test_label}/<machine>.txt` (comma-separated, no header) |
| TSLib `.npy` | `<P>_train.npy`, `<P>_test.npy`, `<P>_test_label.npy` (SMD, SMAP, MSL as TSLib ships them) |
| PSM (eBay) | `train.csv`, `test.csv`, `test_label.csv`; first column `timestamp_(min)`, labels in `label` |
| SWaT (iTrust) | a normal-operation CSV and an attack CSV with a `Normal/Attack` label column |
| your own CSV (NAB-like) | a date column, value columns, an optional 0/1 label column or labelled windows |

`.npy` files are read with `allow_pickle=False`; JSON with `json.load` (plain data).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.data.formats.table import fill_missing, numeric_columns, read_frame, to_float_matrix
from one4all.data.formats.timestamps import DATE_NAMES, detect_date_column, infer_frequency, validate_timestamps
from one4all.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class AnomalySeries:
    """An unlabelled training series and a test series with the same channels, labelled or not.

    `timestamps` (of the test rows) is known for table sources; benchmarks index rows by number.
    """

    name: str
    train: np.ndarray  # float64 [rows, channels]
    test: np.ndarray  # float64 [rows, channels]
    labels: np.ndarray | None  # int8 [test rows], 1 = anomalous; None = no labels (scores only)
    columns: list[str]
    meta: dict = field(default_factory=dict)
    timestamps: pd.DatetimeIndex | None = None

    def __post_init__(self) -> None:
        if self.train.shape[1] != self.test.shape[1]:
            raise UserError(f"{self.name}: train has {self.train.shape[1]} channels, test {self.test.shape[1]}")
        if self.labels is not None and len(self.labels) != len(self.test):
            raise UserError(f"{self.name}: {len(self.labels)} test labels for {len(self.test)} test rows")
        for split, values in (("train", self.train), ("test", self.test)):
            if not np.isfinite(values).all():
                raise UserError(f"{self.name}: {split} data has NaN/inf values; clean the file")


def load_npy(path: Path) -> np.ndarray:
    """A numeric `.npy` array as float64 `[rows, channels]` (1-D arrays become one channel)."""
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.root and the dataset folder)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise UserError(f"{path} is not a plain numeric .npy array ({err}); object arrays are refused") from err
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{path}: expected a 2-D numeric array, got shape {array.shape} of {array.dtype}")
    return array.astype(np.float64)


def range_labels(n_rows: int, ranges: list[list[int]], where: str) -> np.ndarray:
    """0/1 labels from 0-based `[start, end]` ranges, end inclusive (telemanom / OmniAnomaly)."""
    labels = np.zeros(n_rows, dtype=np.int8)
    for start, end in ranges:
        if not 0 <= start <= end < n_rows:
            raise UserError(f"{where}: anomaly range [{start}, {end}] is outside the {n_rows} test rows")
        labels[start : end + 1] = 1
    return labels


def read_telemanom(folder: Path, channel: str, labels_file: str = "labeled_anomalies.csv") -> AnomalySeries:
    """One SMAP/MSL channel. A channel listed twice (upstream lists P-2 twice with different
    ranges) gets the union of its ranges, with a warning."""
    table = read_frame(folder / labels_file)
    rows = table[table["chan_id"].astype(str).str.strip() == channel]
    if rows.empty:
        known = ", ".join(sorted(table["chan_id"].astype(str).unique())[:8])
        raise UserError(f"channel {channel!r} is not in {folder / labels_file} (e.g. {known}); fix data.channel")
    train, test = load_npy(folder / "train" / f"{channel}.npy"), load_npy(folder / "test" / f"{channel}.npy")
    if len(rows) > 1:
        log.warning("%s is listed %d times in %s; using the union of its anomaly ranges",
                    channel, len(rows), labels_file)
    for n in rows["num_values"]:
        if int(n) != len(test):
            raise UserError(f"{labels_file} says {channel} has {n} test values, test/{channel}.npy has {len(test)}")
    ranges = [r for text in rows["anomaly_sequences"] for r in json.loads(text)]
    labels = range_labels(len(test), ranges, f"{labels_file} ({channel})")
    spacecraft = str(rows["spacecraft"].iloc[0]).strip()
    return AnomalySeries(f"{spacecraft} {channel}", train, test, labels,
                         ["value", *[f"command_{i}" for i in range(1, train.shape[1])]],
                         {"spacecraft": spacecraft, "channel": channel, "anomaly_ranges": ranges})


def _read_txt(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"data file not found: {path} (check data.root, data.folder and data.machine)")
    try:
        return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise UserError(f"{path}: not comma-separated numbers ({err})") from err


def read_smd(folder: Path, machine: str) -> AnomalySeries:
    """One SMD machine in the OmniAnomaly layout."""
    train, test = _read_txt(folder / "train" / f"{machine}.txt"), _read_txt(folder / "test" / f"{machine}.txt")
    labels = _read_txt(folder / "test_label" / f"{machine}.txt").reshape(-1).astype(np.int8)
    return AnomalySeries(f"SMD {machine}", train, test, labels, [f"metric_{i}" for i in range(train.shape[1])],
                         {"machine": machine})


def read_npy_triplet(folder: Path, prefix: str) -> AnomalySeries:
    """TSLib's layout: `<prefix>_train.npy`, `<prefix>_test.npy`, `<prefix>_test_label.npy`."""
    train, test = load_npy(folder / f"{prefix}_train.npy"), load_npy(folder / f"{prefix}_test.npy")
    labels = load_npy(folder / f"{prefix}_test_label.npy")
    return AnomalySeries(prefix, train, test, labels[:, -1].astype(np.int8),
                         [f"channel_{i}" for i in range(train.shape[1])], {"layout": "tslib npy"})


def _values(frame: pd.DataFrame, exclude: set[str]) -> tuple[np.ndarray, list[str]]:
    dates = {c for c in frame.columns if c.lower().split("_")[0] in DATE_NAMES}
    columns = numeric_columns(frame, exclude=exclude | dates, wanted=None)
    # PSM has gaps; interpolating them is a clean alternative to TSLib's nan_to_num (zeros).
    values = pd.DataFrame(to_float_matrix(frame, columns)).interpolate(limit_direction="both")
    return values.to_numpy(dtype=np.float64), columns


def read_psm(folder: Path) -> AnomalySeries:
    """PSM: `train.csv`, `test.csv` (timestamp_(min) + 25 features), `test_label.csv` (`label`)."""
    train, columns = _values(read_frame(folder / "train.csv"), set())
    test, test_columns = _values(read_frame(folder / "test.csv"), set())
    if test_columns != columns:
        raise UserError(f"{folder}: train.csv and test.csv have different feature columns")
    frame = read_frame(folder / "test_label.csv")
    if "label" not in frame.columns:
        raise UserError(f"{folder / 'test_label.csv'} has no `label` column (columns: {list(frame.columns)})")
    return AnomalySeries("PSM", train, test, frame["label"].to_numpy().astype(np.int8), columns)


def _swat_labels(series: pd.Series, path: Path) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy().astype(np.int8)
    # The released files spell the attack label "Attack" and, in places, "A ttack".
    text = series.astype(str).str.replace(" ", "").str.lower()
    unknown = sorted(set(text) - {"normal", "attack"})
    if unknown:
        raise UserError(f"{path}: label values {unknown[:3]} are neither Normal nor Attack")
    return (text == "attack").to_numpy().astype(np.int8)


def read_swat(folder: Path, train_file: str, test_file: str, label_col: str = "Normal/Attack") -> AnomalySeries:
    """SWaT: train = the normal-operation file, test = the attack file; `label_col` names the label."""
    frames = {}
    for split, name in (("train", train_file), ("test", test_file)):
        frame = read_frame(folder / name)
        if label_col not in frame.columns:
            raise UserError(f"{folder / name} has no label column {label_col!r} (columns: "
                            f"{list(frame.columns)[-3:]} ...); set data.label_col")
        frames[split] = frame
    train, columns = _values(frames["train"], {label_col})
    test, test_columns = _values(frames["test"], {label_col})
    if test_columns != columns:
        raise UserError(f"{folder}: {train_file} and {test_file} have different sensor columns")
    labels = _swat_labels(frames["test"][label_col], folder / test_file)
    return AnomalySeries("SWaT", train, test, labels, columns)


# Column names that hold labels rather than values in NAB-like files: never trained on by accident.
_LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly")


def _binary_labels(series: pd.Series, col: str) -> np.ndarray:
    """A 0/1 (or boolean) column as int8; anything else is a one-line error naming the first bad row."""
    values = pd.to_numeric(series.astype(float) if pd.api.types.is_bool_dtype(series) else series, errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"label column {col!r} has the value {series.iloc[row]} at data row {row + 1}; "
                        "labels must be 0 (normal) or 1 (anomalous)")
    return values.to_numpy().astype(np.int8)


def _timestamp(value: object, stamps: pd.DatetimeIndex, where: str) -> pd.Timestamp:
    """`value` as a timestamp comparable with `stamps` (a zone-less value takes the series' zone)."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: {value!r} is not a timestamp; use ISO dates like 2020-01-31 12:00") from err
    if stamp is pd.NaT:
        raise UserError(f"{where}: {value!r} is not a timestamp; use ISO dates like 2020-01-31 12:00")
    if stamp.tz is None and stamps.tz is not None:
        return stamp.tz_localize(stamps.tz)
    if stamp.tz is not None and stamps.tz is None:
        raise UserError(f"{where}: {value!r} has a time zone but the series' timestamps have none; drop the zone")
    return stamp


def read_windows(path: Path, series_file: str) -> list[tuple[object, object]]:
    """Labelled anomaly windows `(start, end)`, both included: a CSV with `start` and `end` columns, or
    JSON: a list of `[start, end]` pairs, or NAB's `{"<folder>/<file>.csv": [[start, end], ...]}` (the
    entry whose file name is `series_file`)."""
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise UserError(f"labels file not found: {path} (check data.labels_file)")
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path} is not valid JSON ({err}); give a list of [start, end] pairs") from err
        if isinstance(content, dict):
            matches = [v for k, v in content.items() if Path(str(k)).name == series_file]
            if not matches:
                raise UserError(f"{path} has no entry for {series_file} (keys like {list(content)[:2]}); "
                                "name the entry after the data file")
            content = matches[0]
        pairs = content
    else:
        frame = read_frame(path)
        if not {"start", "end"} <= set(frame.columns):
            raise UserError(f"{path} needs `start` and `end` columns (has {list(frame.columns)}); one labelled "
                            "window per row, both ends included")
        pairs = frame[["start", "end"]].to_numpy().tolist()
    if not isinstance(pairs, list) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
        raise UserError(f"{path}: expected a list of [start, end] pairs")
    return [(start, end) for start, end in pairs]


def window_labels(stamps: pd.DatetimeIndex, windows: list[tuple[object, object]], where: str) -> np.ndarray:
    """0/1 per timestamp: 1 inside any `[start, end]` window (both included)."""
    labels = np.zeros(len(stamps), dtype=np.int8)
    for start, end in windows:
        first, last = _timestamp(start, stamps, where), _timestamp(end, stamps, where)
        if last < first:
            raise UserError(f"{where}: window [{start}, {end}] ends before it starts")
        inside = (stamps >= first) & (stamps <= last)
        if not inside.any():
            raise UserError(f"{where}: window [{start}, {end}] holds none of the series' timestamps "
                            f"({stamps[0]} .. {stamps[-1]})")
        labels[inside] = 1
    return labels


def span_rows(stamps: pd.DatetimeIndex, span: list | tuple | None, where: str) -> np.ndarray:
    """Boolean row mask of `span = [start, end]` (both included; either may be None for open-ended)."""
    if span is None:
        return np.ones(len(stamps), dtype=bool)
    if len(span) != 2:
        raise UserError(f"{where}={list(span)} must be [start, end] (use null for an open end)")
    keep = np.ones(len(stamps), dtype=bool)
    if span[0] is not None:
        keep &= stamps >= _timestamp(span[0], stamps, where)
    if span[1] is not None:
        keep &= stamps <= _timestamp(span[1], stamps, where)
    if not keep.any():
        raise UserError(f"{where}={list(span)} holds none of the series' timestamps ({stamps[0]} .. {stamps[-1]})")
    return keep


def read_anomaly_csv(path: Path, date_col: str | None = None, columns: list[str] | None = None,
                     label_col: str | None = None, labels_file: Path | None = None, normal_span: list | None = None,
                     max_missing_gap: int = 3) -> AnomalySeries:
    """A user's series: train on `normal_span` (all rows if None), score every row.

    Timestamps must be unique and increasing; gaps are allowed (windows count observations). Labels
    (a 0/1 column or labelled windows) are read for evaluation only, never for training.
    """
    frame = read_frame(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    if label_col is not None and labels_file is not None:
        raise UserError("give either data.label_col or data.labels_file, not both")
    labels = None
    if label_col is not None:
        if label_col not in frame.columns:
            raise UserError(f"label column {label_col!r} not in {path} (columns: {list(frame.columns)}); "
                            "fix data.label_col")
        labels = _binary_labels(frame[label_col], label_col)
        frame = frame.drop(columns=[label_col])
    elif columns is None:
        named = [c for c in frame.columns if c.lower() in _LABEL_NAMES]
        if named:
            raise UserError(f"column {named[0]!r} looks like anomaly labels; set data.label_col={named[0]} to "
                            "evaluate against it, or list the value columns in data.columns")
    col, stamps = detect_date_column(frame, date_col)
    validate_timestamps(stamps, col, frame[col])
    channels = numeric_columns(frame, exclude={col}, wanted=columns)
    if not channels:
        raise UserError(f"{path} has no numeric value columns besides {col!r}; add value columns")
    values, filled = fill_missing(to_float_matrix(frame, channels), channels, max_missing_gap)
    if labels_file is not None:
        labels = window_labels(stamps, read_windows(labels_file, path.name), f"labelled windows in {labels_file}")
    train = span_rows(stamps, normal_span, "data.normal_span")
    span = None if normal_span is None else [None if v is None else str(v) for v in normal_span]
    meta = {"path": str(path), "date_col": col, "freq": infer_frequency(stamps), "n_rows": len(stamps),
            "train_rows": int(train.sum()), "normal_span": span,
            "labels": f"column {label_col}" if label_col else (str(labels_file) if labels_file else None),
            "repairs": filled}  # interpolated gaps, recorded in metrics.json as the table sources do
    return AnomalySeries(path.stem, values[train], values, labels, channels, meta, stamps)
