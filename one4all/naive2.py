"""Naive2, the M4 competition's reference forecaster (the denominator of OWA).

Written from the competition's definition (Makridakis et al. 2020; M4-methods
`Benchmarks and Evaluation.R`): a series is seasonal when its autocorrelation at lag m passes
a 90% one-sided test; a seasonal series is seasonally adjusted with a classical multiplicative
decomposition (R `decompose`), forecast with the naive method (last adjusted value) and
reseasonalised with the last m seasonal indices. Non-seasonal series get the plain naive forecast.
"""

from __future__ import annotations

import math

import numpy as np

# One-sided 90% normal quantile used by the competition's seasonality test.
_T_CRIT = 1.645


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..max_lag (R `acf`: mean removed, biased, over the full sum of squares)."""
    d = np.asarray(x, dtype=np.float64) - np.mean(x)
    denom = float(np.dot(d, d))
    if denom == 0.0:
        return np.zeros(max_lag)
    return np.array([np.dot(d[:-k], d[k:]) / denom for k in range(1, max_lag + 1)])


def is_seasonal(insample: np.ndarray, m: int) -> bool:
    """The M4 seasonality test: |acf(m)| > 1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k<m} acf(k)^2).

    Needs at least three seasons; R's `acf` computes at most floor(10 log10 n) lags (and n - 1),
    so a lag m beyond that is "not seasonal", as in the competition code.
    """
    n = len(insample)
    if m <= 1 or n < 3 * m:
        return False
    max_lag = min(math.floor(10 * math.log10(n)), n - 1)
    if m > max_lag:
        return False
    acf = autocorrelation(insample, m)
    limit = _T_CRIT / math.sqrt(n) * math.sqrt(1.0 + 2.0 * float(np.sum(acf[: m - 1] ** 2)))
    return bool(abs(acf[m - 1]) > limit)


def centred_moving_average(x: np.ndarray, m: int) -> np.ndarray:
    """The trend of a classical decomposition: a centred m-term (2 x m for even m) moving average.

    Positions without a full window are NaN, as in R `filter(sides = 2)`.
    """
    weights = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        weights[0] = weights[-1] = 0.5 / m
    half = len(weights) // 2
    out = np.full(len(x), np.nan)
    out[half: len(x) - half] = np.convolve(np.asarray(x, dtype=np.float64), weights, mode="valid")
    return out


def seasonal_indices(insample: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal indices of a classical decomposition (R `decompose`).

    Index i (0-based) belongs to positions t with t % m == i counted from the first observation:
    the mean of x / trend over those positions, then rescaled so the m indices average 1.
    """
    x = np.asarray(insample, dtype=np.float64)
    ratio = x / centred_moving_average(x, m)
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return figure / figure.mean()


def naive2(insample: np.ndarray, m: int, horizon: int) -> np.ndarray:
    """The Naive2 forecast of `horizon` steps after `insample`, for seasonal period `m`.

    A multiplicative decomposition needs positive data (true of M3/M4); a series with a
    non-positive value is treated as non-seasonal rather than divided by zero.
    """
    x = np.asarray(insample, dtype=np.float64)
    if is_seasonal(x, m) and np.all(x > 0):
        figure = seasonal_indices(x, m)
        n = len(x)
        # Step h (1-based) continues the cycle: its index position is (n + h - 1) mod m.
        future = figure[(n + np.arange(horizon)) % m]
        last_adjusted = x[-1] / figure[(n - 1) % m]
        return last_adjusted * future
    return np.full(horizon, x[-1])
