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
- Attention (`model.backbone.attn_implementation=auto`, registered with transformers as
  `one4all`): on the CPU the authors' eager formulation (matmul, softmax, dropout, matmul) with the
  scale and causal mask folded into one pass and the probabilities' dropout drawn by the block's own
  dropout module (packed-lane masks, models.fast_dropout); on CUDA transformers' SDPA, whose fused
  kernels apply dropout themselves. PyTorch's CPU SDPA kernel cannot apply dropout and falls back
  to a slower generic path in training, hence the split by device.
"""

from __future__ import annotations

import functools

import torch
from transformers import AttentionInterface, GPT2Model
from transformers.activations import ACT2FN
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.pytorch_utils import Conv1D

ATTENTION = "one4all"


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


@functools.lru_cache(maxsize=16)
def _causal_mask(q_len: int, kv_len: int, device: torch.device) -> torch.Tensor:
    """Additive causal mask [1, 1, q_len, kv_len]: -inf above the diagonal (made once per shape)."""
    return torch.full((q_len, kv_len), float("-inf"), device=device).triu(kv_len - q_len + 1)[None, None]


def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
              **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GPT-2 attention on `[batch, heads, tokens, head_dim]`: SDPA off the CPU, eager on it (module doc)."""
    if query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if attention_mask is None and module.is_causal:
        # The SDPA mask function leaves a plain causal mask to the kernel (is_causal): build it here.
        attention_mask = _causal_mask(query.size(-2), key.size(-2), query.device)
    elif attention_mask is not None and attention_mask.dtype == torch.bool:
        attention_mask = torch.zeros(attention_mask.shape, device=query.device).masked_fill_(~attention_mask,
                                                                                              float("-inf"))
    scores = torch.matmul(query, key.transpose(-1, -2))
    # One pass for scale and mask instead of two (same values up to the last bit).
    scores = scores * scaling if attention_mask is None else torch.add(attention_mask, scores, alpha=scaling)
    weights = torch.softmax(scores, dim=-1).type(value.dtype)
    # The block's own dropout module (FastDropout when the network uses it), identity in eval.
    weights = module.attn_dropout(weights)
    return torch.matmul(weights, value).transpose(1, 2), weights


AttentionInterface.register(ATTENTION, attention)
# SDPA's mask function: None for a plain causal mask, so CUDA takes the is_causal (flash) kernels.
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def streamline(model: GPT2Model, fused_gelu: bool = True, attn_implementation: str = "auto") -> GPT2Model:
    """Turn off the key/value cache, cache frozen weight casts, (optionally) fuse GELU, and select the
    attention kernel (`auto`: module `attention`; `eager`/`sdpa`: transformers' own), in place."""
    model.config.use_cache = False
    if attn_implementation == "auto":
        model.config._attn_implementation = ATTENTION
    for module in model.modules():
        if type(module) is Conv1D:
            module.__class__ = CastCachedConv1D
    if fused_gelu and model.config.activation_function == "gelu_new":
        model.config.activation_function = "gelu_pytorch_tanh"
        for block in model.h:
            block.mlp.act = ACT2FN["gelu_pytorch_tanh"]
    return model
