"""sMAPE, MASE, OWA and Naive2 pinned to values computed by hand."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
import torch

from one4all.metrics import SeriesErrorAccumulator, mase, mase_scale, owa, smape, smape_loss
from one4all.naive2 import autocorrelation, centred_moving_average, is_seasonal, naive2, seasonal_indices

# A short trending series with period 2; forecasts of its next two values.
INSAMPLE = np.array([1.0, 3.0, 2.0, 6.0, 3.0, 9.0])
TRUE = np.array([4.0, 12.0])
PRED = np.array([10.0, 10.0])
# sMAPE: 200*6/(4+10) and 200*2/(12+10)
SMAPE_PRED = float((F(1200, 14) + F(400, 22)) / 2)
# MASE scale: |2-1|, |6-3|, |3-2|, |9-6| -> mean 2; errors 6, 2 -> 3, 1 -> MASE 2
MASE_PRED = 2.0
# Naive2 of INSAMPLE is the plain naive forecast 9, 9 (not seasonal, below)
SMAPE_NAIVE2 = float((F(1000, 13) + F(600, 21)) / 2)
MASE_NAIVE2 = float((F(5, 2) + F(3, 2)) / 2)


def test_smape_mase_owa_by_hand():
    assert smape(PRED, TRUE) == pytest.approx(SMAPE_PRED)  # 51.948...
    assert mase_scale(INSAMPLE, 2) == pytest.approx(2.0)
    assert mase_scale(INSAMPLE, 1) == pytest.approx((2 + 1 + 4 + 3 + 6) / 5)
    assert mase(PRED, TRUE, INSAMPLE, 2) == pytest.approx(MASE_PRED)
    expected = 0.5 * (SMAPE_PRED / SMAPE_NAIVE2 + MASE_PRED / MASE_NAIVE2)
    assert owa(SMAPE_PRED, MASE_PRED, SMAPE_NAIVE2, MASE_NAIVE2) == pytest.approx(expected)
    assert expected == pytest.approx(0.992424, abs=1e-6)
    assert smape([0.0, 1.0], [0.0, 1.0]) == 0.0  # 0/0 counts as a perfect forecast


def test_acf_and_seasonality_test_by_hand():
    # Level 10 with quarterly indices 0.8, 1.2, 1.0, 1.0 over three years: deviations -2, 2, 0, 0.
    x = np.array([8.0, 12.0, 10.0, 10.0] * 3)
    np.testing.assert_allclose(autocorrelation(x, 4), [-12 / 24, 0.0, -8 / 24, 16 / 24])
    # limit = 1.645/sqrt(12) * sqrt(1 + 2*(1/4 + 0 + 1/9)) = 0.6232 < 2/3
    assert is_seasonal(x, 4)
    # Period 2 on INSAMPLE: acf(1) = -6/44, acf(2) = 16/44 = 0.364 < 1.645/sqrt(6)*sqrt(1 + 2*(6/44)^2) = 0.684
    np.testing.assert_allclose(autocorrelation(INSAMPLE, 2), [-6 / 44, 16 / 44])
    assert not is_seasonal(INSAMPLE, 2)
    assert not is_seasonal(x[:11], 4)  # fewer than three seasons
    assert not is_seasonal(x, 1)


def test_classical_multiplicative_decomposition_by_hand():
    # 2x2 moving average: 0.25 x[t-1] + 0.5 x[t] + 0.25 x[t+1]
    np.testing.assert_allclose(centred_moving_average(INSAMPLE, 2), [np.nan, 2.25, 3.25, 4.25, 5.25, np.nan])
    np.testing.assert_allclose(centred_moving_average(np.arange(1.0, 6.0), 3), [np.nan, 2, 3, 4, np.nan])
    # ratios: odd positions 2/3.25 = 8/13 and 3/5.25 = 4/7; even positions 3/2.25 = 4/3 and 6/4.25 = 24/17
    # means 54/91 and 70/51, rescaled to average 1: 1377/2281 and 3185/2281
    np.testing.assert_allclose(seasonal_indices(INSAMPLE, 2), [1377 / 2281, 3185 / 2281])


def test_naive2_by_hand():
    # Same seasonal series plus one more first quarter: trend 10 throughout, indices 0.8, 1.2, 1.0, 1.0.
    # The last value (8, index 0.8) deseasonalises to 10; the forecast continues from the 2nd quarter.
    x = np.array([8.0, 12.0, 10.0, 10.0] * 3 + [8.0])
    assert is_seasonal(x, 4)  # acf(4) = 3312/4680 = 0.708 > 0.601
    np.testing.assert_allclose(naive2(x, 4, 6), [12, 10, 10, 8, 12, 10])
    np.testing.assert_allclose(naive2(INSAMPLE, 2, 2), [9, 9])  # not seasonal: naive
    np.testing.assert_allclose(naive2(-x, 4, 2), [-8, -8])  # multiplicative needs positive data


def test_accumulator_over_batches_equals_hand_values():
    acc = SeriesErrorAccumulator()
    pred = torch.tensor([PRED.tolist(), [1.0, 1.0]])
    true = torch.tensor([TRUE.tolist(), [1.0, 1.0]])
    naive = torch.tensor([[9.0, 9.0], [1.0, 3.0]])
    scale = torch.tensor([2.0, 4.0])
    for lo, hi in [(0, 1), (1, 2)]:  # uneven batching gives the same sums
        acc.update(pred[lo:hi], true[lo:hi], scale[lo:hi], naive[lo:hi])
    out = acc.compute()
    # second series: perfect forecast; Naive2 errors 0 and 2 -> sMAPE terms 0, 100; MASE terms 0, 0.5
    assert out["smape"] == pytest.approx(SMAPE_PRED / 2)
    assert out["mase"] == pytest.approx(MASE_PRED / 2)
    assert out["naive2_smape"] == pytest.approx((2 * SMAPE_NAIVE2 + 100) / 4)
    assert out["naive2_mase"] == pytest.approx((2 * MASE_NAIVE2 + 0.5) / 4)
    assert out["owa"] == pytest.approx(owa(out["smape"], out["mase"], out["naive2_smape"], out["naive2_mase"]))
    assert out["n_points"] == 4


def test_smape_loss_masks_and_detaches_the_denominator():
    pred = torch.tensor([[10.0, 5.0]], requires_grad=True)
    true = torch.tensor([[4.0, 0.0]])
    loss = smape_loss(pred, true, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(1200 / 14)
    loss.backward()
    # d/dpred of 200 |pred - true| / const = 200 / 14 for the observed point; masked point: no gradient
    np.testing.assert_allclose(pred.grad.numpy(), [[200 / 14, 0.0]], rtol=1e-6)
    assert smape_loss(torch.tensor([[10.0]]), torch.tensor([[4.0]])).item() == pytest.approx(1200 / 14)
