"""`one4all forecast`: the real future of a CSV in original units, and every bad input refused cleanly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from one4all.artifact import MANIFEST, TENSORS, load_artifact
from one4all.cli import main
from one4all.data.splits import StandardScaler
from tests.conftest import TINY_OVERRIDES

SEQ_LEN, HORIZON = 48, 24
FAST = [*TINY_OVERRIDES, f"task.seq_len={SEQ_LEN}", f"task.horizon={HORIZON}", "trainer.max_steps=2",
        "data.eval_batch_size=4000"]


@pytest.fixture(scope="module")
def exchange(data_root) -> Path:
    return data_root / "exchange_rate" / "exchange_rate.csv"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, exchange) -> Path:
    run = tmp_path_factory.mktemp("fc") / "run"
    assert main(["train", "data=csv", f"data.path={exchange}", "data.target=OT", *FAST, f"hydra.run.dir={run}"]) == 0
    return run


def forecast(run: Path, csv: Path, out: Path, *extra: str) -> int:
    return main(["forecast", "--run", str(run), "--csv", str(csv), "--out", str(out), *extra])


def test_future_dates_and_original_units(run_dir, exchange, tmp_path):
    out, png = tmp_path / "future.csv", tmp_path / "future.png"
    assert forecast(run_dir, exchange, out, "--plot", str(png)) == 0
    got = pd.read_csv(out)
    assert list(got.columns) == ["date", "0", "1", "2", "3", "4", "5", "6", "OT"]
    # the file ends 2010/10/10 (daily): the forecast is 2010-10-11 .. 2010-11-03
    assert got["date"].tolist() == [str(d.date()) for d in pd.date_range("2010-10-11", "2010-11-03", freq="D")]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same numbers by hand: scale the last 48 rows, run the network per channel, unscale.
    network, manifest = load_artifact(run_dir / "model")
    scaler = StandardScaler.from_dict(manifest["data"]["scaler"])
    tail = pd.read_csv(exchange).iloc[-SEQ_LEN:, 1:].to_numpy(dtype=np.float32)  # tables hold float32
    x = torch.from_numpy(scaler.transform(tail)).T.unsqueeze(-1).contiguous()  # [8 channels, 48, 1]
    with torch.no_grad():
        expected = scaler.inverse(network(x)[..., 0].T.double().numpy())
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), expected, rtol=1e-12)


def test_constant_history_forecasts_that_constant_in_data_units(run_dir, exchange, tmp_path):
    # Instance norm maps a flat window to 0 and back: forecast = level + net(0) * sqrt(1e-5) * std,
    # so a flat OT of 12.5 (far outside the training range ~0.4-0.9) must come back as ~12.5.
    frame = pd.read_csv(exchange).iloc[-100:]
    frame["OT"] = 12.5
    path = tmp_path / "flat.csv"
    frame.to_csv(path, index=False)
    assert forecast(run_dir, path, tmp_path / "f.csv", "--horizon", "6") == 0
    got = pd.read_csv(tmp_path / "f.csv")
    assert len(got) == 6 and np.allclose(got["OT"], 12.5, atol=0.01)


def test_extra_columns_are_ignored_with_a_notice(run_dir, exchange, tmp_path, caplog):
    frame = pd.read_csv(exchange).iloc[-60:]
    frame.insert(1, "note", "x")
    frame["flag"] = True
    frame.to_csv(tmp_path / "extra.csv", index=False)
    assert forecast(run_dir, tmp_path / "extra.csv", tmp_path / "f.csv") == 0
    assert "ignoring columns not seen in training: note, flag" in caplog.text
    assert len(pd.read_csv(tmp_path / "f.csv")) == HORIZON


def test_vic_elec_half_hourly_utc_with_boolean_column(tmp_path, caplog):
    run = tmp_path / "vic"
    vic = "pkg://tsdata.fpp3/vic_elec.csv"
    assert main(["train", "data=csv", f"data.path={vic}", "data.target=Demand", "data.features=MS",
                 *FAST, f"hydra.run.dir={run}"]) == 0
    assert "ignoring columns Date (non-numeric), Holiday (boolean)" in caplog.text
    from one4all.paths import resolve_data_file

    src = resolve_data_file(None, vic)
    assert forecast(run, src, tmp_path / "f.csv") == 0
    lines = (tmp_path / "f.csv").read_text().splitlines()
    assert lines[0] == "date,Demand" and len(lines) == HORIZON + 1
    # the series ends 2014-12-31T12:30:00Z: the zone is kept, steps continue every 30 minutes
    assert lines[1].startswith("2014-12-31 13:00:00+00:00,") and lines[-1].startswith("2015-01-01 00:30:00+00:00,")
    demand = np.array([float(line.split(",")[1]) for line in lines[1:]])
    assert 1000 < demand.mean() < 10000  # MW, as the input (last observed 3809)


# --- bad input: one line naming problem and fix, exit code 2, no output file -----------------------

def _exchange_variant(exchange: Path, tmp_path: Path, edit) -> Path:
    frame = pd.read_csv(exchange).iloc[-120:].reset_index(drop=True)
    path = tmp_path / "bad.csv"
    result = edit(frame)
    if isinstance(result, (bytes, str)):
        path.write_bytes(result if isinstance(result, bytes) else result.encode())
    else:
        result.to_csv(path, index=False)
    return path


def _set(frame, row, col, value):
    frame[col] = frame[col].astype(object)
    frame.loc[row, col] = value
    return frame


BAD_CSV = {
    "not a csv (binary)": (lambda f: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not a CSV"),
    "not a csv (ragged)": (lambda f: "date,OT\n2020-01-01,1\n2020-01-02,1,2,3\n", "could not be parsed as CSV"),
    "header only": (lambda f: "date,0,1,2,3,4,5,6,OT\n", "has a header but no data rows"),
    "no date column": (lambda f: f.drop(columns=["date"]), "no date column found"),
    "unparseable timestamp": (lambda f: _set(f, 5, "date", "someday"),
                              "unparseable timestamp 'someday' in column 'date' at data row 6"),
    "duplicated timestamps": (lambda f: _set(f, 5, "date", f.loc[4, "date"]), "duplicated timestamp 2010-06-17"),
    "non-monotonic dates": (lambda f: f.iloc[[*range(10), 11, 10, *range(12, 120)]],
                            "not in increasing order (2010-06-23 00:00:00 at data row 12 comes after 2010-06-24"),
    "irregular frequency": (lambda f: f.drop(index=[20, 41, 50]), "cannot infer a regular frequency"),
    "other frequency": (lambda f: f.iloc[::2], "has frequency 2D but the model was trained on D data"),
    "target missing": (lambda f: f.drop(columns=["OT"]), "lacks column(s) ['OT'] the model was trained on"),
    "channel set differs": (lambda f: f.drop(columns=["3", "5"]), "lacks column(s) ['3', '5']"),
    "too few rows": (lambda f: f.iloc[:40], "has 40 rows; the model needs at least its seq_len=48"),
    "nan beyond policy": (lambda f: _set(f, slice(30, 33), "2", np.nan),
                          "column '2' has 4 consecutive missing/inf values (from data row 31)"),
    "inf beyond policy": (lambda f: _set(f, slice(60, 79), "OT", np.inf), "column 'OT' has 20 consecutive"),
    "non-numeric value": (lambda f: _set(f, 7, "OT", "n.a."), "non-numeric value 'n.a.' at data row 8"),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv(case, run_dir, exchange, tmp_path, capsys):
    edit, message = BAD_CSV[case]
    path = _exchange_variant(exchange, tmp_path, edit)
    out, png = tmp_path / "out" / "f.csv", tmp_path / "out" / "f.png"
    assert forecast(run_dir, path, out, "--plot", str(png)) == 2
    assert_clean_failure(capsys, message, out.parent)


def assert_clean_failure(capsys, message: str, out_dir: Path) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_short_nan_runs_are_interpolated(run_dir, exchange, tmp_path):
    path = _exchange_variant(exchange, tmp_path, lambda f: _set(f, slice(77, 79), "OT", np.nan))
    assert forecast(run_dir, path, tmp_path / "f.csv") == 0


def test_missing_csv_and_horizon_beyond_the_model(run_dir, exchange, tmp_path, capsys):
    out = tmp_path / "out" / "f.csv"
    assert forecast(run_dir, tmp_path / "nope.csv", out) == 2
    assert_clean_failure(capsys, "data file not found", out.parent)
    assert forecast(run_dir, exchange, out, "--horizon", "25") == 2
    assert_clean_failure(capsys, "horizon 25 is outside 1..24 (the model's horizon); retrain with task.horizon=25",
                         out.parent)
    assert forecast(run_dir, exchange, out, "--plot", str(tmp_path / "out" / "f.gif")) == 2
    assert_clean_failure(capsys, "end the file name in .png, .svg or .pdf", out.parent)
    assert forecast(run_dir, exchange, exchange) == 2  # would overwrite the input
    assert_clean_failure(capsys, "is the input CSV", out.parent)
    (tmp_path / "afile").write_text("")
    # the plot cannot be written (its folder is a file): found before anything is written
    assert forecast(run_dir, exchange, out, "--plot", str(tmp_path / "afile" / "f.png")) == 2
    assert_clean_failure(capsys, f"{tmp_path / 'afile'} is a file, not a folder; choose another location", out.parent)


def _broken_copy(run_dir: Path, tmp_path: Path, breaker) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir / "model", copy / "model")
    breaker(copy / "model")
    return copy


def _edit_manifest(edit):
    def breaker(model: Path) -> None:
        manifest = json.loads((model / MANIFEST).read_text())
        edit(manifest)
        (model / MANIFEST).write_text(json.dumps(manifest))
    return breaker


BAD_ARTIFACT = {
    "run dir missing": (lambda m: shutil.rmtree(m.parent), "run directory not found"),
    "manifest missing": (lambda m: (m / MANIFEST).unlink(), "no model artifact"),
    "manifest not json": (lambda m: (m / MANIFEST).write_text('{"format": "one4all-art'), "corrupt artifact manifest"),
    "tensors truncated": (lambda m: (m / TENSORS).write_bytes((m / TENSORS).read_bytes()[:100]), "corrupt or missing"),
    "newer version": (_edit_manifest(lambda d: d.update(version=99)), "artifact version 99 is not supported"),
    "no data schema": (_edit_manifest(lambda d: d.pop("data")), "lacks the data schema"),
    "shapes disagree": (_edit_manifest(lambda d: d["network"]["adapter"].update(rank=8)), "do not fit the network"),
    "not a forecaster": (_edit_manifest(lambda d: d["io"].update(kind="reconstruct")), "not a forecaster"),
}


@pytest.mark.parametrize("case", list(BAD_ARTIFACT))
def test_bad_artifact(case, run_dir, exchange, tmp_path, capsys):
    breaker, message = BAD_ARTIFACT[case]
    broken = _broken_copy(run_dir, tmp_path, breaker)
    out = tmp_path / "out" / "f.csv"
    assert forecast(broken, exchange, out) == 2
    assert_clean_failure(capsys, message, out.parent)


def test_training_bad_input_writes_no_run(tmp_path, exchange, capsys):
    small = tmp_path / "small.csv"
    pd.read_csv(exchange).iloc[:200].to_csv(small, index=False)
    cases = {
        "task.seq_len=48 data.target=nope data.features=S": "target column 'nope' not found",
        "task.seq_len=96 data.split=ratio": "200 rows are too few: seq_len=96 + horizon=24 with a 70%/10%/20% split "
                                            "needs at least 231",
        "task.seq_len=160": "200 rows are too few: seq_len=160 + horizon=24 training rows plus val_size=48 and "
                            "test_size=0 held-out rows need at least 232",
        "task.seq_len=48 data.val_size=12": "data.val_size=12 is below the horizon 24",
    }
    for override, message in cases.items():
        run = tmp_path / "never"
        code = main(["train", "data=csv", f"data.path={small}", *TINY_OVERRIDES, f"task.horizon={HORIZON}",
                     *override.split(), f"hydra.run.dir={run}"])
        err = capsys.readouterr().err
        assert code == 2 and not run.exists() and err.count("\n") == 1 and message in err, err


def test_small_csv_trains_with_the_quickstart_schedule(tmp_path):
    # 200 daily rows give one training batch per epoch, far fewer than the quickstart's 50-step
    # validation interval, which therefore counts across epochs; max_steps (not max_epochs) ends the run.
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=200, freq="D"),
                          "y": np.sin(np.arange(200) / 7.0)})
    frame.to_csv(tmp_path / "small.csv", index=False)
    run = tmp_path / "run"
    args = ["train", "data=csv", f"data.path={tmp_path / 'small.csv'}", "data.split=ratio", "task.seq_len=24",
            "task.horizon=12", "data.batch_size=64", "trainer.max_steps=52", *TINY_OVERRIDES, f"hydra.run.dir={run}"]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # train rows int(0.7 * 200) = 140 -> 140 - 24 - 12 + 1 = 105 windows: one batch of 64 per epoch
    # (training drops the partial batch), so 52 steps are 52 epochs; validation ran at step 50
    assert metrics["data"]["n_train_samples"] == 105
    assert metrics["run"]["global_step"] == 52 and metrics["run"]["epochs"] == 52
    assert metrics["run"]["selected_checkpoint"] == "best"
