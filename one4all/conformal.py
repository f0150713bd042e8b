"""Split-conformal prediction intervals per horizon step, calibrated on held-out validation windows.

After training, the selected model forecasts (up to `max_windows` of) the validation windows that
training never fitted. The absolute error of every window at horizon step `s`, in standardised units
(divided by the series' or channel's training std), is a calibration score. For a level `a` (e.g. 80)
the interval at step `s` is `forecast +- q_s * std`, where `q_s` is the ceil((n + 1) a / 100)-th
smallest of the n scores of step `s` (Vovk et al. 2005; Lei et al. 2018, "split conformal").

Assumption: the errors of future forecasts are exchangeable with the calibration errors, i.e. the
series behave after the validation rows as they did within them, and errors standardised by a
series' training std are comparable across series. Windows of stride 1 overlap, so scores are
correlated; coverage is then right on average but noisier than n independent scores suggest.
The validation windows also chose the early-stopping checkpoint, a mild selection effect.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from one4all.errors import UserError
from one4all.inference import autocast

# Order statistics stored per step: those of the levels 0%, 1%, ..., 100% (other levels round up).
STORED_RANKS = 101


def evenly_spaced(n: int, at_most: int) -> np.ndarray:
    """At most `at_most` indices spread evenly over range(n) (all of them when n <= at_most)."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(np.int64))


@dataclass
class Calibration:
    """Sorted calibration scores per horizon step: `scores[j, s]` is the `ranks[j]`-th smallest at step s."""

    n: int
    ranks: np.ndarray  # int64, 1-based, increasing, last == n
    scores: np.ndarray  # float64 [len(ranks), horizon]

    @classmethod
    def from_scores(cls, scores: np.ndarray) -> Calibration:
        """From raw scores `[n windows, horizon]`."""
        scores = np.sort(np.asarray(scores, dtype=np.float64), axis=0)
        n = len(scores)
        if n == 0:
            raise UserError("no validation windows to calibrate prediction intervals on; raise data.val_size")
        # The conformal ranks of the integer levels 0..100 (so those are exact), and n.
        ranks = np.ceil((n + 1) * np.arange(STORED_RANKS) / (STORED_RANKS - 1)).astype(np.int64)
        ranks = np.unique(np.clip(np.append(ranks, n), 1, n))
        return cls(n, ranks, scores[ranks - 1])

    def half_width(self, level: float) -> np.ndarray:
        """`q_s` per horizon step for a central interval of `level` percent (standardised units)."""
        if not 0 < level < 100:
            raise UserError(f"level {_label(level)} is not a percentage between 0 and 100; use e.g. level=[80, 95]")
        rank = math.ceil((self.n + 1) * level / 100)
        if rank > self.n:
            need = math.ceil(100 / (100 - level)) - 1
            raise UserError(f"a {_label(level)}% interval needs at least {need} calibration windows, the model has "
                            f"{self.n}; lower the level or raise data.val_size (more validation windows)")
        # The smallest stored rank at or above the conformal rank: exact, or slightly conservative.
        return self.scores[int(np.searchsorted(self.ranks, rank))]

    def to_dict(self) -> dict[str, Any]:
        return {"method": "split conformal, |error| / training std per horizon step", "n": self.n,
                "ranks": self.ranks.tolist(), "scores": self.scores.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Calibration:
        try:
            n, ranks = int(state["n"]), np.asarray(state["ranks"], dtype=np.int64)
            scores = np.asarray(state["scores"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"corrupt interval calibration in the artifact ({type(err).__name__}: {err}); "
                            "retrain the model") from err
        if scores.ndim != 2 or len(ranks) != len(scores) or len(ranks) == 0 or ranks[-1] != n:
            raise UserError("corrupt interval calibration in the artifact (shapes disagree); retrain the model")
        return cls(n, ranks, scores)

    def summary(self, levels: tuple[int, ...] = (80, 95)) -> dict[str, Any]:
        """What metrics.json records: the window count and the half-widths of common levels."""
        out: dict[str, Any] = {"method": "split conformal per horizon step", "n_windows": self.n}
        for level in levels:
            with contextlib.suppress(UserError):
                width = self.half_width(level)
                out[f"half_width_{level}_std"] = {"first_step": float(width[0]), "last_step": float(width[-1])}
        return out


def interval_sides(levels: list[float]) -> list[str]:
    """`lo-95, lo-80, hi-80, hi-95`: neuralforecast's order, lows from the widest level in, then highs outwards."""
    labels = [_label(a) for a in sorted(levels)]
    return [f"lo-{a}" for a in reversed(labels)] + [f"hi-{a}" for a in labels]


def _label(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level)


def check_levels(levels: list[float] | None) -> list[float]:
    """The requested levels, validated (numbers strictly between 0 and 100, no repeats)."""
    if not levels:
        return []
    try:
        values = [float(a) for a in levels]
    except (TypeError, ValueError) as err:
        raise UserError(f"level={levels!r} must be a list of percentages, e.g. [80, 95]") from err
    bad = [a for a in values if not 0 < a < 100]
    if bad or len(set(values)) != len(values):
        raise UserError(f"level={levels!r} must hold distinct percentages between 0 and 100, e.g. [80, 95]")
    return values


def interval_bounds(point: np.ndarray, scale: np.ndarray, calibration: Calibration,
                    levels: list[float]) -> dict[str, np.ndarray]:
    """{"lo-80": ..., "hi-80": ...} for `point[..., horizon]`, `scale` broadcasting against it (original units)."""
    out = {}
    for level in levels:
        width = calibration.half_width(level)[: point.shape[-1]] * scale
        out[f"lo-{_label(level)}"] = point - width
        out[f"hi-{_label(level)}"] = point + width
    return out


def validation_scores(predict: Any, dataset: Dataset, max_windows: int, precision: str,
                      device: torch.device | str = "cpu", batch_size: int = 512) -> np.ndarray:
    """|forecast - truth| per horizon step on (up to `max_windows` evenly spread) windows of `dataset`.

    `predict(batch)` returns the scaled forecast `[batch, horizon, k]` of the scored channels (the task
    module's `predict_batch`); a row of the result is one (window, channel), in standardised units.
    """
    chosen = evenly_spaced(len(dataset), max_windows)
    rows = []
    with torch.no_grad(), autocast(precision, device):
        for start in range(0, len(chosen), batch_size):
            batch = dataset.__getitems__(chosen[start:start + batch_size].tolist())
            error = (predict(batch).float() - batch["y"]).abs()  # [b, horizon, k]
            rows.append(error.permute(0, 2, 1).reshape(-1, error.shape[1]).double().numpy())
    return np.concatenate(rows) if rows else np.empty((0, 0))
