"""Zero-shot: roll-out beyond the source horizon, M3 Other -> M4 Hourly and ETTh1 -> exchange_rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from one4all.cli import main
from one4all.data.sources.collections import SeriesCollection
from one4all.data.sources.table import CsvData
from one4all.data.windows.zero_shot import ZeroShotProtocol, ZeroShotSeriesProtocol
from one4all.errors import UserError
from one4all.tasks.short_term import ShortTermTask


class Ramp(nn.Module):
    """Forecasts last value + 1, + 2, ... + horizon: a roll-out must continue the ramp exactly."""

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(1, self.horizon + 1, dtype=x.dtype)[None, :, None]
        return x[:, -1:, :] + steps


def test_rollout_feeds_forecasts_back():
    task = ShortTermTask(Ramp(8), optimizer=torch.optim.Adam)
    x = torch.tensor([[3.0, 5.0, 7.0]]).unsqueeze(-1)
    out = task.forecast(x, 20)
    assert out.shape == (1, 20, 1)
    assert out[0, :, 0].tolist() == [7.0 + k for k in range(1, 21)]
    assert task.forecast(x, 5)[0, :, 0].tolist() == [8, 9, 10, 11, 12]


class Ready:
    """A data spec holding a ready collection."""

    def __init__(self, horizon: int, m: int) -> None:
        n = 12 + horizon
        series = [np.arange(1.0, n + 1), np.arange(101.0, 101 + n)]
        self.collection = SeriesCollection(f"h{horizon}", ["a", "b"], [s[:12] for s in series],
                                           [s[12:] for s in series], horizon, m, sampling_history=2.0)

    def load(self) -> SeriesCollection:
        return self.collection


@pytest.mark.parametrize("rollout,steps", [(True, 6), (False, 2)])
def test_series_target_horizon(rollout, steps):
    protocol = ZeroShotSeriesProtocol(Ready(horizon=6, m=3), rollout=rollout)
    data = protocol.load(Ready(horizon=2, m=1))
    sets = protocol.datasets(data, channel_independent=True)
    assert protocol.io_spec(data).horizon == 2 and protocol.io_spec(data).seq_len == 4
    test = sets["test"].__getitems__([1])
    # input: the target's last 2 x H_source = 4 training points; target: its first `steps` test values
    assert test["x"][0, :, 0].tolist() == [109, 110, 111, 112]
    assert test["y"][0, :, 0].tolist() == list(range(113, 113 + steps))
    assert test["naive2"][0, :, 0].tolist() == [112.0] * steps  # a ramp is not seasonal: naive
    assert float(test["scale"][0]) == 3.0  # |y_t - y_{t-3}| with the target's m = 3
    assert protocol.describe(data)["target"]["rollout_steps"] == (3 if rollout else 1)


def test_m3_other_to_m4_hourly(tmp_path, tiny_overrides):
    run_dir = tmp_path / "zs"
    code = main(["train", "experiment=zero_shot/m3_m4_other", *tiny_overrides, "trainer.max_steps=2",
                 "trainer.val_check_interval=2", "trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("test/smape", "test/mase", "test/owa"))
    data = metrics["data"]
    # source: 174 M3 Other series x 10 draws, validated on their held-out last 8 points
    assert (data["n_train_samples"], data["n_val_samples"], data["n_test_samples"]) == (1740, 174, 414)
    assert data["source"]["seq_len"] == 16 and data["target"]["rollout_steps"] == 6
    assert data["target"]["name"] == "M4-Hourly"
    # OWA against the target's Naive2 (m = 24 over the full 48-step horizon)
    assert metrics["test/naive2_smape"] == pytest.approx(18.383, abs=5e-4)


@pytest.fixture(scope="module")
def etth1_to_exchange(data_root):
    protocol = ZeroShotProtocol(96, 24, CsvData("exchange_rate/exchange_rate.csv", root=str(data_root)))
    return protocol, protocol.load(CsvData("ETTh1/ETTh1.csv", root=str(data_root)))


def test_csv_target_test_split_and_scaler(etth1_to_exchange):
    protocol, data = etth1_to_exchange
    sets = protocol.datasets(data, channel_independent=True)
    # ETTh1 train/val unchanged; exchange_rate test rows [7588 - 1517 - 96, 7588): (1613 - 96 - 24 + 1) x 8
    assert len(sets["train"]) == (8640 - 96 - 24 + 1) * 7
    assert len(sets["test"]) == (1517 - 24 + 1) * 8
    target = data.target
    raw = target.scaler.inverse(target.scaled)
    n_train = int(7588 * 0.7)
    np.testing.assert_allclose(target.scaler.mean, raw[:n_train].mean(axis=0), rtol=1e-5)
    inputs = protocol.task_inputs(data)
    assert len(inputs["scale"]) == 7 and len(inputs["test_scale"]) == 8


def test_channel_mixing_network_needs_matching_layout(etth1_to_exchange):
    protocol, data = etth1_to_exchange
    with pytest.raises(UserError, match="channel layout"):
        protocol.datasets(data, channel_independent=False)


def test_etth1_to_exchange_end_to_end(tmp_path, tiny_overrides):
    run_dir = tmp_path / "csv"
    code = main(["train", "experiment=zero_shot/etth1_to_exchange", *tiny_overrides, "task.seq_len=96",
                 "task.horizon=24", "trainer.max_steps=2", "data.eval_batch_size=2048", f"hydra.run.dir={run_dir}"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("test/mse", "test/mae", "test/mae_original"))
    assert metrics["data"]["n_test_samples"] == (1517 - 24 + 1) * 8
    assert metrics["data"]["target"]["name"] == "exchange_rate"
