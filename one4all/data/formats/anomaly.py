"""Readers for the anomaly benchmarks' public layouts -> `AnomalySeries` (train, test, test labels).

| dataset | layout |
|---|---|
| SMAP / MSL (telemanom) | `{train,test}/<chan>.npy`; `labeled_anomalies.csv`: 0-based `[start, end]`, end included |
| SMD (OmniAnomaly) | `{train,test,test_label}/<machine>.txt` (comma-separated, no header) |
| TSLib `.npy` | `<P>_train.npy`, `<P>_test.npy`, `<P>_test_label.npy` (SMD, SMAP, MSL as TSLib ships them) |
| PSM (eBay) | `train.csv`, `test.csv`, `test_label.csv`; first column `timestamp_(min)`, labels in `label` |
| SWaT (iTrust) | a normal-operation CSV and an attack CSV with a `Normal/Attack` label column |

`.npy` files are read with `allow_pickle=False`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.data.formats.table import numeric_columns, read_frame, to_float_matrix
from one4all.data.formats.timestamps import DATE_NAMES
from one4all.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class AnomalySeries:
    """An unlabelled training series and a labelled test series with the same channels."""

    name: str
    train: np.ndarray  # float64 [rows, channels]
    test: np.ndarray  # float64 [rows, channels]
    labels: np.ndarray  # int8 [test rows], 1 = anomalous
    columns: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train.shape[1] != self.test.shape[1]:
            raise UserError(f"{self.name}: train has {self.train.shape[1]} channels, test {self.test.shape[1]}")
        if len(self.labels) != len(self.test):
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
