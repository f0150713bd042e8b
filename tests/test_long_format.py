"""Long-format data without training: parsing, per-series splits and scalers, windows, intervals, backtest maths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from one4all.backtest import cutoffs, evaluate, season_length
from one4all.conformal import Calibration, interval_bounds, interval_sides
from one4all.data.formats.long import frame_to_panel, is_long_format, read_long_frame
from one4all.data.sources.long import LongData
from one4all.data.windows.panel import PanelProtocol
from one4all.errors import UserError


def stores(lengths=(30, 24, 40), start="2024-01-01") -> pd.DataFrame:
    """Hourly series of different lengths and starts (series k starts k hours later), ids 10, 11, ..."""
    parts = []
    for k, n in enumerate(lengths):
        ds = pd.date_range(pd.Timestamp(start) + pd.Timedelta(hours=k), periods=n, freq="h")
        parts.append(pd.DataFrame({"unique_id": 10 + k, "ds": ds, "y": 100.0 * (k + 1) + np.arange(n),
                                   "price": np.arange(n) % 5 + 0.5 * k}))
    return pd.concat(parts, ignore_index=True)


def test_panel_keeps_every_series_and_fills_absent_steps():
    frame = stores().sample(frac=1.0, random_state=0)  # any row order
    frame = frame[~((frame["unique_id"] == 11) & frame["ds"].isin(pd.date_range("2024-01-01 05:00", periods=2,
                                                                                  freq="h")))]
    panel = frame_to_panel(frame, exog=["price"])
    assert sorted(panel.ids) == [10, 11, 12] and panel.freq == "h" and panel.columns == ["price", "y"]
    i = panel.ids.index(11)
    assert panel.lengths[i] == 24 and panel.starts[i] == pd.Timestamp("2024-01-01 01:00")
    # rows 05:00 and 06:00 of series 11 (it starts at 01:00: values 204, 205) were absent: interpolated
    np.testing.assert_allclose(panel.series(i)[:7, 1], [200, 201, 202, 203, 204, 205, 206])
    observed = panel.observed[panel.indptr[i]:panel.indptr[i + 1]]
    assert observed[:7].tolist() == [True, True, True, True, False, False, True]
    assert panel.ends()[panel.ids.index(12)] == pd.Timestamp("2024-01-01 02:00") + pd.Timedelta(hours=39)
    back = panel.to_frame("unique_id", "ds")
    assert len(back) == len(frame) and back["unique_id"].dtype.kind == "i"


def test_truncate_keeps_rows_up_to_the_cutoff():
    panel = frame_to_panel(stores())
    cut = panel.truncate(pd.Timestamp("2024-01-01 09:00"))
    # series start at 00:00, 01:00, 02:00: 10, 9 and 8 rows up to 09:00
    assert cut.lengths.tolist() == [10, 9, 8]
    np.testing.assert_array_equal(cut.series(1)[:, 0], panel.series(1)[:9, 0])


BAD = {
    "duplicate": (lambda f: pd.concat([f, f.iloc[[3]]]), "series 10 has two rows for 2024-01-01 03:00:00"),
    "no y column": (lambda f: f.drop(columns="y"), "lacks the target column 'y'"),
    "non-numeric y": (lambda f: f.assign(y=f["y"].astype(object).where(f.index != 5, "n/a")),
                      "column 'y' has a non-numeric value 'n/a' (data row 6, series 10"),
    "missing id": (lambda f: f.assign(unique_id=f["unique_id"].astype(object).where(f.index != 2, None)),
                   "missing 'unique_id' at data row 3"),
    "bad timestamp": (lambda f: f.assign(ds=f["ds"].astype(str).where(f.index != 4, "soon")),
                      "unparseable timestamp 'soon'"),
    "off grid": (lambda f: f.assign(ds=f["ds"].where(f.index != 7, pd.Timestamp("2024-01-01 06:30"))),
                 "series 10: timestamp 2024-01-01 06:30:00 is not on the h grid"),
    "long gap": (lambda f: f.assign(y=f["y"].where(~f.index.isin(range(40, 45)))),
                 "series 11: 'y' misses 5 steps in a row from 2024-01-01 11:00:00"),
    "integer time": (lambda f: f.assign(ds=np.arange(len(f))), "holds no timestamps"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_long_input_is_one_line_naming_the_problem(case):
    breaker, message = BAD[case]
    with pytest.raises(UserError, match=None) as err:
        frame_to_panel(breaker(stores()))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_format_detection_and_parquet(tmp_path):
    frame = stores()
    assert is_long_format(frame) and not is_long_format(frame.rename(columns={"y": "sales"}))
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    pd.testing.assert_frame_equal(read_long_frame(tmp_path / "s.parquet"), frame)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="could not be read as Parquet"):
        read_long_frame(tmp_path / "bad.parquet")


def test_per_series_split_scaler_and_named_skip(caplog):
    frame = pd.concat([stores(), pd.DataFrame({"unique_id": [99], "ds": [pd.Timestamp("2024-01-03")], "y": [1.0]})])
    data = LongData(frame=frame, val_size=6, test_size=4).load(seq_len=8, horizon=4)
    # need 8 + 4 + 6 + 4 = 22 rows: the 1-row series 99 is skipped by id, the others train
    assert data.panel.ids == [10, 11, 12] and data.skipped == {"99": "1 row < 22"}
    assert "skipping 1 series shorter than 22 rows" in caplog.text and "99 (1 row)" in caplog.text
    assert data.train_rows.tolist() == [20, 14, 30] and data.meta["n_train_rows"] == 64
    # each series is scaled with its own training rows only: y = 100 (k + 1) + t for t < train rows
    for k, n_train in enumerate([20, 14, 30]):
        t = np.arange(n_train)
        assert data.mean[k, -1] == pytest.approx(100.0 * (k + 1) + t.mean())
        assert data.std[k, -1] == pytest.approx(t.std())
    protocol = PanelProtocol(seq_len=8, horizon=4)
    sets = protocol.datasets(data, channel_independent=True)
    # train: n_train - 8 - 4 + 1 windows per series; val 6 - 4 + 1 = 3, test 4 - 4 + 1 = 1 per series
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (9 + 3 + 19, 9, 3)
    # window-major validation: the first 3 samples are the first window of each series
    batch = sets["val"].__getitems__([0, 1, 2, 3])
    assert batch["channel"].tolist() == [0, 1, 2, 0] and batch["x"].shape == (4, 8, 1)
    first = data.panel.indptr[1] + 14 - 8  # series 11: inputs start seq_len rows before its validation rows
    np.testing.assert_array_equal(batch["x"][1, :, 0].numpy(), data.scaled[first:first + 8, -1])
    np.testing.assert_array_equal(batch["y"][1, :, 0].numpy(), data.scaled[first + 8:first + 12, -1])
    assert protocol.task_inputs(data)["scale"].tolist() == data.std[:, -1].tolist()


def test_exogenous_inputs_reach_only_a_network_that_mixes_channels():
    data = LongData(frame=stores(), exog=["price"], split="all").load(seq_len=8, horizon=4)
    protocol = PanelProtocol(seq_len=8, horizon=4)
    joint = protocol.datasets(data, channel_independent=False)["train"].__getitems__([0])
    independent = protocol.datasets(data, channel_independent=True)["train"].__getitems__([0])
    assert joint["x"].shape == (1, 8, 2) and independent["x"].shape == (1, 8, 1) and joint["y"].shape == (1, 4, 1)
    assert "val" not in protocol.datasets(data, True) and data.meta["n_train_rows"] == 94
    assert LongData(frame=stores(), exog=["price"], features="S").load(8, 4).panel.columns == ["y"]


def test_cutoff_and_too_short_everywhere():
    data = LongData(frame=stores(), cutoff="2024-01-01 20:00", split="all").load(seq_len=8, horizon=4)
    assert data.panel.lengths.tolist() == [21, 20, 19]
    with pytest.raises(UserError, match="no series is long enough: seq_len=30 \\+ horizon=4 \\+ val_size=23 needs 57"):
        LongData(frame=stores()).load(seq_len=30, horizon=4)
    with pytest.raises(UserError, match="data=long needs data.path"):
        LongData()


def test_conformal_quantile_is_the_right_order_statistic():
    scores = np.arange(1.0, 10.0)[:, None] * [1.0, 2.0]  # 9 windows, 2 steps
    cal = Calibration.from_scores(scores[::-1])
    # ceil((9 + 1) * 0.8) = 8th smallest: 8 at step 1, 16 at step 2; ceil(10 * 0.5) = 5th
    assert cal.half_width(80).tolist() == [8.0, 16.0] and cal.half_width(50).tolist() == [5.0, 10.0]
    with pytest.raises(UserError, match="a 95% interval needs at least 19 calibration windows, the model has 9"):
        cal.half_width(95)
    again = Calibration.from_dict(cal.to_dict())
    assert again.half_width(80).tolist() == [8.0, 16.0]
    bounds = interval_bounds(np.array([[10.0, 20.0]]), np.array([[2.0]]), cal, [80])
    assert bounds["lo-80"].tolist() == [[-6.0, -12.0]] and bounds["hi-80"].tolist() == [[26.0, 52.0]]
    assert interval_sides([80, 95]) == ["lo-95", "lo-80", "hi-80", "hi-95"]


def test_many_scores_keep_a_conservative_rank():
    scores = np.arange(1, 1001, dtype=float)[:, None]
    cal = Calibration.from_scores(scores)
    assert len(cal.ranks) == 101
    # integer levels are exact: ceil(1001 * 0.8) = 801; 85.3% (rank 854) rounds up to the 86% rank 861
    assert cal.half_width(80)[0] == 801 and cal.half_width(85)[0] == 851 and cal.half_width(85.3)[0] == 861


def test_cutoffs_and_evaluation_by_hand():
    history = stores(lengths=(40, 40))
    panel = frame_to_panel(history)
    cuts = cutoffs(panel, n_windows=3, step_size=5, h=4)
    # latest timestamp: series 11 ends at 01:00 + 39 h = 2024-01-02 16:00; cutoffs 4, 9, 14 steps earlier
    assert [str(c) for c in cuts] == ["2024-01-02 02:00:00", "2024-01-02 07:00:00", "2024-01-02 12:00:00"]
    truth = history.set_index(["unique_id", "ds"])["y"]
    rows = []
    for c in cuts:
        for uid in (10, 11):
            for step in range(1, 5):
                ds = c + pd.Timedelta(hours=step)
                if (uid, ds) in truth.index:
                    y = truth[(uid, ds)]
                    m = y + step * (uid - 9)
                    rows.append({"unique_id": uid, "ds": ds, "cutoff": c, "y": y, "M": m,
                                 "M-lo-80": m - 1.5, "M-hi-80": m + 1.5})
    cv = pd.DataFrame(rows)
    summary = evaluate(cv, history, level=[80])
    err = (cv["M"] - cv["y"]).abs()
    by_step = summary["by_step"].set_index("step")
    assert by_step.loc[2, "mae"] == pytest.approx(err[cv["ds"] - cv["cutoff"] == pd.Timedelta(hours=2)].mean())
    for c, group in cv.groupby("cutoff"):
        row = summary["by_cutoff"].set_index("cutoff").loc[c]
        assert row["mse"] == pytest.approx(((group["M"] - group["y"]) ** 2).mean())
    # covered while |error| <= 1.5: step 1 of series 10 (error = step), never series 11 (error = 2 step)
    covered = (cv["M"] - cv["y"]).abs() <= 1.5
    assert covered.sum() == 3
    assert summary["overall"]["coverage_80"] == pytest.approx(covered.mean())
    # MASE: a linear series' seasonal-naive (m = 24) in-sample error is 24 per step
    assert summary["season_length"] == 24
    assert summary["overall"]["mase"] == pytest.approx(err.mean() / 24)
    assert summary["overall"]["smape"] == pytest.approx(np.mean(200 * err / (cv["y"].abs() + cv["M"].abs())))


@pytest.mark.parametrize(("freq", "period"), [("h", 24), ("30min", 48), ("D", 7), ("W", 52), ("MS", 12),
                                              ("QS", 4), ("YS", 1), ("2h", 12), ("7h", 1)])
def test_season_length(freq, period):
    assert season_length(freq) == period


def test_calibration_too_small_for_any_level():
    with pytest.raises(UserError, match="no validation windows"):
        Calibration.from_scores(np.empty((0, 3)))
    assert math.isfinite(Calibration.from_scores(np.ones((4, 1))).half_width(80)[0])
