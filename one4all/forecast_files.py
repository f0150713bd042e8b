"""`one4all forecast`: a run's model + a CSV -> forecast CSV (and plot), written all-or-nothing.

Everything that can fail on bad input (artifact, CSV, schema, horizon, output paths, a folder that
cannot be written) fails before a byte is written; the CSV and the plot are then rendered in memory
and committed together (`atomic.atomic_write_all`): a reader never sees half a file, and a failed
write (a full disk) leaves every file as it was, including an `--out` that existed before. Replacing
an existing `--out` or `--plot` is announced on stderr.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.api import Forecaster
from one4all.atomic import atomic_write_all, probe_writable
from one4all.data.formats.table import Table, read_frame
from one4all.errors import UserError, write_error
from one4all.paths import resolve_data_file

log = logging.getLogger(__name__)

PLOT_FORMATS = ("png", "svg", "pdf")
MAX_PLOTTED_CHANNELS = 16


def forecast_csv(run: str | Path, csv: str | Path, out: str | Path, plot: str | Path | None = None,
                 horizon: int | None = None) -> pd.DataFrame:
    """Forecast the steps after the last row of `csv` with the model of `run`; write `out` (and `plot`)."""
    # `pkg://package/file.csv` names a packaged file, as in data.path (e.g. the embedded vic_elec).
    csv = resolve_data_file(None, csv) if str(csv).startswith("pkg://") else Path(csv).expanduser()
    out = Path(out).expanduser()
    plot = Path(plot).expanduser() if plot is not None else None
    _check_outputs(csv, out, plot)
    for path in (out, plot):
        if path is not None:
            probe_writable(path.parent, "--out" if path is out else "--plot")
    forecaster = Forecaster.load(run)
    model = forecaster.model
    table = model.prepare(read_frame(csv), str(csv))
    future = model.forecast(table, horizon)
    files = {out: future.to_csv(index=False).encode()}
    if plot is not None:
        files[plot] = render_plot(table, future, model.output_columns, model.seq_len, plot.suffix[1:].lower())
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


def render_plot(table: Table, future: pd.DataFrame, channels: list[str], history: int, fmt: str) -> bytes:
    """Recent history (the model's input window) and the forecast, one panel per forecast channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = channels[:MAX_PLOTTED_CHANNELS]
    if len(shown) < len(channels):
        log.warning("plotting the first %d of %d forecast channels", len(shown), len(channels))
    zone = table.timestamps.tz
    # Matplotlib draws wall-clock times; the zone goes into the axis label instead.
    past_t = table.timestamps[-history:].tz_localize(None) if zone else table.timestamps[-history:]
    date_col = future.columns[0]
    future_t = pd.DatetimeIndex(future[date_col])
    future_t = future_t.tz_localize(None) if zone else future_t
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.4 * len(shown) + 0.6), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], shown):
        past = table.values[-history:, table.columns.index(name)]
        ax.plot(past_t, past, color="tab:blue", lw=1.2, label="history")
        # Join the last observation to the forecast so the two lines read as one series.
        ax.plot(np.concatenate([past_t[-1:], future_t]), np.concatenate([past[-1:], future[name].to_numpy()]),
                color="tab:orange", lw=1.4, label="forecast")
        ax.axvline(past_t[-1], color="grey", lw=0.8, ls=":")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(f"next {len(future)} steps ({table.freq})")
    axes[-1, 0].set_xlabel(f"time ({zone})" if zone else "time")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def commit(files: dict[Path, bytes]) -> None:
    """Write every file, all or nothing; announce the files that are replaced."""
    replaced = [path for path in files if path.exists()]
    try:
        atomic_write_all(files)
    except OSError as err:
        raise write_error(err, "the forecast", "no file was written or changed") from err
    for path in replaced:
        log.warning("replaced the existing %s", path)
