"""Short-term protocol: window counts, held-out validation, test inputs, seeded cut points, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from one4all.cli import main
from one4all.data.sources.collections import SeriesCollection
from one4all.data.sources.competitions import M4Data
from one4all.data.windows.series import SampledWindows, draw_cut_points, left_pad
from one4all.data.windows.short_term import ShortTermProtocol


class Toy:
    """A data spec holding a ready collection."""

    def __init__(self, collection: SeriesCollection) -> None:
        self.collection = collection

    def load(self) -> SeriesCollection:
        return self.collection


def toy(horizon: int = 2, m: int = 2) -> SeriesCollection:
    train = [np.arange(1.0, 13.0), np.arange(101.0, 109.0)]
    test = [np.array([13.0, 14.0]), np.array([109.0, 110.0])]
    return SeriesCollection("toy", ["a", "b"], train, test, horizon, m, sampling_history=2.0)


@pytest.fixture(scope="module")
def hourly(data_root):
    protocol = ShortTermProtocol(seed=7)
    return protocol, protocol.load(M4Data("Hourly", root=str(data_root)))


def test_m4_hourly_splits(hourly):
    protocol, data = hourly
    sets = protocol.datasets(data, channel_independent=True)
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (414 * 10, 414, 414)
    io = protocol.io_spec(data)
    assert (io.seq_len, io.horizon, io.n_channels) == (96, 48, 1)
    train = data.collection.train
    test = sets["test"].__getitems__([0, 413])
    np.testing.assert_array_equal(test["x"][0, :, 0].numpy(), train[0][-96:])
    np.testing.assert_array_equal(test["y"][1, :, 0].numpy(), data.collection.test[413])
    val = sets["val"].__getitems__([0])
    np.testing.assert_array_equal(val["y"][0, :, 0].numpy(), train[0][-48:])
    np.testing.assert_array_equal(val["x"][0, :, 0].numpy(), train[0][-144:-48])
    # The held-out tail never reaches training: windows come from each series minus its last 48 points.
    assert [len(s) for s in data.fit] == [len(s) - 48 for s in train]
    assert data.val.naive2.shape == (414, 48) and data.test.n_seasonal == 413


def test_cut_points_are_seeded_and_in_range():
    lengths = [700, 30]
    a = draw_cut_points(lengths, horizon=48, sampling_history=10.0, draws=50, seed=3)
    assert a.shape == (50, 2)
    np.testing.assert_array_equal(a, draw_cut_points(lengths, 48, 10.0, 50, 3))
    assert not np.array_equal(a, draw_cut_points(lengths, 48, 10.0, 50, 4))
    # last int(10 * 48) = 480 positions of the long series; from position 1 on for the short one
    assert a[:, 0].min() >= 700 - 480 and a[:, 0].max() <= 699
    assert a[:, 1].min() >= 1 and a[:, 1].max() <= 29


def test_sampled_windows_pad_and_mask():
    series = [np.arange(1.0, 11.0)]
    w = SampledWindows(series, np.array([[3], [9]]), seq_len=5, horizon=3)
    batch = w.__getitems__([0, 1])
    # cut 3: history 1..3 front-padded with its first value; cut 9: one target point left, rest masked
    assert batch["x"][0, :, 0].tolist() == [1, 1, 1, 2, 3] and batch["y"][0, :, 0].tolist() == [4, 5, 6]
    assert batch["x"][1, :, 0].tolist() == [5, 6, 7, 8, 9] and batch["y"][1, :, 0].tolist() == [10, 0, 0]
    assert batch["y_mask"][1, :, 0].tolist() == [1, 0, 0]
    assert left_pad(np.array([4.0, 5.0]), 4, zeros=True).tolist() == [0, 0, 4, 5]


def test_train_fraction_keeps_whole_draws_first():
    protocol = ShortTermProtocol(draws_per_series=10, seed=0)
    data = protocol.load(Toy(toy()))
    full, few = protocol.train_windows(data), protocol.train_windows(data, 0.1)
    assert len(full) == 20 and len(few) == 2  # the first draw of both series
    np.testing.assert_array_equal(few.tensors["x"].numpy(), full.tensors["x"][:2].numpy())


def test_paper_compat_validates_on_test():
    honest = ShortTermProtocol().load(Toy(toy()))
    compat = ShortTermProtocol(paper_compat=True).load(Toy(toy()))
    np.testing.assert_array_equal(honest.val.y, [[11, 12], [107, 108]])
    np.testing.assert_array_equal(compat.val.y, compat.test.y)
    assert compat.test.x[1].tolist() == [105, 106, 107, 108] and compat.fit[0].tolist() == list(range(1, 13))


def test_m4_hourly_end_to_end(tmp_path, tiny_overrides):
    run_dir = tmp_path / "m4"
    code = main(["train", "experiment=short_term/m4_hourly", *tiny_overrides, "trainer.max_steps=2",
                 "trainer.val_check_interval=2", "trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("test/smape", "test/mase", "test/owa"))
    assert metrics["test/naive2_smape"] == pytest.approx(18.383, abs=5e-4)
    assert metrics["test/owa"] == pytest.approx(0.5 * (metrics["test/smape"] / metrics["test/naive2_smape"]
                                                       + metrics["test/mase"] / metrics["test/naive2_mase"]), rel=1e-5)
    assert metrics["data"]["n_train_samples"] == 4140 and metrics["data"]["n_test_samples"] == 414
    assert metrics["data"]["seq_len"] == 96 and metrics["run"]["global_step"] == 2
