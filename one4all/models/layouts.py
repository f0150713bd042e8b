"""How each output kind turns a batch into GPT-2 tokens, and GPT-2 states back into outputs.

The One-for-All network (models.one4all) is the same frozen GPT-2 for every task; what differs
is the layout around it, following the authors' designs (PAPERS.md §2.1, DESIGN.md §3):

| layout | tokens | embedding (`in_layer`) | head (`out_layer`) |
|---|---|---|---|
| PatchForecast | one channel's patch (channel independent) | Linear(P, d) | flatten -> Linear(d N, H) |
| StepForecast | one time step (short-term) | conv + sin positions, Linear(L, L+H) | first d_ff -> Linear(d_ff, C) |
| PatchClassify | one patch of every channel | conv + sin positions | GELU, flatten, LayerNorm -> Linear(d N, K) |
| StepImpute | one time step, observed-entry norm | conv + sin positions | LayerNorm -> Linear(d, C) per step |
| StepAnomaly | one time step, per-segment norm | zero-pad (or Linear) to d | first d_ff features -> Linear(d_ff, C) |

A layout holds no trainable weights except its head LayerNorm (`head_norm`): the network owns
`in_layer` and `out_layer`, so every kind shares the adapter part names.

Time-feature marks (`model.time_features`, one4all.marks) enter where the authors feed them, through
the conv token embedding of the per-step layouts (StepImpute as GPT4TS's imputation, StepForecast);
`encode` appends them to each token as trailing features, which the embedding splits off. The
other layouts read no marks, as the authors' models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.marks import check_kind, mark_names
from one4all.models.encoder import (
    ChannelPad,
    ConvTokens,
    ExtendedConvTokens,
    InstanceNorm,
    ObservedNorm,
    Patcher,
    SegmentNorm,
)

FORECAST_LAYOUTS = ("patch", "step")
# What the authors' short-term module allocates and never reads (`unused_reference_params`): a
# time-feature Linear for TSLib's default hourly timeF marks (4), when no marks are passed.
_REFERENCE_UNUSED_MARKS = 4


@dataclass(frozen=True)
class LayoutOptions:
    """The network's layout settings (model config); each layout reads the ones it uses.

    patch_len/stride: None takes the layout's default (forecast 16/8 as the authors, classify
    8/4; the per-step layouts accept only 1/1). segment_len, channel_embedding: anomaly layout.
    d_ff: GPT-2 features kept before the head (anomaly, step forecast). embed_dropout: dropout
    after the conv token embedding (classify, impute, step forecast). forecast_layout: `patch`
    (long-term) or `step` (the authors' short-term network). time_features: the marks the
    per-step layouts read (one4all.marks). unused_reference_params: allocate the parameters the
    authors' short-term module creates and never reads, so trainable counts compare one to one.
    """

    patch_len: int | None = None
    stride: int | None = None
    segment_len: int = 25
    d_ff: int | None = None
    embed_dropout: float = 0.1
    channel_embedding: str = "pad"
    forecast_layout: str = "patch"
    time_features: str = "none"
    unused_reference_params: bool = False

    def __post_init__(self) -> None:
        for key in ("patch_len", "stride"):
            value = self.patch_len if key == "patch_len" else self.stride
            if value is not None and value < 1:
                raise UserError(f"model.{key}={value}; use a positive integer, or null for the layout's default")
        if not 0 <= self.embed_dropout < 1:
            raise UserError(f"model.embed_dropout={self.embed_dropout}; use a probability in [0, 1)")

    def patch(self, default: tuple[int, int]) -> tuple[int, int]:
        return self.patch_len or default[0], self.stride or default[1]


def _no_marks(options: LayoutOptions, layout: str) -> None:
    check_kind(options.time_features)
    if options.time_features != "none":
        raise UserError(f"the {layout} network reads no time-feature marks (as the authors' model); set "
                        "model.time_features=none")


def _head_width(options: LayoutOptions, d_model: int) -> int:
    d_ff = d_model if options.d_ff is None else options.d_ff
    if not 0 < d_ff <= d_model:
        raise UserError(f"model.d_ff={options.d_ff} must be in [1, {d_model}] (GPT-2 features kept before the head)")
    return d_ff


def _with_marks(tokens: torch.Tensor, marks: torch.Tensor | None) -> torch.Tensor:
    """Append the marks to each token as trailing features (the conv embedding splits them off)."""
    return tokens if marks is None else torch.cat([tokens, marks.to(tokens.dtype)], dim=-1)


def _patcher(io: IOSpec, patch_len: int, stride: int) -> tuple[Patcher, int]:
    """The patcher of a patch layout and its token count, with the settings' errors in config terms."""
    if patch_len < 1 or stride < 1:
        raise UserError(f"model.patch_len={patch_len} and model.stride={stride} must be positive")
    if io.seq_len < patch_len:
        raise UserError(f"task.seq_len={io.seq_len} is shorter than one patch (model.patch_len={patch_len}); use "
                        f"task.seq_len >= {patch_len} or a smaller model.patch_len")
    patcher = Patcher(patch_len, stride)
    return patcher, patcher.n_patches(io.seq_len)


def _per_step(io: IOSpec, options: LayoutOptions) -> None:
    if options.patch(default=(1, 1)) != (1, 1):
        raise UserError(f"the {io.kind} network reads one token per time step; set model.patch_len=1 "
                        "model.stride=1 (or null)")


class PatchForecast(nn.Module):
    """GPT4TS / One-for-All forecaster: instance norm, channel-independent patches, flatten head."""

    channel_independent = True

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _no_marks(options, "patch forecasting")
        self.patch_len, stride = options.patch(default=(16, 8))
        self.io = io
        self.norm = InstanceNorm()
        self.patcher, self.n_tokens = _patcher(io, self.patch_len, stride)
        self.head_norm = None

    def make_in_layer(self, d_model: int) -> nn.Module:
        return nn.Linear(self.patch_len, d_model)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model * self.n_tokens, self.io.horizon)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None, marks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Any]:
        batch, length, channels = x.shape
        z, mean, std = self.norm.normalise(x)
        series = z.permute(0, 2, 1).reshape(batch * channels, length)
        return self.patcher(series), (batch, channels, mean, std)

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        batch, channels, mean, std = state
        out = out_layer(hidden.reshape(batch * channels, -1))
        out = out.reshape(batch, channels, -1).permute(0, 2, 1)
        return self.norm.denormalise(out, mean, std)


class PatchClassify(nn.Module):
    """GPT4TS classifier: patches across time with all channels in one token, flatten, LayerNorm.

    Inputs are already standardised by the data side (no instance norm). The observation mask
    is accepted and not used, as the authors: padding arrives as zeros.
    """

    channel_independent = False

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _no_marks(options, "classification")
        self.patch_len, stride = options.patch(default=(8, 4))
        self.io, self.dropout = io, options.embed_dropout
        self.patcher, self.n_tokens = _patcher(io, self.patch_len, stride)
        self.head_norm = nn.LayerNorm(d_model * self.n_tokens)

    def make_in_layer(self, d_model: int) -> nn.Module:
        return ConvTokens(self.patch_len * self.io.n_channels, d_model, self.n_tokens, self.dropout)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model * self.n_tokens, self.io.n_classes)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None, marks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Any]:
        batch, length, channels = x.shape
        patches = self.patcher(x.permute(0, 2, 1).reshape(batch * channels, length))
        # [b c, n, p] -> [b, n, p c]: a token holds one patch of every channel, patch-major.
        patches = patches.reshape(batch, channels, self.n_tokens, self.patch_len)
        return patches.permute(0, 2, 3, 1).reshape(batch, self.n_tokens, -1), batch

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        return out_layer(self.head_norm(F.gelu(hidden).reshape(state, -1)))


class StepImpute(nn.Module):
    """GPT4TS imputation model: one token per time step, normalised over observed entries only,
    conv token embedding (plus the time-feature marks, which GPT4TS's imputation passes),
    LayerNorm + Linear back to the channels."""

    channel_independent = False

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _per_step(io, options)
        self.io, self.dropout = io, options.embed_dropout
        self.time_features = options.time_features
        self.mark_names = mark_names(options.time_features, io.freq)
        self.n_tokens = io.seq_len
        self.norm = ObservedNorm()
        self.head_norm = nn.LayerNorm(d_model)

    def make_in_layer(self, d_model: int) -> nn.Module:
        return ConvTokens(self.io.n_channels, d_model, self.n_tokens, self.dropout, self.time_features,
                          self.mark_names)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model, self.io.n_channels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None, marks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Any]:
        if mask is None:
            mask = torch.ones_like(x)
        z, mean, std = self.norm.normalise(x, mask.to(x.dtype))
        return _with_marks(z, marks), (mean, std)

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        mean, std = state
        return out_layer(self.head_norm(hidden)) * std + mean


class StepAnomaly(nn.Module):
    """GPT4TS anomaly model: one token per time step, per-segment instance norm, channels
    zero-padded to d_model (or projected by a Linear), the first `d_ff` hidden features ->
    Linear back to the channels."""

    channel_independent = False

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _per_step(io, options)
        _no_marks(options, "anomaly detection")
        segment_len, channel_embedding = options.segment_len, options.channel_embedding
        if segment_len < 1 or io.seq_len % segment_len:
            raise UserError(f"task.seq_len={io.seq_len} is not a multiple of model.segment_len={segment_len}; "
                            "pick a segment length that divides the window (authors: 100 and 25)")
        if channel_embedding not in ("pad", "linear"):
            raise UserError(f"model.channel_embedding={channel_embedding!r}; use pad (authors) or linear")
        if channel_embedding == "pad" and io.n_channels > d_model:
            raise UserError(f"{io.n_channels} channels do not fit GPT-2's width {d_model} by zero-padding; "
                            "set model.channel_embedding=linear")
        self.io, self.channel_embedding = io, channel_embedding
        self.d_ff = _head_width(options, d_model)
        self.n_tokens = io.seq_len
        self.norm = SegmentNorm(segment_len)
        self.head_norm = None

    def make_in_layer(self, d_model: int) -> nn.Module:
        if self.channel_embedding == "pad":
            return ChannelPad(d_model)
        return nn.Linear(self.io.n_channels, d_model)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(self.d_ff, self.io.n_channels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None, marks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Any]:
        return self.norm.normalise(x)

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        return self.norm.denormalise(out_layer(hidden[..., : self.d_ff]), state)


class StepForecast(nn.Module):
    """The GPT4TS / One-for-All short-term (M4) network: instance norm, one token per input step
    (conv embedding + sinusoidal positions, plus marks when configured), a linear map over time from
    `seq_len` to `seq_len + horizon` tokens, GPT-2 on all of them, the first `d_ff` features of
    each -> Linear(d_ff, channels), denormalised; the forecast is the last `horizon` steps.

    Channels enter one token together (the authors' M4 series are univariate). The embedding
    works at GPT-2's width (the authors' `d_model` below 768, their M4 Monthly setting, is not offered).
    """

    channel_independent = False

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _per_step(io, options)
        self.io, self.dropout = io, options.embed_dropout
        self.time_features = options.time_features
        self.mark_names = mark_names(options.time_features, io.freq)
        self.unused_reference_params = options.unused_reference_params
        self.n_tokens = io.seq_len + io.horizon
        self.d_ff = _head_width(options, d_model)
        self.norm = InstanceNorm()
        # The authors' module also holds a LayerNorm(d_ff) for a head variant it does not run.
        self.head_norm = nn.LayerNorm(self.d_ff) if options.unused_reference_params else None

    def make_in_layer(self, d_model: int) -> nn.Module:
        layer = ExtendedConvTokens(self.io.n_channels, d_model, self.io.seq_len, self.io.horizon, self.dropout,
                                   self.time_features, self.mark_names)
        if self.unused_reference_params:
            # Allocated as in the authors' module, never read: the timeF embedding when no marks
            # are passed (M4 has no timestamps), and Linear(patch_size 1, channels) of a patch variant.
            if layer.marks is None:
                layer.unused_marks = nn.Linear(_REFERENCE_UNUSED_MARKS, d_model, bias=False)
            layer.unused_patch_linear = nn.Linear(1, self.io.n_channels)
        return layer

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(self.d_ff, self.io.n_channels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None, marks: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Any]:
        z, mean, std = self.norm.normalise(x)
        return _with_marks(z, marks), (mean, std)

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        mean, std = state
        out = out_layer(hidden[:, -self.io.horizon:, : self.d_ff])
        return self.norm.denormalise(out, mean, std)


Layout = PatchForecast | StepForecast | PatchClassify | StepImpute | StepAnomaly


def make_layout(io: IOSpec, d_model: int, options: LayoutOptions) -> Layout:
    """The layout for `io`: forecast (patch or step, `options.forecast_layout`), classify, or
    reconstruct (with an observation mask: imputation; without: anomaly detection)."""
    if io.kind == "reconstruct":
        cls = StepImpute if io.masked else StepAnomaly
    elif io.kind == "forecast":
        if options.forecast_layout not in FORECAST_LAYOUTS:
            raise UserError(f"model.forecast_layout={options.forecast_layout!r}; use patch (long-term) or step "
                            "(the authors' short-term network)")
        cls = PatchForecast if options.forecast_layout == "patch" else StepForecast
    else:
        cls = PatchClassify
    return cls(io, d_model, options)
