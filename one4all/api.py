"""Python API: `Forecaster(...).fit(df)`, `.predict(df, level=[80])`, `.cross_validation(df, ...)`,
`.save(dir)`, `Forecaster.load(dir)`.

`fit` composes the same Hydra config as `one4all train` (`data=frame` for a wide table, `data=long`
for long-format series detected from the `unique_id, ds, y` columns, the DataFrame passed in
memory) and runs the same fit modes and training loop (`one4all.fitting.fit`); `save`/`load` use
the model artifact of a run directory, so `one4all forecast --run DIR` reads what `save` wrote.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from one4all.config import compose_config, quote
from one4all.data.formats.long import is_long_format, read_long_frame
from one4all.errors import UserError
from one4all.forecast import ForecastModel, TrainedForecaster, load_model
from one4all.panel_forecast import PanelForecastModel

__all__ = ["Forecaster", "quote"]


class Forecaster:
    """Train on a DataFrame and forecast the steps after its last row (after each series' last row).

    Wide tables: a date column and one column per channel; `features`: M (every numeric column ->
    every column), S (target -> target), MS (all -> target; channel-independent networks such as
    One-for-All then forecast the target from its own history only). Long format: columns
    `id_col, time_col, target_col` (default `unique_id, ds, y`), many series, one global model;
    `exog` lists extra input columns. `val_size` / `test_size` (steps held out at the end of every
    series) and `refit` (train again on every row after choosing the training length) set the fit
    mode. `overrides` are any further `one4all train` overrides, e.g. `["trainer.max_steps=100"]`.
    `run_dir` keeps the training runs; by default they go to a temporary folder removed afterwards.
    """

    def __init__(self, target: str | None = None, horizon: int = 24, features: str = "M",
                 seq_len: int | None = None, date_col: str | None = None, freq: str | None = None,
                 overrides: Sequence[str] = (), run_dir: str | Path | None = None, id_col: str = "unique_id",
                 time_col: str = "ds", target_col: str = "y", exog: Sequence[str] | None = None,
                 val_size: int | None = None, test_size: int = 0, refit: bool = False,
                 alias: str | None = None) -> None:
        self.target, self.horizon, self.features = target, horizon, features
        self.seq_len, self.date_col, self.freq = seq_len, date_col, freq
        self.id_col, self.time_col, self.target_col = id_col, time_col, target_col
        self.exog = list(exog) if exog else None
        self.val_size, self.test_size, self.refit, self.alias = val_size, test_size, refit, alias
        self.overrides = list(overrides)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.model: TrainedForecaster | None = None
        self.metrics: dict[str, Any] | None = None

    def is_long(self, frame: pd.DataFrame) -> bool:
        """Whether `frame` is long format (it has the id, time and target columns)."""
        return is_long_format(frame, self.id_col, self.time_col, self.target_col)

    def config_overrides(self, long: bool = False) -> list[str]:
        """The `one4all train` overrides this forecaster composes (data=frame or data=long instead of a path)."""
        if long:
            out = ["data=long", f"data.id_col={quote(self.id_col)}", f"data.time_col={quote(self.time_col)}",
                   f"data.target_col={quote(self.target_col)}"]
            optional = {"data.exog": self.exog, "data.freq": self.freq}
        else:
            out = ["data=frame", f"data.features={quote(self.features)}"]
            optional = {"data.target": self.target, "data.date_col": self.date_col, "data.freq": self.freq}
        out.append(f"task.horizon={int(self.horizon)}")
        for key, value in optional.items():
            if value is not None:
                out.append(f"{key}=[{','.join(quote(v) for v in value)}]" if isinstance(value, list)
                           else f"{key}={quote(value)}")
        for key, value in {"task.seq_len": self.seq_len, "data.val_size": self.val_size}.items():
            if value is not None:
                out.append(f"{key}={int(value)}")
        out += [f"data.test_size={int(self.test_size)}", f"refit={str(bool(self.refit)).lower()}"]
        return out + self.overrides

    def fit(self, df: pd.DataFrame, val_size: int | None = None, test_size: int | None = None,
            refit: bool | None = None) -> Forecaster:
        """Train with the toolkit's training loop; returns self.

        By default the last `val_size` (null: 2 x horizon, at least horizon + 19) steps of each series are
        held out for early stopping and interval calibration, `test_size` more for a test (none by default),
        and with `refit=True` a second model then trains on every row. Given here, they replace the
        forecaster's."""
        from one4all.fitting import fit

        if not isinstance(df, pd.DataFrame):
            raise UserError(f"expected a pandas DataFrame, got {type(df).__name__}; pass pd.read_csv(...) output")
        self.val_size = self.val_size if val_size is None else val_size
        self.test_size = self.test_size if test_size is None else test_size
        self.refit = self.refit if refit is None else refit
        with tempfile.TemporaryDirectory(prefix="one4all-fit-") as scratch:
            target_dir = self.run_dir or Path(scratch) / "run"
            cfg, run_dir = compose_config([*self.config_overrides(self.is_long(df)),
                                           f"hydra.run.dir={quote(target_dir)}"])
            self.metrics = fit(cfg, run_dir, data_inputs={"frame": df})
            # Predict with exactly what was saved, so fit -> predict equals save -> load -> predict.
            self.model = self._named(load_model(run_dir / "model"))
        return self

    def _named(self, model: TrainedForecaster) -> TrainedForecaster:
        if self.alias:
            model.manifest["alias"] = self.alias
        return model

    def _fitted(self) -> TrainedForecaster:
        if self.model is None:
            raise UserError("this Forecaster is not trained; call .fit(df) or Forecaster.load(dir) first")
        return self.model

    def predict(self, data: pd.DataFrame | str | Path, horizon: int | None = None,
                level: list[float] | None = None) -> pd.DataFrame:
        """Forecast `horizon` (default: the model's) steps after the last row of `data` (a DataFrame, or a
        CSV / Parquet path, with the training schema), in the data's units.

        Wide: a `date` column + one column per forecast channel. Long: `unique_id, ds, <model>` for every
        series with enough history. `level=[80, 95]` adds `-lo-`/`-hi-` interval bounds per level.
        """
        model = self._fitted()
        frame, source = (data, "the DataFrame") if isinstance(data, pd.DataFrame) else (
            read_long_frame(data), str(data))
        if not isinstance(model, (ForecastModel, PanelForecastModel)):
            raise UserError(f"unsupported model type {type(model).__name__}")
        return model.forecast(model.prepare(frame, source), horizon, level)

    def cross_validation(self, df: pd.DataFrame, n_windows: int = 1, step_size: int | None = None,
                         h: int | None = None, refit: bool = False, level: list[float] | None = None
                         ) -> pd.DataFrame:
        """Backtest on long-format `df`: rows `unique_id, ds, cutoff, y, <model>` (+ interval bounds).

        `n_windows` forecast origins (cutoffs), `step_size` steps apart (default `h`), the last `h`
        (default: the horizon) steps before the latest timestamp. A model trained as `fit` would, on the
        rows up to the first cutoff, forecasts every window; `refit=True` trains one per cutoff instead.
        The trained model of this forecaster (if any) is neither used nor changed.
        Summaries: `one4all.backtest.evaluate(cv, df, level=...)`.
        """
        from one4all.backtest import cross_validate

        if not isinstance(df, pd.DataFrame) or not self.is_long(df):
            raise UserError(f"cross_validation takes a long-format DataFrame with columns {self.id_col}, "
                            f"{self.time_col}, {self.target_col}; reshape a wide table with DataFrame.melt")
        overrides = self.config_overrides(long=True)
        with tempfile.TemporaryDirectory(prefix="one4all-cv-") as scratch:
            run_dir = self.run_dir / "cross_validation" if self.run_dir else Path(scratch)
            rows, _ = cross_validate(overrides, {"frame": df}, n_windows, step_size, h, refit, level, run_dir,
                                     alias=self.alias)
        return rows

    def save(self, directory: str | Path) -> Path:
        """Write the model artifact (the `model/` folder format of a run directory)."""
        return self._fitted().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """A trained forecaster from `save`'s folder or a `one4all train` run directory."""
        model = load_model(directory)
        schema = model.schema
        if isinstance(model, PanelForecastModel):
            forecaster = cls(horizon=model.horizon, seq_len=model.seq_len, freq=schema.get("freq"),
                             id_col=model.id_col, time_col=model.time_col, target_col=model.target_col,
                             exog=schema.get("exog") or None, alias=model.manifest.get("alias"))
        else:
            forecaster = cls(target=schema.get("target"), horizon=model.horizon,
                             features=schema.get("features") or "M", seq_len=model.seq_len,
                             date_col=schema.get("date_col"), freq=schema.get("freq"))
        forecaster.model = model
        return forecaster
