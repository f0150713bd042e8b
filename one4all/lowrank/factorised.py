"""A GPT-2 Conv1D projection split into low-rank factor pairs and frozen dense slices (WeLore).

GPT-2's Conv1D computes y = x W + b with W stored as [in, out]. The output columns may be cut
into equal groups (c_attn: Q | K | V); each group is either a trainable factor pair from the
rank-r truncated SVD (an LRC) or its original columns, frozen (an N-LRC). The bias is kept,
frozen.
"""

from __future__ import annotations

import torch
from torch import nn


class Factors(nn.Module):
    """W[in, out] ~ (up.weight @ down.weight)^T from the rank-r truncated SVD; y = up(down(x))."""

    def __init__(self, weight: torch.Tensor, rank: int) -> None:
        super().__init__()
        # SVD of W^T (nn.Linear orientation, [out, in]) = U S V^T; split sqrt(S) between the factors.
        u, s, vh = torch.linalg.svd(weight.detach().T.to(torch.float64), full_matrices=False)
        root = s[:rank].sqrt()
        self.down = nn.Linear(weight.shape[0], rank, bias=False)
        self.up = nn.Linear(rank, weight.shape[1], bias=False)
        with torch.no_grad():
            self.down.weight.copy_(root[:, None] * vh[:rank])
            self.up.weight.copy_(u[:, :rank] * root)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class DenseSlice(nn.Module):
    """Original columns W[in, out_group] of a Conv1D, kept dense and frozen."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class FactorisedConv1D(nn.Module):
    """Drop-in for a transformers Conv1D: output groups as factor pairs (rank given) or dense (None)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, ranks: list[int | None]) -> None:
        super().__init__()
        size = weight.shape[1] // len(ranks)
        slices = weight.split(size, dim=1)
        self.parts = nn.ModuleList(DenseSlice(w) if r is None else Factors(w, r) for w, r in zip(slices, ranks))
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.nf = weight.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=-1) + self.bias

    def factors_requires_grad_(self, requires_grad: bool = True) -> None:
        """Make the factor pairs (not the dense slices or the bias) trainable, or freeze them."""
        for part in self.parts:
            if isinstance(part, Factors):
                part.requires_grad_(requires_grad)

    def weight_params(self) -> int:
        """Weight parameters (bias excluded) after factorisation."""
        return sum(p.numel() for part in self.parts for p in part.parameters())
