"""Remove per-step waste from a frozen GPT-2 without changing the function it computes.

Found by profiling one training and one inference step of the One-for-All network
(docs/benchmarks.md, "Speed against the roofline"):

- transformers builds a key/value cache on every forward (`config.use_cache` is true for GPT-2):
  two concatenations per block that nothing reads. Turned off.
- Under autocast a frozen weight is cast to bf16 on every call (autocast caches only the casts of
  weights that require grad): 85 MB of casts per forward through 6 GPT-2 small blocks. Frozen
  projections keep their cast copy (`CastCachedConv1D`); the copy is made again when the weight
  changes (a version or storage change), so loading weights or merging LoRA stays correct.
- GPT-2's `gelu_new` is written as eight elementwise PyTorch ops (pow, mul, add, tanh, ...), each
  a pass over the [tokens, 3072] activation, and each keeping a tensor for backward. The same
  tanh-approximate GELU exists as one fused kernel (`gelu_pytorch_tanh`); it differs only in
  rounding. Opt out with `model.backbone.fused_gelu=false`.
"""

from __future__ import annotations

import torch
from transformers import GPT2Model
from transformers.activations import ACT2FN
from transformers.pytorch_utils import Conv1D


class CastCachedConv1D(Conv1D):
    """GPT-2's projection (`x @ weight + bias`) that keeps its autocast copy while frozen.

    Same parameters and state-dict keys as `Conv1D` (it is one, so peft still recognises it);
    trainable weights and calls outside autocast take the plain path.
    """

    _cast: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def _cast_weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = self.weight, self.bias
        key = (dtype, w.device, w.data_ptr(), w._version, b.data_ptr(), b._version)
        if self._cast is None or self._cast[0] != key:
            with torch.no_grad():
                self._cast = (key, w.to(dtype), b.to(dtype))
        return self._cast[1], self._cast[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if self.weight.requires_grad or self.bias.requires_grad or not torch.is_autocast_enabled(device):
            return super().forward(x)
        weight, bias = self._cast_weights(torch.get_autocast_dtype(device))
        out = torch.addmm(bias, x.reshape(-1, x.size(-1)), weight)
        return out.view(*x.shape[:-1], self.nf)


def streamline(model: GPT2Model, fused_gelu: bool = True) -> GPT2Model:
    """Turn off the key/value cache, cache frozen weight casts, and (optionally) fuse GELU, in place."""
    model.config.use_cache = False
    for module in model.modules():
        if type(module) is Conv1D:
            module.__class__ = CastCachedConv1D
    if fused_gelu and model.config.activation_function == "gelu_new":
        model.config.activation_function = "gelu_pytorch_tanh"
        for block in model.h:
            block.mlp.act = ACT2FN["gelu_pytorch_tanh"]
    return model
