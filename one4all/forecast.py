"""Forecast the real future of a series with a trained artifact: schema checks, scaling, dates, intervals.

The input must have the training schema: the trained value columns (extra columns are ignored
with a notice, missing ones are an error), a date column, at least `seq_len` rows at the trained
frequency, and missing values within the trained `max_missing_gap`. The forecast covers the
`horizon` steps after the last row, one column per forecast channel, in the data's units, and
with `level=[80, 95]` the split-conformal intervals calibrated at training (`one4all.conformal`).
A network that reads time-feature marks gets those of the input window's dates, computed as in
training (one4all.marks); the networks here read no marks of the dates they forecast.

`ForecastModel` serves wide tables (a date column + channels); `one4all.panel_forecast` serves
long-format series; `load_model` opens either from a run directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from one4all.artifact import MANIFEST, load_artifact, read_manifest, save_artifact
from one4all.conformal import Calibration, check_levels, interval_bounds, interval_sides
from one4all.contract import IOSpec, Network
from one4all.data.formats.table import Table, frame_to_table
from one4all.data.formats.timestamps import future_dates, same_frequency
from one4all.data.sources.table import FEATURES
from one4all.data.splits import StandardScaler
from one4all.errors import UserError
from one4all.inference import forward_batches, inference_device
from one4all.marks import compute_marks
from one4all.schema import check_value, checked_object, shown

log = logging.getLogger(__name__)

# Manifest keys written by save_artifact itself; everything else is passed back as `extra`.
_ARTIFACT_KEYS = ("format", "version", "torch_version", "network", "io", "frozen_sha256")
_DATA_KEYS = ("columns", "target_channels", "date_col", "freq", "scaler")


def artifact_dir(path: str | Path) -> Path:
    """The artifact folder of a run directory (`RUN/model`), or `path` itself if it is one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"run directory not found: {path}; pass the run directory printed by `one4all train`")
    if (path / "model" / MANIFEST).is_file():
        return path / "model"
    return path


def read_forecaster_manifest(directory: Path, required: tuple[str, ...], layout: str = "table") -> dict[str, Any]:
    """The manifest of a forecasting artifact of `layout` (table or long) holding the data keys `required`;
    anything else is refused."""
    manifest = read_manifest(directory)
    try:
        kind = manifest["io"].get("kind")
        missing = [k for k in required if k not in manifest.get("data", {})]
        found = manifest.get("data", {}).get("layout", "table")
    except (KeyError, AttributeError) as err:
        raise UserError(f"corrupt artifact manifest in {directory} ({type(err).__name__}: {err}); "
                        "retrain the model or restore the file") from err
    if kind != "forecast":
        raise UserError(f"the model in {directory} is a {kind!r} model, not a forecaster; "
                        "pass the run directory of a forecasting run")
    if found != layout:
        raise UserError(f"the model in {directory} forecasts {'long-format series' if found == 'long' else 'tables'}"
                        f", but this needs a model of {'long-format series' if layout == 'long' else 'tables'} "
                        "(data=long vs data=csv); use a run of that kind")
    if missing:
        raise UserError(f"the artifact in {directory} lacks the data schema {missing} (incompatible version); "
                        "retrain the model with this version of one4all")
    return manifest


def load_network(directory: Path) -> tuple[Network, dict[str, Any]]:
    """The artifact's network (eval mode) and manifest, with corrupt manifests as one-line errors."""
    try:
        network, manifest = load_artifact(directory)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"corrupt artifact manifest in {directory} ({type(err).__name__}: {err}); "
                        "retrain the model or restore the file") from err
    return network.eval(), manifest


@dataclass(frozen=True)
class DataSchema:
    """What a forecaster's artifact records about its training data (`ForecastProtocol.artifact_meta`),
    checked when a manifest is loaded: inference divides by the scale and indexes by the channels."""

    columns: list[str]
    target_channels: list[int]
    date_col: str | None
    freq: str | None
    scaler: dict[str, list[float]]
    features: str | None = None
    target: str | None = None
    max_missing_gap: int | None = None

    def __post_init__(self) -> None:
        n = len(self.columns)
        if n == 0 or len(set(self.columns)) != n:
            raise UserError(f"data.columns={shown(self.columns)} must be distinct column names, at least one")
        if not self.target_channels or len(set(self.target_channels)) != len(self.target_channels) or any(
                not 0 <= i < n for i in self.target_channels):
            raise UserError(f"data.target_channels={shown(self.target_channels)} must be distinct indices in "
                            f"0..{n - 1}")
        if sorted(self.scaler) != ["mean", "std"] or any(len(v) != n for v in self.scaler.values()):
            raise UserError(f"data.scaler must hold 'mean' and 'std' with one number per column ({n})")
        if any(s <= 0 for s in self.scaler["std"]):
            raise UserError(f"data.scaler.std={shown(self.scaler['std'])} must be positive (it divides the data)")
        if self.freq is not None:
            try:
                to_offset(self.freq)
            except (ValueError, TypeError) as err:
                raise UserError(f"data.freq={self.freq!r} is not a pandas frequency") from err
        if self.features not in (None, *FEATURES):
            raise UserError(f"data.features={self.features!r}; expected one of {', '.join(FEATURES)}")
        if self.max_missing_gap is not None and self.max_missing_gap < 0:
            raise UserError(f"data.max_missing_gap={self.max_missing_gap} must be 0 or more")

    def check_io(self, io: dict[str, Any]) -> None:
        """The schema must describe the network's input channels."""
        if io.get("n_channels") != len(self.columns):
            raise UserError(f"data.columns has {len(self.columns)} names but the network reads "
                            f"{shown(io.get('n_channels'))} channels")


_SCHEMA_KEYS = tuple(f.name for f in fields(DataSchema))


@dataclass
class TrainedForecaster:
    """What every forecasting artifact shares: the network, the manifest, precision, device, intervals."""

    network: Network
    manifest: dict[str, Any]

    REQUIRED_DATA_KEYS: ClassVar[tuple[str, ...]] = ()
    LAYOUT: ClassVar[str] = "table"

    @classmethod
    def load(cls, path: str | Path) -> TrainedForecaster:
        """Load from a run directory or its `model/` folder; refuse non-forecasting or corrupt artifacts."""
        directory = artifact_dir(path)
        manifest = read_forecaster_manifest(directory, cls.REQUIRED_DATA_KEYS, cls.LAYOUT)
        cls.check_schema(directory, manifest)
        return cls(*load_network(directory))

    @classmethod
    def check_schema(cls, directory: Path, manifest: dict[str, Any]) -> None:
        """Refuse a manifest whose data schema is not what inference can use (no-op by default)."""

    def save(self, directory: str | Path) -> Path:
        """Write the artifact to `directory` (replaced atomically)."""
        directory = Path(directory).expanduser()
        directory.parent.mkdir(parents=True, exist_ok=True)
        extra = {k: v for k, v in self.manifest.items() if k not in _ARTIFACT_KEYS}
        return save_artifact(directory, self.network, self.manifest["network"], IOSpec(**self.manifest["io"]),
                             extra=extra)

    @property
    def seq_len(self) -> int:
        return int(self.manifest["io"]["seq_len"])

    @property
    def horizon(self) -> int:
        return int(self.manifest["io"]["horizon"])

    @property
    def schema(self) -> dict[str, Any]:
        return self.manifest["data"]

    @property
    def precision(self) -> str:
        return self.manifest.get("precision", "32-true")

    @property
    def device(self) -> torch.device:
        """Where inference runs: the training device kind when this machine has it, else the CPU."""
        return inference_device(self.manifest.get("device"))

    @property
    def channel_independent(self) -> bool:
        return self.network.channel_independent

    @property
    def name(self) -> str:
        """The forecast column's name (neuralforecast style): the network's class, e.g. `One4All`."""
        return self.manifest.get("alias") or type(self.network).__name__

    def calibration(self, levels: list[float]) -> Calibration | None:
        """The interval calibration when `levels` are asked for (an error if the model has none)."""
        if not levels:
            return None
        state = self.manifest.get("intervals")
        if state is None:
            raise UserError("this model has no interval calibration (it was trained without validation windows or "
                            "with conformal.max_windows=0); retrain it with a validation split to ask for level=")
        return Calibration.from_dict(state)

    def check_horizon(self, horizon: int | None) -> int:
        horizon = self.horizon if horizon is None else int(horizon)
        if horizon < 1:
            raise UserError(f"horizon {horizon} is outside 1..{self.horizon}; ask for at least one step")
        if horizon > self.horizon:
            raise UserError(f"horizon {horizon} is outside 1..{self.horizon} (the model's horizon); "
                            f"retrain with task.horizon={horizon} for a longer forecast")
        return horizon

    def forward(self, x: torch.Tensor, marks: torch.Tensor | None = None) -> np.ndarray:
        """The network on scaled inputs `x[samples, seq_len, channels]` (and their time-feature `marks`),
        batched on the inference device."""
        return forward_batches(self.network, x, self.precision, self.device, marks=marks).numpy().astype(np.float64)


class ForecastModel(TrainedForecaster):
    """A trained forecaster of wide tables (date column + channels) with its data schema and scaler."""

    REQUIRED_DATA_KEYS = _DATA_KEYS

    @classmethod
    def check_schema(cls, directory: Path, manifest: dict[str, Any]) -> None:
        """The data schema must be one inference can use: `DataSchema`'s checks, against the network's io."""
        data = manifest["data"]
        try:
            # Keys beyond the schema's are kept as they are and never interpreted.
            schema = checked_object(DataSchema, "data", {k: v for k, v in data.items() if k in _SCHEMA_KEYS})
            schema.check_io(manifest["io"])
            check_value("precision", manifest.get("precision", "32-true"), str)
        except UserError as err:
            raise UserError(f"corrupt data schema in {directory / MANIFEST}: {err}; retrain the model or restore "
                            "the file") from None

    @property
    def columns(self) -> list[str]:
        """The network's input channels, in order."""
        return list(self.schema["columns"])

    @property
    def output_columns(self) -> list[str]:
        """The forecast channels (all for M, the target for S and MS)."""
        return [self.columns[i] for i in self.schema["target_channels"]]

    def prepare(self, frame: pd.DataFrame, source: str = "the DataFrame") -> Table:
        """Validate `frame` against the training schema; returns its series in original units."""
        frame = frame.rename(columns=lambda c: str(c).strip())
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise UserError(f"{source} lacks column(s) {missing} the model was trained on (trained columns: "
                            f"{self.columns}); give a file with the training schema")
        if len(frame) < self.seq_len:
            raise UserError(f"{source} has {len(frame)} rows; the model needs at least its seq_len={self.seq_len} "
                            "most recent rows to forecast: give a longer history")
        date_col = self.schema["date_col"]
        gap = self.schema.get("max_missing_gap")
        table = frame_to_table(frame, date_col if date_col in frame.columns else None, self.columns, None,
                               3 if gap is None else int(gap), source=source)
        extra = [c for c in frame.columns if c not in self.columns and c != table.date_col]
        if extra:
            log.warning("ignoring columns not seen in training: %s", ", ".join(map(str, extra)))
        trained = self.schema["freq"]
        if trained and not same_frequency(table.freq, trained):
            raise UserError(f"{source} has frequency {table.freq} but the model was trained on {trained} data; "
                            "give the series at the training frequency")
        return table

    def forecast(self, table: Table, horizon: int | None = None, level: list[float] | None = None) -> pd.DataFrame:
        """The next `horizon` steps after the table's last row: a `date` column + one column per channel,
        and with `level` each channel's `<channel>-lo-<level>` / `<channel>-hi-<level>` bounds."""
        horizon = self.check_horizon(horizon)
        levels = check_levels(level)
        calibration = self.calibration(levels)
        values = self.predict_window(table.values[-self.seq_len:], table.timestamps[-self.seq_len:])[:horizon]
        names = self.output_columns
        date_name = "date" if "date" not in names else table.date_col
        dates = future_dates(table.timestamps[-1], table.freq, horizon)
        columns: dict[str, Any] = {date_name: dates}
        scale = StandardScaler.from_dict(self.schema["scaler"]).std[self.schema["target_channels"]]
        for i, name in enumerate(names):
            columns[name] = values[:, i]
            if calibration is not None:
                bounds = interval_bounds(values[:, i], scale[i], calibration, levels)
                columns.update({f"{name}-{side}": bounds[side] for side in interval_sides(levels)})
        return pd.DataFrame(columns)

    def window_marks(self, stamps: pd.DatetimeIndex | None) -> torch.Tensor | None:
        """The `marks=` argument for a window with timestamps `stamps`: its time features when the
        network reads them (computed from the dates alone, as in training), else None."""
        kind = self.network.time_features
        if kind == "none":
            return None
        if stamps is None:
            raise UserError(f"this model reads {kind} time features of the input dates; pass the window's "
                            "timestamps (the date column of the history)")
        return torch.from_numpy(compute_marks(stamps, kind, self.schema["freq"]))

    def predict_window(self, window: np.ndarray, stamps: pd.DatetimeIndex | None = None) -> np.ndarray:
        """`window[seq_len, channels]` in original units (with its timestamps, which a network
        reading time features needs) -> forecast `[horizon, outputs]` in original units."""
        scaler = StandardScaler.from_dict(self.schema["scaler"])
        targets = list(self.schema["target_channels"])
        x = torch.from_numpy(scaler.transform(window))
        independent = self.channel_independent
        # As in training: a channel-independent network sees each forecast channel as its own
        # univariate sample [k, seq_len, 1]; a joint one sees all channels and we keep the targets.
        x = x[:, targets].T.unsqueeze(-1) if independent else x.unsqueeze(0)
        # Marks are the same for every channel: one row of them per sample.
        marks = self.window_marks(stamps)
        y = self.forward(x, None if marks is None else marks.expand(len(x), -1, -1))
        y = y[..., 0].T if independent else y[0][:, targets]
        return scaler.inverse(y, targets)


def load_model(path: str | Path) -> TrainedForecaster:
    """The forecaster of a run directory (or its `model/` folder): wide tables or long-format series."""
    from one4all.panel_forecast import PanelForecastModel  # imported here: it builds on this module

    directory = artifact_dir(path)
    manifest = read_manifest(directory)
    data = manifest.get("data")
    long = isinstance(data, dict) and data.get("layout") == "long"
    return (PanelForecastModel if long else ForecastModel).load(directory)
