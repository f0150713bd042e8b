"""Streaming errors equal the numpy definitions over uneven batches and channel layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from one4all.metrics import ErrorAccumulator, mae, mse


def test_streaming_equals_full_split_with_uneven_batches():
    rng = np.random.default_rng(0)
    pred, true = rng.normal(size=(37, 5, 3)), rng.normal(size=(37, 5, 3))
    acc = ErrorAccumulator(3)
    for lo, hi in [(0, 16), (16, 32), (32, 37)]:  # last batch smaller: no drop_last
        acc.update(torch.tensor(pred[lo:hi]), torch.tensor(true[lo:hi]), torch.arange(3))
    out = acc.compute(scale=np.array([1.0, 2.0, 10.0]))
    assert out["mse"] == pytest.approx(mse(pred, true))
    assert out["mae"] == pytest.approx(mae(pred, true))
    assert out["n_points"] == 37 * 5 * 3
    expected_orig = np.mean(np.abs(pred - true) * np.array([1.0, 2.0, 10.0]))
    assert out["mae_original"] == pytest.approx(expected_orig)


def test_channel_independent_samples_are_attributed_to_their_channel():
    pred = torch.tensor([[[1.0], [1.0]], [[0.0], [0.0]], [[3.0], [3.0]]])
    true = torch.zeros_like(pred)
    acc = ErrorAccumulator(2)
    acc.update(pred, true, torch.tensor([0, 1, 1]))
    out = acc.compute(scale=np.array([10.0, 1.0]))
    assert out["mae"] == pytest.approx((1 + 1 + 0 + 0 + 3 + 3) / 6)
    assert out["mae_original"] == pytest.approx((10 + 10 + 0 + 0 + 3 + 3) / 6)


def test_hand_computed_values():
    assert mse([1.0, 2.0], [0.0, 0.0]) == pytest.approx(2.5)
    assert mae([1.0, -3.0], [0.0, 0.0]) == pytest.approx(2.0)
