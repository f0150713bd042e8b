"""TwoNN intrinsic dimension on point clouds of known dimension, and GeLoRA's rank rule."""

from __future__ import annotations

import math

import pytest
import torch

from one4all.errors import UserError
from one4all.lowrank.twonn import gelora_ranks, neighbour_ratios, twonn, twonn_from_ratios


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_fit_through_origin_by_hand():
    # N=2, no discard: F = [0, 1/2]; x = [log 1, log 4], y = [0, log 2] -> slope log2 * log4 / log4^2 = 1/2
    assert twonn_from_ratios(torch.tensor([4.0, 1.0]), 0.0) == pytest.approx(0.5)
    # N=4, discard 1/4 keeps the 3 smallest: F = 0, 1/4, 1/2 ; x = log e^0, log e^1, log e^2
    y = torch.tensor([0.0, -math.log(0.75), -math.log(0.5)])
    expected = float(y @ torch.tensor([0.0, 1.0, 2.0])) / 5.0
    assert twonn_from_ratios(torch.tensor([math.e**2, 1.0, math.e, 99.0]), 0.25) == pytest.approx(expected)


def test_neighbour_ratios_by_hand_and_duplicates_dropped():
    # Points on a line at 0, 1, 3, 3 (duplicate): distances (1st, 2nd): 0 -> (1, 3), 1 -> (1, 2), 3 -> (2, 3)
    mu = neighbour_ratios(torch.tensor([[0.0], [1.0], [3.0], [3.0]]))
    assert sorted(mu.tolist()) == pytest.approx([1.5, 2.0, 3.0])


def test_gaussian_5d_linearly_embedded_in_50d():
    g = generator(0)
    z = torch.randn(2000, 5, generator=g, dtype=torch.float64)
    points = z @ torch.randn(5, 50, generator=g, dtype=torch.float64)
    assert twonn(points) == pytest.approx(5.0, abs=0.4)


def test_two_dimensional_manifolds():
    g = generator(1)
    sphere = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    sphere = sphere / sphere.norm(dim=1, keepdim=True)
    assert twonn(sphere @ torch.randn(3, 10, generator=g, dtype=torch.float64)) == pytest.approx(2.0, abs=0.15)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(2000, generator=g, dtype=torch.float64))
    height = 21 * torch.rand(2000, generator=g, dtype=torch.float64)
    swiss_roll = torch.stack([t * t.cos(), height, t * t.sin()], 1)
    assert twonn(swiss_roll) == pytest.approx(2.0, abs=0.2)


def test_circle_is_one_dimensional():
    angle = 2 * math.pi * torch.rand(2000, generator=generator(2), dtype=torch.float64)
    assert twonn(torch.stack([angle.cos(), angle.sin()], 1)) == pytest.approx(1.0, abs=0.05)


def test_too_few_points_is_a_user_error():
    with pytest.raises(UserError, match="at least 3 distinct points"):
        twonn(torch.ones(10, 4))


def test_rank_rule_on_hand_profiles():
    # deltas 2.4, -0.6, 3.5, 0.49, -5 -> rounded (halves up) 2, -1, 4, 0, -5 -> max(., 0) + 1
    assert gelora_ranks([10.0, 12.4, 11.8, 15.3, 15.79, 10.79]) == [3, 1, 5, 1, 1]
    assert gelora_ranks([3.0, 3.0]) == [1]
    with pytest.raises(UserError):
        gelora_ranks([4.0])
