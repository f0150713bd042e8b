"""`one4all forecast`: a run's model + a CSV -> forecast CSV (and plot), written all-or-nothing.

Everything that can fail on bad input (artifact, CSV, schema, horizon, levels, output paths, a folder
that cannot be written) fails before a byte is written; the CSV and the plot are then rendered in
memory and committed together (`atomic.atomic_write_all`): a reader never sees half a file, and a
failed write (a full disk) leaves every file as it was, including an `--out` that existed before.
Replacing an existing `--out` or `--plot` is announced on stderr. A model trained on long-format
series reads long-format CSV or Parquet and writes `unique_id, ds, <model>`.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.atomic import atomic_write_all, probe_writable
from one4all.conformal import check_levels
from one4all.data.formats.long import Panel, read_long_frame
from one4all.data.formats.table import Table
from one4all.errors import UserError, write_error
from one4all.forecast import ForecastModel, load_model
from one4all.panel_forecast import PanelForecastModel
from one4all.paths import resolve_data_file

log = logging.getLogger(__name__)

PLOT_FORMATS = ("png", "svg", "pdf")
MAX_PLOTTED_CHANNELS = 16


def forecast_csv(run: str | Path, csv: str | Path, out: str | Path, plot: str | Path | None = None,
                 horizon: int | None = None, level: list[float] | None = None) -> pd.DataFrame:
    """Forecast the steps after the last row of `csv` with the model of `run`; write `out` (and `plot`)."""
    # `pkg://package/file.csv` names a packaged file, as in data.path (e.g. the embedded vic_elec).
    csv = resolve_data_file(None, csv) if str(csv).startswith("pkg://") else Path(csv).expanduser()
    out = Path(out).expanduser()
    plot = Path(plot).expanduser() if plot is not None else None
    _check_outputs(csv, out, plot)
    levels = check_levels(level)
    for path in (out, plot):
        if path is not None:
            probe_writable(path.parent, "--out" if path is out else "--plot")
    model = load_model(run)
    if not isinstance(model, (ForecastModel, PanelForecastModel)):
        raise UserError(f"unsupported model type {type(model).__name__}")
    history = model.prepare(read_long_frame(csv), str(csv))
    future = model.forecast(history, horizon, levels)
    files = {out: future.to_csv(index=False).encode()}
    if plot is not None:
        fmt = plot.suffix[1:].lower()
        files[plot] = (render_panel_plot(history, future, model, levels, fmt) if isinstance(model, PanelForecastModel)
                       else render_plot(history, future, model.output_columns, model.seq_len, fmt, levels))
    commit(files)
    return future


def _check_outputs(csv: Path, out: Path, plot: Path | None) -> None:
    for flag, path in (("--out", out), ("--plot", plot)):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{flag} {path} is a directory; give a file name such as {path / 'forecast.csv'}")
        if path.exists() and csv.exists() and path.resolve() == csv.resolve():
            raise UserError(f"{flag} {path} is the input CSV; write the forecast to another file")
    if plot is not None and plot.suffix[1:].lower() not in PLOT_FORMATS:
        raise UserError(f"--plot {plot}: unknown image type; end the file name in .png, .svg or .pdf")
    if plot is not None and plot.resolve() == out.resolve():
        raise UserError("--out and --plot name the same file; give two different files")


def _shade(ax, times, frame: pd.DataFrame, name: str, levels: list[float]) -> None:
    """Interval bands, the widest lightest, behind the forecast line."""
    for level in sorted(levels, reverse=True):
        label = str(int(level)) if float(level).is_integer() else str(level)
        lo, hi = frame[f"{name}-lo-{label}"].to_numpy(), frame[f"{name}-hi-{label}"].to_numpy()
        ax.fill_between(times, lo, hi, color="tab:orange", alpha=0.12 + 0.18 * (1 - level / 100),
                        lw=0, label=f"{label}% interval")


def _figure(n_panels: int, sharex: bool):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n_panels, 1, figsize=(10, 2.4 * n_panels + 0.6), squeeze=False, sharex=sharex)
    return plt, fig, axes[:, 0]


def _finish(plt, fig, fmt: str) -> bytes:
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _draw(ax, past_t, past: np.ndarray, future_t, future: np.ndarray) -> None:
    ax.plot(past_t, past, color="tab:blue", lw=1.2, label="history")
    # Join the last observation to the forecast so the two lines read as one series.
    ax.plot(np.concatenate([past_t[-1:], future_t]), np.concatenate([past[-1:], future]),
            color="tab:orange", lw=1.4, label="forecast")
    ax.axvline(past_t[-1], color="grey", lw=0.8, ls=":")
    ax.grid(alpha=0.3)


def render_plot(table: Table, future: pd.DataFrame, channels: list[str], history: int, fmt: str,
                levels: list[float] | None = None) -> bytes:
    """Recent history (the model's input window), the forecast and its intervals, one panel per channel."""
    shown = channels[:MAX_PLOTTED_CHANNELS]
    if len(shown) < len(channels):
        log.warning("plotting the first %d of %d forecast channels", len(shown), len(channels))
    zone = table.timestamps.tz
    # Matplotlib draws wall-clock times; the zone goes into the axis label instead.
    past_t = table.timestamps[-history:].tz_localize(None) if zone else table.timestamps[-history:]
    future_t = pd.DatetimeIndex(future[future.columns[0]])
    future_t = future_t.tz_localize(None) if zone else future_t
    plt, fig, axes = _figure(len(shown), sharex=True)
    for ax, name in zip(axes, shown):
        _shade(ax, future_t, future, name, levels or [])
        _draw(ax, past_t, table.values[-history:, table.columns.index(name)], future_t, future[name].to_numpy())
        ax.set_ylabel(name)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"next {len(future)} steps ({table.freq})")
    axes[-1].set_xlabel(f"time ({zone})" if zone else "time")
    return _finish(plt, fig, fmt)


def render_panel_plot(panel: Panel, future: pd.DataFrame, model: PanelForecastModel, levels: list[float],
                      fmt: str) -> bytes:
    """The first series' recent history, forecast and intervals, one panel per series."""
    forecast_ids = list(dict.fromkeys(future[model.id_col]))
    shown = forecast_ids[:MAX_PLOTTED_CHANNELS]
    if len(shown) < len(forecast_ids):
        log.warning("plotting the first %d of %d series", len(shown), len(forecast_ids))
    position = {value: i for i, value in enumerate(panel.ids)}
    plt, fig, axes = _figure(len(shown), sharex=False)
    for ax, value in zip(axes, shown):
        i = position[value]
        stamps = panel.timestamps(i)[-model.seq_len:]
        zone = stamps.tz
        rows = future[future[model.id_col] == value]
        future_t = pd.DatetimeIndex(rows[model.time_col])
        past_t, future_t = (stamps.tz_localize(None), future_t.tz_localize(None)) if zone else (stamps, future_t)
        _shade(ax, future_t, rows, model.name, levels)
        _draw(ax, past_t, panel.series(i)[-model.seq_len:, -1], future_t, rows[model.name].to_numpy())
        ax.set_ylabel(str(value))
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"{model.name}: next {len(future) // max(len(forecast_ids), 1)} steps ({panel.freq})")
    return _finish(plt, fig, fmt)


def commit(files: dict[Path, bytes]) -> None:
    """Write every file, all or nothing; announce the files that are replaced."""
    replaced = [path for path in files if path.exists()]
    try:
        atomic_write_all(files)
    except OSError as err:
        raise write_error(err, "the forecast", "no file was written or changed") from err
    for path in replaced:
        log.warning("replaced the existing %s", path)
