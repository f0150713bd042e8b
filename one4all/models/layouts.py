"""How each output kind turns a batch into GPT-2 tokens, and GPT-2 states back into outputs.

The One-for-All network (models.one4all) is the same frozen GPT-2 for every task; what differs
is the layout around it, following the authors' designs (PAPERS.md §2.1, DESIGN.md §3):

| layout | tokens | embedding (`in_layer`) | head (`out_layer`) |
|---|---|---|---|
| PatchForecast | one channel's patch (channel independent) | Linear(P, d) | flatten -> Linear(d N, H) |
| PatchClassify | one patch of every channel | conv + sin positions | GELU, flatten, LayerNorm -> Linear(d N, K) |
| StepImpute | one time step, observed-entry norm | conv + sin positions | LayerNorm -> Linear(d, C) per step |
| StepAnomaly | one time step, per-segment norm | zero-pad (or Linear) to d | first d_ff features -> Linear(d_ff, C) |

A layout holds no trainable weights except its head LayerNorm (`head_norm`): the network owns
`in_layer` and `out_layer`, so every kind shares the adapter part names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from one4all.contract import IOSpec
from one4all.errors import UserError
from one4all.models.encoder import ChannelPad, ConvTokens, InstanceNorm, ObservedNorm, Patcher, SegmentNorm


@dataclass(frozen=True)
class LayoutOptions:
    """The network's layout settings (model config); each layout reads the ones it uses.

    patch_len/stride: None takes the layout's default (forecast 16/8 as the authors, classify
    8/4; the per-step layouts accept only 1/1). segment_len, d_ff, channel_embedding: anomaly
    layout. embed_dropout: dropout after the conv token embedding (classify, impute).
    """

    patch_len: int | None = None
    stride: int | None = None
    segment_len: int = 25
    d_ff: int | None = None
    embed_dropout: float = 0.1
    channel_embedding: str = "pad"

    def __post_init__(self) -> None:
        for key in ("patch_len", "stride"):
            value = self.patch_len if key == "patch_len" else self.stride
            if value is not None and value < 1:
                raise UserError(f"model.{key}={value}; use a positive integer, or null for the layout's default")
        if not 0 <= self.embed_dropout < 1:
            raise UserError(f"model.embed_dropout={self.embed_dropout}; use a probability in [0, 1)")

    def patch(self, default: tuple[int, int]) -> tuple[int, int]:
        return self.patch_len or default[0], self.stride or default[1]


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
        self.patch_len, stride = options.patch(default=(16, 8))
        self.io = io
        self.norm = InstanceNorm()
        self.patcher, self.n_tokens = _patcher(io, self.patch_len, stride)
        self.head_norm = None

    def make_in_layer(self, d_model: int) -> nn.Module:
        return nn.Linear(self.patch_len, d_model)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model * self.n_tokens, self.io.horizon)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
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
        self.patch_len, stride = options.patch(default=(8, 4))
        self.io, self.dropout = io, options.embed_dropout
        self.patcher, self.n_tokens = _patcher(io, self.patch_len, stride)
        self.head_norm = nn.LayerNorm(d_model * self.n_tokens)

    def make_in_layer(self, d_model: int) -> nn.Module:
        return ConvTokens(self.patch_len * self.io.n_channels, d_model, self.n_tokens, self.dropout)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model * self.n_tokens, self.io.n_classes)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        batch, length, channels = x.shape
        patches = self.patcher(x.permute(0, 2, 1).reshape(batch * channels, length))
        # [b c, n, p] -> [b, n, p c]: a token holds one patch of every channel, patch-major.
        patches = patches.reshape(batch, channels, self.n_tokens, self.patch_len)
        return patches.permute(0, 2, 3, 1).reshape(batch, self.n_tokens, -1), batch

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        return out_layer(self.head_norm(F.gelu(hidden).reshape(state, -1)))


class StepImpute(nn.Module):
    """GPT4TS imputation model: one token per time step, normalised over observed entries only,
    conv token embedding, LayerNorm + Linear back to the channels."""

    channel_independent = False

    def __init__(self, io: IOSpec, d_model: int, options: LayoutOptions) -> None:
        super().__init__()
        _per_step(io, options)
        self.io, self.dropout = io, options.embed_dropout
        self.n_tokens = io.seq_len
        self.norm = ObservedNorm()
        self.head_norm = nn.LayerNorm(d_model)

    def make_in_layer(self, d_model: int) -> nn.Module:
        return ConvTokens(self.io.n_channels, d_model, self.n_tokens, self.dropout)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(d_model, self.io.n_channels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        if mask is None:
            mask = torch.ones_like(x)
        z, mean, std = self.norm.normalise(x, mask.to(x.dtype))
        return z, (mean, std)

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
        segment_len, d_ff, channel_embedding = options.segment_len, options.d_ff, options.channel_embedding
        if segment_len < 1 or io.seq_len % segment_len:
            raise UserError(f"task.seq_len={io.seq_len} is not a multiple of model.segment_len={segment_len}; "
                            "pick a segment length that divides the window (authors: 100 and 25)")
        if channel_embedding not in ("pad", "linear"):
            raise UserError(f"model.channel_embedding={channel_embedding!r}; use pad (authors) or linear")
        if channel_embedding == "pad" and io.n_channels > d_model:
            raise UserError(f"{io.n_channels} channels do not fit GPT-2's width {d_model} by zero-padding; "
                            "set model.channel_embedding=linear")
        self.io, self.channel_embedding = io, channel_embedding
        self.d_ff = d_model if d_ff is None else d_ff
        if not 0 < self.d_ff <= d_model:
            raise UserError(f"model.d_ff={d_ff} must be in [1, {d_model}] (GPT-2 features kept before the head)")
        self.n_tokens = io.seq_len
        self.norm = SegmentNorm(segment_len)
        self.head_norm = None

    def make_in_layer(self, d_model: int) -> nn.Module:
        if self.channel_embedding == "pad":
            return ChannelPad(d_model)
        return nn.Linear(self.io.n_channels, d_model)

    def make_out_layer(self, d_model: int) -> nn.Linear:
        return nn.Linear(self.d_ff, self.io.n_channels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        return self.norm.normalise(x)

    def decode(self, out_layer: nn.Module, hidden: torch.Tensor, state: Any) -> torch.Tensor:
        return self.norm.denormalise(out_layer(hidden[..., : self.d_ff]), state)


Layout = PatchForecast | PatchClassify | StepImpute | StepAnomaly


def make_layout(io: IOSpec, d_model: int, options: LayoutOptions) -> Layout:
    """The layout for `io`: forecast, classify, or reconstruct (with an observation mask:
    imputation; without: anomaly detection)."""
    if io.kind == "reconstruct":
        cls = StepImpute if io.masked else StepAnomaly
    else:
        cls = {"forecast": PatchForecast, "classify": PatchClassify}[io.kind]
    return cls(io, d_model, options)
