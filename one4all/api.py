"""Python API for CSV users: `Forecaster(...).fit(df)`, `.predict(df)`, `.save(dir)`, `Forecaster.load(dir)`.

`fit` composes the same Hydra config as `one4all train data=csv ...` (with `data=frame`, the
DataFrame passed in memory) and runs the same training loop (`one4all.train.run`); `save`/`load`
use the model artifact of a run directory, so `one4all forecast --run DIR` reads what `save` wrote.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from one4all.config import compose_config
from one4all.data.formats.table import read_frame
from one4all.errors import UserError
from one4all.forecast import ForecastModel


def quote(value: Any) -> str:
    """A Hydra override value that stays the literal string (column '0' must not become the int 0)."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"


class Forecaster:
    """Train on a DataFrame with a date column and forecast the steps after its last row.

    `features`: M (every numeric column -> every column), S (target -> target), MS (all -> target).
    `overrides` are any further `one4all train` overrides, e.g. `["model.backbone.init=random",
    "trainer.max_steps=100"]`. `run_dir` keeps the training run (config, metrics, checkpoints);
    by default it is a temporary folder removed after `fit`.
    """

    def __init__(self, target: str | None = None, horizon: int = 24, features: str = "M",
                 seq_len: int | None = None, date_col: str | None = None, freq: str | None = None,
                 overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> None:
        self.target, self.horizon, self.features = target, horizon, features
        self.seq_len, self.date_col, self.freq = seq_len, date_col, freq
        self.overrides = list(overrides)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.model: ForecastModel | None = None
        self.metrics: dict[str, Any] | None = None

    def config_overrides(self) -> list[str]:
        """The `one4all train` overrides this forecaster composes (data=frame instead of data=csv)."""
        out = ["data=frame", f"task.horizon={int(self.horizon)}", f"data.features={quote(self.features)}"]
        optional = {"data.target": self.target, "task.seq_len": self.seq_len, "data.date_col": self.date_col,
                    "data.freq": self.freq}
        out += [f"{key}={int(v) if key == 'task.seq_len' else quote(v)}" for key, v in optional.items()
                if v is not None]
        return out + self.overrides

    def fit(self, df: pd.DataFrame) -> Forecaster:
        """Train (and test on the last 20% of rows) with the toolkit's training loop; returns self."""
        from one4all.train import run

        with tempfile.TemporaryDirectory(prefix="one4all-fit-") as scratch:
            target_dir = self.run_dir or Path(scratch) / "run"
            cfg, run_dir = compose_config([*self.config_overrides(), f"hydra.run.dir={quote(target_dir)}"])
            self.metrics = run(cfg, run_dir, data_inputs={"frame": df})
            # Predict with exactly what was saved, so fit -> predict equals save -> load -> predict.
            self.model = ForecastModel.load(run_dir / "model")
        return self

    def _fitted(self) -> ForecastModel:
        if self.model is None:
            raise UserError("this Forecaster is not trained; call .fit(df) or Forecaster.load(dir) first")
        return self.model

    def predict(self, data: pd.DataFrame | str | Path, horizon: int | None = None) -> pd.DataFrame:
        """Forecast the `horizon` (default: the model's) steps after the last row of `data` (a DataFrame
        or a CSV path with the training schema): a `date` column plus one column per forecast channel,
        in the data's original units."""
        model = self._fitted()
        frame, source = (data, "the DataFrame") if isinstance(data, pd.DataFrame) else (read_frame(data), str(data))
        return model.forecast(model.prepare(frame, source), horizon)

    def save(self, directory: str | Path) -> Path:
        """Write the model artifact (the `model/` folder format of a run directory)."""
        return self._fitted().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """A trained forecaster from `save`'s folder or a `one4all train` run directory."""
        model = ForecastModel.load(directory)
        schema = model.schema
        forecaster = cls(target=schema.get("target"), horizon=model.horizon, features=schema.get("features") or "M",
                         seq_len=model.seq_len, date_col=schema.get("date_col"), freq=schema.get("freq"))
        forecaster.model = model
        return forecaster
