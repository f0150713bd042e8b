"""Input side of the GPT-2 networks: instance normalisation and patching."""

from __future__ import annotations

import torch
from torch import nn


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
