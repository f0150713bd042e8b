"""LARS-style activation memory for LoRA inside GPT-2 blocks: VeLoRA's rank-1 sub-token projection.

A LoRA down-projection A keeps its input x [.., C] for backward (to form grad A = g^T x). VeLoRA
(METHODS.md §4.4) keeps instead, per token, G coefficients z = s . v: the token is cut into G
sub-tokens s of C/G features and each is projected onto one fixed unit vector v (the normalised
mean sub-token of the first training batch, then frozen). Backward uses x_hat = z (x) v for x.

- The forward output A x is exact, and so is grad x = g A (it needs A, not x): every gradient
  upstream of A, and B's gradient (from the stored A x), are unchanged.
- Only grad A = scale * g^T x_hat = scale * (g^T z) (x) v is approximate (x_hat is never built);
  it is exact when every sub-token is a multiple of v, e.g. with G = C (sub-tokens of one feature).
- Saved per token: G numbers instead of C (24x less for C=768, G=32; 96x for the MLP's 3072).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from one4all.errors import UserError


class _SubTokenProjection(torch.autograd.Function):
    """y = x A^T, saving the sub-token coefficients of x on v instead of x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        out = F.linear(x, weight)
        groups = x.shape[-1] // v.numel()
        # In x's own precision: under autocast the matmul would first copy x to bf16.
        with torch.autocast(x.device.type, enabled=False):
            z = x.reshape(*x.shape[:-1], groups, v.numel()) @ v.to(x.dtype)
        ctx.save_for_backward(z, weight, v)
        ctx.scale, ctx.x_dtype = scale, x.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        z, weight, v = ctx.saved_tensors
        g = grad_out.to(weight.dtype)
        grad_x = (g @ weight).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            # g^T x_hat with x_hat = z (x) v, without building x_hat: (g^T z) (x) v.
            gz = g.reshape(-1, g.shape[-1]).T @ z.to(weight.dtype).reshape(-1, z.shape[-1])
            grad_w = ctx.scale * (gz.unsqueeze(-1) * v.to(weight.dtype)).flatten(-2)
        return grad_x, grad_w, None, None


class SubTokenLoRAA(nn.Linear):
    """A LoRA down-projection (no bias) that stores rank-1 sub-token projections of its input.

    `v` is a persistent buffer (saved with the adapter): zeros until the first training batch sets it.
    """

    def __init__(self, in_features: int, rank: int, groups: int, scale: float = 1.0) -> None:
        if groups < 1 or in_features % groups:
            raise UserError(f"adapter.velora_groups={groups} must divide the projection's {in_features} input "
                            "features; use e.g. 32 (GPT-2 small) or a divisor of n_embd")
        super().__init__(in_features, rank, bias=False)
        self.scale = scale
        self.register_buffer("v", torch.zeros(in_features // groups))
        self._ready = False  # caches `v` != 0, so that forward does not read the buffer every call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled() and self.weight.requires_grad):
            return F.linear(x, self.weight)
        if not self._ready:
            if not bool(self.v.any()):
                self._init_v(x)
            self._ready = True
        return _SubTokenProjection.apply(x, self.weight, self.v, self.scale)

    @torch.no_grad()
    def _init_v(self, x: torch.Tensor) -> None:
        mean = x.detach().float().reshape(-1, self.v.numel()).mean(0)
        norm = mean.norm()
        # A zero mean sub-token (e.g. exactly centred inputs) has no direction: fall back to a uniform one.
        self.v.copy_(mean / norm if norm > 0 else torch.ones_like(mean) / mean.numel() ** 0.5)


def compress_lora_inputs(network: nn.Module, modules: list[str], groups: int, scale: float = 1.0) -> None:
    """Replace the LoRA A of each peft-wrapped module in `modules` by a `SubTokenLoRAA` (same weights)."""
    for name in modules:
        layer = network.get_submodule(name)
        container = getattr(layer, "lora_A", None)
        if container is None or "default" not in container:
            raise UserError(f"{name} has no LoRA to compress; list its part in adapter.lora_targets as well")
        old = container["default"]
        new = SubTokenLoRAA(old.in_features, old.out_features, groups, scale).to(old.weight.device,
                                                                                  old.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(old.weight)
        new.weight.requires_grad_(old.weight.requires_grad)
        container["default"] = new
