"""Input side of the GPT-2 networks: normalisations, patching and token embeddings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from one4all.marks import FIXED_FIELDS


class InstanceNorm(nn.Module):
    """Per-series standardisation over time (RevIN without affine), undone at the output.

    Statistics are detached, as in the authors' code: gradients do not flow through them.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x[b, l, c]` -> (normalised x, mean[b, 1, c], std[b, 1, c])."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return (x - mean) / std, mean, std

    @staticmethod
    def denormalise(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return y * std + mean


class Patcher(nn.Module):
    """Replication-pad the end by `stride`, then cut overlapping patches.

    `[n, length]` -> `[n, n_patches, patch_len]` with n_patches = (L - P) // S + 2.
    """

    def __init__(self, patch_len: int, stride: int) -> None:
        super().__init__()
        if patch_len <= 0 or stride <= 0:
            raise ValueError("patch_len and stride must be positive")
        self.patch_len, self.stride = patch_len, stride
        self.pad = nn.ReplicationPad1d((0, stride))

    def n_patches(self, length: int) -> int:
        if length < self.patch_len:
            raise ValueError(f"seq_len={length} is shorter than patch_len={self.patch_len}")
        return (length - self.patch_len) // self.stride + 2

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        padded = self.pad(series.unsqueeze(1)).squeeze(1)
        return padded.unfold(dimension=-1, size=self.patch_len, step=self.stride)


class SegmentNorm(nn.Module):
    """Instance norm per segment of `segment_len` steps (GPT4TS anomaly model), undone at the output.

    A window of 100 steps with segments of 25 is standardised in four independent pieces, so a
    level shift inside the window is not hidden by the statistics of the rest of it.
    """

    def __init__(self, segment_len: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.segment_len, self.eps = segment_len, eps

    def _segments(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, channels = x.shape
        return x.reshape(batch, length // self.segment_len, self.segment_len, channels)

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`x[b, l, c]` -> (normalised x, (mean, std) per segment)."""
        seg = self._segments(x)
        mean = seg.mean(dim=2, keepdim=True).detach()
        std = torch.sqrt(seg.var(dim=2, keepdim=True, unbiased=False) + self.eps).detach()
        return ((seg - mean) / std).reshape(x.shape), (mean, std)

    def denormalise(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mean, std = stats
        return (self._segments(y) * std + mean).reshape(y.shape)


class ObservedNorm(nn.Module):
    """Instance norm over the observed entries only (GPT4TS imputation model).

    `mask[b, l, c]` is 1 where a value is observed; missing entries arrive as 0 and stay 0 after
    normalisation, so they carry no information into the network.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def normalise(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(normalised x, mean[b, 1, c], std[b, 1, c]) from the observed entries of `x`."""
        count = mask.sum(dim=1, keepdim=True).clamp(min=1)
        mean = ((x * mask).sum(dim=1, keepdim=True) / count).detach()
        centred = (x - mean) * mask
        std = torch.sqrt((centred**2).sum(dim=1, keepdim=True) / count + self.eps).detach()
        return centred / std, mean, std


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The Transformer's fixed sin/cos table `[length, d_model]` (even columns sin, odd cos)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class FixedCalendarEmbedding(nn.Module):
    """The `fixed` time-feature embedding: one sinusoidal table per calendar field (month, day,
    weekday, hour, quarter-hour; sizes in `marks.FIXED_FIELDS`), looked up and summed. No parameters:
    the tables are non-persistent buffers, recomputed, never stored."""

    def __init__(self, fields: tuple[str, ...], d_model: int) -> None:
        super().__init__()
        self.fields = fields
        for name in fields:
            self.register_buffer(name, sinusoidal_positions(FIXED_FIELDS[name], d_model), persistent=False)

    def forward(self, marks: torch.Tensor) -> torch.Tensor:
        """`marks[n, tokens, fields]` (integer-valued) -> `[n, tokens, d_model]`."""
        index = marks.long()
        return sum(self.get_buffer(name)[index[..., i]] for i, name in enumerate(self.fields))


def mark_embedding(time_features: str, names: tuple[str, ...], d_model: int) -> nn.Module | None:
    """The embedding of `time_features` marks (`marks.mark_names`): timeF -> Linear without bias
    (Time-Series-Library's TimeFeatureEmbedding), fixed -> sinusoidal tables, none -> None."""
    if time_features == "timeF":
        return nn.Linear(len(names), d_model, bias=False)
    if time_features == "fixed":
        return FixedCalendarEmbedding(names, d_model)
    return None


class ConvTokens(nn.Module):
    """Token embedding of the GPT4TS classifier, imputer and short-term forecaster (TSLib's
    DataEmbedding): a width-3 circular convolution over the token sequence (no bias), plus fixed
    sinusoidal positions, plus the embedded time-feature marks when there are any, then dropout.

    `conv` (and a timeF `marks` Linear) is the trainable `patch_embedding` part; the position table
    is a non-persistent buffer (recomputed, never stored). With marks, the last `n_marks` features
    of each token are the marks (the layout appends them), so a token sequence stays one tensor.
    """

    def __init__(self, c_in: int, d_model: int, n_tokens: int, dropout: float, time_features: str = "none",
                 mark_names: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.n_marks = len(mark_names)
        self.conv = nn.Conv1d(c_in, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.marks = mark_embedding(time_features, mark_names, d_model)
        self.register_buffer("positions", sinusoidal_positions(n_tokens, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`[n, tokens, c_in (+ n_marks)]` -> `[n, tokens, d_model]`."""
        values = tokens[..., : tokens.shape[-1] - self.n_marks] if self.n_marks else tokens
        embedded = self.conv(values.transpose(1, 2)).transpose(1, 2) + self.positions[: tokens.shape[1]]
        if self.n_marks:
            embedded = embedded + self.marks(tokens[..., -self.n_marks:])
        return self.dropout(embedded)


class ExtendedConvTokens(ConvTokens):
    """The authors' short-term embedding: `ConvTokens` over the `seq_len` input steps, then a linear
    map over time (`extend`, their `predict_linear_pre`) from `seq_len` to `seq_len + horizon` tokens."""

    def __init__(self, c_in: int, d_model: int, seq_len: int, horizon: int, dropout: float,
                 time_features: str = "none", mark_names: tuple[str, ...] = ()) -> None:
        super().__init__(c_in, d_model, seq_len, dropout, time_features, mark_names)
        self.extend = nn.Linear(seq_len, seq_len + horizon)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """`[n, seq_len, c_in (+ n_marks)]` -> `[n, seq_len + horizon, d_model]`."""
        return self.extend(super().forward(tokens).transpose(1, 2)).transpose(1, 2)


class ChannelPad(nn.Module):
    """Zero-pad the channel axis up to `d_model` (GPT4TS anomaly model): no parameters."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.pad(tokens, (0, self.d_model - tokens.shape[-1]))
