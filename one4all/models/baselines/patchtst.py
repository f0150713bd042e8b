"""PatchTST (Nie et al., ICLR 2023): channel-independent patches through a small Transformer encoder.

Per series: RevIN-style instance norm (no affine, as the authors' supervised scripts) -> pad the end
by `stride` and cut patches (16/8: 42 patches for L=336, 64 for L=512) -> linear patch embedding +
a learned positional embedding -> `n_layers` post-norm encoder layers with BatchNorm and residual
attention (each layer adds the previous layer's pre-softmax scores) -> flatten -> linear head.

Per output kind (Time-Series-Library's task branches, on this same encoder): forecast and
reconstruct flatten each channel's patches into a Linear to `horizon` or `seq_len` steps, undone
by the instance norm; with an observation mask (imputation) the norm uses the observed entries
only, as TSLib. Classify flattens every channel's patches together, dropout, one Linear to the
class logits; TSLib standardises the zero-padded series as they are, here a mask (padding) keeps
the padded steps out of the statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from one4all.contract import IOSpec, Network
from one4all.errors import UserError
from one4all.models.encoder import InstanceNorm, ObservedNorm, Patcher


class ResidualAttention(nn.Module):
    """Multi-head self-attention that also returns its pre-softmax scores for the next layer."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))
        self.attn_dropout = nn.Dropout(attn_dropout)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        n, tokens, d_model = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * self.head_dim ** -0.5
        if prev is not None:
            scores = scores + prev
        mixed = self.attn_dropout(scores.softmax(dim=-1)) @ v
        return self.out(mixed.transpose(1, 2).reshape(n, tokens, d_model)), scores


class BatchNormTokens(nn.BatchNorm1d):
    """BatchNorm over the feature axis of `[n, tokens, d_model]` (statistics over series and tokens)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer: attention, add, BatchNorm; feed-forward (GELU), add, BatchNorm."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.attention = ResidualAttention(d_model, n_heads, attn_dropout, dropout)
        self.drop_attention = nn.Dropout(dropout)
        self.norm_attention = BatchNormTokens(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(d_ff, d_model))
        self.drop_feed_forward = nn.Dropout(dropout)
        self.norm_feed_forward = BatchNormTokens(d_model)

    def forward(self, x: torch.Tensor, scores: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        attended, scores = self.attention(x, scores)
        x = self.norm_attention(x + self.drop_attention(attended))
        x = self.norm_feed_forward(x + self.drop_feed_forward(self.feed_forward(x)))
        return x, scores


class PatchTST(Network):
    """PatchTST: `[b, seq_len, c]` -> forecast `[b, horizon, c]`, reconstruction `[b, seq_len, c]` or
    class logits `[b, n_classes]`. PatchTST/42 (L=336) and /64 (L=512) are the forecasting setups."""

    # Each channel is its own univariate sample: the forecasting data side serves [batch, length, 1]
    # windows. Reconstruction and classification samples hold every channel (a class belongs to the
    # whole series); the encoder still treats each channel on its own.
    channel_independent = True

    def __init__(
        self,
        io: IOSpec,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 128,
        n_heads: int = 16,
        d_ff: int = 256,
        n_layers: int = 3,
        dropout: float = 0.2,
        attn_dropout: float = 0.0,
        head_dropout: float = 0.0,
        revin: bool = True,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise UserError(f"model.d_model={d_model} is not divisible by model.n_heads={n_heads}")
        if io.seq_len < patch_len:
            raise UserError(f"task.seq_len={io.seq_len} is shorter than model.patch_len={patch_len}")
        self.io, self.revin = io, revin
        self.norm, self.observed_norm = InstanceNorm(), ObservedNorm()
        self.patcher = Patcher(patch_len, stride)
        self.n_patches = self.patcher.n_patches(io.seq_len)
        self.embed = nn.Linear(patch_len, d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout, attn_dropout)
                                    for _ in range(n_layers))
        features = d_model * self.n_patches
        if io.kind == "classify":
            self.head = nn.Sequential(nn.Flatten(start_dim=1), nn.Dropout(head_dropout),
                                      nn.Linear(features * io.n_channels, io.n_classes))
        else:
            out_len = io.horizon if io.kind == "forecast" else io.seq_len
            self.head = nn.Sequential(nn.Flatten(start_dim=1), nn.Linear(features, out_len), nn.Dropout(head_dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`x[batch, seq_len, channels]` (+ `mask`, 1 = observed) -> the output of `io.kind`."""
        batch, length, channels = x.shape
        if self.revin:
            x, mean, std = self.norm.normalise(x) if mask is None else self.observed_norm.normalise(x, mask)
        series = x.permute(0, 2, 1).reshape(batch * channels, length)
        hidden = self.dropout(self.embed(self.patcher(series)) + self.position)
        scores = None
        for layer in self.layers:
            hidden, scores = layer(hidden, scores)
        if self.io.kind == "classify":
            return self.head(hidden.reshape(batch, channels, -1))
        out = self.head(hidden).reshape(batch, channels, -1).permute(0, 2, 1)
        return self.norm.denormalise(out, mean, std) if self.revin else out
