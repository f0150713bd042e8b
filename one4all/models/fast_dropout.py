"""Dropout with cheap masks on the CPU: 16-bit lanes of 64-bit random words instead of `bernoulli_`.

torch's CPU dropout fills a noise tensor with `bernoulli_`, one Mersenne Twister draw turned into
a float and compared per element: 11-21% of a bf16 One-for-All training step (docs/benchmarks.md).
Here one 64-bit word from the same generator (`random_` over the full int64 range: two mt19937
draws) gives four independent 16-bit lanes; an element is kept when its lane is below a
threshold, and kept elements are scaled by the inverse of the exact keep probability. The mask
generation costs about a quarter of `bernoulli_` (docs/benchmarks.md, "Dropout alone").

Distribution: every element is kept independently with probability `k / 65536`,
`k = round((1 - p) * 65536)`: p is quantised to 16 bits (|error| <= 2**-17, 7.6e-6; for p = 0.1
the drop rate is 0.1000061), and the scale 65536 / k makes the output exactly unbiased. A p so
close to 0 or 1 that k would be 0 or 65536 falls back to torch's dropout.

Reproducibility: the words come from torch's default CPU generator, whose state seeded runs
set and checkpoints save (one4all.checkpointing), so runs stay seeded and resume bit-identically.
On other devices (CUDA) torch's fused dropout kernel is already cheap and is used unchanged.
`eval()` is the identity, as for `nn.Dropout`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LANES = 65536  # 16-bit lanes
_INT64_MIN = -(2**63)


def keep_count(p: float) -> int:
    """k: an element is kept when its 16-bit lane is one of k values out of 65536."""
    return round((1.0 - p) * LANES)


def packed(p: float) -> bool:
    """Whether drop probability `p` is served by 16-bit lanes (else torch's dropout is used)."""
    return 0 < keep_count(p) < LANES


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask of `shape`, True with probability keep_count(p) / 65536, independently per element."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    # from=int64 min, to=None: uniform over all 2**64 values, i.e. 64 independent fair bits.
    words.random_(_INT64_MIN, None, generator=generator)
    # A signed 16-bit lane is uniform on [-32768, 32767]: below -32768 + k with probability k / 65536.
    return (words.view(torch.int16)[:n] < keep_count(p) - LANES // 2).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout(x, p, training)` with packed-lane masks on the CPU (same distribution, see module doc)."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or not packed(p):
        return F.dropout(x, p, training=True)
    mask = keep_mask(x.shape, p, x.device)
    # where + an in-place scalar scale: autograd keeps only the 1-byte mask for backward (torch's
    # dropout keeps a noise tensor of x's dtype); the scale is applied in fp32 even for bf16 inputs.
    return torch.where(mask, x, 0).mul_(LANES / keep_count(p))


class FastDropout(nn.Dropout):
    """`nn.Dropout` whose CPU masks come from packed random words (module `dropout`); same p, same API."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:  # nothing here relies on in-place dropout; keep torch's semantics exactly
            return super().forward(x)
        return dropout(x, self.p, self.training)


def use_fast_dropout(module: nn.Module) -> nn.Module:
    """Make every plain `nn.Dropout` in `module` a `FastDropout` (same p and state), in place."""
    for child in module.modules():
        if type(child) is nn.Dropout:
            child.__class__ = FastDropout
    return module
