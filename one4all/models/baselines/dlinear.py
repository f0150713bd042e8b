"""DLinear (Zeng et al., AAAI 2023): split the input into trend and remainder, map each with one linear layer.

Trend = moving average over time (kernel 25, the ends padded by repeating the first and last value,
so the output keeps the input length); seasonal = input - trend. Each component goes through a
linear map over time, shared by all channels or one per channel (`individual=True`, the paper's
DLinear-I); the output is the sum of the two maps.

Per output kind (Time-Series-Library's task branches): forecast maps `seq_len -> horizon`;
reconstruct (imputation, anomaly detection) maps `seq_len -> seq_len`, with hidden entries
arriving as 0 and the observation mask unused, as TSLib; classify flattens the reconstruction
`[seq_len, channels]` into one Linear to the class logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from one4all.contract import IOSpec, Network
from one4all.errors import UserError


class MovingAverageDecomposition(nn.Module):
    """`x[b, l, c]` -> (seasonal, trend), both `[b, l, c]`."""

    def __init__(self, kernel_size: int = 25) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            # An even kernel would shorten the series by one step.
            raise UserError(f"model.kernel_size={kernel_size} must be a positive odd number (the paper uses 25)")
        self.half = (kernel_size - 1) // 2
        self.pool = nn.AvgPool1d(kernel_size, stride=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = x[:, :1].expand(-1, self.half, -1)
        last = x[:, -1:].expand(-1, self.half, -1)
        padded = torch.cat([first, x, last], dim=1)
        trend = self.pool(padded.transpose(1, 2)).transpose(1, 2)
        return x - trend, trend


class TimeLinear(nn.Module):
    """A linear map over time, `[b, c, in_len] -> [b, c, out_len]`, shared or one per channel.

    `init="average"` starts every weight at 1/in_len, so each output starts as the input's mean
    (Time-Series-Library's DLinear); `"default"` is nn.Linear's uniform init (the authors' LTSF-Linear
    code, where the average lines are commented out). Biases use nn.Linear's init.
    """

    def __init__(self, in_len: int, out_len: int, n_maps: int = 1, init: str = "average") -> None:
        super().__init__()
        if init not in ("average", "default"):
            raise UserError(f"model.init={init!r}; use average (authors' code) or default (nn.Linear)")
        bound = 1.0 / math.sqrt(in_len)
        self.weight = nn.Parameter(torch.empty(n_maps, out_len, in_len))
        self.bias = nn.Parameter(torch.empty(n_maps, out_len).uniform_(-bound, bound))
        if init == "average":
            nn.init.constant_(self.weight, 1.0 / in_len)
        else:
            nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.shape[0] == 1:
            return F.linear(x, self.weight[0], self.bias[0])
        return torch.einsum("bci,coi->bco", x, self.weight) + self.bias


class DLinear(Network):
    """DLinear: `[b, seq_len, c]` -> forecast `[b, horizon, c]`, reconstruction `[b, seq_len, c]`
    or class logits `[b, n_classes]`.

    Samples carry all channels (channel_independent = False), so a batch of 32 holds 32 windows of
    every channel as in the authors' runs, and `individual=True` can give each channel its own maps.
    """

    channel_independent = False

    def __init__(self, io: IOSpec, kernel_size: int = 25, individual: bool = False, init: str = "average") -> None:
        super().__init__()
        self.io = io
        self.decompose = MovingAverageDecomposition(kernel_size)
        n_maps = io.n_channels if individual else 1
        out_len = io.horizon if io.kind == "forecast" else io.seq_len
        self.seasonal = TimeLinear(io.seq_len, out_len, n_maps, init)
        self.trend = TimeLinear(io.seq_len, out_len, n_maps, init)
        self.classifier = nn.Linear(io.seq_len * io.n_channels, io.n_classes) if io.kind == "classify" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x[batch, seq_len, channels]` (+ an observation mask, unused) -> the output of `io.kind`."""
        seasonal, trend = self.decompose(x)
        out = (self.seasonal(seasonal.transpose(1, 2)) + self.trend(trend.transpose(1, 2))).transpose(1, 2)
        return out if self.classifier is None else self.classifier(out.flatten(start_dim=1))
