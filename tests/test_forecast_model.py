"""ForecastModel with hand-made networks: what joint / channel-independent networks see, units, autocast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from one4all.contract import Network
from one4all.data.formats.table import frame_to_table
from one4all.errors import UserError
from one4all.forecast import ForecastModel

SEQ_LEN, HORIZON = 4, 3
COLUMNS = ["a", "b", "y"]
MEAN, STD = [10.0, 20.0, 100.0], [2.0, 4.0, 10.0]


class LastValue(Network):
    """Repeats each channel's last input value; records its input shape and the autocast state."""

    def __init__(self, channel_independent: bool) -> None:
        super().__init__()
        self.channel_independent = channel_independent
        self.seen: list[tuple] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((tuple(x.shape), torch.is_autocast_enabled("cpu")))
        return x[:, -1:, :].repeat(1, HORIZON, 1)


class ChannelSum(LastValue):
    """Joint: every output channel is the sum of all channels' last scaled values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        super().forward(x)
        return x[:, -1:, :].sum(-1, keepdim=True).repeat(1, HORIZON, x.shape[-1])


def model(network: nn.Module, targets: list[int], precision: str = "32-true") -> ForecastModel:
    manifest = {"io": {"seq_len": SEQ_LEN, "horizon": HORIZON, "n_channels": 3, "kind": "forecast"},
                "precision": precision,
                "data": {"columns": COLUMNS, "target_channels": targets, "date_col": "date", "freq": "D",
                         "scaler": {"mean": MEAN, "std": STD}, "max_missing_gap": 3}}
    return ForecastModel(network, manifest)


def history() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range("2024-02-26", periods=6, freq="D"),
                         "a": [10, 11, 12, 13, 14, 16.0], "b": [20, 21, 22, 23, 24, 28.0],
                         "y": [100, 101, 102, 103, 104, 130.0]})


@pytest.mark.parametrize("independent", [True, False])
def test_last_value_comes_back_in_data_units(independent):
    net = LastValue(independent)
    m = model(net, targets=[2])  # MS: all channels in, y out
    out = m.forecast(m.prepare(history()))
    # the last row is 2024-02-26 + 5 days = 2024-03-02 (2024 is a leap year)
    assert out["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-03", "2024-03-04", "2024-03-05"]
    assert list(out.columns) == ["date", "y"] and out["y"].tolist() == [130.0] * 3
    # channel-independent: one univariate sample per forecast channel; joint: one sample, all channels
    expected_shape = (1, SEQ_LEN, 1) if independent else (1, SEQ_LEN, 3)
    assert net.seen == [(expected_shape, False)]


def test_joint_network_sees_every_channel():
    m = model(ChannelSum(False), targets=[2])
    # last scaled values: (16-10)/2 = 3, (28-20)/4 = 2, (130-100)/10 = 3 -> sum 8 -> y = 8 * 10 + 100
    assert m.forecast(m.prepare(history()))["y"].tolist() == [180.0] * 3


def test_precision_of_the_run_is_replayed():
    net = LastValue(True)
    m = model(net, targets=[0, 1, 2], precision="bf16-mixed")
    out = m.forecast(m.prepare(history()), horizon=2)
    assert net.seen == [((3, SEQ_LEN, 1), True)] and len(out) == 2
    # bf16 keeps 8 bits of mantissa: 3.0, 2.0 and 3.0 are exact, so the units still come back exactly
    assert out.iloc[0, 1:].tolist() == [16.0, 28.0, 130.0]


def test_schema_errors():
    m = model(LastValue(True), targets=[2])
    with pytest.raises(UserError, match="has 3 rows; the model needs at least its seq_len=4"):
        m.prepare(history().iloc[:3])
    with pytest.raises(UserError, match="has frequency W-SUN but the model was trained on D data"):
        m.prepare(history().assign(date=pd.date_range("2024-01-07", periods=6, freq="W")))
    with pytest.raises(UserError, match="horizon 4 is outside 1..3"):
        m.forecast(m.prepare(history()), horizon=4)


def test_table_reader_accepts_a_datetime_index():
    table = frame_to_table(history().set_index("date"))
    assert table.date_col == "date" and table.columns == COLUMNS and table.freq == "D"
    np.testing.assert_array_equal(table.values[-1], [16, 28, 130])


def test_intervals_need_a_calibrated_model():
    m = model(LastValue(True), targets=[2])
    with pytest.raises(UserError, match="this model has no interval calibration"):
        m.forecast(m.prepare(history()), level=[80])
    # 9 calibration windows with scores 1..9 (standardised) at every step: the 80% half-width is the
    # 8th smallest, 8 target stds = 80 data units around the last-value forecast of 130
    m.manifest["intervals"] = {"n": 9, "ranks": list(range(1, 10)), "scores": [[float(k)] * 3 for k in range(1, 10)]}
    out = m.forecast(m.prepare(history()), level=[80])
    assert list(out.columns) == ["date", "y", "y-lo-80", "y-hi-80"]
    assert out["y-lo-80"].tolist() == [50.0] * 3 and out["y-hi-80"].tolist() == [210.0] * 3
