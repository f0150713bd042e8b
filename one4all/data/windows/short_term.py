"""Short-term forecasting protocol (M4 / M3): per-series training windows, one test window per series.

Input `lookback x horizon` points (2H, as GPT4TS/TSLib), output the frequency's horizon H.
- Train: windows cut from each series' training part at cut points drawn once with `seed`
  (`draws_per_series` per series, TSLib's one draw per series per epoch, over its 10 epochs).
- Validation: the last H points of each training series are held out (training windows never
  see them). `paper_compat=true` reproduces TSLib, which validates on the TEST split (a leak).
- Test: the last 2H points of each full training series in, the competition's test values out.
No dataset scaler: sMAPE/MASE are scale-free and the networks normalise each window themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from one4all.contract import IOSpec
from one4all.data.sources.collections import SeriesCollection
from one4all.data.windows.base import refuse_marks
from one4all.data.windows.series import EvalSet, SampledWindows, SeriesEvalWindows, draw_cut_points


@dataclass
class ShortTermData:
    """A loaded collection: the series training windows are cut from, and the evaluation sets."""

    collection: SeriesCollection
    seq_len: int
    fit: list[np.ndarray]
    val: EvalSet
    test: EvalSet
    validation: str


@dataclass
class ShortTermProtocol:
    """The short-term protocol for one collection (`data` builds a SeriesCollection: M4Data, M3Data)."""

    lookback: float = 2.0
    draws_per_series: int = 10
    seed: int = 0
    paper_compat: bool = False

    def seq_len(self, horizon: int) -> int:
        return max(1, round(self.lookback * horizon))

    def load(self, data: Any) -> ShortTermData:
        collection = data.load()
        h, m = collection.horizon, collection.seasonality
        seq_len = self.seq_len(h)
        test = EvalSet.build(collection.train, collection.test, seq_len, m, zero_pad=self.paper_compat)
        if self.paper_compat:
            return ShortTermData(collection, seq_len, collection.train, test, test, "test split (paper_compat)")
        fit = [s[:-h] for s in collection.train]
        val = EvalSet.build(fit, [s[-h:] for s in collection.train], seq_len, m)
        return ShortTermData(collection, seq_len, fit, val, test, "last horizon of each training series")

    def io_spec(self, data: ShortTermData) -> IOSpec:
        return IOSpec(seq_len=data.seq_len, n_channels=1, kind="forecast", horizon=data.collection.horizon)

    def train_windows(self, data: ShortTermData, train_fraction: float = 1.0) -> SampledWindows:
        """Training windows; `train_fraction` keeps the first share (draw-major, so every series stays)."""
        c = data.collection
        cuts = draw_cut_points([len(s) for s in data.fit], c.horizon, c.sampling_history,
                               self.draws_per_series, self.seed)
        limit = None if train_fraction >= 1.0 else int(cuts.size * train_fraction)
        return SampledWindows(data.fit, cuts, data.seq_len, c.horizon, self.paper_compat, limit)

    def datasets(self, data: ShortTermData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, Any]:
        # Univariate series: channel-independent or not, a sample is [seq_len, 1].
        refuse_marks(time_features, "a series collection")
        return {"train": self.train_windows(data, train_fraction), "val": SeriesEvalWindows(data.val),
                "test": SeriesEvalWindows(data.test)}

    def task_inputs(self, data: ShortTermData) -> dict[str, Any]:
        return {}

    def describe(self, data: ShortTermData) -> dict[str, Any]:
        return {**data.collection.describe(), "seq_len": data.seq_len, "draws_per_series": self.draws_per_series,
                "sampling_history": data.collection.sampling_history, "validation": data.validation,
                "n_seasonal_test_series": data.test.n_seasonal}

    def artifact_meta(self, data: ShortTermData) -> dict[str, Any]:
        c = data.collection
        return {"name": c.name, "horizon": c.horizon, "seq_len": data.seq_len, "seasonality": c.seasonality,
                "padding": "zeros" if self.paper_compat else "first value", "scaler": None}
