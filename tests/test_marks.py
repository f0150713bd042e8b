"""Time-feature marks: the feature sets, their values, who computes them, and who reads them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from one4all.config import compose_config
from one4all.errors import UserError
from one4all.forecast import ForecastModel
from one4all.marks import compute_marks, mark_names
from one4all.train import build


@pytest.mark.parametrize("freq,names", [
    ("h", ("hour_of_day", "day_of_week", "day_of_month", "day_of_year")),
    ("15min", ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year")),
    ("D", ("day_of_week", "day_of_month", "day_of_year")),
    ("B", ("day_of_week", "day_of_month", "day_of_year")),
    ("W-SUN", ("day_of_month", "week_of_year")),
    ("MS", ("month_of_year",)),
    ("QS-JAN", ("month_of_year",)),
])
def test_timef_set_follows_the_sampling_frequency(freq, names):
    assert mark_names("timeF", freq) == names


def test_fixed_fields_add_the_quarter_hour_below_hourly():
    assert mark_names("fixed", "h") == ("month", "day", "weekday", "hour")
    assert mark_names("fixed", "15min") == ("month", "day", "weekday", "hour", "quarter_hour")


def test_timef_values_are_scaled_calendar_positions():
    # 2016-07-01 00:00 is a Friday (weekday 4), day 183 of a leap year; 2016-12-31 23:00 is a Saturday.
    stamps = pd.DatetimeIndex(["2016-07-01 00:00", "2016-12-31 23:00"])
    marks = compute_marks(stamps, "timeF", "h")
    assert marks.dtype == np.float32 and marks.shape == (2, 4)
    np.testing.assert_allclose(marks[0], [-0.5, 4 / 6 - 0.5, -0.5, 182 / 365 - 0.5], atol=1e-7)
    np.testing.assert_allclose(marks[1], [0.5, 5 / 6 - 0.5, 30 / 30 - 0.5, 365 / 365 - 0.5], atol=1e-7)
    assert compute_marks(stamps, "fixed", "h").tolist() == [[7, 1, 4, 0], [12, 31, 5, 23]]


@pytest.mark.parametrize("kind,freq,fix", [("timeF", None, "timestamps"), ("timeF", "YS", "none"),
                                           ("timeF_typo", "h", "timeF")])
def test_marks_that_cannot_exist_are_one_clear_error(kind, freq, fix):
    with pytest.raises(UserError, match=fix):
        mark_names(kind, freq)


def test_forecast_windows_carry_the_marks_of_their_input_steps(tiny_overrides):
    run = build(compose_config(["experiment=long_term/etth1_96_timesnet", *tiny_overrides])[0])
    assert run.network.time_features == "timeF" and run.io.freq == "h"
    batch = run.datamodule.datasets["val"].__getitems__([0, 5])
    assert batch["x_mark"].shape == (2, 96, 4)
    start = run.loaded.borders.val[0]
    expected = compute_marks(run.loaded.timestamps[start + 5:start + 5 + 96], "timeF", "h")
    assert torch.equal(batch["x_mark"][1], torch.from_numpy(expected))
    # TimesNet reads them: other dates, another forecast
    shifted = batch["x_mark"].roll(7, dims=1)
    with torch.no_grad():
        assert not torch.equal(run.network(batch["x"], marks=batch["x_mark"]), run.network(batch["x"], marks=shifted))


def test_windows_carry_no_marks_for_a_network_that_reads_none(tiny_overrides):
    run = build(compose_config(["experiment=long_term/etth1_96_timesnet", *tiny_overrides,
                                "model.time_features=none"])[0])
    assert "x_mark" not in run.datamodule.datasets["train"].__getitems__([0])


def test_imputation_network_reads_the_marks_gpt4ts_passes(tiny_overrides):
    run = build(compose_config(["experiment=imputation/etth1_mask12", *tiny_overrides])[0])
    batch = run.datamodule.datasets["test"].__getitems__([0, 1])
    assert batch["x_mark"].shape == (2, 96, 4)
    run.network.eval()
    with torch.no_grad():
        with_marks = run.network(batch["x"], batch["mask"], marks=batch["x_mark"])
        other_dates = run.network(batch["x"], batch["mask"], marks=batch["x_mark"].flip(1))
    assert not torch.equal(with_marks, other_dates)


@pytest.mark.parametrize("experiment", ["long_term/etth1_96", "anomaly/msl_c1", "short_term/m4_hourly"])
def test_marks_are_refused_where_the_model_or_data_has_none(experiment, tiny_overrides):
    cfg, _ = compose_config([f"experiment={experiment}", *tiny_overrides, "model.time_features=timeF",
                             "model.channel_embedding=linear"])
    with pytest.raises(UserError, match="time_features=none"):
        build(cfg)


def test_forecast_computes_the_marks_of_the_input_dates(tmp_path, tiny_overrides, data_root):
    from one4all.cli import main

    run_dir = tmp_path / "timesnet"
    assert main(["train", "experiment=long_term/etth1_96_timesnet", *tiny_overrides, "trainer.max_steps=2",
                 "trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}"]) == 0
    model = ForecastModel.load(run_dir)
    frame = pd.read_csv(data_root / "ETTh1" / "ETTh1.csv").iloc[:200]
    out = model.forecast(model.prepare(frame))
    assert len(out) == 96 and np.isfinite(out.drop(columns="date").to_numpy()).all()
    # The same values one day and five hours later: other marks, another forecast.
    later = frame.assign(date=pd.to_datetime(frame["date"]) + pd.Timedelta(hours=29))
    moved = model.forecast(model.prepare(later))
    assert (moved["date"] - out["date"]).eq(pd.Timedelta(hours=29)).all()
    assert not np.allclose(moved["OT"], out["OT"])
