"""Split borders, sample counts and the train-only scaler (TSLib conventions)."""

from __future__ import annotations

import numpy as np
import pytest

from one4all.data.sources.table import CsvData
from one4all.data.splits import StandardScaler, ett_borders, ratio_borders
from one4all.data.windows.forecast import ForecastProtocol
from one4all.errors import UserError


def test_ett_hour_borders_match_tslib():
    b = ett_borders(17420, seq_len=336)
    assert b.train == (0, 8640)
    assert b.val == (8640 - 336, 11520)
    assert b.test == (11520 - 336, 14400)


def test_ett_minute_borders_are_four_times_hourly():
    b = ett_borders(69680, seq_len=96, steps_per_hour=4)
    assert b.train == (0, 34560) and b.val == (34560 - 96, 46080) and b.test == (46080 - 96, 57600)


def test_ratio_borders_exchange_rate_sizes():
    # exchange_rate: 7588 rows -> int(0.7 n)=5311 train, int(0.2 n)=1517 test, 760 val.
    b = ratio_borders(7588, seq_len=96)
    assert b.train == (0, 5311)
    assert b.val == (5311 - 96, 5311 + 760)
    assert b.test == (7588 - 1517 - 96, 7588)


def test_ett_too_short_is_a_clear_error():
    with pytest.raises(UserError, match="data.split=ratio"):
        ett_borders(1000, seq_len=96)


def test_etth1_sample_counts_channel_independent(data_root):
    data = CsvData(path="ETTh1/ETTh1.csv", root=str(data_root), split="ett_hour")
    windowing = ForecastProtocol(seq_len=336, horizon=96)
    sets = windowing.datasets(windowing.load(data), channel_independent=True)
    # (rows - L - H + 1) windows x 7 channels, nothing dropped.
    assert len(sets["train"]) == 8209 * 7 == 57463
    assert len(sets["val"]) == 2785 * 7
    assert len(sets["test"]) == 2785 * 7 == 19495


def test_joint_windows_hold_all_channels(data_root):
    data = CsvData(path="ETTh1/ETTh1.csv", root=str(data_root))
    windowing = ForecastProtocol(seq_len=96, horizon=24)
    series = windowing.load(data)
    test = windowing.datasets(series, channel_independent=False)["test"]
    assert len(test) == 2880 - 24 + 1
    item = test[0]
    assert item["x"].shape == (96, 7) and item["y"].shape == (24, 7)
    start = series.borders.test[0]
    np.testing.assert_array_equal(item["x"].numpy(), series.scaled[start:start + 96])
    np.testing.assert_array_equal(item["y"].numpy(), series.scaled[start + 96:start + 120])


def test_channel_independent_indexing_is_channel_major(data_root):
    data = CsvData(path="ETTh1/ETTh1.csv", root=str(data_root))
    windowing = ForecastProtocol(seq_len=336, horizon=96)
    series = windowing.load(data)
    train = windowing.datasets(series, channel_independent=True)["train"]
    sample = train[8209 * 3 + 5]  # channel 3, start 5
    np.testing.assert_array_equal(sample["x"][:, 0].numpy(), series.scaled[5:341, 3])
    assert int(sample["channel"]) == 3
    batch = train.__getitems__([0, 8209 * 6 + 8208])
    assert batch["x"].shape == (2, 336, 1) and batch["channel"].tolist() == [0, 6]


def test_few_shot_keeps_first_fraction_of_windows_and_full_scaler(data_root):
    windowing = ForecastProtocol(seq_len=336, horizon=96)
    full = windowing.load(CsvData(path="ETTh1/ETTh1.csv", root=str(data_root)))
    few = CsvData(path="ETTh1/ETTh1.csv", root=str(data_root), train_fraction=0.1)
    series = windowing.load(few)
    sets = windowing.datasets(series, channel_independent=True, train_fraction=few.train_fraction)
    assert len(sets["train"]) == int(8209 * 0.1) * 7
    assert len(sets["test"]) == 19495
    np.testing.assert_array_equal(series.scaler.mean, full.scaler.mean)


def test_scaler_fit_on_train_rows_only(data_root, tmp_path):
    src = (data_root / "ETTh1" / "ETTh1.csv").read_text().splitlines()
    # Corrupt every row after the training border: the scaler must not move.
    header, rows = src[0], src[1:]
    poisoned = [",".join([r.split(",")[0]] + ["1e6"] * 7) if i >= 8640 else r for i, r in enumerate(rows)]
    (tmp_path / "ETTh1.csv").write_text("\n".join([header, *poisoned]))
    clean = CsvData(path="ETTh1/ETTh1.csv", root=str(data_root)).load(336)
    dirty = CsvData(path="ETTh1.csv", root=str(tmp_path)).load(336)
    np.testing.assert_allclose(dirty.scaler.mean, clean.scaler.mean)
    np.testing.assert_allclose(dirty.scaler.std, clean.scaler.std)
    train = clean.rows("train")
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)


def test_scaler_round_trip_and_constant_channel():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = StandardScaler.fit(values)
    assert scaler.std[1] == 1.0  # constant channel: no division by zero
    again = StandardScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(again.inverse(again.transform(values)), values, atol=1e-6)
