"""Many series in long format (`data=long`): one global model over series of any length and start.

Each series is split on its own rows (`holdout`: its last `val_size` steps validate, the `test_size`
steps after them test, all earlier rows train; `all`: every row trains) and standardised with the
statistics of its own training rows. A series too short for one training window plus its held-out
rows is skipped and named (in the log and in metrics.json); the others train.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from one4all.data.formats.long import Panel, frame_to_panel, read_long_frame
from one4all.data.sources.base import LoaderSettings
from one4all.data.splits import holdout_sizes
from one4all.errors import UserError
from one4all.paths import resolve_data_file

log = logging.getLogger(__name__)

SCHEMES = ("holdout", "all")
# Skipped ids written into metrics.json in full up to this many; beyond, the count and the first ones.
MAX_LISTED_SKIPS = 200


@dataclass
class SplitWindows:
    """Per series: where the split's first window starts (row offset within the series) and how many."""

    first: np.ndarray  # int64 [n_series]
    count: np.ndarray  # int64 [n_series]


@dataclass
class PanelData:
    """Kept series, standardised per series with their training rows' statistics, and their splits."""

    name: str
    panel: Panel  # original units
    scaled: np.ndarray  # float32 [rows, channels], same layout as panel.values
    mean: np.ndarray  # float64 [n_series, channels]
    std: np.ndarray
    splits: dict[str, SplitWindows]
    skipped: dict[str, str]
    train_rows: np.ndarray  # int64 [n_series]: rows of each series that training sees
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.panel.columns)

    @property
    def target_channel(self) -> int:
        return self.n_channels - 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class LongData(LoaderSettings):
    """Long-format series from a CSV or Parquet file (`path`) or a DataFrame (`frame`, Python API)."""

    def __init__(self, path: str | None = None, frame: pd.DataFrame | None = None, root: str | None = None,
                 name: str | None = None, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
                 exog: list[str] | None = None, features: str = "MS", freq: str | None = None, split: str = "holdout",
                 val_size: int | None = None, test_size: int = 0, cutoff: str | None = None,
                 max_missing_gap: int = 3, batch_size: int = 64, eval_batch_size: int | None = None,
                 num_workers: int = 0, train_fraction: float = 1.0) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, train_fraction)
        if (path is None) == (frame is None):
            raise UserError("data=long needs data.path=FILE (CSV or Parquet)" if path is None else
                            "data=long got both data.path and a DataFrame; give one of them")
        if split not in SCHEMES:
            raise UserError(f"data.split={split!r} is not a long-format scheme; use holdout or all")
        self.path = resolve_data_file(root, path) if path is not None else None
        self.frame = frame
        self.name = name or (Path(path).stem if path is not None else "dataframe")
        self.id_col, self.time_col, self.target_col = str(id_col), str(time_col), str(target_col)
        if features not in ("M", "S", "MS"):
            raise UserError(f"unknown data.features={features!r}; use MS (exogenous columns + target -> target) or "
                            "S (target -> target)")
        # The forecast channel of long data is always the target, so M means MS; S drops the exogenous inputs.
        self.exog = [str(c) for c in exog] if exog and features != "S" else []
        self.freq, self.split, self.max_missing_gap = freq, split, max_missing_gap
        self.val_size, self.test_size = val_size, test_size
        try:
            self.cutoff = None if cutoff is None else pd.Timestamp(cutoff)
        except ValueError as err:
            raise UserError(f"data.cutoff={cutoff!r} is not a timestamp; use e.g. 2020-01-31 12:00") from err

    def read(self) -> Panel:
        """The validated panel (original units), cut at `cutoff` if one is set."""
        source = str(self.path) if self.path is not None else "the DataFrame"
        frame = read_long_frame(self.path) if self.path is not None else self.frame
        panel = frame_to_panel(frame, self.id_col, self.time_col, self.target_col, self.exog, self.freq,
                               self.max_missing_gap, source=source)
        if self.cutoff is not None:
            cutoff = self.cutoff
            zone = panel.starts[0].tz if panel.starts else None
            if zone is not None and cutoff.tz is None:
                cutoff = cutoff.tz_localize(zone)
            panel = panel.truncate(cutoff)
        return panel

    def _rows_needed(self, seq_len: int, horizon: int) -> tuple[int, int, int]:
        """(val rows, test rows, minimum series length) of the split scheme."""
        if self.split == "all":
            return 0, 0, seq_len + horizon
        val, test = holdout_sizes(seq_len, horizon, self.val_size, self.test_size)
        return val, test, seq_len + horizon + val + test

    def load(self, seq_len: int, horizon: int = 0) -> PanelData:
        """Read, skip too-short series (named), split each series and scale it with its training rows."""
        val, test, need = self._rows_needed(seq_len, horizon)
        panel = self.read()
        lengths = panel.lengths
        short = lengths < need
        skipped = {str(panel.ids[i]): f"{_plural(int(lengths[i]), 'row')} < {need}" for i in np.flatnonzero(short)}
        what = (f"seq_len={seq_len} + horizon={horizon}" + (f" + val_size={val}" if val else "")
                + (f" + test_size={test}" if test else ""))
        if short.all():
            raise UserError(f"no series is long enough: {what} needs {need} rows per series, the longest has "
                            f"{int(lengths.max(initial=0))}; lower task.seq_len / data.val_size or give longer series")
        if skipped:
            shown = ", ".join(f"{k} ({v.split(' <')[0]})" for k, v in list(skipped.items())[:20])
            more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
            log.warning("skipping %s shorter than %d rows (%s): %s%s", _plural(len(skipped), "series"), need, what,
                        shown, more)
        panel = panel.select(np.flatnonzero(~short))
        n = panel.lengths
        train_rows = n - val - test
        splits = {"train": SplitWindows(np.zeros_like(n), train_rows - seq_len - horizon + 1)}
        if self.split == "holdout":
            splits["val"] = SplitWindows(train_rows - seq_len, np.full_like(n, val - horizon + 1))
            if test:
                splits["test"] = SplitWindows(n - test - seq_len, np.full_like(n, test - horizon + 1))
        mean, std, scaled = self._scale(panel, train_rows)
        meta = {"format": "long", "id_col": self.id_col, "time_col": self.time_col, "target_col": self.target_col,
                "exog": self.exog, "n_series": panel.n_series, "n_series_skipped": len(skipped),
                "skipped": dict(list(skipped.items())[:MAX_LISTED_SKIPS]), "columns": panel.columns,
                "freq": panel.freq, "split": self.split, "val_size": val, "test_size": test,
                "cutoff": None if self.cutoff is None else str(self.cutoff), "n_rows": int(n.sum()),
                "n_train_rows": int(train_rows.sum()), "max_missing_gap": self.max_missing_gap,
                "trained_on": ("every row of each series" if self.split == "all" else
                               f"each series' rows before its last {val + test} steps"),
                **({"path": str(self.path)} if self.path is not None else {})}
        return PanelData(self.name, panel, scaled, mean, std, splits, skipped, train_rows.astype(np.int64), meta)

    @staticmethod
    def _scale(panel: Panel, train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-series mean/std of the training rows (biased std; constant series get std 1) and the scaled rows."""
        values = panel.values.astype(np.float64)
        series = np.repeat(np.arange(panel.n_series), panel.lengths)
        offset = np.arange(len(values)) - panel.indptr[series]
        in_train = offset < train_rows[series]
        count = np.bincount(series[in_train], minlength=panel.n_series)[:, None]
        sums = np.stack([np.bincount(series[in_train], values[in_train, c], panel.n_series)
                         for c in range(values.shape[1])], axis=1)
        mean = sums / count
        squares = np.stack([np.bincount(series[in_train], (values[in_train, c] - mean[series[in_train], c]) ** 2,
                                        panel.n_series) for c in range(values.shape[1])], axis=1)
        std = np.sqrt(squares / count)
        std = np.where(std > 0, std, 1.0)
        scaled = ((values - mean[series]) / std[series]).astype(np.float32)
        return mean, std, scaled
