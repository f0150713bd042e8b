"""Zero-shot protocols: train (and validate) on a source dataset, test on a target never trained on.

`data` is the source; `target` is a second data spec of the same kind (built from its own config).
- ZeroShotSeriesProtocol (M3 -> M4): source windows as in the short-term protocol; each target series is
  tested on its last `seq_len` training points (the source model's input length), forecasting the
  target's full horizon (`rollout=true`: the task feeds forecasts back when it exceeds the source
  horizon) or only its first H_source steps (`rollout=false`), scored with the target's seasonal
  period for MASE and Naive2.
- ZeroShotProtocol (CSV -> CSV): source windows as in long-term forecasting; test windows from
  the target's test split. The target is standardised with a scaler fitted on the target's own
  training rows (statistics only, no training), so test/mse is on the scale of the target's own
  benchmark numbers. A network that mixes channels needs the same channel layout on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from one4all.contract import IOSpec
from one4all.data.sources.collections import SeriesCollection
from one4all.data.sources.table import SeriesData
from one4all.data.windows.forecast import ForecastProtocol, ForecastWindows
from one4all.data.windows.series import EvalSet, SeriesEvalWindows
from one4all.data.windows.short_term import ShortTermData, ShortTermProtocol
from one4all.errors import UserError
from one4all.marks import mark_names


@dataclass
class ZeroShotSeriesData:
    source: ShortTermData
    target: SeriesCollection
    test: EvalSet


@dataclass
class ZeroShotSeriesProtocol:
    """Series collections: train on `data` (e.g. M3 Other), test on `target` (e.g. M4 Hourly)."""

    target: Any
    lookback: float = 2.0
    draws_per_series: int = 10
    seed: int = 0
    rollout: bool = True
    source: ShortTermProtocol = field(init=False)

    def __post_init__(self) -> None:
        self.source = ShortTermProtocol(self.lookback, self.draws_per_series, self.seed)

    def load(self, data: Any) -> ZeroShotSeriesData:
        source = self.source.load(data)
        target = self.target.load()
        steps = target.horizon if self.rollout else min(target.horizon, source.collection.horizon)
        test = EvalSet.build(target.train, [t[:steps] for t in target.test], source.seq_len, target.seasonality)
        return ZeroShotSeriesData(source, target, test)

    def io_spec(self, data: ZeroShotSeriesData) -> IOSpec:
        return self.source.io_spec(data.source)

    def datasets(self, data: ZeroShotSeriesData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, Any]:
        return {**self.source.datasets(data.source, channel_independent, train_fraction, time_features),
                "test": SeriesEvalWindows(data.test)}

    def task_inputs(self, data: ZeroShotSeriesData) -> dict[str, Any]:
        return {}

    def describe(self, data: ZeroShotSeriesData) -> dict[str, Any]:
        return {"source": self.source.describe(data.source),
                "target": {**data.target.describe(), "n_seasonal_test_series": data.test.n_seasonal,
                           "input": f"last {data.source.seq_len} training points",
                           "scored_steps": data.test.y.shape[1],
                           "rollout_steps": -(-data.test.y.shape[1] // data.source.collection.horizon)}}

    def artifact_meta(self, data: ZeroShotSeriesData) -> dict[str, Any]:
        return {**self.source.artifact_meta(data.source), "zero_shot_target": data.target.name}


@dataclass
class ZeroShotCsvData:
    source: SeriesData
    target: SeriesData


@dataclass
class ZeroShotProtocol:
    """CSV files: train on `data` (e.g. ETTh1), test on `target`'s test split (e.g. exchange_rate)."""

    seq_len: int
    horizon: int
    target: Any
    source: ForecastProtocol = field(init=False)

    def __post_init__(self) -> None:
        self.source = ForecastProtocol(self.seq_len, self.horizon)

    def load(self, data: Any) -> ZeroShotCsvData:
        return ZeroShotCsvData(self.source.load(data), self.target.load(self.seq_len))

    def io_spec(self, data: ZeroShotCsvData) -> IOSpec:
        return self.source.io_spec(data.source)

    def datasets(self, data: ZeroShotCsvData, channel_independent: bool, train_fraction: float = 1.0,
                 time_features: str = "none") -> dict[str, Any]:
        src, tgt = data.source, data.target
        if not channel_independent and (src.n_channels != tgt.n_channels or src.target_channels != tgt.target_channels):
            raise UserError(f"zero-shot {src.name} -> {tgt.name}: this network mixes channels, so both need the same "
                            f"channel layout ({src.n_channels} vs {tgt.n_channels} channels); use a channel-"
                            "independent network or matching data.features / columns")
        if mark_names(time_features, src.freq) != mark_names(time_features, tgt.freq):
            raise UserError(f"zero-shot {src.name} ({src.freq}) -> {tgt.name} ({tgt.freq}): their {time_features} time "
                            "features differ; use model.time_features=none")
        sets = self.source.datasets(src, channel_independent, train_fraction, time_features)
        sets["test"] = ForecastWindows(tgt.rows("test"), self.seq_len, self.horizon, channel_independent,
                                       tgt.target_channels, marks=tgt.marks("test", time_features))
        return sets

    def task_inputs(self, data: ZeroShotCsvData) -> dict[str, Any]:
        return {**self.source.task_inputs(data.source), "test_scale": data.target.scaler.std}

    def describe(self, data: ZeroShotCsvData) -> dict[str, Any]:
        return {"source": self.source.describe(data.source),
                "target": {**self.source.describe(data.target), "scaler": "fitted on the target's training rows"}}

    def artifact_meta(self, data: ZeroShotCsvData) -> dict[str, Any]:
        return {**self.source.artifact_meta(data.source), "zero_shot_target": data.target.name}
