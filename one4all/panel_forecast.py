"""Forecast many long-format series at once with a model trained on `data=long`.

The input has the training schema (id, time and target columns, the trained exogenous columns)
at the trained frequency. Every series with at least `seq_len` rows is forecast `horizon` steps
after its own last row, all series in batched forward passes; shorter series are skipped and named.
A series seen in training is standardised with its training statistics; a new one with the
statistics of the history given. Output: `unique_id, ds, <model>` (+ `<model>-lo-80`, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from one4all.artifact import MANIFEST
from one4all.conformal import check_levels, interval_bounds, interval_sides
from one4all.data.formats.long import FrequencyError, Panel, frame_to_panel, future_stamps
from one4all.data.formats.timestamps import same_frequency
from one4all.errors import UserError
from one4all.forecast import TrainedForecaster
from one4all.schema import check_value, shown

log = logging.getLogger(__name__)

# Manifests written before `max_missing_gap` was recorded trained with frame_to_panel's default.
DEFAULT_MAX_MISSING_GAP = 3


def _named(ids: list, limit: int = 20) -> str:
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def check_long_schema(manifest: dict[str, Any]) -> None:
    """Distinct columns matching the network's channels, text column names, a pandas frequency, and
    one finite mean and positive std per training series and column (inference divides by them)."""
    data = manifest["data"]
    columns, series = data["columns"], data["series"]
    check_value("data.columns", columns, list[str])
    if not columns or len(set(columns)) != len(columns):
        raise UserError(f"data.columns={shown(columns)} must be distinct column names, at least one")
    if manifest["io"].get("n_channels") != len(columns):
        raise UserError(f"data.columns has {len(columns)} names but the network reads "
                        f"{shown(manifest['io'].get('n_channels'))} channels")
    for key in ("id_col", "time_col", "target_col", "freq"):
        check_value(f"data.{key}", data[key], str)
    if data["target_col"] not in columns:
        raise UserError(f"data.target_col={data['target_col']!r} is not one of data.columns={shown(columns)}")
    gap = data.get("max_missing_gap", DEFAULT_MAX_MISSING_GAP)
    check_value("data.max_missing_gap", gap, int)
    if gap < 0:
        raise UserError(f"data.max_missing_gap={gap} must be 0 or more")
    try:
        to_offset(data["freq"])
    except (ValueError, TypeError) as err:
        raise UserError(f"data.freq={data['freq']!r} is not a pandas frequency") from err
    check_value("data.series", series, dict[str, list])
    if sorted(series) != ["ids", "mean", "std"]:
        raise UserError("data.series must hold 'ids', 'mean' and 'std'")
    try:
        mean, std = (np.asarray(series[k], dtype=np.float64) for k in ("mean", "std"))
    except (TypeError, ValueError) as err:
        raise UserError("data.series.mean and .std must be tables of numbers") from err
    shape = (len(series["ids"]), len(columns))
    if mean.shape != shape or std.shape != shape:
        raise UserError(f"data.series.mean and .std must have one row per series and one number per column "
                        f"{shape}, not {mean.shape} and {std.shape}")
    if not np.isfinite(mean).all() or not (np.isfinite(std) & (std > 0)).all():
        raise UserError("data.series.mean must be finite and data.series.std positive (it divides the data)")


class PanelForecastModel(TrainedForecaster):
    """A global model of long-format series, with each training series' scaler."""

    REQUIRED_DATA_KEYS = ("layout", "columns", "freq", "id_col", "time_col", "target_col", "series")
    LAYOUT = "long"

    @classmethod
    def check_schema(cls, directory: Path, manifest: dict[str, Any]) -> None:
        """The long-format schema must be one inference can use (`check_long_schema`)."""
        try:
            check_long_schema(manifest)
            check_value("precision", manifest.get("precision", "32-true"), str)
        except UserError as err:
            raise UserError(f"corrupt data schema in {directory / MANIFEST}: {err}; retrain the model or restore "
                            "the file") from None

    @property
    def id_col(self) -> str:
        return self.schema["id_col"]

    @property
    def time_col(self) -> str:
        return self.schema["time_col"]

    @property
    def target_col(self) -> str:
        return self.schema["target_col"]

    def prepare(self, frame: pd.DataFrame, source: str = "the DataFrame") -> Panel:
        """Validate long-format `frame` against the training schema; returns its series in original units."""
        exog, trained = list(self.schema.get("exog") or []), self.schema["freq"]
        args = (self.id_col, self.time_col, self.target_col, exog)
        gap = self.schema.get("max_missing_gap", DEFAULT_MAX_MISSING_GAP)  # an int: check_long_schema
        try:
            panel = frame_to_panel(frame, *args, None, gap, source=source)
        except FrequencyError:
            # Series too short to show their frequency: they must lie on the trained grid.
            panel = frame_to_panel(frame, *args, trained, gap, source=source)
        if not same_frequency(panel.freq, trained):
            raise UserError(f"{source} has frequency {panel.freq} but the model was trained on {trained} data; "
                            "give the series at the training frequency")
        return Panel(panel.ids, panel.starts, panel.indptr, panel.values, panel.columns, trained, panel.observed)

    def _statistics(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        """Per-series mean/std: the training ones for known ids, the given history's for new ones."""
        series = self.schema["series"]
        known = {value: i for i, value in enumerate(series["ids"])}
        mean_trained, std_trained = np.asarray(series["mean"]), np.asarray(series["std"])
        mean = np.empty((panel.n_series, len(panel.columns)))
        std = np.empty_like(mean)
        new = []
        for i, value in enumerate(panel.ids):
            j = known.get(value.item() if isinstance(value, np.generic) else value)
            if j is None:
                new.append(value)
                history = panel.series(i).astype(np.float64)
                mean[i], spread = history.mean(axis=0), history.std(axis=0)
                std[i] = np.where(spread > 0, spread, 1.0)
            else:
                mean[i], std[i] = mean_trained[j], std_trained[j]
        if new:
            log.warning("%d series not seen in training are standardised with their own history: %s", len(new),
                        _named(new))
        return mean, std

    def forecast(self, panel: Panel, horizon: int | None = None, level: list[float] | None = None) -> pd.DataFrame:
        """The next `horizon` steps after each series' last row, in long format, every series in one pass."""
        horizon = self.check_horizon(horizon)
        levels = check_levels(level)
        calibration = self.calibration(levels)
        lengths = panel.lengths
        short = [panel.ids[i] for i in np.flatnonzero(lengths < self.seq_len)]
        if len(short) == panel.n_series:
            raise UserError(f"no series has the model's seq_len={self.seq_len} rows of history (longest: "
                            f"{int(lengths.max(initial=0))}); give longer histories")
        if short:
            log.warning("skipping %d series with fewer than seq_len=%d rows: %s", len(short), self.seq_len,
                        _named(short))
        keep = np.flatnonzero(lengths >= self.seq_len)
        mean, std = self._statistics(panel)
        mean, std = mean[keep], std[keep]
        rows = panel.indptr[keep + 1][:, None] - self.seq_len + np.arange(self.seq_len)
        x = (panel.values[rows].astype(np.float64) - mean[:, None, :]) / std[:, None, :]  # [series, seq_len, c]
        target = len(panel.columns) - 1
        x = torch.from_numpy(x.astype(np.float32))
        x = x[..., target:] if self.channel_independent else x
        y = self.forward(x)[:, :horizon, -1 if self.channel_independent else target]
        point = y * std[:, target:] + mean[:, target:]  # [series, horizon]
        out = {self.id_col: np.repeat(np.asarray(panel.ids, dtype=object)[keep], horizon),
               self.time_col: future_stamps(panel.ends()[keep], panel.freq, horizon),
               self.name: point.reshape(-1)}
        if calibration is not None:
            bounds = interval_bounds(point, std[:, target:], calibration, levels)
            out.update({f"{self.name}-{side}": bounds[side].reshape(-1) for side in interval_sides(levels)})
        frame = pd.DataFrame(out)
        frame[self.id_col] = frame[self.id_col].infer_objects()
        return frame
