"""A trained forecaster as a plain inference graph: LoRA merged, only the parts the network uses.

The One-for-All network is rebuilt from its parts (the layout's instance norm and patching, the
token embedding, the GPT-2 blocks, the head) with every adapter folded into dense weights:

- peft's LoRA layers merge their delta into the base weight (`W + s * B A`, peft's own arithmetic)
  and are replaced by that base layer, so inference does no adapter arithmetic;
- each GPT-2 projection becomes an `nn.Linear` (GPT-2's `Conv1D` stores `[in, out]`), which is what
  dynamic int8 quantisation and the ONNX quantiser recognise;
- of GPT-2 only what runs is kept: its first `n_patches` position rows, the truncated blocks and
  the final LayerNorm (no token table: the network feeds embeddings).

The GPT-2 blocks are written out here instead of tracing transformers' `GPT2Model`: its forward
builds the attention mask with Python-side checks that a trace freezes to the example batch (a
traced model then fails on any other batch size), and it carries cache plumbing an exporter must
see through. The block below computes the same function (pre-LayerNorm attention + MLP, causal
attention with the block's own scaling); `build_graph` checks it against the network it came from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn
from transformers import GPT2Model
from transformers.models.gpt2.modeling_gpt2 import GPT2Block
from transformers.pytorch_utils import Conv1D

from one4all.errors import UserError
from one4all.models.layouts import PatchForecast
from one4all.models.one4all import One4All


def merge_adapters(network: nn.Module) -> int:
    """Fold every peft LoRA layer of `network` into its base layer, in place; returns how many."""
    merged = 0
    for name, module in list(network.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, attr = name.rpartition(".")
            setattr(network.get_submodule(parent), attr, module.get_base_layer())
            merged += 1
    return merged


def dense(module: nn.Module, n_in: int) -> nn.Linear:
    """An `nn.Linear` computing the same affine map of `n_in` features as `module` (Linear, GPT-2
    Conv1D, or another affine projection an adapter put in place, such as factor pairs)."""
    if isinstance(module, nn.Linear):
        weight, bias = module.weight.detach(), module.bias
    elif isinstance(module, Conv1D):
        weight, bias = module.weight.detach().T, module.bias
    else:
        # Any other projection is affine: its matrix is its response to the unit vectors, which
        # needs no knowledge of how it is stored.
        with torch.no_grad():
            zero = module(torch.zeros(1, n_in))
            weight, bias = (module(torch.eye(n_in)) - zero).T, zero[0]
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias.detach())
    return linear


class Block(nn.Module):
    """One GPT-2 block for inference: x + attn(ln_1(x)), then x + mlp(ln_2(x)); no dropout, no cache."""

    def __init__(self, block: GPT2Block) -> None:
        super().__init__()
        attn = block.attn
        self.n_heads, self.scaling = attn.num_heads, float(attn.scaling)
        self.ln_1, self.ln_2 = block.ln_1, block.ln_2
        width = block.ln_1.normalized_shape[0]
        self.qkv, self.proj = dense(attn.c_attn, width), dense(attn.c_proj, width)
        self.fc, self.act = dense(block.mlp.c_fc, width), block.mlp.act
        self.fc_out = dense(block.mlp.c_proj, self.fc.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, width = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(n, tokens, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling)
        x = x + self.proj(mixed.transpose(1, 2).reshape(n, tokens, width))
        return x + self.fc_out(self.act(self.fc(self.ln_2(x))))


class ForecastGraph(nn.Module):
    """The merged One-for-All forecaster: `x[batch, seq_len, channels]` -> `[batch, horizon, channels]`.

    The weights may be cast to bf16/fp16 (`.to(dtype)`): the instance norm, patching and the
    de-normalisation stay in fp32, only the embedding, GPT-2 and the head run in the low precision.
    """

    def __init__(self, layout: PatchForecast, in_layer: nn.Linear, positions: torch.Tensor, blocks: list[Block],
                 ln_f: nn.LayerNorm, out_layer: nn.Linear) -> None:
        super().__init__()
        self.layout, self.in_layer, self.out_layer = layout, in_layer, out_layer
        self.positions = nn.Parameter(positions.detach().clone(), requires_grad=False)
        self.blocks = nn.ModuleList(blocks)
        self.ln_f = ln_f
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, state = self.layout.encode(x.float(), None)
        compute = self.positions.dtype
        hidden = self.in_layer(tokens.to(compute)) + self.positions
        for block in self.blocks:
            hidden = block(hidden)
        return self.layout.decode(self._head, self.ln_f(hidden), state)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        # fp32 out of the head whatever the weights' dtype, so de-normalisation runs in fp32.
        return self.out_layer(hidden).float()


def forecast_layout(network: nn.Module) -> PatchForecast:
    """The layout of an exportable network (a One-for-All forecaster on GPT-2); else a one-line error."""
    if not isinstance(network, One4All) or not isinstance(network.layout, PatchForecast):
        raise UserError("export builds a merged graph for One-for-All forecasters only; this run's network is "
                        f"{type(network).__name__}: export a run of model=one4all with a forecasting task")
    if not isinstance(network.lm, GPT2Model):
        raise UserError(f"the backbone {type(network.lm).__name__} is not GPT-2; export supports GPT-2 backbones")
    return network.layout


def build_graph(network: nn.Module) -> ForecastGraph:
    """The inference graph of a trained One-for-All forecaster (the network is merged in place)."""
    forecast_layout(network)
    network.eval()
    merge_adapters(network)
    gpt2 = network.lm
    positions = gpt2.wpe.weight[: network.n_patches]
    blocks = [Block(block) for block in gpt2.h]
    return ForecastGraph(network.layout, dense(network.in_layer, network.layout.patch_len), positions, blocks,
                         gpt2.ln_f, dense(network.out_layer, gpt2.config.n_embd * network.n_patches))
