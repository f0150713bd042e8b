"""Anomaly scores for a user's own CSV (data=anomaly_csv): reading, labels, normal span, outputs, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from one4all.anomaly_files import ScoreTable
from one4all.cli import main
from one4all.data.formats.anomaly import read_anomaly_csv, read_windows, span_rows, window_labels
from one4all.data.sources.anomaly import AnomalyCsvData
from one4all.errors import UserError
from tests.conftest import TINY_OVERRIDES

SHORT = ["trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1", "model.d_ff=8"]


def nab_frame(n: int = 600, **extra: np.ndarray) -> pd.DataFrame:
    t = pd.date_range("2024-01-01", periods=n, freq="5min")
    v = np.sin(np.arange(n) / 10) + 0.05 * np.random.default_rng(0).standard_normal(n)
    v[500:505] += 4
    return pd.DataFrame({"timestamp": t, "value": v, **extra})


def write(tmp_path, frame: pd.DataFrame, name: str = "series.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_reads_values_and_labels_for_evaluation_only(tmp_path):
    labels = np.zeros(600, dtype=int)
    labels[500:505] = 1
    series = read_anomaly_csv(write(tmp_path, nab_frame(is_anomaly=labels)), label_col="is_anomaly")
    assert series.columns == ["value"] and series.train.shape == series.test.shape == (600, 1)
    assert series.labels.sum() == 5 and series.timestamps[0] == pd.Timestamp("2024-01-01")
    assert series.meta["freq"] == "5min" and series.meta["labels"] == "column is_anomaly"


def test_short_gaps_are_interpolated_and_recorded(tmp_path):
    frame = nab_frame()
    expected = (frame["value"][9] + frame["value"][12]) / 2  # rows 10-11 lie halfway between rows 9 and 12
    frame.loc[10:11, "value"] = np.nan
    series = read_anomaly_csv(write(tmp_path, frame))
    assert series.test[10:12, 0] == pytest.approx([2 * frame["value"][9] / 3 + frame["value"][12] / 3,
                                                   frame["value"][9] / 3 + 2 * frame["value"][12] / 3])
    assert series.test[10:12, 0].mean() == pytest.approx(expected)
    assert series.meta["repairs"] == ["interpolated 2 missing/inf value(s) in column 'value' (first at data row 11)"]
    assert read_anomaly_csv(write(tmp_path, nab_frame(), "clean.csv")).meta["repairs"] == []


def test_a_label_like_column_is_never_a_channel_by_accident(tmp_path):
    path = write(tmp_path, nab_frame(label=np.zeros(600, dtype=int)))
    with pytest.raises(UserError, match="data.label_col=label"):
        read_anomaly_csv(path)
    assert read_anomaly_csv(path, columns=["value"]).labels is None


def test_bad_labels_and_conflicting_label_sources_are_one_line_errors(tmp_path):
    path = write(tmp_path, nab_frame(flag=np.r_[np.zeros(599, dtype=int), 2]))
    with pytest.raises(UserError, match="value 2 at data row 600"):
        read_anomaly_csv(path, label_col="flag")
    with pytest.raises(UserError, match="either data.label_col or data.labels_file"):
        read_anomaly_csv(path, label_col="flag", labels_file=tmp_path / "w.csv")
    with pytest.raises(UserError, match="label column 'nope' not in"):
        read_anomaly_csv(path, label_col="nope")


def test_labelled_windows_from_csv_and_nab_json(tmp_path):
    stamps = pd.date_range("2024-01-01", periods=10, freq="h")
    (tmp_path / "w.csv").write_text("start,end\n2024-01-01 02:00,2024-01-01 03:00\n2024-01-01 08:00,2024-01-01 08:00\n")
    windows = read_windows(tmp_path / "w.csv", "series.csv")
    assert window_labels(stamps, windows, "w").tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 1, 0]
    nab = {"realKnownCause/other.csv": [], "realKnownCause/series.csv": [["2024-01-01 05:00:00.000000",
                                                                             "2024-01-01 06:00:00.000000"]]}
    (tmp_path / "combined_windows.json").write_text(json.dumps(nab))
    windows = read_windows(tmp_path / "combined_windows.json", "series.csv")
    assert window_labels(stamps, windows, "w").tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    with pytest.raises(UserError, match="no entry for missing.csv"):
        read_windows(tmp_path / "combined_windows.json", "missing.csv")
    with pytest.raises(UserError, match="holds none of the series' timestamps"):
        window_labels(stamps, [("2025-01-01", "2025-01-02")], "w")


def test_normal_span_selects_the_training_rows(tmp_path):
    stamps = pd.date_range("2024-01-01", periods=10, freq="D")
    assert span_rows(stamps, [None, "2024-01-04"], "s").tolist() == [True] * 4 + [False] * 6
    assert span_rows(stamps, ["2024-01-09", None], "s").sum() == 2
    with pytest.raises(UserError, match="holds none"):
        span_rows(stamps, ["2030-01-01", None], "s")
    series = AnomalyCsvData(str(write(tmp_path, nab_frame())), normal_span=[None, "2024-01-02 12:00"]).load()
    assert len(series.train) == 433 and len(series.test) == 600  # 00:00 .. 12:00 on day 2 at 5 min


def test_irregular_timestamps_are_allowed_and_duplicates_refused(tmp_path):
    frame = nab_frame().drop(index=[10, 11, 300])
    assert read_anomaly_csv(write(tmp_path, frame)).meta["freq"] is None
    with pytest.raises(UserError, match="duplicated timestamp"):
        read_anomaly_csv(write(tmp_path, pd.concat([frame.iloc[:5], frame.iloc[4:]]), "dup.csv"))


def test_score_table_keeps_a_value_column_named_like_an_output():
    table = ScoreTable(pd.RangeIndex(3), "row", np.ones((3, 2)), ["score", "x"], np.array([0, 1, 0]))
    frame = table.frame(np.array([0.1, 0.9, 0.2]), threshold=0.5)
    assert list(frame.columns) == ["row", "score_value", "x", "score", "threshold", "anomaly", "label"]
    assert frame["anomaly"].tolist() == [0, 1, 0]


def test_train_writes_one_score_per_timestamp(tmp_path):
    labels = np.zeros(600, dtype=int)
    labels[500:505] = 1
    path = write(tmp_path, nab_frame(label=labels))
    run_dir = tmp_path / "run"
    args = ["train", "data=anomaly_csv", f"data.path={path}", "data.label_col=label", *TINY_OVERRIDES, *SHORT,
            f"hydra.run.dir={run_dir}"]
    assert main(args) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scores = pd.read_csv(run_dir / "anomaly_scores.csv", parse_dates=["timestamp"])
    assert len(scores) == 600 and scores["timestamp"].iloc[-1] == pd.Timestamp("2024-01-03 01:55")
    assert (scores["anomaly"] == (scores["score"] > scores["threshold"])).all()
    assert scores["threshold"].iloc[0] == pytest.approx(metrics["test/threshold"])
    assert metrics["test/flagged_share"] == pytest.approx(scores["anomaly"].mean())
    assert scores["anomaly"].iloc[500:505].any()  # the injected jump is flagged
    assert 0 <= metrics["test/f1"] <= metrics["test/f1_pa"] <= 1 and scores["label"].sum() == 5
    assert metrics["data"]["seq_len"] == 100  # the recipe's anomaly window, not the quickstart's 96
    assert (run_dir / "anomaly_scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    run_dir = tmp_path / "never"
    base = ["train", "data=anomaly_csv", *TINY_OVERRIDES, f"hydra.run.dir={run_dir}"]
    assert main([*base, f"data.path={tmp_path / 'missing.csv'}"]) == 2
    assert main([*base, f"data.path={write(tmp_path, nab_frame(60))}"]) == 2  # too short for the windows
    assert main([*base, f"data.path={write(tmp_path, nab_frame())}", "data.features=MS"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "data file not found" in err[0] and "fewer than task.seq_len=100" in err[1] and "M (every" in err[2]
    assert not run_dir.exists()
