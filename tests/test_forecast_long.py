"""Forecasting for practitioners, trained end to end on tiny networks: many series (long format), fit modes,
intervals, backtests, and bad input on the new paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from one4all import Forecaster
from one4all.backtest import evaluate
from one4all.cli import main
from one4all.data.formats.m4 import m4_long_frame
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES

HORIZON, SEQ_LEN = 24, 96
TINY = [*TINY_OVERRIDES, "trainer.max_steps=3"]


def m4_hourly_long(data_root: Path, n_series: int = 60) -> pd.DataFrame:
    """Real M4 Hourly training series in long format: 300 + 7 i rows, ending i hours apart (as the acceptance check)."""
    wide = pd.read_csv(data_root / "M4" / "Train" / "Hourly-train.csv").iloc[:n_series]
    parts = []
    for i, row in wide.iterrows():
        y = row.iloc[1:].dropna().to_numpy(float)[-(300 + 7 * i):]
        ds = pd.date_range(end=pd.Timestamp("2020-01-01") + pd.Timedelta(hours=i), periods=len(y), freq="h")
        parts.append(pd.DataFrame({"unique_id": row.iloc[0], "ds": ds, "y": y}))
    return pd.concat(parts, ignore_index=True)


def waves(n_series: int = 4, length: int = 160) -> pd.DataFrame:
    """Small noisy daily-seasonal hourly series of different lengths and levels, all ending together."""
    rng = np.random.default_rng(0)
    parts = []
    for k in range(n_series):
        t = np.arange(length - 8 * k)
        y = 10 + 5 * k + 3 * np.sin(2 * np.pi * t / 24) + 0.02 * t + 0.3 * rng.standard_normal(len(t))
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range(end="2024-01-08", periods=len(t),
                                                                              freq="h"), "y": y}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def m4(data_root) -> pd.DataFrame:
    return m4_hourly_long(data_root)


@pytest.fixture(scope="module")
def fitted(m4) -> Forecaster:
    return Forecaster(horizon=HORIZON, seq_len=SEQ_LEN, overrides=TINY).fit(m4)


def test_one_global_model_forecasts_every_series_with_intervals(fitted, m4):
    out = fitted.predict(m4, level=[80])
    assert list(out.columns) == ["unique_id", "ds", "One4All", "One4All-lo-80", "One4All-hi-80"]
    assert len(out) == 60 * HORIZON and out["unique_id"].nunique() == 60
    assert (out.groupby("unique_id").size() == HORIZON).all()
    first = out.groupby("unique_id")["ds"].min()
    last = m4.groupby("unique_id")["ds"].max()
    assert ((first - last.loc[first.index]) == pd.Timedelta(hours=1)).all()
    assert (out["One4All-lo-80"] < out["One4All"]).all() and (out["One4All"] < out["One4All-hi-80"]).all()
    data = fitted.metrics["data"]
    # one global model over 60 series; each holds out its last 2 x 24 rows for validation only
    assert data["n_series"] == 60 and data["n_series_skipped"] == 0
    assert data["n_train_rows"] == len(m4) - 60 * 48 and data["n_rows"] == len(m4)
    # 60 x (48 - 24 + 1) = 1500 validation windows, evenly thinned to conformal.max_windows
    assert fitted.metrics["intervals"]["n_windows"] == 1000


def test_predict_runs_all_series_in_one_batched_pass(fitted, m4):
    calls = []
    hook = fitted.model.network.register_forward_hook(lambda module, args, output: calls.append(args[0].shape))
    try:
        fitted.predict(m4)
    finally:
        hook.remove()
    assert calls == [torch.Size([60, SEQ_LEN, 1])]
    assert fitted.model.manifest["device"] == "cpu" and fitted.model.manifest["precision"] == "32-true"


def test_save_load_and_cli_forecast_give_the_same_long_forecast(fitted, m4, tmp_path):
    expected = fitted.predict(m4, level=[80, 95])
    saved = fitted.save(tmp_path / "model")
    loaded = Forecaster.load(saved)
    assert (loaded.horizon, loaded.seq_len, loaded.id_col) == (HORIZON, SEQ_LEN, "unique_id")
    pd.testing.assert_frame_equal(loaded.predict(m4, level=[80, 95]), expected)
    m4.to_parquet(tmp_path / "history.parquet", index=False)
    assert main(["forecast", "--run", str(saved), "--csv", str(tmp_path / "history.parquet"), "--out",
                 str(tmp_path / "f.csv"), "--level", "80", "95", "--plot", str(tmp_path / "f.png")]) == 0
    got = pd.read_csv(tmp_path / "f.csv", parse_dates=["ds"])
    assert list(got.columns) == ["unique_id", "ds", "One4All", "One4All-lo-95", "One4All-lo-80", "One4All-hi-80",
                                 "One4All-hi-95"]
    np.testing.assert_allclose(got.iloc[:, 2:].to_numpy(), expected.iloc[:, 2:].to_numpy(), rtol=1e-12)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # commands that serve table models refuse a long-format one in one line
    assert main(["export", "--run", str(saved), "--out", str(tmp_path / "pkg")]) == 2
    assert not (tmp_path / "pkg").exists()


def test_cross_validation_rows_and_per_cutoff_errors(fitted, m4):
    cv = fitted.cross_validation(m4, n_windows=3, step_size=24, level=[80])
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "One4All", "One4All-lo-80", "One4All-hi-80"]
    assert cv["cutoff"].nunique() == 3 and np.isfinite(cv["One4All"]).all()
    # the latest series ends 2020-01-03 11:00: cutoffs 24, 48 and 72 hours before it
    assert [str(c) for c in sorted(cv["cutoff"].unique())] == ["2019-12-31 11:00:00", "2020-01-01 11:00:00",
                                                              "2020-01-02 11:00:00"]
    assert ((cv["ds"] > cv["cutoff"]) & (cv["ds"] <= cv["cutoff"] + pd.Timedelta(hours=HORIZON))).all()
    truth = m4.set_index(["unique_id", "ds"])["y"]
    np.testing.assert_array_equal(cv["y"].to_numpy(), truth.loc[list(zip(cv["unique_id"], cv["ds"]))].to_numpy())
    summary = evaluate(cv, m4, level=[80])
    by_cutoff = summary["by_cutoff"].set_index("cutoff")
    for cutoff, rows in cv.groupby("cutoff"):
        error = rows["One4All"] - rows["y"]
        assert by_cutoff.loc[cutoff, "mae"] == pytest.approx(error.abs().mean(), rel=1e-12)
        assert by_cutoff.loc[cutoff, "mse"] == pytest.approx((error ** 2).mean(), rel=1e-12)
        assert by_cutoff.loc[cutoff, "n_points"] == len(rows)
    assert list(summary["by_step"]["step"]) == list(range(1, HORIZON + 1))
    # the interoperability promise: utilsforecast reads the frame as it reads neuralforecast's
    from utilsforecast.evaluation import evaluate as uf_evaluate
    from utilsforecast.losses import mae

    scores = uf_evaluate(cv, metrics=[mae])
    per_pair = cv.assign(e=(cv["One4All"] - cv["y"]).abs()).groupby(["unique_id", "cutoff"])["e"].mean()
    np.testing.assert_allclose(np.sort(scores["One4All"].to_numpy()), np.sort(per_pair.to_numpy()))


def test_80_percent_intervals_cover_about_80_percent_of_a_real_backtest(data_root):
    # 60 real M4 Hourly series at full length, ending together; a 3-step tiny network is a poor
    # forecaster, but calibrated on its own held-out errors its 80% intervals should still cover
    # about 80% of what happened after 4 cutoffs (measured: 0.7741; docs/guides/forecasting.md)
    m4 = m4_long_frame(data_root / "M4" / "Train" / "Hourly-train.csv", series=60)
    cv = Forecaster(horizon=HORIZON, seq_len=2 * HORIZON, overrides=TINY).cross_validation(
        m4, n_windows=4, step_size=HORIZON, level=[80])
    assert len(cv) == 4 * 60 * HORIZON
    summary = evaluate(cv, m4, level=[80])
    assert 0.70 <= summary["overall"]["coverage_80"] <= 0.90, summary["by_cutoff"]


def test_refit_trains_on_every_row(tmp_path):
    frame = waves()
    settings = dict(horizon=12, seq_len=24, overrides=TINY)

    def trained(df: pd.DataFrame, refit: bool, name: str) -> tuple[dict, dict]:
        run = tmp_path / name
        forecaster = Forecaster(**settings, run_dir=run).fit(df, refit=refit)
        return forecaster.metrics, load_file(str(run / "model" / "trainable.safetensors"))

    metrics, weights = trained(frame, True, "refit")
    assert metrics["data"]["n_train_rows"] == len(frame) and metrics["data"]["split"] == "all"
    assert metrics["fit"]["refit"] and metrics["fit"]["selection"]["n_train_rows"] == len(frame) - 4 * 31
    assert (tmp_path / "refit" / "selection" / "model" / "model.json").is_file()
    assert metrics["intervals"]["n_windows"] == 4 * 20  # the selection run's held-out windows (12 + 19 rows)
    last = frame.index[-1]
    changed = frame.assign(y=frame["y"].where(frame.index != last, 1000.0))
    _, refit_changed = trained(changed, True, "refit_changed")
    _, holdout = trained(frame, False, "holdout")
    _, holdout_changed = trained(changed, False, "holdout_changed")
    # the last row is training data after a refit; in a holdout fit it is only validation data
    assert any(not torch.equal(weights[k], refit_changed[k]) for k in weights)
    assert all(torch.equal(holdout[k], holdout_changed[k]) for k in holdout)


def test_refit_per_window_backtest_and_cli(tmp_path, capsys):
    frame = waves()
    csv = tmp_path / "waves.csv"
    frame.to_csv(csv, index=False)
    cv = Forecaster(horizon=12, seq_len=24, overrides=TINY, run_dir=tmp_path / "api").cross_validation(
        frame, n_windows=2, step_size=6, refit=True)
    assert sorted(p.name for p in (tmp_path / "api" / "cross_validation").iterdir()) == ["fold_0", "fold_1"]
    fold_cfg = (tmp_path / "api" / "cross_validation" / "fold_1" / "config.yaml").read_text()
    assert f"cutoff: '{cv['cutoff'].max()}'" in fold_cfg
    run = tmp_path / "bt"
    args = ["backtest", "data=long", f"data.path={csv}", "task.seq_len=24", "task.horizon=12", *TINY,
            "backtest.n_windows=2", "backtest.step_size=6", "backtest.level=[80]", f"hydra.run.dir={run}"]
    assert main(args) == 0
    assert "backtest: 2 cutoffs, One4All: n_points=" in capsys.readouterr().out
    rows = pd.read_csv(run / "cross_validation.csv")
    report = json.loads((run / "backtest.json").read_text())
    by_step = pd.read_csv(run / "backtest_by_step.csv")
    assert len(by_step) == 12 and report["overall"]["n_points"] == len(rows) == 2 * 4 * 12
    covered = ((rows["One4All-lo-80"] <= rows["y"]) & (rows["y"] <= rows["One4All-hi-80"])).mean()
    assert report["overall"]["coverage_80"] == pytest.approx(covered)


BAD_LONG = {
    "duplicate id and ds": (lambda f: pd.concat([f, f.head(3)]), "has two rows for"),
    "no y column": (lambda f: f.drop(columns="y"), "lacks the target column 'y'"),
    "non-numeric y": (lambda f: f.assign(y=f["y"].astype(object).where(f.index != 7, "oops")),
                      "non-numeric value 'oops'"),
}


@pytest.mark.parametrize("case", list(BAD_LONG))
def test_bad_long_input_on_the_cli_exits_2_without_output(case, tmp_path, capsys):
    breaker, message = BAD_LONG[case]
    breaker(waves()).to_csv(tmp_path / "bad.csv", index=False)
    base = ["data=long", f"data.path={tmp_path / 'bad.csv'}", "task.seq_len=24", "task.horizon=12", *TINY]
    for command in ("train", "backtest"):
        run = tmp_path / command
        assert main([command, *base, f"hydra.run.dir={run}"]) == 2
        err = capsys.readouterr().err
        assert not run.exists() and err.count("\n") == 1 and message in err, err


def test_a_one_row_series_is_skipped_by_name(tmp_path, caplog):
    frame = pd.concat([waves(), pd.DataFrame({"unique_id": ["lonely"], "ds": [pd.Timestamp("2024-01-02")],
                                              "y": [3.0]})])
    forecaster = Forecaster(horizon=12, seq_len=24, overrides=TINY).fit(frame)
    assert forecaster.metrics["data"]["skipped"] == {"lonely": "1 row < 67"}
    assert "lonely (1 row)" in caplog.text
    out = forecaster.predict(frame)
    assert sorted(out["unique_id"].unique()) == ["s0", "s1", "s2", "s3"]
    assert "skipping 1 series with fewer than seq_len=24 rows: lonely" in caplog.text
    with pytest.raises(UserError, match="a 99% interval needs at least 99 calibration windows, the model has 80"):
        forecaster.predict(frame, level=[99])


def test_wide_fit_modes_and_intervals(tmp_path):
    t = np.arange(400)
    frame = pd.DataFrame({"date": pd.date_range("2024-03-01", periods=400, freq="h"),
                          "sales": 200 + 50 * np.sin(2 * np.pi * t / 24), "price": 9.5 + 0.01 * t})
    default = Forecaster(target="sales", horizon=12, features="S", seq_len=32, overrides=TINY).fit(frame)
    data = default.metrics["data"]
    # a user's table holds out only the validation rows (12 + 19: 20 windows): no test split, no test metrics
    assert data["split"] == "holdout" and data["rows"] == {"train": [0, 369], "val": [337, 400], "test": None}
    assert data["n_train_rows"] == 369 and not [k for k in default.metrics if k.startswith("test/")]
    out = default.predict(frame, level=[80])
    assert list(out.columns) == ["date", "sales", "sales-lo-80", "sales-hi-80"]
    assert (out["sales-lo-80"] < out["sales"]).all() and (out["sales"] < out["sales-hi-80"]).all()
    tested = Forecaster(target="sales", horizon=12, features="S", seq_len=32, overrides=TINY).fit(
        frame, val_size=24, test_size=48)
    assert tested.metrics["data"]["rows"]["test"] == [320, 400] and "test/mse" in tested.metrics
    assert tested.metrics["data"]["n_test_samples"] == 48 - 12 + 1
    refit = Forecaster(target="sales", horizon=12, features="S", seq_len=32, overrides=TINY).fit(frame, refit=True)
    assert refit.metrics["data"]["rows"] == {"train": [0, 400], "val": None, "test": None}
    assert refit.metrics["fit"]["selection"]["n_train_rows"] == 369 and "sales-hi-95" in refit.predict(
        frame, level=[95]).columns


def test_long_format_refuses_time_feature_marks_in_one_line(tmp_path, capsys):
    # long-format windows carry no per-sample marks: a network that reads them is refused before training
    waves().to_csv(tmp_path / "waves.csv", index=False)
    run = tmp_path / "run"
    args = ["train", "data=long", f"data.path={tmp_path / 'waves.csv'}", "task.seq_len=24", "task.horizon=12",
            *TINY, "model=timesnet", "model.time_features=timeF", f"hydra.run.dir={run}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "time_features=timeF" in err and "use model.time_features=none" in err, err
    assert not (run / "metrics.json").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["series"]["std"][1].__setitem__(0, 0.0), "data.series.std positive"),
    (lambda d: d["series"]["mean"].pop(), "one row per series and one number per column (4, 1), not (3, 1)"),
    (lambda d: d.__setitem__("freq", "fortnightly"), "data.freq='fortnightly' is not a pandas frequency"),
    (lambda d: d.__setitem__("columns", ["y", "y"]), "must be distinct column names"),
    (lambda d: d.__setitem__("columns", ["price", "y"]), "data.columns has 2 names but the network reads 1 channels"),
])
def test_a_corrupt_long_format_schema_is_refused_at_load(edit, message, tmp_path):
    from one4all.forecast import load_model

    Forecaster(horizon=12, seq_len=24, overrides=TINY, run_dir=tmp_path / "run").fit(waves())
    manifest_path = tmp_path / "run" / "model" / "model.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest["data"])
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="corrupt data schema") as err:
        load_model(tmp_path / "run")
    assert message in str(err.value) and "\n" not in str(err.value)
