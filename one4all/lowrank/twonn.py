"""TwoNN intrinsic-dimension estimator (Facco et al. 2017) and GeLoRA's rank rule.

The estimator follows METHODS.md §1.2 (the `skdim.id.TwoNN` defaults): the ratio of each point's
second to first nearest-neighbour distance is Pareto with shape d; d is the slope of a
least-squares line through the origin of -log(1 - F_emp) on log(mu), after discarding the
largest `discard_fraction` of the ratios.
"""

from __future__ import annotations

import math

import torch

from one4all.errors import UserError


def neighbour_ratios(points: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """mu_j = r2_j / r1_j for each row of `points[N, D]` (exact duplicate rows removed first)."""
    x = torch.unique(points.detach().to(torch.float64), dim=0)
    if len(x) < 3:
        raise UserError(f"TwoNN needs at least 3 distinct points, got {len(x)}; draw more calibration windows")
    ratios = []
    for start in range(0, len(x), chunk):
        block = torch.cdist(x[start:start + chunk], x)
        block[torch.arange(len(block)), torch.arange(start, start + len(block))] = math.inf
        r1, r2 = block.topk(2, dim=1, largest=False).values.unbind(1)
        ratios.append(r2 / r1)
    mu = torch.cat(ratios)
    # Distinct rows can still be closer than float64 resolves: such ratios are infinite, drop them.
    return mu[torch.isfinite(mu)]


def twonn_from_ratios(mu: torch.Tensor, discard_fraction: float = 0.1) -> float:
    """The TwoNN slope for neighbour-distance ratios `mu` (all >= 1)."""
    if not 0.0 <= discard_fraction < 1.0:
        raise UserError(f"discard_fraction={discard_fraction}; use a value in [0, 1)")
    n = len(mu)
    keep = int(n * (1.0 - discard_fraction))
    mu = torch.sort(mu.to(torch.float64)).values[:keep]
    empirical = torch.arange(keep, dtype=torch.float64) / n
    x, y = torch.log(mu), -torch.log1p(-empirical)
    denominator = float(x @ x)
    if denominator == 0.0:
        raise UserError("TwoNN is undefined: every point's two nearest neighbours are equidistant; "
                        "the calibration data has no spread")
    return float(x @ y) / denominator


def twonn(points: torch.Tensor, discard_fraction: float = 0.1) -> float:
    """Intrinsic dimension of the point cloud `points[N, D]`."""
    return twonn_from_ratios(neighbour_ratios(points), discard_fraction)


def round_half_up(value: float) -> int:
    """Nearest integer, halves away from minus infinity (Python's round() rounds halves to even)."""
    return math.floor(value + 0.5)


def gelora_ranks(profile: list[float]) -> list[int]:
    """r_i = max(round(d_i - d_{i-1}), 0) + 1 for blocks i = 1..L, from the ID profile d_0..d_L."""
    if len(profile) < 2:
        raise UserError("a GeLoRA ID profile needs the block input and at least one block output")
    return [max(round_half_up(after - before), 0) + 1 for before, after in zip(profile, profile[1:])]
